"""The FTP listing parser against real server output, and fuzzed: whatever the input,
it returns an entry or None or raises ListingError, nothing else."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xfer.protocols.ftp_listing import (
    ListingError,
    RemoteEntry,
    parse_list_line,
    parse_mdtm,
    parse_mlsd_line,
)

UTC = timezone.utc
# The listings below were captured on 2026-11-26 around 17:12 UTC.
NOW = datetime(2026, 11, 26, 17, 30)


def entry(name, type_, size, mtime, precision, target=None) -> RemoteEntry:
    return RemoteEntry(name, type_, size, mtime, precision, target)


def d(*args: int) -> datetime:
    return datetime(*args)  # naive: LIST times are the server's wall clock


# (line, expected) — vsftpd 3.0.3 (Debian 12) and pyftpdlib 2.2.0 lines are verbatim
# captures from tests/servers/ftp.py's servers (anonymous LIST and the user's LIST -a);
# the others are what those servers are documented and observed to send.
LIST_CASES: list[tuple[str, str, RemoteEntry | None]] = [
    # --- vsftpd: numeric owners, "%b %d" with a zero-padded day, "%b %d  %Y" when old
    ("vsftpd file", "-rw-r--r--    1 1234     5678            3 Sep 09  2001 hello.txt",
     entry("hello.txt", "file", 3, d(2001, 9, 9), "day")),
    ("vsftpd recent", "-rw-r--r--    1 0        0         1234567 Sep 21 14:13 recent.bin",
     entry("recent.bin", "file", 1234567, d(2026, 9, 21, 14, 13), "minute")),
    ("vsftpd future has a year",
     "-rw-r--r--    1 0        0               1 Dec 28  2027 future.txt",
     entry("future.txt", "file", 1, d(2027, 12, 28), "day")),
    ("vsftpd dir with space", "drwxr-xr-x    2 0        0            4096 Jul 25 17:20 sub dir",
     entry("sub dir", "dir", 4096, d(2026, 7, 25, 17, 20), "minute")),
    ("vsftpd symlink",
     "lrwxrwxrwx    1 0        0               9 Nov 26 17:12 link to hello -> hello.txt",
     entry("link to hello", "link", 9, d(2026, 11, 26, 17, 12), "minute", "hello.txt")),
    ("vsftpd leading and trailing spaces",
     "-rw-r--r--    1 0        0               1 Nov 26 17:12   lead and trail  ",
     entry("  lead and trail  ", "file", 1, d(2026, 11, 26, 17, 12), "minute")),
    ("vsftpd name like a date",
     "-rw-r--r--    1 0        0               1 Nov 26 17:12 Feb 3 04:05 x",
     entry("Feb 3 04:05 x", "file", 1, d(2026, 11, 26, 17, 12), "minute")),
    ("vsftpd dotfile", "-rw-r--r--    1 0        0               1 Nov 26 17:12 .hidden",
     entry(".hidden", "file", 1, d(2026, 11, 26, 17, 12), "minute")),
    ("vsftpd fifo", "prw-r--r--    1 0        0               0 Nov 26 17:12 fifo",
     entry("fifo", "other", None, d(2026, 11, 26, 17, 12), "minute")),
    ("vsftpd char device (size, not major/minor)",
     "crw-r--r--    1 0        0               0 Nov 26 17:12 nulldev",
     entry("nulldev", "other", None, d(2026, 11, 26, 17, 12), "minute")),
    ("vsftpd LIST -a dot", "drwxr-xr-x    3 999      995          4096 Nov 26 17:12 .", None),
    ("vsftpd LIST -a dotdot", "drwxr-xr-x    3 999      995          4096 Nov 26 17:12 ..",
     None),
    # --- pyftpdlib: named owners, "%3s" links, future dates keep HH:MM
    ("pyftpdlib file", "-rw-r--r--   1 root     root      1234567 Sep 21 14:13 recent.bin",
     entry("recent.bin", "file", 1234567, d(2026, 9, 21, 14, 13), "minute")),
    ("pyftpdlib old", "-rw-r--r--   1 1234     5678            3 Sep 09  2001 hello.txt",
     entry("hello.txt", "file", 3, d(2001, 9, 9), "day")),
    ("pyftpdlib future (year lost, within 6 months ahead)",
     "-rw-r--r--   1 root     root            1 Dec 28 13:20 future.txt",
     entry("future.txt", "file", 1, d(2026, 12, 28, 13, 20), "minute")),
    ("pyftpdlib symlink",
     "lrwxrwxrwx   1 root     root            9 Nov 26 17:12 link to hello -> hello.txt",
     entry("link to hello", "link", 9, d(2026, 11, 26, 17, 12), "minute", "hello.txt")),
    ("pyftpdlib dir", "drwxr-xr-x   2 root     root         4096 Jul 25 17:20 sub dir",
     entry("sub dir", "dir", 4096, d(2026, 7, 25, 17, 20), "minute")),
    ("pyftpdlib hostile name", "drwxr-xr-x   2 root     root         4096 Nov 26 17:11 ../escape",
     entry("../escape", "dir", 4096, d(2026, 11, 26, 17, 11), "minute")),
    ("pyftpdlib absolute name",
     "-rw-r--r--   1 root     root         4096 Nov 26 17:11 /etc/passwd",
     entry("/etc/passwd", "file", 4096, d(2026, 11, 26, 17, 11), "minute")),
    ("pyftpdlib traversal name",
     "-rw-r--r--   1 root     root            7 Nov 26 17:11 a/../../b",
     entry("a/../../b", "file", 7, d(2026, 11, 26, 17, 11), "minute")),
    # --- ProFTPD: "%b %e" (space-padded day)
    ("proftpd file", "-rw-r--r--   1 ftp      ftp          1234 Jan  2 03:04 report.pdf",
     entry("report.pdf", "file", 1234, d(2027, 1, 2, 3, 4), "minute")),
    ("proftpd old dir", "drwxr-xr-x   2 ftp      ftp          4096 Mar  3  2020 old dir",
     entry("old dir", "dir", 4096, d(2020, 3, 3), "day")),
    ("proftpd sticky dir", "drwxrwxrwt   2 ftp      ftp          4096 Oct 31 23:59 tmp",
     entry("tmp", "dir", 4096, d(2026, 10, 31, 23, 59), "minute")),
    ("proftpd setuid", "-rwsr-xr-x   1 root     root        54256 Mar 27  2024 passwd",
     entry("passwd", "file", 54256, d(2024, 3, 27), "day")),
    # --- BusyBox ftpd (its ls applet)
    ("busybox file", "-rw-r--r--    1 root     root          1234 Jan  2 03:04 busy.txt",
     entry("busy.txt", "file", 1234, d(2027, 1, 2, 3, 4), "minute")),
    ("busybox old", "-rw-r--r--    1 root     root           512 Jun 15  2019 old.txt",
     entry("old.txt", "file", 512, d(2019, 6, 15), "day")),
    ("busybox device", "crw-rw-rw-    1 root     root        1,   3 Jan  2 03:04 null",
     entry("null", "other", None, d(2027, 1, 2, 3, 4), "minute")),
    ("busybox block device", "brw-rw----    1 root     disk        8,   0 Nov 20 09:00 sda",
     entry("sda", "other", None, d(2026, 11, 20, 9, 0), "minute")),
    ("busybox dangling link", "lrwxrwxrwx    1 root     root             7 Nov 20 09:00 gone -> missing",
     entry("gone", "link", 7, d(2026, 11, 20, 9, 0), "minute", "missing")),
    # --- other Unix-like servers
    ("pure-ftpd wide ids", "-rw-r--r--    1 1000       1000             1234 Nov  1 08:15 pure.txt",
     entry("pure.txt", "file", 1234, d(2026, 11, 1, 8, 15), "minute")),
    ("no group column", "-rw-r--r--   1 owner     1234 Nov  1 08:15 nogroup",
     entry("nogroup", "file", 1234, d(2026, 11, 1, 8, 15), "minute")),
    ("owner with a space", "-rw-r--r--   1 Domain Users group 99 Nov  1 08:15 win.txt",
     entry("win.txt", "file", 99, d(2026, 11, 1, 8, 15), "minute")),
    ("macOS xattr flag", "-rw-r--r--@  1 me  staff  2048 Aug  9 10:11 mac.txt",
     entry("mac.txt", "file", 2048, d(2026, 8, 9, 10, 11), "minute")),
    ("ACL flag", "-rw-rw-r--+  1 me  users 10 Aug  9 10:11 acl.txt",
     entry("acl.txt", "file", 10, d(2026, 8, 9, 10, 11), "minute")),
    ("long-iso time style", "-rw-r--r-- 1 me users 10 2024-01-02 03:04 iso.txt",
     entry("iso.txt", "file", 10, d(2024, 1, 2, 3, 4), "minute")),
    ("huge file", "-rw-r--r-- 1 u g 9223372036854775807 Nov  1 08:15 big",
     entry("big", "file", 2**63 - 1, d(2026, 11, 1, 8, 15), "minute")),
    ("arrow in a plain file's name", "-rw-r--r-- 1 u g 1 Nov  1 08:15 a -> b",
     entry("a -> b", "file", 1, d(2026, 11, 1, 8, 15), "minute")),
    ("link without target", "lrwxrwxrwx 1 u g 1 Nov  1 08:15 lonely",
     entry("lonely", "link", 1, d(2026, 11, 1, 8, 15), "minute")),
    ("CRLF is stripped", "-rw-r--r-- 1 u g 1 Nov  1 08:15 crlf.txt\r\n",
     entry("crlf.txt", "file", 1, d(2026, 11, 1, 8, 15), "minute")),
    ("NUL kept for the caller", "-rw-r--r-- 1 u g 1 Nov  1 08:15 a\x00b",
     entry("a\x00b", "file", 1, d(2026, 11, 1, 8, 15), "minute")),
    ("lower-case month", "-rw-r--r-- 1 u g 1 nov  1 08:15 lower",
     entry("lower", "file", 1, d(2026, 11, 1, 8, 15), "minute")),
    # --- issue 13: splits that used to be wrong or rejected
    ("owner jan, group 20, 4-digit size (was: named 'Mar 18 18:58 report.txt', year 4096)",
     "-rw-r--r--   1 jan      20           4096 Mar 18 18:58 report.txt",
     entry("report.txt", "file", 4096, d(2027, 3, 18, 18, 58), "minute")),
    ("owner dec, group 12, a size like a year",
     "-rw-r--r--   1 dec      12           2019 Mar 18  2020 old.txt",
     entry("old.txt", "file", 2019, d(2020, 3, 18), "day")),
    ("owner not a month (was rejected)",
     "----rwxr-x   1 PEP      0           4019 Mar 18 18:58 einladung.zip",
     entry("einladung.zip", "file", 4019, d(2027, 3, 18, 18, 58), "minute")),
    ("impossible date in an earlier split", "-rw-r--r-- 1 feb 30 2020 Mar 18 18:58 feb.txt",
     entry("feb.txt", "file", 2020, d(2027, 3, 18, 18, 58), "minute")),
    ("ACL mark touching a 4-digit link count",
     "drwxr-x---+1464 chrism   chrism     41472 Feb 25 13:17 20090225",
     entry("20090225", "dir", 41472, d(2027, 2, 25, 13, 17), "minute")),
    ("no column between permissions and size", "-rw-r--r-- 5 Jan 20  2020 bare",
     entry("bare", "file", 5, d(2020, 1, 20), "day")),
    ("absurd size is unknown, the entry kept",
     "-rw-r--r--        0   18446744073709551615 18446744073709551615 Nov 16  2006 VIDEO_TS.VOB",
     entry("VIDEO_TS.VOB", "file", None, d(2006, 11, 16), "day")),
    ("size past 2**63-1", "-rw-r--r-- 1 u g 9223372036854775808 Nov  1 08:15 too-big",
     entry("too-big", "file", None, d(2026, 11, 1, 8, 15), "minute")),
    ("thousands of digits", "-rw-r--r-- 1 u g " + "9" * 5000 + " Nov  1 08:15 way-too-big",
     entry("way-too-big", "file", None, d(2026, 11, 1, 8, 15), "minute")),
    ("DOS absurd size", "01-23-2024  15:04  18446744073709551615 dvd.iso",
     entry("dvd.iso", "file", None, d(2024, 1, 23, 15, 4), "minute")),
    # --- year choice for "Mon DD HH:MM": within about six months of now
    ("just before now", "-rw-r--r-- 1 u g 1 Nov 26 17:29 a",
     entry("a", "file", 1, d(2026, 11, 26, 17, 29), "minute")),
    ("five months ago", "-rw-r--r-- 1 u g 1 Jun 30 00:00 a",
     entry("a", "file", 1, d(2026, 6, 30, 0, 0), "minute")),
    ("seven months ago is next year's", "-rw-r--r-- 1 u g 1 Apr 30 00:00 a",
     entry("a", "file", 1, d(2027, 4, 30, 0, 0), "minute")),
    ("29 February goes to a leap year", "-rw-r--r-- 1 u g 1 Feb 29 12:00 leap",
     entry("leap", "file", 1, d(2028, 2, 29, 12, 0), "minute")),
    # --- Windows / IIS (MS-DOS style)
    ("IIS dir", "01-23-24  03:04PM       <DIR>          name",
     entry("name", "dir", None, d(2024, 1, 23, 15, 4), "minute")),
    ("IIS file 4-digit year", "12-31-2023  11:59AM                 1234 name",
     entry("name", "file", 1234, d(2023, 12, 31, 11, 59), "minute")),
    ("IIS file with spaces", "10-09-20  10:51AM                  689 iis start.htm",
     entry("iis start.htm", "file", 689, d(2020, 10, 9, 10, 51), "minute")),
    ("IIS midnight", "02-14-13  12:05AM       <DIR>          aspnet_client",
     entry("aspnet_client", "dir", None, d(2013, 2, 14, 0, 5), "minute")),
    ("IIS noon", "02-14-13  12:05PM                    1 noon",
     entry("noon", "file", 1, d(2013, 2, 14, 12, 5), "minute")),
    ("IIS 1990s", "07-04-98  09:00AM                    5 old",
     entry("old", "file", 5, d(1998, 7, 4, 9, 0), "minute")),
    ("DOS 24-hour", "01-23-2024  15:04        <DIR>          dir24",
     entry("dir24", "dir", None, d(2024, 1, 23, 15, 4), "minute")),
    ("DOS thousands separators", "01-23-2024  15:04     1,234,567 commas.bin",
     entry("commas.bin", "file", 1234567, d(2024, 1, 23, 15, 4), "minute")),
    ("DOS junction", "01-23-2024  15:04    <JUNCTION>     junction",
     entry("junction", "other", None, d(2024, 1, 23, 15, 4), "minute")),
    # --- not entries
    ("total", "total 12", None),
    ("total zero", "total 0\r\n", None),
    ("blank", "", None),
    ("blank CRLF", "\r\n", None),
]

BAD_LIST_LINES = [
    "hello",
    "ls: cannot open directory .: Permission denied",
    "-rw-r--r-- 1 u g 1 Foo  1 08:15 bad-month",
    "-rw-r--r-- 1 u g 1 Nov 32 08:15 bad-day",
    "-rw-r--r-- 1 u g 1 Nov  1 24:15 bad-hour",
    "-rw-r--r-- 1 u g 1 Nov  1 08:60 bad-minute",
    "-rw-r--r-- 1 u g 1 Feb 30 08:15 no-such-day",
    "-rw-r--r-- 1 u g 1 Feb 30  2020 no-such-day",
    "-rw-r--r-- 1 u g 1 Nov  1  0000 year-zero",
    "-rw-r--r-- 1 u g 1 Nov  1 08:15 ",
    "13-01-24  03:04PM       <DIR>          bad-month",
    "01-01-24  13:04PM       <DIR>          bad-12h",
    "01-01-24  03:04PM       <DIR>          ",
    "-rw-r--r-- 1 me users 10 2024-01-02 03:04:05.123456789 +0000 full-iso",  # unsupported
    "+i8388621.29609,m824255902,/,\tdev",  # EPLF: not supported
    "USER1:[000000]  FILE.TXT;1  1/3  5-MAR-1993 18:09",  # VMS: not supported
    "x" * 20000,
]

MLSD_CASES: list[tuple[str, str, RemoteEntry | None]] = [
    # verbatim from pyftpdlib 2.2.0 (default facts, then OPTS MLST with unix.*)
    ("pyftpdlib file",
     "modify=20010909014640;perm=radfwMT;size=3;type=file;unique=fe00g20cef0; hello.txt",
     entry("hello.txt", "file", 3, datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC), "second")),
    ("pyftpdlib dir",
     "modify=20260725172000;perm=eldfmMTcp;size=4096;type=dir;unique=fe00g20cef4; sub dir",
     entry("sub dir", "dir", 4096, datetime(2026, 7, 25, 17, 20, tzinfo=UTC), "second")),
    ("pyftpdlib spaces around the name",
     "modify=20261126171233;perm=radfwMT;size=1;type=file;unique=fe00g20cef3;   lead and trail  ",
     entry("  lead and trail  ", "file", 1, datetime(2026, 11, 26, 17, 12, 33, tzinfo=UTC),
           "second")),
    ("pyftpdlib unix facts",
     "modify=20260921141320;perm=radfwMT;size=1234567;type=file;unique=fe00g20cef1;"
     "unix.gid=0;unix.mode=0o644;unix.uid=0; recent.bin",
     entry("recent.bin", "file", 1234567, datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC),
           "second")),
    ("pyftpdlib semicolon in the name",
     "modify=20261126171134;perm=radfwMT;size=1;type=file;unique=fe00g20ccde; semi; colon",
     entry("semi; colon", "file", 1, datetime(2026, 11, 26, 17, 11, 34, tzinfo=UTC), "second")),
    ("pyftpdlib hostile name",
     "modify=20261126171134;perm=el;size=4096;type=dir;unique=fe00g20cce4; a/../../b",
     entry("a/../../b", "dir", 4096, datetime(2026, 11, 26, 17, 11, 34, tzinfo=UTC), "second")),
    ("pyftpdlib cdir", "modify=20261126171134;perm=el;size=4096;type=cdir;unique=fe00g2; .", None),
    ("pyftpdlib pdir", "modify=20261126171134;perm=el;size=4096;type=pdir;unique=fe00g3; ..", None),
    # other servers
    ("upper-case facts, CRLF", "Type=File;Size=10;Modify=20240102030405; UP.TXT\r\n",
     entry("UP.TXT", "file", 10, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "second")),
    ("fractional seconds", "type=file;size=0;modify=20240102030405.123; frac",
     entry("frac", "file", 0, datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC), "second")),
    ("proftpd symlink", "modify=20240102030405;perm=adfr;size=7;type=OS.unix=slink:/srv/Target;"
     "UNIX.mode=0777; lnk",
     entry("lnk", "link", 7, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "second", "/srv/Target")),
    ("symlink fact", "type=OS.unix=symlink;size=7; lnk2", entry("lnk2", "link", 7, None, None)),
    ("device", "type=OS.unix=chr-1/3;modify=20240102030405; null",
     entry("null", "other", None, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "second")),
    ("no facts", " bare name", entry("bare name", "other", None, None, None)),
    ("no type", "size=5; untyped", entry("untyped", "other", 5, None, None)),
    ("sizd for a dir", "type=dir;sizd=4096; d", entry("d", "dir", 4096, None, None)),
    ("missing final semicolon", "type=file;size=3 loose", entry("loose", "file", 3, None, None)),
    ("NUL kept for the caller", "type=file;size=1; a\x00b", entry("a\x00b", "file", 1, None, None)),
    # issue 13
    ("dir named . is the current directory", "type=dir;modify=20240102030405; .", None),
    ("dir named .. is the parent", "type=dir;modify=20240102030405; ..", None),
    ("a file named .. is the caller's to refuse", "type=file;size=1; ..",
     entry("..", "file", 1, None, None)),
    ("empty fact ignored", "Type=file;Size=;Modify=20240102030405; empty-size",
     entry("empty-size", "file", None, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "second")),
    ("absurd size is unknown", "type=file;size=18446744073709551615; dvd.iso",
     entry("dvd.iso", "file", None, None, None)),
    ("thousands of digits", "type=file;size=" + "9" * 5000 + "; x", entry("x", "file", None, None, None)),
]

BAD_MLSD_LINES = [
    "",
    "type=file;size=3;",
    "type=file;size=3; ",
    "type=file;size=abc; x",
    "type=file;size=-1; x",
    "type=file;size=3;modify=2024; x",
    "type=file;modify=20241302030405; x",
    "type=file;modify=20240230030405; x",
    "type=file;novalue; x",
    "type=file;=x; x",
]


@pytest.mark.parametrize(
    ("line", "expected"), [c[1:] for c in LIST_CASES], ids=[c[0] for c in LIST_CASES]
)
def test_list_lines(line: str, expected: RemoteEntry | None) -> None:
    assert parse_list_line(line, now=NOW) == expected


@pytest.mark.parametrize("line", BAD_LIST_LINES, ids=lambda line: line[:30])
def test_list_lines_that_are_errors(line: str) -> None:
    with pytest.raises(ListingError):
        parse_list_line(line, now=NOW)


def test_list_now_may_be_aware() -> None:
    line = "-rw-r--r-- 1 u g 1 Nov 26 17:29 a"
    aware = parse_list_line(line, now=NOW.replace(tzinfo=UTC))
    assert aware == parse_list_line(line, now=NOW)
    assert aware is not None and aware.mtime is not None and aware.mtime.tzinfo is None


@pytest.mark.parametrize(
    ("line", "expected"), [c[1:] for c in MLSD_CASES], ids=[c[0] for c in MLSD_CASES]
)
def test_mlsd_lines(line: str, expected: RemoteEntry | None) -> None:
    assert parse_mlsd_line(line) == expected


@pytest.mark.parametrize("line", BAD_MLSD_LINES, ids=lambda line: line[:30])
def test_mlsd_lines_that_are_errors(line: str) -> None:
    with pytest.raises(ListingError):
        parse_mlsd_line(line)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("213 20010909014640", datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)),  # vsftpd, pyftpdlib
        ("213 20240102030405.123\r\n", datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
        ("213 20240102030405.1234567", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("20240102030405", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_mdtm(reply: str, expected: datetime) -> None:
    assert parse_mdtm(reply) == expected


@pytest.mark.parametrize(
    "reply",
    ["550 Could not get file modification time.", "213 ", "213 2024010203040", "213 x" * 3,
     "213 20241340030405", "213 99999999999999"],
)
def test_mdtm_errors(reply: str) -> None:
    with pytest.raises(ListingError):
        parse_mdtm(reply)


def test_hostile_lines_are_fast() -> None:
    """Long lines meant to make the regular expressions backtrack."""
    lines = [
        "-rw-r--r-- " + " " * 16000,
        "-rw-r--r-- " + "1 " * 8000,
        "-rw-r--r-- " + "1, " * 5000,
        "-rw-r--r-- " + "1 Jan 1 " * 2000,
        "01-01-24  10:00 " + "1," * 8000,
        "a=b;" * 4000,
    ]
    started = time.perf_counter()
    for line in lines:
        for parse in (lambda text: parse_list_line(text, now=NOW), parse_mlsd_line, parse_mdtm):
            try:
                parse(line)
            except ListingError:
                pass
    assert time.perf_counter() - started < 1.0


# ----------------------------------------------------------------------- fuzzing

FUZZ = settings(
    # XFER_FUZZ_EXAMPLES=20000 for a longer hunt
    max_examples=int(os.environ.get("XFER_FUZZ_EXAMPLES", "300")),
    deadline=None,  # the machine is shared: no per-example time limit
    database=None,  # no .hypothesis directory in the repository
    suppress_health_check=[HealthCheck.too_slow],
)

any_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=None), max_size=200
) | st.text(alphabet="\x00\r\n\t -:;,=<>/.0123456789dlrwxJanFebDIRPMAM", max_size=120)
huge_number = st.integers(min_value=0, max_value=10**40).map(str) | st.sampled_from(
    ["9" * 5000, "0" * 30 + "1", "-1", "1e9", "½", "٣", "²"]
)
small_number = st.integers(0, 99).map(str) | st.integers(0, 99).map("{:02d}".format)
number = small_number | small_number | small_number | huge_number
token = st.text(alphabet="abcxyz019_-.,", min_size=1, max_size=10) | any_text.filter(str.strip)
any_now = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))


@st.composite
def unix_like_lines(draw: st.DrawFn) -> str:
    """Lines shaped like ls -l with random parts, to get past the first checks."""
    perm = draw(st.sampled_from("-dlcbpsD?x")) + draw(
        st.sampled_from(["rw-r--r--", "rwxrwxrwx", "rwsr-x--T"]) | st.text("-rwxsStT?", min_size=9, max_size=9)
    )
    ids = draw(st.lists(token, max_size=4))
    size = draw(number | st.builds(lambda a, b: f"{a}, {b}", number, number))
    month = draw(st.sampled_from(["Jan", "Feb", "feb", "Xyz", "Dec", "jAN"]))
    day = draw(number)
    when = draw(
        st.builds("{}:{:02d}".format, number, st.integers(0, 99))
        | st.builds("{}:{}".format, number, number)
        | st.integers(0, 10000).map(str)
        | number
    )
    name = draw(any_text)
    return f"{perm} {' '.join(ids)} {size} {month} {day} {when} {name}"


@st.composite
def dos_like_lines(draw: st.DrawFn) -> str:
    numbers = [draw(st.integers(0, 31) | st.integers(0, 99) | st.integers(0, 99999))
               for _ in range(5)]
    ampm = draw(st.sampled_from(["AM", "PM", "am", ""]))
    what = draw(st.sampled_from(["<DIR>", "<JUNCTION>"]) | number)
    return (f"{numbers[0]:02d}-{numbers[1]:02d}-{numbers[2]:02d}  "
            f"{numbers[3]:02d}:{numbers[4]:02d}{ampm}  {what} {draw(any_text)}")


@st.composite
def mlsd_like_lines(draw: st.DrawFn) -> str:
    facts = draw(st.lists(st.tuples(
        st.sampled_from(["type", "size", "modify", "sizd", "perm", "x", ""]),
        st.sampled_from(["file", "dir", "cdir", "OS.unix=slink:", "OS.unix=slink:/t"])
        | number | any_text.filter(lambda t: ";" not in t)
        | st.builds(lambda n, f: f"2024{n}{f}", number, st.sampled_from(["", ".5", "0000"])),
    ), max_size=5))
    text = "".join(f"{key}={value};" for key, value in facts)
    return f"{text} {draw(any_text)}"


def _check_entry(result: RemoteEntry | None) -> None:
    if result is not None:
        assert isinstance(result, RemoteEntry)
        assert result.name
        assert result.size is None or 0 <= result.size < 2**63


@FUZZ
@given(line=any_text | unix_like_lines() | dos_like_lines(), now=any_now)
def test_fuzz_list_raises_only_listing_error(line: str, now: datetime) -> None:
    try:
        _check_entry(parse_list_line(line, now=now))
    except ListingError:
        pass


@FUZZ
@given(line=any_text | mlsd_like_lines())
def test_fuzz_mlsd_raises_only_listing_error(line: str) -> None:
    try:
        _check_entry(parse_mlsd_line(line))
    except ListingError:
        pass


@FUZZ
@given(reply=any_text | huge_number | st.builds(lambda n: f"213 {n}", huge_number))
def test_fuzz_mdtm_raises_only_listing_error(reply: str) -> None:
    try:
        result = parse_mdtm(reply)
    except ListingError:
        return
    assert result.tzinfo is UTC


_safe_name = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1, max_size=60
).filter(lambda name: name not in (".", "..") and " -> " not in name)


@FUZZ
@given(
    name=_safe_name,
    size=st.integers(0, 2**63 - 1),
    mtime=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)),
    now=st.datetimes(min_value=datetime(1972, 1, 1), max_value=datetime(2098, 12, 31)),
    kind=st.sampled_from(["-", "d"]),
)
def test_fuzz_list_round_trip(name: str, size: int, mtime: datetime, now: datetime,
                              kind: str) -> None:
    """A line formatted the way vsftpd does is parsed back to what went in; year-less
    dates come back within six months of now."""
    mtime = mtime.replace(second=0, microsecond=0)
    recent = abs(mtime - now) < timedelta(days=150)
    when = mtime.strftime("%b %d %H:%M") if recent else mtime.strftime("%b %d  %Y")
    line = f"{kind}rw-r--r--    1 0        0        {size:8d} {when} {name}\r\n"
    result = parse_list_line(line, now=now)
    assert result is not None
    assert result.name == name
    assert result.size == size
    assert result.type == ("file" if kind == "-" else "dir")
    if recent:
        assert result.mtime == mtime and result.mtime_precision == "minute"
    else:
        assert result.mtime == mtime.replace(hour=0, minute=0)
        assert result.mtime_precision == "day"


@FUZZ
@given(
    name=_safe_name,
    owner=st.sampled_from(["jan", "May", "DEC", "PEP", "root"]),
    group=st.integers(0, 99),
    size=st.integers(0, 99999),
    mtime=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)),
    links=st.sampled_from(["   1 ", "+1464 ", "  23 "]),
)
def test_fuzz_owner_like_a_month(name: str, owner: str, group: int, size: int, mtime: datetime,
                                 links: str) -> None:
    """Issue 13: owner jan, a small numeric group and a year-like size must not be read
    as "size 1, dated jan 20 4096", which put the real date into the file's name."""
    mtime = mtime.replace(second=0, microsecond=0)
    recent = abs(mtime - NOW) < timedelta(days=150)
    when = mtime.strftime("%b %d %H:%M") if recent else mtime.strftime("%b %d  %Y")
    line = f"-rw-r--r--{links}{owner:8s} {group:<8d} {size:8d} {when} {name}"
    result = parse_list_line(line, now=NOW)
    assert result is not None
    assert (result.name, result.size) == (name, size)
    assert result.mtime == (mtime if recent else mtime.replace(hour=0, minute=0))


@FUZZ
@given(name=_safe_name, size=st.integers(0, 2**63 - 1),
       modify=st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_fuzz_mlsd_round_trip(name: str, size: int, modify: datetime) -> None:
    modify = modify.replace(microsecond=modify.microsecond // 1000 * 1000)
    stamp = modify.strftime("%Y%m%d%H%M%S") + f".{modify.microsecond // 1000:03d}"
    result = parse_mlsd_line(f"type=file;size={size};modify={stamp}; {name}\r\n")
    assert result == RemoteEntry(name, "file", size, modify.replace(tzinfo=UTC), "second")
