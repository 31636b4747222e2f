"""What `xfer run` prints at the end, in words, for runs against real servers: an FTP
mirror (vsftpd, pyftpdlib), an NNTP scan (INN2), a mail load test (aiosmtpd) with its
HTML report (looked at in headless Chromium where it is installed), a mail roundtrip
and a mail fetch (Postfix + Dovecot)."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from xfer.outputs.tally import Tallies
from xfer.report import Report
from xfer.spec import load_job_file
from tests.integration.ftp_helpers import fill, run_cli, write_jobs
from tests.integration.test_mail_fetch import job_yaml as fetch_yaml
from tests.integration.test_mail_load import Sink, sink  # noqa: F401 - fixture
from tests.integration.test_mail_roundtrip import roundtrip_yaml
from tests.integration.test_nntp_scan import news, scan_job  # noqa: F401 - fixture
from tests.jobrun import run_scheduler
from tests.servers.common import free_port
from tests.servers.ftp import FtpServer, ftp_server  # noqa: F401 - fixture
from tests.servers.mail import MailServer, mail_server  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(300)

_SVG = "{http://www.w3.org/2000/svg}"


def test_ftp_mirror_says_files_bytes_rate_unchanged_and_deleted(ftp_server: FtpServer, tmp_path: Path) -> None:  # noqa: F811
    fill(ftp_server.root, {"a.txt": "a" * 1000, "sub/b.txt": "b" * 2000, "sub/c.bin": bytes(300_000)})
    ftp_server.chown_root()
    path = write_jobs(tmp_path, f"""
jobs:
  - name: site
    kind: ftp.mirror
    remote: "{ftp_server.url('/', with_password=True)}"
    local: out
    delete: true
""")
    code, _, output = run_cli(path)
    assert code == 0, output
    first = re.search(r"^site: (.*)$", output, re.M)
    assert first is not None, output
    assert re.fullmatch(
        r"3 files in 2 directories: 3 downloaded \(295\.9 KiB at [\d.,]+ [KMG]?i?B/s, [\d.,]+ files/s\), "
        r"0 skipped as unchanged", first.group(1)), first.group(1)

    (ftp_server.root / "sub/c.bin").unlink()
    code, _, output = run_cli(path)
    assert code == 0, output
    assert "site: 2 files in 2 directories: none downloaded, 2 skipped as unchanged, 1 deleted" in output


def test_ftp_upload_says_local_files_uploaded_and_unchanged(ftp_server: FtpServer, tmp_path: Path) -> None:  # noqa: F811
    fill(tmp_path / "site", {"index.html": "<p>hi</p>", "img/logo.png": bytes(70_000)})
    ftp_server.chown_root()
    path = write_jobs(tmp_path, f"""
jobs:
  - {{name: up, kind: ftp.mirror, direction: upload, remote: "{ftp_server.url('/www', with_password=True)}", local: site}}
""")
    code, _, output = run_cli(path)
    assert code == 0, output
    assert re.search(r"^up: 2 local files: 2 uploaded \(68\.4 KiB at [\d.,]+ [KMG]?i?B/s, [\d.,]+ files/s\), "
                     r"0 skipped as unchanged$", output, re.M), output
    (tmp_path / "site/index.html").write_text("<p>changed</p>")
    code, _, output = run_cli(path)
    assert re.search(r"^up: 2 local files: 1 uploaded \(.*\), 1 skipped as unchanged$", output, re.M), output


def test_nntp_scan_says_groups_articles_matched_and_threads(news: Any, tmp_path: Path) -> None:  # noqa: F811
    server, truth = news
    body = "jobs:\n" + scan_job(server, "harvest", "[xfer.corpus.python, xfer.corpus.misc, xfer.corpus.empty]", """
jsonl: h.jsonl
threads: true
match: {subject: {any: [asyncio]}}
""")
    path = write_jobs(tmp_path, f"defaults:\n  state: {tmp_path / 'state.db'}\n" + body)
    code, report, output = run_cli(path)
    assert code == 0, output
    summary = report["jobs"][0]["summary"]
    scanned = len(truth["xfer.corpus.python"]) + len(truth["xfer.corpus.misc"])
    assert summary["articles_scanned"] == scanned
    assert re.search(
        rf"^harvest: 3 groups \(1 with nothing new\), {scanned:,} articles scanned \([\d.,]+ articles/s\), "
        rf"{summary['articles_written']:,} matched and written, {summary['threads']:,} threads$", output, re.M), output


class BusySink(Sink):
    """Refuses `reject*` for good (550), `busy*` for now (451)."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("busy"):
            return "451 4.3.0 try again later"
        return await super().handle_RCPT(server, session, envelope, address, options)


@pytest.fixture
def busy_sink() -> Any:
    port = free_port()
    controller = Controller(BusySink(), hostname="127.0.0.1", port=port, server_hostname="sink.test")
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def _svg_texts(page: str) -> list[set[str]]:
    """The text of each inline SVG of the page, parsed as XML."""
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    return [{"".join(node.itertext()).strip() for node in ElementTree.fromstring(svg).iter(f"{_SVG}text")} for svg in svgs]


def test_mail_load_says_outcomes_codes_rate_and_latency_and_plots_them(busy_sink: int, tmp_path: Path) -> None:
    port = busy_sink
    path = write_jobs(tmp_path, f"""
hosts:
  127.0.0.1:{port}: {{max_connections: 4}}
jobs:
  - name: load
    kind: mail.load
    smtp: smtp://127.0.0.1:{port}
    envelope: {{from: load@client.test, to: [a@sink.test, b@sink.test, c@sink.test, reject@sink.test, busy@sink.test]}}
    count: 200
    concurrency: 4
    report_html: load.html
""")
    code, report, output = run_cli(path)
    assert code == 0, output
    summary = report["jobs"][0]["summary"]
    assert (summary["sent"], summary["accepted"], summary["rejected"], summary["failed"]) == (200, 120, 40, 40)
    line = re.search(r"^load: (.*)$", output, re.M)
    assert line is not None, output
    assert re.fullmatch(
        r"200 sent, 120 accepted, 40 rejected \(550\), 40 temporary failures \(451\), [\d.,]+ msg/s; "
        r"latency p50 [\d.]+ m?s, p90 [\d.]+ m?s, p99 [\d.]+ m?s, max [\d.]+ m?s", line.group(1)), line.group(1)
    # The JSON report keeps the figures machines read.
    assert set(summary["latency_ms"]) == {"count", "min_ms", "mean_ms", "max_ms", "p50", "p90", "p99", "p99_9"}

    page_path = tmp_path / "load.html"
    page = page_path.read_text()
    assert "None" not in page and "p99_9" not in page and "<th>p99.9</th>" in page
    assert "<script" not in page and "src=" not in page
    latency, throughput, percentiles = _svg_texts(page)
    assert {"Latency over time", "time since the test started (s)", "latency (ms)", "p50", "p99", "max"} <= latency
    assert {"Messages per second", "messages per second", "accepted", "rejected", "failed"} <= throughput
    assert {"Latency by percentile", "percentile", "50%", "90%", "99%", "99.9%"} <= percentiles
    assert any(text.startswith("p99 ") for text in percentiles)  # the summary's percentiles, marked
    _looks_right_in_chromium(page_path, tmp_path / "load.png")


def _looks_right_in_chromium(page: Path, shot: Path) -> None:
    """The page as a browser draws it: a screenshot that is not blank (skipped without Chromium)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/install-servers.sh installs it)")
    from PIL import Image

    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2600",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    with Image.open(shot) as image:
        small = image.convert("RGB").resize((300, 650))
    colours = dict((colour, number) for number, colour in small.getcolors(300 * 650))
    drawn = 300 * 650 - colours.get((255, 255, 255), 0)
    assert drawn > 300 * 650 // 50 and len(colours) > 20, (drawn, len(colours))


def test_open_loop_progress_has_its_total_before_planning_ends(tmp_path: Path, sink: tuple[Sink, int]) -> None:  # noqa: F811
    """The live display's bar of an open-loop test knows rate x duration from the start."""
    report, tallies = Report(), Tallies()
    seen: list[tuple[int | None, int | None]] = []

    def watch(event: Any) -> None:
        tallies(event)
        if event.name == "task.finished":
            seen.append((tallies.tally("open").expected, report.jobs["open"].planned))

    path = write_jobs(tmp_path, f"""
jobs:
  - {{name: open, kind: mail.load, smtp: "smtp://127.0.0.1:{sink[1]}", rate: 50, duration: 1, concurrency: 2,
     envelope: {{from: load@client.test, to: a@sink.test}}}}
""")
    run_scheduler(load_job_file(path), report, watch)
    assert seen and seen[0] == (50, None)  # known at the first message; planning ends with the last
    shown = tallies.progress(report.jobs["open"])
    assert (shown.unit, shown.done_text, shown.fraction) == ("msg", "50/50", 1.0)


def test_mail_roundtrip_and_fetch_say_what_arrived(mail_server: MailServer, tmp_path: Path) -> None:  # noqa: F811
    """Postfix + Dovecot: the roundtrip's verdicts and delivery latency; then a fetch of
    the mailbox the roundtrip left its messages in."""
    server = mail_server
    path = write_jobs(tmp_path, roundtrip_yaml(server, f"pop3://127.0.0.1:{server.pop3_port}", extra="    cleanup: false\n"))
    code, _, output = run_cli(path)
    assert code == 0, output
    assert re.search(r"^check: 3 sent, 3 accepted, 3 ok; delivery latency p50 [\d.]+ m?s, p90 [\d.]+ m?s, "
                     r"p99 [\d.]+ m?s, max [\d.]+ m?s$", output, re.M), output

    path = write_jobs(tmp_path, fetch_yaml(server, [("inbox", "user1", "imap:INBOX", "maildir")]), "fetch.yaml")
    code, _, output = run_cli(path)
    assert code == 0, output
    assert re.search(r"^inbox: 1 folder, 3 messages fetched \([\d.]+ KiB, [\d.,]+ msg/s\), 0 already stored$", output, re.M), output
