"""SMTP PIPELINING (RFC 2920) against real servers: Postfix and smtp-sink offer it and
get MAIL + RCPT... + DATA in one write; aiosmtpd does not and gets one command at a
time. Either way accepted mail, refused recipients and refused transactions come back
exactly alike: on the same Postfix, a session that forgets PIPELINING was offered
(the client's own record of the EHLO reply) must report what a pipelined one does."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xfer.errors import PermanentError
from xfer.protocols.smtp import SendResult, SmtpConnection, SmtpConnector, smtp_code
from xfer.spec import HostConfig
from xfer.urls import parse_url
from tests.integration.test_mail_load import Sink, sink  # noqa: F401  (fixture)
from tests.servers.common import free_port, wait_port
from tests.servers.mail import MailServer, mail_server  # noqa: F401  (fixture)

BODY = b"Subject: pipelined\r\n\r\n.leading dot\r\nline two\r\n"


async def session(port: int, pipelining: bool = True) -> SmtpConnection:
    conn = await SmtpConnector(parse_url(f"smtp://127.0.0.1:{port}"), HostConfig()).connect()
    if not pipelining:
        conn.client.esmtp_extensions.pop("pipelining", None)
    return conn


async def outcomes(conn: SmtpConnection, sender: str, batches: list[list[str]]) -> list[Any]:
    """What each transaction gave: (code, refused) or (error type, smtp code, text)."""
    out: list[Any] = []
    for recipients in batches:
        try:
            result: SendResult = await conn.send(sender, recipients, BODY)
            out.append((result.code, result.refused))
        except PermanentError as exc:
            out.append((type(exc).__name__, smtp_code(exc), str(exc)))
    return out


def test_postfix_pipelined_and_one_by_one_report_alike(mail_server: MailServer) -> None:  # noqa: F811
    user, nobody = mail_server.address("user1"), f"nobody@{mail_server.domain}"
    batches = [[user, nobody], [nobody], [nobody, nobody], [user]]

    async def main() -> tuple[list[Any], list[Any], int, int]:
        piped, plain = await session(mail_server.smtp_port), await session(mail_server.smtp_port, pipelining=False)
        try:
            got = await outcomes(piped, user, batches), await outcomes(plain, user, batches)
            return (*got, piped.pipelined, plain.pipelined)
        finally:
            await piped.close()
            await plain.close()

    piped, plain, piped_count, plain_count = asyncio.run(main())
    assert piped_count == len(batches) and plain_count == 0
    assert piped == plain
    assert piped[0][0] == 250 and piped[0][1] == {nobody: 550}
    assert piped[1][:2] == ("PermanentError", 550) and nobody in piped[1][2]
    assert piped[3] == (250, {})  # the session survived the refused transactions (RSET)
    mail_server.wait_for_messages("user1", 4)  # two accepted per session


def test_server_without_pipelining_gets_one_command_at_a_time(sink: tuple[Sink, int]) -> None:  # noqa: F811
    handler, port = sink

    async def main() -> tuple[list[Any], int, bool]:
        conn = await session(port)
        try:
            got = await outcomes(conn, "from@client.test", [["a@sink.test", "reject@sink.test"], ["reject@x.test"]])
            return got, conn.pipelined, conn.client.supports_extension("pipelining")
        finally:
            await conn.close()

    got, pipelined, offered = asyncio.run(main())
    assert not offered and pipelined == 0
    assert got[0] == (250, {"reject@sink.test": 550})
    assert got[1][:2] == ("PermanentError", 550)
    assert handler.messages == 1


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        ["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{port}", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )
    try:
        wait_port(port)
        yield port
    finally:
        process.kill()
        process.wait()


def test_smtp_sink_takes_many_pipelined_messages_on_one_session(smtp_sink: int) -> None:
    async def main() -> tuple[list[Any], int]:
        conn = await session(smtp_sink)
        try:
            batches = [["a@sink.test", "b@sink.test"]] * 200
            return await outcomes(conn, "from@client.test", batches), conn.pipelined
        finally:
            await conn.close()

    got, pipelined = asyncio.run(main())
    assert pipelined == 200
    assert got == [(250, {})] * 200


async def submitted(conn: SmtpConnection, sender: str, batches: list[list[str]]) -> tuple[list[Any], list[bool]]:
    """`submit` each transaction in turn: what each gave (as `outcomes` says it), and
    whether `submit` returned before its answer came."""
    out: list[Any] = [None] * len(batches)
    early: list[bool] = []

    def answered(index: int, outcome: SendResult | Exception) -> None:
        if isinstance(outcome, SendResult):
            out[index] = (outcome.code, outcome.refused)
        else:
            out[index] = (type(outcome).__name__, smtp_code(outcome), str(outcome))

    for index, recipients in enumerate(batches):
        try:
            await conn.submit(sender, recipients, BODY, lambda outcome, index=index: answered(index, outcome))
            early.append(out[index] is None)
        except PermanentError as exc:
            out[index] = (type(exc).__name__, smtp_code(exc), str(exc))
    await conn.close()  # QUIT waits for the replies still due
    return out, early


def test_submit_goes_on_before_the_reply_and_one_refusal_fails_only_its_message(
    tmp_path: Path, mail_server: MailServer,  # noqa: F811
) -> None:
    """Postfix refuses one message at the end of data (header_checks), one at RCPT: each
    fails alone, and the transactions pipelined behind them go through on the same session."""
    from tests.servers.mail import _run_postfix  # the fixture has no public way to add a content check

    checks = tmp_path / "header_checks"
    checks.write_text("/^Subject: refuse me/ REJECT content refused for the test\n")
    config = mail_server._postfix_dir
    with (config / "main.cf").open("a") as main_cf:
        main_cf.write(f"\nheader_checks = regexp:{checks}\n")
    _run_postfix(config, "reload")
    user, nobody = mail_server.address("user1"), f"nobody@{mail_server.domain}"
    refused_body = b"Subject: refuse me\r\n\r\nbody\r\n"

    async def main() -> tuple[list[Any], list[bool], list[Any]]:
        conn = await session(mail_server.smtp_port)
        got: list[Any] = []
        early: list[bool] = []
        for body, recipients in [(BODY, [user]), (refused_body, [user]), (BODY, [nobody]), (BODY, [user, nobody])]:
            try:
                await conn.submit(user, recipients, body, got.append)
                early.append(len(got) < conn.messages)
            except PermanentError as exc:
                got.append(exc)
        await conn.close()
        return got, early, [conn.messages, conn.pipelined]

    got, early, counts = asyncio.run(main())
    assert counts == [4, 4]
    assert early == [True, True, True]  # submit returned before the content's reply
    assert isinstance(got[0], SendResult) and got[0].code == 250
    assert isinstance(got[1], PermanentError) and smtp_code(got[1]) == 550 and "content refused" in str(got[1])
    assert isinstance(got[2], PermanentError) and smtp_code(got[2]) == 550 and nobody in str(got[2])
    assert isinstance(got[3], SendResult) and got[3].refused == {nobody: 550}
    mail_server.wait_for_messages("user1", 2)


def test_submit_without_pipelining_answers_before_it_returns(sink: tuple[Sink, int]) -> None:  # noqa: F811
    handler, port = sink

    async def main() -> tuple[list[Any], list[bool]]:
        return await submitted(await session(port), "from@client.test", [["a@sink.test"], ["reject@x.test"], ["b@sink.test"]])

    got, early = asyncio.run(main())
    assert early == [False, False]  # answered within submit; the refused one raised
    assert got[0] == (250, {}) and got[2] == (250, {})
    assert got[1][:2] == ("PermanentError", 550)
    assert handler.messages == 2


def test_smtp_sink_answers_every_submitted_message(smtp_sink: int) -> None:
    async def main() -> tuple[list[Any], list[bool]]:
        return await submitted(await session(smtp_sink), "from@client.test", [["a@sink.test"]] * 200)

    got, early = asyncio.run(main())
    assert got == [(250, {})] * 200
    assert all(early)


class _RecordingTransport:
    """The session's transport, recording what each write carried (the server is real)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_content_and_the_next_transaction_reach_postfix_in_one_write(mail_server: MailServer) -> None:  # noqa: F811
    """Postfix's smtpd flushes its replies when its input buffer runs dry and does not set
    TCP_NODELAY. Sent in one write, a message's content and the next MAIL, RCPT, DATA are
    read together and all four replies come back in one write. Sent apart, the lone 250
    goes out first and the next three replies wait for its ACK, which the client delays
    up to 40 ms: measured, 30-45 msg/s instead of ~700 over one session."""
    user = mail_server.address("user1")

    async def main() -> tuple[list[Any], list[bytes]]:
        conn = await session(mail_server.smtp_port)
        stream = conn._stream_of()
        recorder = _RecordingTransport(stream.transport)
        stream.transport = recorder  # type: ignore[assignment]
        got: list[Any] = []
        for _ in range(3):
            await conn.submit(user, [user], BODY, got.append)
        await conn.close()
        return got, recorder.writes

    got, writes = asyncio.run(main())
    assert [result.code for result in got] == [250, 250, 250]
    assert writes[0].startswith(b"MAIL FROM:") and b".\r\n" not in writes[0]
    content = BODY.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    for later in writes[1:3]:  # the content, then the next transaction's commands, together
        assert later.startswith(content) and later[len(content):].startswith(b"MAIL FROM:")
        assert later.endswith(b"DATA\r\n")
    mail_server.wait_for_messages("user1", 3)
