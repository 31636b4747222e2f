"""Each job's figures in words, for people: both end-of-run printers (`plain.py` for
logs, `progress.py` on a terminal) take their sentences from here, so they say the same.

A kind may word its own summary: a `describe(job: JobReport) -> str` staticmethod on its
Job class, found through the kind registry, so a new kind edits nothing here. The kinds
of this package are worded below; any other kind gets the generic sentence. The JSON
report keeps the raw figures (machines read those); this module only reads them.

A kind also names what its items are, for the live display and the sentences: a class
attribute `unit` ("files", "msg"; default "items"), and `unit_count` when one item
stands for several units: the key of the item's result (`task.finished` detail) that
says how many (nntp.scan's chunk: "scanned" articles). No rich here: plain output must
not pay for importing it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from xfer.report import JobReport

Describe = Callable[[JobReport], str]

DEFAULT_UNIT = "items"


# -- figures -----------------------------------------------------------------------


def count(number: int | float) -> str:
    """An amount with thousands separators: 10,000."""
    return f"{number:,.0f}"


def plural(number: int, word: str, words: str | None = None) -> str:
    """`3 files`, `1 file`."""
    return f"{count(number)} {word if number == 1 else words or word + 's'}"


def figure(value: float) -> str:
    """A rate or a mean: whole above 100 (3,540), three significant digits below (18.5)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def human_bytes(amount: float) -> str:
    """Bytes in binary units: 512 B, 303.6 KiB, 1.2 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:,.1f} TiB"


def human_duration(seconds: float) -> str:
    """0.36 s, 12.3 s, 2 min 5 s, 1 h 2 min."""
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def milliseconds(value: float | None) -> str:
    """A latency: 0.42 ms, 2.1 ms, 41 ms, 1.25 s; a dash when there is none."""
    if value is None:
        return "-"
    if value >= 1000:
        return human_duration(value / 1000)
    return f"{value:.2f} ms" if value < 1 else f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def per_second(amount: float, seconds: float, unit: str) -> str:
    """A rate in the kind's own unit: `3,540 msg/s`."""
    return f"{figure(amount / seconds) if seconds > 0 else '-'} {unit}/s"


def elapsed(job: JobReport) -> float:
    """Seconds the job ran (so far, while it runs)."""
    return (job.finished or time.monotonic()) - job.started


# -- the kinds' own words ----------------------------------------------------------


def kind_attribute(kind: str, name: str, default: Any) -> Any:
    """An attribute of a kind's Job class (`unit`, `describe`), or `default` for an
    unknown kind: the printers must work for any report."""
    from xfer.kinds import job_class

    try:
        return getattr(job_class(kind), name, default)
    except KeyError:
        return default


def item_unit(kind: str) -> str:
    """What one item of `kind` is (its unit, unless an item stands for several units)."""
    if kind_attribute(kind, "unit_count", None) is not None:
        return DEFAULT_UNIT
    return str(kind_attribute(kind, "unit", DEFAULT_UNIT))


def describe(job: JobReport) -> str:
    """The job in one sentence (no name, no kind): its own wording, else the generic one,
    also when the summary lacks what the wording reads (a report from another version)."""
    own: Describe | None = kind_attribute(job.kind, "describe", None) or _BUILT_IN.get(job.kind)
    if own is not None and job.summary:
        try:
            return own(job)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return generic(job)


def generic(job: JobReport) -> str:
    """Items done and failed, bytes and time, then the kind's figures as words."""
    seconds = elapsed(job)
    done = job.counts["ok"]
    words = [f"{count(done)} {item_unit(job.kind)} done"]
    words += _failed(job)
    took = f"in {human_duration(seconds)}"
    if job.bytes:
        took = f"{human_bytes(job.bytes)} {took} ({human_bytes(job.bytes / max(seconds, 1e-6))}/s)"
    words.append(took)
    figures = [f"{_key_words(key)} {_value_words(value)}" for key, value in _scalars(job.summary)]
    return ", ".join(words) + (f"; {', '.join(figures)}" if figures else "")


def _failed(job: JobReport) -> list[str]:
    return [f"{count(job.counts['failed'])} failed"] if job.counts["failed"] else []


def _scalars(summary: dict[str, Any], limit: int = 14) -> list[tuple[str, Any]]:
    """Non-zero numbers and texts, nested ones one level deep, at most `limit`."""
    found: list[tuple[str, Any]] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            found.extend((f"{key} {inner}", item) for inner, item in value.items() if _shown(item))
        elif _shown(value):
            found.append((key, value))
    return found[:limit]


def _shown(value: Any) -> bool:
    return isinstance(value, (int, float, str)) and not isinstance(value, bool) and value not in (0, "")


def _key_words(key: str) -> str:
    return key.replace("_", " ")


def _value_words(value: Any) -> str:
    return count(value) if isinstance(value, int) else figure(value) if isinstance(value, float) else str(value)


def _latency(latency: dict[str, Any]) -> str:
    """`p50 2.1 ms, p90 3.0 ms, p99 9.8 ms, max 41 ms`."""
    keys = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("max", "max_ms"))
    return ", ".join(f"{label} {milliseconds(latency.get(key))}" for label, key in keys if latency.get(key) is not None)


def _with_codes(codes: dict[str, int], first_digit: str) -> list[tuple[str, int]]:
    return [(code, number) for code, number in codes.items() if code.startswith(first_digit)]


def _why(parts: list[tuple[str, int]]) -> str:
    """`(421)` for one reason; `(2 with 421, 3 with no reply)` for several."""
    if len(parts) == 1:
        return f"({parts[0][0]})"
    return "(" + ", ".join(f"{count(number)} with {reason}" for reason, number in parts) + ")"


def mail_load(job: JobReport) -> str:
    """`10,000 sent, 9,998 accepted, 2 temporary failures (421), 3,540 msg/s; latency p50 ...`."""
    summary = job.summary
    codes = summary.get("reply_codes") or {}
    words = [f"{count(summary['sent'])} sent", f"{count(summary['accepted'])} accepted"]
    if summary["rejected"]:
        words.append(f"{count(summary['rejected'])} rejected {_why(_with_codes(codes, '5'))}")
    if summary["failed"]:
        temporary = _with_codes(codes, "4")
        no_reply = summary["failed"] - sum(number for _, number in temporary)
        reasons = temporary + ([("no reply", no_reply)] if no_reply > 0 else [])
        words.append(f"{plural(summary['failed'], 'temporary failure')} {_why(reasons)}")
    if summary.get("throughput_per_s") is not None:
        offered = summary.get("offered_rate_per_s")
        words.append(f"{figure(summary['throughput_per_s'])} msg/s" + (f" ({figure(offered)} offered)" if offered else ""))
    if summary.get("late_starts"):
        words.append(plural(summary["late_starts"], "late start"))
    latency = summary.get("latency_ms") or {}
    return ", ".join(words) + (f"; latency {_latency(latency)}" if latency.get("count") else "")


def ftp_files(job: JobReport) -> str:
    """Files seen, moved (size and rate), skipped as unchanged, deleted, refused names."""
    summary = job.summary
    seconds = elapsed(job)
    upload = "uploaded" in summary
    moved = summary["uploaded" if upload else "downloaded"]
    seen = plural(summary.get("files", 0), "local file" if upload else "file")
    if "dirs" in summary:
        seen += f" in {plural(summary['dirs'], 'directory', 'directories')}"
    speed = f"{human_bytes(job.bytes)} at {human_bytes(job.bytes / max(seconds, 1e-6))}/s, {per_second(moved, seconds, 'files')}"
    words = [f"{count(moved)} {'uploaded' if upload else 'downloaded'} ({speed})" if moved else f"none {'uploaded' if upload else 'downloaded'}"]
    words.append(f"{count(summary.get('up_to_date', 0))} skipped as unchanged")
    if summary.get("resumed"):
        words.append(f"{count(summary['resumed'])} resumed")
    words += _failed(job)
    left = summary.get("queued", 0) - moved - job.counts["failed"]
    if left > 0:
        words.append(f"{count(left)} not transferred (dry run or stopped)")
    if summary.get("deleted"):
        words.append(f"{count(summary['deleted'])} deleted")
    refused = summary.get("unsafe", 0) + summary.get("refused_local", 0)
    if refused:
        words.append(f"{plural(refused, 'name')} refused")
    if summary.get("links_skipped"):
        words.append(f"{plural(summary['links_skipped'], 'link')} skipped")
    if summary.get("archived_files"):
        words.append(f"{plural(summary['archived_files'], 'file')} archived")
    sentence = f"{seen}: {', '.join(words)}"
    if summary.get("walk_complete") is False:
        sentence += "; the listing had errors, so nothing was deleted or archived"
    return sentence


def nntp_scan(job: JobReport) -> str:
    """Groups, articles scanned (and their rate), matched, bodies, threads."""
    summary = job.summary
    groups = plural(summary.get("groups", 0), "group")
    if summary.get("groups_unchanged"):
        groups += f" ({count(summary['groups_unchanged'])} with nothing new)"
    scanned = summary.get("articles_scanned", 0)
    words = [groups, f"{plural(scanned, 'article')} scanned ({per_second(scanned, elapsed(job), 'articles')})"]
    words.append(f"{count(summary.get('articles_written', 0))} matched and written")
    if summary.get("bodies"):
        words.append(f"{plural(summary['bodies'], 'body', 'bodies')} fetched")
    if "threads" in summary:
        words.append(plural(summary["threads"], "thread"))
    if summary.get("killed_stored"):
        words.append(f"{count(summary['killed_stored'])} stored articles of killed threads removed")
    words += _failed(job)
    return ", ".join(words)


def mail_roundtrip(job: JobReport) -> str:
    """Sent, accepted, the verdicts, delivery latency, cleanup."""
    summary = job.summary
    verdicts = summary.get("verdicts") or {}
    words = [f"{count(summary.get('sent', 0))} sent", f"{count(summary.get('accepted', 0))} accepted"]
    words += [f"{count(number)} {verdict}" for verdict, number in sorted(verdicts.items(), key=lambda item: -item[1])]
    sentence = ", ".join(words)
    latency = summary.get("latency_ms") or {}
    if latency.get("count"):
        sentence += f"; delivery latency {_latency(latency)}"
    if summary.get("deleted"):
        sentence += f"; {plural(summary['deleted'], 'test message')} deleted"
    return sentence


def mail_fetch(job: JobReport) -> str:
    """Folders, messages fetched (size, rate), skipped as stored, deleted, attachments."""
    summary = job.summary
    seconds = elapsed(job)
    fetched = summary.get("fetched", 0)
    nbytes = summary.get("bytes", 0)
    words = [plural(summary.get("folders", 0), "folder")]
    if fetched:
        words.append(f"{plural(fetched, 'message')} fetched ({human_bytes(nbytes)}, {per_second(fetched, seconds, 'msg')})")
    else:
        words.append("no new message")
    words.append(f"{count(summary.get('skipped', 0))} already stored")
    if summary.get("would_fetch"):
        words.append(f"{count(summary['would_fetch'])} would be fetched")
    for key, word in (("deleted", "deleted on the server"), ("recovered", "recovered"), ("resynced", "resynced"),
                      ("attachments", "attachments saved")):
        if summary.get(key):
            words.append(f"{count(summary[key])} {word}")
    words += _failed(job)
    return ", ".join(words)


#: The kinds of this package; kinds from elsewhere bring their own `describe`.
_BUILT_IN: dict[str, Describe] = {
    "mail.load": mail_load,
    "ftp.mirror": ftp_files,
    "ftp.pull": ftp_files,
    "nntp.scan": nntp_scan,
    "mail.roundtrip": mail_roundtrip,
    "mail.fetch": mail_fetch,
}
