"""`pick: newest` orders release names as projects write them (GNU, kernel.org, Apache)."""

from __future__ import annotations

import random

import pytest

from xfer.kinds._versions import release_version, version_key

# Each list is in release order, oldest first, as the names appear on the servers.
RELEASE_TREES = {
    "GNU hello": ["hello-2.9.tar.gz", "hello-2.10.tar.gz", "hello-2.11.tar.gz", "hello-2.12.tar.gz", "hello-2.12.1.tar.gz"],
    "GNU coreutils": ["coreutils-8.32.tar.xz", "coreutils-9.0.tar.xz", "coreutils-9.1.tar.xz", "coreutils-9.4.tar.xz", "coreutils-9.5.tar.xz"],
    "GNU bash": ["bash-5.1.tar.gz", "bash-5.2-alpha.tar.gz", "bash-5.2-beta.tar.gz", "bash-5.2-rc1.tar.gz", "bash-5.2.tar.gz", "bash-5.2.21.tar.gz"],
    "GNU gcc": ["gcc-9.5.0.tar.xz", "gcc-12.3.0.tar.xz", "gcc-13.1.0.tar.xz", "gcc-13.2.0.tar.xz"],
    "kernel.org": ["linux-6.6.tar.xz", "linux-6.6.9.tar.xz", "linux-6.6.10.tar.xz", "linux-6.7-rc1.tar.gz", "linux-6.7-rc8.tar.gz", "linux-6.7.tar.xz", "linux-6.7.1.tar.xz"],
    "Apache httpd": ["httpd-2.4.9.tar.bz2", "httpd-2.4.10.tar.bz2", "httpd-2.4.57.tar.bz2", "httpd-2.4.58.tar.bz2"],
    "Apache Maven": ["apache-maven-3.8.8-bin.tar.gz", "apache-maven-3.9.0-bin.zip", "apache-maven-3.9.6-bin.tar.gz", "apache-maven-4.0.0-alpha-12-bin.tar.gz", "apache-maven-4.0.0-beta-3-bin.tar.gz"],
    "Apache Commons": ["commons-lang3-3.9-src.zip", "commons-lang3-3.12.0-src.tar.gz", "commons-lang3-3.14.0-src.zip"],
    "Python": ["Python-3.11.7.tgz", "Python-3.12.0a1.tgz", "Python-3.12.0b4.tgz", "Python-3.12.0rc3.tgz", "Python-3.12.0.tgz", "Python-3.12.1.tar.xz"],
    "Node": ["node-v18.19.0.tar.gz", "node-v20.9.0.tar.gz", "node-v20.11.0.tar.gz"],
    "Boost (underscores)": ["boost_1_79_0.tar.bz2", "boost_1_83_0.tar.gz", "boost_1_84_0.tar.bz2"],
    "pre-releases": ["tool-1.0a1.tar.gz", "tool-1.0-beta2.zip", "tool-1.0rc1.tar.gz", "tool-1.0.tar.gz", "tool-1.0.1.tar.gz"],
}


@pytest.mark.parametrize("names", RELEASE_TREES.values(), ids=RELEASE_TREES.keys())
def test_release_names_sort_in_release_order(names: list[str]) -> None:
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=version_key) == names
    assert max(shuffled, key=version_key) == names[-1]


def test_gnu_hello_newest_is_2_12_1() -> None:
    assert version_key("hello-2.12.1.tar.gz") > version_key("hello-2.12.tar.gz")


def test_names_without_a_version_sort_before_all_versions() -> None:
    assert release_version("hello-latest.tar.gz") is None
    names = ["hello-latest.tar.gz", "hello-2.9.tar.gz", "README", "hello-current.zip"]
    assert max(names, key=version_key) == "hello-2.9.tar.gz"
    assert sorted(names, key=version_key)[:3] == ["README", "hello-current.zip", "hello-latest.tar.gz"]


def test_a_version_pep440_cannot_read_is_compared_by_its_numbers() -> None:
    assert str(release_version("openssl-1.1.1w.tar.gz")) == "1.1.1"
    assert version_key("openssl-3.0.13.tar.gz") > version_key("openssl-1.1.1w.tar.gz")
