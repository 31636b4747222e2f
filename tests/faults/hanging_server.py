"""A FAKE server that logs a client in and then hangs: run as a separate process,
`python hanging_server.py pop3|imap|nntp|silent`, it prints its port and serves until
killed.

Why a fake: the fault is "the server stops answering", at a point of our choosing
(before the greeting, or on the first command after login), 100 times in a row; no
real server can be told to do that, and a relay in the test process (tests/faults/
proxy.py) would hold sockets in the very process whose file descriptors the test
counts. It answers only what poplib, imaplib and nntplib send to log in (plain,
no TLS); every other command gets no reply at all. `silent` never greets."""

from __future__ import annotations

import asyncio
import sys

GREETING = {
    "pop3": b"+OK fake POP3 ready\r\n",
    "imap": b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake IMAP ready\r\n",
    "nntp": b"200 fake NNTP ready\r\n",
    "silent": b"",
}


def reply(protocol: str, line: bytes) -> bytes | None:
    """The reply to one command line, or None: hang (say nothing, keep the connection)."""
    words = line.split()
    if not words:
        return None
    if protocol == "pop3":
        return {b"CAPA": b"-ERR no capabilities\r\n", b"USER": b"+OK\r\n", b"PASS": b"+OK logged in\r\n"}.get(
            words[0].upper()
        )
    if protocol == "imap" and len(words) >= 2:
        tag, verb = words[0], words[1].upper()
        if verb == b"CAPABILITY":
            return b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n"
        if verb == b"LOGIN":
            return tag + b" OK logged in\r\n"
        if verb == b"SELECT":
            return b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n" + tag + b" OK [READ-WRITE] selected\r\n"
        return None
    if protocol == "nntp":
        command = b" ".join(words[:2]).upper()
        if words[0].upper() == b"CAPABILITIES":
            return b"101 capabilities\r\nVERSION 2\r\nREADER\r\nAUTHINFO USER\r\n.\r\n"
        return {b"AUTHINFO USER": b"381 password\r\n", b"AUTHINFO PASS": b"281 ok\r\n"}.get(command)
    return None


async def main(protocol: str) -> None:
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(GREETING[protocol])
        while line := await reader.readline():
            answer = reply(protocol, line)
            if answer is None:
                await reader.read()  # hang until the client goes away
                break
            writer.write(answer)
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
