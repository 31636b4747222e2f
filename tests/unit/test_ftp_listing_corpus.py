"""Listing lines as real servers wrote them, with what they mean: the test data of other
FTP clients (each group names its source; the lines and the values they state are
facts about those servers) and captures from the servers our suite runs. Expected
values are the line's own: where another client reports something else (jlaffaye's
size 0 for links, Commons Net's file type for ``b``/``c`` devices) we keep ours.

tests/unit/test_ftp_listing.py holds the fuzzing and the cases of each rule; this file
is the evidence that the rules fit the listings found in the wild."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from xfer.protocols.ftp_listing import ListingError, RemoteEntry, parse_list_line, parse_mlsd_line

UTC = timezone.utc


def f(name: str, size: int | None, when: datetime, precision: str = "minute") -> RemoteEntry:
    return RemoteEntry(name, "file", size, when, precision)  # type: ignore[arg-type]


def dr(name: str, size: int | None, when: datetime, precision: str = "minute") -> RemoteEntry:
    return RemoteEntry(name, "dir", size, when, precision)  # type: ignore[arg-type]


def ln(name: str, size: int, when: datetime, target: str | None, precision: str = "minute") -> RemoteEntry:
    return RemoteEntry(name, "link", size, when, precision, target)  # type: ignore[arg-type]


def other(name: str, when: datetime | None, precision: str | None = "minute") -> RemoteEntry:
    return RemoteEntry(name, "other", None, when, precision)  # type: ignore[arg-type]


def day(year: int, month: int, dom: int) -> datetime:
    return datetime(year, month, dom)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Year-less "Mon DD HH:MM" dates are placed within six months of `now`; each group
# states the `now` it was read with (jlaffaye/ftp's own test clock for both Java and Go).
NOW_2017 = datetime(2017, 3, 10, 23, 0)
NOW_CAPTURE = datetime(2026, 11, 30, 9, 1)

# (source, now, line, expected)
LIST_CORPUS: list[tuple[str, datetime, str, RemoteEntry | None]] = [
    # --- apache/commons-net src/test/java/org/apache/commons/net/ftp/parser/UnixFTPEntryParserTest.java
    *[("commons-net Unix", NOW_2017, line, expected) for line, expected in [
        ("-rw-r--r--   1 500      500            21 Aug  8 14:14 JB3-TES1.gz",
         f("JB3-TES1.gz", 21, datetime(2017, 8, 8, 14, 14))),
        ("-rwxr-xr-x   2 root     root         4096 Mar  2 15:13 zxbox",
         f("zxbox", 4096, datetime(2017, 3, 2, 15, 13))),
        ("drwxr-xr-x   2 root     root         4096 Aug 24  2001 zxjdbc",
         dr("zxjdbc", 4096, day(2001, 8, 24), "day")),
        ("drwxr-xr-x   2 root     root         4096 Jan  4 00:03 zziplib",
         dr("zziplib", 4096, datetime(2017, 1, 4, 0, 3))),
        ("drwxr-xr-x   2 root     99           4096 Feb 23  2001 zzplayer",
         dr("zzplayer", 4096, day(2001, 2, 23), "day")),
        ("drwxr-xr-x 1 usernameftp 512 Jan 29 23:32 prog", dr("prog", 512, datetime(2017, 1, 29, 23, 32))),
        ("lrw-r--r--   1 14       14          80284 Aug 22  2000 zxJDBC-1.2.3.tar.gz",
         ln("zxJDBC-1.2.3.tar.gz", 80284, day(2000, 8, 22), None, "day")),
        ("crw-r--r--   1 ftp      nogroup     83853 Jan 22  2001 zxJDBC-1.2.4.tar.gz",
         other("zxJDBC-1.2.4.tar.gz", day(2001, 1, 22), "day")),
        ("brw-r--r--   1 ftp      nogroup    126552 Jan 22  2001 zxJDBC-1.2.4.zip",
         other("zxJDBC-1.2.4.zip", day(2001, 1, 22), "day")),
        ("-rw-r--r--   1 root     root       111325 Apr 27  2001 zxJDBC-2.0.1b1.tar.gz",
         f("zxJDBC-2.0.1b1.tar.gz", 111325, day(2001, 4, 27), "day")),
        ("-rwxr-xr-x   2 500      500           166 Nov  2  2001 73131-testtes1.afp",
         f("73131-testtes1.afp", 166, day(2001, 11, 2), "day")),
        ("-rw-r--r--   1 500      500       2040000 Aug  5 07:35 testRemoteUPCopyNIX",
         f("testRemoteUPCopyNIX", 2040000, datetime(2017, 8, 5, 7, 35))),
        ("-rw-r--r-T   1 500      500             0 Mar 25 08:20 testSticky",
         f("testSticky", 0, datetime(2017, 3, 25, 8, 20))),
        ("-rwSr-Sr--   1 500      500             0 Mar 25 08:22 testSuid",
         f("testSuid", 0, datetime(2017, 3, 25, 8, 22))),
        ("-rwsr-sr--   1 500      500             0 Mar 25 0:23 testSuidExec2",
         f("testSuidExec2", 0, datetime(2017, 3, 25, 0, 23))),
        ("drwxrwx---+ 23 500     500    0 Jan 10 13:09 testACL", dr("testACL", 0, datetime(2017, 1, 10, 13, 9))),
        ("-rw-r--r--   1 1        3518644 May 25 12:12 std", f("std", 3518644, datetime(2017, 5, 25, 12, 12))),
        ("-rw-r--r-- 1 1 3518644 May 25 12:12 std", f("std", 3518644, datetime(2017, 5, 25, 12, 12))),
        ("lrwxrwxrwx   1 neeme neeme             23 Mar  2 18:06 macros -> ./../../global/macros/.",
         ln("macros", 23, datetime(2017, 3, 2, 18, 6), "./../../global/macros/.")),
        ("-rw-r--r--   1 ftp      group with spaces in it as allowed in cygwin see bug 38634"
         "   83853 Jan 22  2001 zxJDBC-1.2.4.tar.gz",
         f("zxJDBC-1.2.4.tar.gz", 83853, day(2001, 1, 22), "day")),
        ("crw-r----- 1 root kmem 0, 27 Jan 30 11:42 kmem", other("kmem", datetime(2017, 1, 30, 11, 42))),
        ("crw-------   1 root     sys      109,767 Jul  2  2004 pci@1c,600000:devctl",
         other("pci@1c,600000:devctl", day(2004, 7, 2), "day")),
        ("-rwxrwx---   1 ftp      ftp-admin 816026400 Oct  5  2008 bloplab 7 cd1.img",
         f("bloplab 7 cd1.img", 816026400, day(2008, 10, 5), "day")),
        ("drwxr-xr-x   2 john smith     test group         4096 Mar  2 15:13 zxbox",
         dr("zxbox", 4096, datetime(2017, 3, 2, 15, 13))),
        ("drwx------ 4 maxm Domain Users 512 Oct 2 10:59 .metadata",
         dr(".metadata", 512, datetime(2016, 10, 2, 10, 59))),
        ("drwxr-xr-x   2 john smith     group         4096 Mar  2 15:13 zxbox     ",
         dr("zxbox     ", 4096, datetime(2017, 3, 2, 15, 13))),
        ("drwxr-xr-x   2 john smith     group         4096 Mar  2 15:13   zxbox",
         dr("  zxbox", 4096, datetime(2017, 3, 2, 15, 13))),
        ("drwx------ 4 maxm Domain Users 512 Oct 2 10:59 abc(test)123.pdf",
         dr("abc(test)123.pdf", 512, datetime(2016, 10, 2, 10, 59))),
        ("drwxr-x---+1464 chrism   chrism     41472 Feb 25 13:17 20090225",
         dr("20090225", 41472, datetime(2017, 2, 25, 13, 17))),
        ("-rw-r--r--   1 ftpuser  ftpusers 12414535 Mar 17 11:07 test 1999 abc.pdf",
         f("test 1999 abc.pdf", 12414535, datetime(2017, 3, 17, 11, 7))),
        ("-rw-rw-rw-   1 user group 5840 Mar 19 09:34 123 456 abc.csv",
         f("123 456 abc.csv", 5840, datetime(2017, 3, 19, 9, 34))),
        ("-rwxr-xr-x   2 user     my group 500        5000000000 Mar  2 15:13 zxbox",
         f("zxbox", 5000000000, datetime(2017, 3, 2, 15, 13))),
        ("-rw-r-----   1 neeme neeme   346 2005-04-08 11:22 services.vsp",
         f("services.vsp", 346, datetime(2005, 4, 8, 11, 22))),
        ("lrwxrwxrwx   1 neeme neeme    23 2005-03-02 18:06 macros -> ./../../global/macros/.",
         ln("macros", 23, datetime(2005, 3, 2, 18, 6), "./../../global/macros/.")),
    ]],
    # --- apache/commons-net .../parser/OS400FTPEntryParserTest.java (its Unix-style half:
    # owner PEP, group 0, files without an owner's permission bits)
    *[("commons-net OS/400 IFS", NOW_2017, line, expected) for line, expected in [
        ("----rwxr-x   1 PEP      0           4019 Mar 18 18:58 einladung.zip",
         f("einladung.zip", 4019, datetime(2017, 3, 18, 18, 58))),
        ("----rwxr-x   1 PEP      0            422 Mar 24 14:06 readme", f("readme", 422, datetime(2017, 3, 24, 14, 6))),
        ("----rwxr-x   1 PEP      0           8492 Apr 07 07:13 build.xml",
         f("build.xml", 8492, datetime(2017, 4, 7, 7, 13))),
        ("d---rwxr-x   2 PEP      0          45056 Mar 24 14:06 dir1", dr("dir1", 45056, datetime(2017, 3, 24, 14, 6))),
    ]],
    # --- apache/commons-net .../parser/NTFTPEntryParserTest.java (IIS, DOS style and Unix style)
    *[("commons-net NT", NOW_2017, line, expected) for line, expected in [
        ("05-26-95  10:57AM               143712 $LDR$", f("$LDR$", 143712, datetime(1995, 5, 26, 10, 57))),
        ("05-20-97  03:31PM                  681 .bash_history",
         f(".bash_history", 681, datetime(1997, 5, 20, 15, 31))),
        ("12-05-96  05:03PM       <DIR>          absoft2", dr("absoft2", None, datetime(1996, 12, 5, 17, 3))),
        ("12-03-96  06:38AM       <DIR>          123xyz", dr("123xyz", None, datetime(1996, 12, 3, 6, 38))),
        ("05-26-1995  10:57AM               143712 $LDR$", f("$LDR$", 143712, datetime(1995, 5, 26, 10, 57))),
        ("12-05-96  17:03         <DIR>          absoft2", dr("absoft2", None, datetime(1996, 12, 5, 17, 3))),
        ("05-22-97  08:08                    828 AUTOEXEC.BAK", f("AUTOEXEC.BAK", 828, datetime(1997, 5, 22, 8, 8))),
        ("09-13-10  13:08                   23 Control Panel.lnk",
         f("Control Panel.lnk", 23, datetime(2010, 9, 13, 13, 8))),
        ("09-13-10  13:08       <DIR>          My Documents", dr("My Documents", None, datetime(2010, 9, 13, 13, 8))),
        ("05-22-97  12:08AM                  5000000000 10 years and under",
         f("10 years and under", 5000000000, datetime(1997, 5, 22, 0, 8))),
        ("12-03-96  06:38PM       <DIR>           10 years and under",
         dr("10 years and under", None, datetime(1996, 12, 3, 18, 38))),
        ("05-22-97  12:08                  5000000000 10 years and under",
         f("10 years and under", 5000000000, datetime(1997, 5, 22, 12, 8))),
        ("12-03-96  06:38AM       <DIR>          123 abc xyz", dr("123 abc xyz", None, datetime(1996, 12, 3, 6, 38))),
        ("-rw-rw-r--   1 mqm        mqm          17707 Mar 12  3:33 killmq.sh.log",
         f("killmq.sh.log", 17707, datetime(2017, 3, 12, 3, 33))),
    ]],
    # --- jlaffaye/ftp parse_test.go (the Go client rclone uses); its clock: 2017-03-10 23:00
    *[("jlaffaye/ftp", NOW_2017, line, expected) for line, expected in [
        ("drwxr-xr-x    3 110      1002            3 Dec 02  2009 pub", dr("pub", 3, day(2009, 12, 2), "day")),
        ("drwxr-xr-x    3 110      1002            3 Dec 02  2009 p u b", dr("p u b", 3, day(2009, 12, 2), "day")),
        ("-rw-r--r--   1 marketwired marketwired    12016 Mar 16  2016 2016031611G087802-001.newsml",
         f("2016031611G087802-001.newsml", 12016, day(2016, 3, 16), "day")),
        ("-rwxr-xr-x    3 110      1002            1234567 Dec 02  2009 fileName",
         f("fileName", 1234567, day(2009, 12, 2), "day")),
        ("lrwxrwxrwx   1 root     other          7 Jan 25 00:17 bin -> usr/bin",
         ln("bin", 7, datetime(2017, 1, 25, 0, 17), "usr/bin")),
        ("drwxr-xr-x               folder        0 Aug 15 05:49 !!!-Tipp des Haus!",
         dr("!!!-Tipp des Haus!", 0, datetime(2017, 8, 15, 5, 49))),
        # a DVD image server: both columns 2**64-1; the size is unknown, the file kept
        ("-rw-r--r--        0   18446744073709551615 18446744073709551615 Nov 16  2006 VIDEO_TS.VOB",
         f("VIDEO_TS.VOB", None, day(2006, 11, 16), "day")),
        ("----------   1 owner    group         1803128 Jul 10 10:18 ls-lR.Z",
         f("ls-lR.Z", 1803128, datetime(2017, 7, 10, 10, 18))),
        ("d---------   1 owner    group               0 Nov  9 19:45 Softlib",
         dr("Softlib", 0, datetime(2016, 11, 9, 19, 45))),
        ("-rwxrwxrwx   1 noone    nogroup      322 Aug 19  1996 message.ftp",
         f("message.ftp", 322, day(1996, 8, 19), "day")),
        ("08-07-15  07:50PM                  718 Post_PRR_20150901_1166_265118_13049.dat",
         f("Post_PRR_20150901_1166_265118_13049.dat", 718, datetime(2015, 8, 7, 19, 50))),
        ("08-10-15  02:04PM       <DIR>          Billing", dr("Billing", None, datetime(2015, 8, 10, 14, 4))),
        ("drwxr-xr-x    3 110      1002            3 Dec 02  2009 spaces   dir   name",
         dr("spaces   dir   name", 3, day(2009, 12, 2), "day")),
        ("-rwxr-xr-x    3 110      1002            1234567 Dec 02  2009  foo bar ",
         f(" foo bar ", 1234567, day(2009, 12, 2), "day")),
        ("-r--------   0 user group     65222236 Feb 24 00:39 RegularFile",
         f("RegularFile", 65222236, datetime(2017, 2, 24, 0, 39))),
        ("-rwxrw-r--+  1 521      101         2080 May 21 10:53 data.csv",
         f("data.csv", 2080, datetime(2017, 5, 21, 10, 53))),
        ("lrwxrwxrwx    1 0        1001           27 Jul 07  2017 R-3.4.0.pkg -> el-capitan/base/R-3.4.0.pkg",
         ln("R-3.4.0.pkg", 27, day(2017, 7, 7), "el-capitan/base/R-3.4.0.pkg", "day")),
        ("total 1", None),
    ]],
    # --- our servers, captured 2026-11-30 09:01 UTC: pyftpdlib 2.2.0 (LIST -a) ...
    *[("pyftpdlib 2.2.0", NOW_CAPTURE, line, expected) for line, expected in [
        ("-rw-r--r--   1 root     root            1 Nov 30 08:01   lead and trail  ",
         f("  lead and trail  ", 1, datetime(2026, 11, 30, 8, 1))),
        ("-rw-r--r--   1 root     root         2019 Nov 27 09:01 2019", f("2019", 2019, datetime(2026, 11, 27, 9, 1))),
        ("-rw-r--r--   1 root     root           12 Nov 29 09:01 Mar 18 18:58 like a date",
         f("Mar 18 18:58 like a date", 12, datetime(2026, 11, 29, 9, 1))),
        ("-rw-r--r--   1 root     root     5000000000 Jan 01  2010 big.iso",
         f("big.iso", 5000000000, day(2010, 1, 1), "day")),
        ("lrwxrwxrwx   1 root     root           12 Nov 30 09:01 link -> old 4096.bin",
         ln("link", 12, datetime(2026, 11, 30, 9, 1), "old 4096.bin")),
        ("-rw-r--r--   1 root     root         4096 Sep 09  2001 old 4096.bin",
         f("old 4096.bin", 4096, day(2001, 9, 9), "day")),
        ("-rw-r--r--   1 root     root            3 Nov 30 07:01 semi; colon",
         f("semi; colon", 3, datetime(2026, 11, 30, 7, 1))),
        ("drwxr-xr-x   2 root     root         4096 Nov 20 09:01 sub dir",
         dr("sub dir", 4096, datetime(2026, 11, 20, 9, 1))),
    ]],
    # ... and vsftpd 3.0.3 (Debian 12, LIST -a), the same tree
    *[("vsftpd 3.0.3", NOW_CAPTURE, line, expected) for line, expected in [
        ("-rw-rw-r--    1 999      995             1 Nov 30 08:01   lead and trail  ",
         f("  lead and trail  ", 1, datetime(2026, 11, 30, 8, 1))),
        ("drwxrwxr-x    3 999      995          4096 Nov 30 09:01 .", None),
        ("drwxrwxr-x    3 999      995          4096 Nov 30 09:01 ..", None),
        ("-rw-rw-r--    1 999      995          2019 Nov 27 09:01 2019", f("2019", 2019, datetime(2026, 11, 27, 9, 1))),
        ("-rw-rw-r--    1 999      995            12 Nov 29 09:01 Mar 18 18:58 like a date",
         f("Mar 18 18:58 like a date", 12, datetime(2026, 11, 29, 9, 1))),
        ("-rw-rw-r--    1 999      995      5000000000 Jan 01  2010 big.iso",
         f("big.iso", 5000000000, day(2010, 1, 1), "day")),
        ("lrwxrwxrwx    1 999      995            12 Nov 30 09:01 link -> old 4096.bin",
         ln("link", 12, datetime(2026, 11, 30, 9, 1), "old 4096.bin")),
        ("-rw-rw-r--    1 999      995          4096 Sep 09  2001 old 4096.bin",
         f("old 4096.bin", 4096, day(2001, 9, 9), "day")),
        ("drwxrwxr-x    2 999      995          4096 Nov 20 09:01 sub dir",
         dr("sub dir", 4096, datetime(2026, 11, 20, 9, 1))),
    ]],
]

# Lines other clients reject that we read anyway: the owner and group columns are not
# checked (only the size and date after them count), and any letter is a file type.
LIST_LENIENT: list[tuple[str, str, RemoteEntry | None]] = [
    # apache/commons-net OS400FTPEntryParserTest.java badsamples: owner glued to the link count,
    # an extra column
    ("commons-net OS/400 IFS", "----rwxr-x   1PEP       0           4019 Mar 18 18:58 einladung.zip",
     f("einladung.zip", 4019, datetime(2017, 3, 18, 18, 58))),
    ("commons-net OS/400 IFS", "----rwxr-x   1 PEP      0  xx        422 Mar 24 14:06 readme",
     f("readme", 422, datetime(2017, 3, 24, 14, 6))),
    # jlaffaye/ftp parse_test.go: unknown type letter; "other" entries are never fetched
    ("jlaffaye/ftp", "Zrwxrwxrwx   1 root     other          7 Jan 25 00:17 bin -> usr/bin",
     other("bin -> usr/bin", datetime(2017, 1, 25, 0, 17))),
]

# (source, line): lines the sources call broken, and formats we do not claim
LIST_REJECTED: list[tuple[str, str]] = [
    # apache/commons-net UnixFTPEntryParserTest.java badsamples
    *[("commons-net Unix", line) for line in [
        "drwxr-xr-x   2 root     root         4096 Jam  4 00:03 zziplib",
        "drwxr-xr-x   2 root     99           4096 Feb 23 30:01 zzplayer",
        "drwxr-xr-x   2 root     root         4096 Aug 36  2001 zztpp",
        "-rw-r--r--   1 14       staff       80284 Aug 22  zxJDBC-1.2.3.tar.gz",
        "-rw-r--r--   1 14       staff      119:26 Aug 22  2000 zxJDBC-1.2.3.zip",
        "-rw-r--r--   1 root     root       190144 2001-04-27 zxJDBC-2.0.1b1.zip",
        "-rw-r--r--   1 root     root       111325 Apr -7 18:79 zxJDBC-2.0.1b1.tar.gz",
    ]],
    # apache/commons-net UnixFTPEntryParserTest.java goodsamples in Japanese: localized
    # month names are not claimed
    ("commons-net Unix, localized", "-rw-rw---- 1 ep1adm sapsys 0 8\u6708 17\u65e5 20:10 caerrinf"),
    ("commons-net Unix, localized",
     "-rw-rw---- 1 ep1adm sapsys 0 6\u6708 3\u65e5 2003\u5e74 \u8a66\u9a13\u30d5\u30a1\u30a4\u30eb.csv"),
    # apache/commons-net OS400FTPEntryParserTest.java: bad Unix-style lines, and native
    # OS/400 lines (not claimed)
    ("commons-net OS/400", "----rwxr-x   1 PEP      0           8492 Apr 07 30:13 build.xml"),
    ("commons-net OS/400", "d---rwxr-x   2 PEP      0          45056Mar 24 14:06 zdir2"),
    ("commons-net OS/400 native", "PEP              4019 04/03/18 18:58:16 *STMF      einladung.zip"),
    ("commons-net OS/400 native", "PEP             36864 04/03/24 14:06:34 *DIR       dir1/"),
    # apache/commons-net NTFTPEntryParserTest.java badsamples (the second is OS/2: not claimed)
    ("commons-net NT", "20-05-97  03:31PM                  681 .bash_history"),
    ("commons-net NT, OS/2", "     0           DIR   05-19-97   12:56  local"),
    ("commons-net NT", "drwxr-xr-x   2 root     99           4096Feb 23 30:01 zzplayer"),
    # jlaffaye/ftp parse_test.go listTestsFail (NetWare rights: not claimed)
    ("jlaffaye/ftp, NetWare", "d [R----F--] supervisor            512       Jan 16 18:53 login"),
    ("jlaffaye/ftp, NetWare", "- [R----F--] rhesus             214059       Oct 20 15:27 cx.exe"),
    ("jlaffaye/ftp", "drwxr-xr-x    3 110      1002            3 Dec 02  209 pub"),
    ("jlaffaye/ftp", "modify=20150806235817;invalid;UNIX.owner=0; movies"),
    ("jlaffaye/ftp", "000000000x "),
    # metacpan File-Listing-Ftpcopy t/simple.t: VMS (not claimed)
    ("File-Listing-Ftpcopy, VMS",
     "SYSUAF.DAT;1            36/36         12-JUL-2012 09:17:04  [OLLISG]               (RWED,RWED,,)"),
]

# (source, line, expected)
MLSD_CORPUS: list[tuple[str, str, RemoteEntry | None]] = [
    # apache/commons-net src/test/java/org/apache/commons/net/ftp/parser/MLSxEntryParserTest.java
    *[("commons-net MLSx", line, expected) for line, expected in [
        ("Type=cdir;Modify=20141022065102;UNIX.mode=0775; /commons/net", None),
        ("Type=pdir;Modify=20141205180002;UNIX.mode=0775; /commons", None),
        ("Type=file;Size=431;Modify=20130303210732;UNIX.mode=0664; HEADER.html",
         f("HEADER.html", 431, utc(2013, 3, 3, 21, 7, 32), "second")),
        ("Type=file;Size=2364;Modify=20130611170131;UNIX.mode=0664; RELEASE-NOTES.txt",
         f("RELEASE-NOTES.txt", 2364, utc(2013, 6, 11, 17, 1, 31), "second")),
        ("Type=dir;Modify=20141022065102;UNIX.mode=0775; binaries",
         dr("binaries", None, utc(2014, 10, 22, 6, 51, 2), "second")),
        ("Type=dir;Modify=20141022065102.999;UNIX.mode=0775; source",
         dr("source", None, utc(2014, 10, 22, 6, 51, 2, 999000), "second")),
        (" /no/facts", other("/no/facts", None, None)),
        ("Type=; /empty/fact", other("/empty/fact", None, None)),
        ("Size=; /empty/size", other("/empty/size", None, None)),
        (" Type=cdir;Modify=20141022065102;UNIX.mode=0775; /leading/space",
         other("Type=cdir;Modify=20141022065102;UNIX.mode=0775; /leading/space", None, None)),
        ("  ", other(" ", None, None)),
        # a badsample there; for us a parent directory is no entry, whatever its facts
        ("Type=pdir;Modify=20141205180002Z; /trailing chars in Modify", None),
    ]],
    # jlaffaye/ftp parse_test.go (ProFTPD's facts, also capitalised)
    *[("jlaffaye/ftp", line, expected) for line, expected in [
        ("modify=20150813224845;perm=fle;type=cdir;unique=119FBB87U4;UNIX.group=0;UNIX.mode=0755;UNIX.owner=0; .",
         None),
        ("modify=20150813224845;perm=fle;type=pdir;unique=119FBB87U4;UNIX.group=0;UNIX.mode=0755;UNIX.owner=0; ..",
         None),
        ("modify=20150806235817;perm=fle;type=dir;unique=1B20F360U4;UNIX.group=0;UNIX.mode=0755;UNIX.owner=0; movies",
         dr("movies", None, utc(2015, 8, 6, 23, 58, 17), "second")),
        ("modify=20150814172949;perm=flcdmpe;type=dir;unique=85A0C168U4;UNIX.group=0;UNIX.mode=0777;UNIX.owner=0;"
         " _upload", dr("_upload", None, utc(2015, 8, 14, 17, 29, 49), "second")),
        ("modify=20150813175250;perm=adfr;size=951;type=file;unique=119FBB87UE;UNIX.group=0;UNIX.mode=0644;"
         "UNIX.owner=0; welcome.msg", f("welcome.msg", 951, utc(2015, 8, 13, 17, 52, 50), "second")),
        ("Modify=20150813175250;Perm=adfr;Size=951;Type=file;Unique=119FBB87UE;UNIX.group=0;UNIX.mode=0644;"
         "UNIX.owner=0; welcome.msg", f("welcome.msg", 951, utc(2015, 8, 13, 17, 52, 50), "second")),
    ]],
    # pyftpdlib 2.2.0 MLSD, captured with the LIST lines above (it follows the link)
    *[("pyftpdlib 2.2.0", line, expected) for line, expected in [
        ("modify=20261127090100;perm=radfwMT;size=2019;type=file;unique=fe00g20ca97; 2019",
         f("2019", 2019, utc(2026, 11, 27, 9, 1), "second")),
        ("modify=20261129090100;perm=radfwMT;size=12;type=file;unique=fe00g20ca98; Mar 18 18:58 like a date",
         f("Mar 18 18:58 like a date", 12, utc(2026, 11, 29, 9, 1), "second")),
        ("modify=20261120090100;perm=eldfmMTcp;size=4096;type=dir;unique=fe00g20ca9c; sub dir",
         dr("sub dir", 4096, utc(2026, 11, 20, 9, 1), "second")),
        ("modify=20261130080100;perm=radfwMT;size=1;type=file;unique=fe00g20ca99;   lead and trail  ",
         f("  lead and trail  ", 1, utc(2026, 11, 30, 8, 1), "second")),
        ("modify=20100101000000;perm=radfwMT;size=5000000000;type=file;unique=fe00g20ca9b; big.iso",
         f("big.iso", 5000000000, utc(2010, 1, 1), "second")),
        ("modify=20261130070100;perm=radfwMT;size=3;type=file;unique=fe00g20ca9a; semi; colon",
         f("semi; colon", 3, utc(2026, 11, 30, 7, 1), "second")),
        ("modify=20010909014640;perm=radfwMT;size=4096;type=file;unique=fe00g20ca96; link",
         f("link", 4096, utc(2001, 9, 9, 1, 46, 40), "second")),
    ]],
]

# Lines that the MLSD rules of RFC 3659 make no sense of, whatever the client's leniency.
MLSD_REJECTED: list[tuple[str, str]] = [
    # apache/commons-net MLSxEntryParserTest.java badsamples (we accept two more of them:
    # a missing final ";" before the name, see test_ftp_listing.py "missing final semicolon")
    *[("commons-net MLSx", line) for line in [
        "Type=cdir;Modify=20141022065101;UNIX.mode=0775;/no/space",
        "Type=cdir;Modify=20141022065103;UNIX.mode=0775;",
        "/no/leading/space",
        "",
        "Type=cdir;Modify=20141022065102;UNIX.mode=0775; ",
        "Type=dir;Size; missing =size",
        " ",
        "Modify=2014; Short stamp",
        "Type=dir;Modify=2014102206510x2.999;UNIX.mode=0775; modify has spurious chars",
    ]],
    ("jlaffaye/ftp", "modify=20150806235817;invalid;UNIX.owner=0; movies"),
]


def _ids(rows: list[tuple]) -> list[str]:  # type: ignore[type-arg]
    return [f"{row[0]}: {row[-2] if len(row) > 2 else row[-1]}"[:90] for row in rows]


@pytest.mark.parametrize(("source", "now", "line", "expected"), LIST_CORPUS, ids=_ids(LIST_CORPUS))
def test_list_corpus(source: str, now: datetime, line: str, expected: RemoteEntry | None) -> None:
    assert parse_list_line(line, now=now) == expected


@pytest.mark.parametrize(("source", "line", "expected"), LIST_LENIENT, ids=_ids(LIST_LENIENT))
def test_list_lenient(source: str, line: str, expected: RemoteEntry | None) -> None:
    assert parse_list_line(line, now=NOW_2017) == expected


@pytest.mark.parametrize(("source", "line"), LIST_REJECTED, ids=_ids(LIST_REJECTED))
def test_list_rejected(source: str, line: str) -> None:
    with pytest.raises(ListingError):
        parse_list_line(line, now=NOW_2017)


@pytest.mark.parametrize(("source", "line", "expected"), MLSD_CORPUS, ids=_ids(MLSD_CORPUS))
def test_mlsd_corpus(source: str, line: str, expected: RemoteEntry | None) -> None:
    assert parse_mlsd_line(line) == expected


@pytest.mark.parametrize(("source", "line"), MLSD_REJECTED, ids=_ids(MLSD_REJECTED))
def test_mlsd_rejected(source: str, line: str) -> None:
    with pytest.raises(ListingError):
        parse_mlsd_line(line)

