"""Which article numbers a scan reads in a group, and how they are cut into chunks."""

from __future__ import annotations

from datetime import date, datetime, timezone


def scan_range(
    first: int,
    last: int,
    count: int,
    *,
    mark: int | None = None,
    first_n: int | None = None,
    last_n: int | None = None,
    articles: tuple[int, int] | None = None,
) -> tuple[int, int] | None:
    """The (low, high) numbers to read from a group whose GROUP reply was
    `count first last`, or None when there is nothing to read.

    `first_n` takes the oldest N numbers, `last_n` the newest N, `articles` an
    explicit range (clamped), and
    otherwise the scan is incremental: after `mark`, or the whole group on a first run.
    A mark above the group's last number means the server renumbered the group: the
    caller sees `renumbered(...)` and the whole group is read again."""
    if count <= 0 or last < first or last <= 0:
        return None
    if first_n is not None:
        low, high = first, min(last, first + first_n - 1)
    elif last_n is not None:
        low, high = max(first, last - last_n + 1), last
    elif articles is not None:
        low, high = max(first, articles[0]), min(last, articles[1])
    elif mark is not None and not renumbered(mark, last):
        low, high = max(first, mark + 1), last
    else:
        low, high = first, last
    return (low, high) if low <= high else None


def renumbered(mark: int, last: int) -> bool:
    """Whether a stored high-water mark is ahead of the server: its numbers were reset."""
    return mark > last


def chunks(low: int, high: int, size: int) -> list[tuple[int, int]]:
    """[low, high] as consecutive ranges of at most `size` numbers."""
    return [(start, min(start + size - 1, high)) for start in range(low, high + 1, size)]


def parse_articles(text: str) -> tuple[int, int]:
    """'100-200' -> (100, 200); raises ValueError with a one-line reason."""
    low, sep, high = text.strip().partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError("articles must be 'first-last', e.g. '1000-2000'")
    pair = int(low), int(high)
    if pair[0] < 1 or pair[0] > pair[1]:
        raise ValueError("articles must be 'first-last' with 1 <= first <= last")
    return pair


def as_utc(moment: date | datetime) -> datetime:
    """A `since:` value as an aware UTC datetime (a bare date is its midnight UTC)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def dated_since(date_header: str, since: datetime) -> bool:
    """Whether an article's Date header is at or after `since` (unparseable: no)."""
    from email.utils import parsedate_to_datetime  # only `since:` scans need it (~1.4 ms to import)

    try:
        when = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when >= since
