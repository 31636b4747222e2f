"""Every invalid job file gives one `file:line:col: key: message` line and exit 2."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xfer.cli import main
from xfer.errors import SpecError
from xfer.spec import load_job_file, parse_job_text

BAD_FILES = [
    (
        "wrong type",
        """
        jobs:
          - name: a
            kind: test.probe
            count: many
        """,
        r"bad\.yaml:4:\d+: jobs\[0\]\.count: .*integer.*'many'",
    ),
    (
        "limit below one",
        """
        jobs:
          - name: a
            kind: test.probe
          - name: b
            kind: test.probe
            max_connections: 0
        """,
        r"bad\.yaml:6:\d+: jobs\[1\]\.max_connections: must be >= 1, got 0",
    ),
    (
        "unknown key",
        """
        jobs:
          - name: a
            kind: test.probe
            cuont: 3
        """,
        r"bad\.yaml:4:5: jobs\[0\]\.cuont: unknown key 'cuont' \(did you mean 'count'\?\)",
    ),
    (
        "missing field",
        """
        jobs:
          - kind: test.probe
        """,
        r"bad\.yaml:2:\d+: jobs\[0\]\.name: required key is missing",
    ),
    (
        "unknown kind",
        """
        jobs:
          - name: a
            kind: ftp.mirorr
        """,
        r"bad\.yaml:3:\d+: jobs\[0\]\.kind: unknown kind 'ftp.mirorr' \(one of: .*test\.probe",
    ),
    (
        "bad YAML syntax",
        """
        jobs:
          - name: a
            kind: [test.probe
        """,
        r"bad\.yaml:\d+:\d+: ",
    ),
    (
        "undefined variable",
        """
        defaults:
          retries: ${XFER_TEST_UNDEFINED_VARIABLE}
        jobs: []
        """,
        r"bad\.yaml:2:\d+: environment variable \$\{XFER_TEST_UNDEFINED_VARIABLE\} is not set",
    ),
    (
        "unknown host key",
        """
        hosts:
          ftp.example.org:
            max_conections: 2
        jobs: []
        """,
        r"bad\.yaml:3:5: hosts\['ftp.example.org'\]\.max_conections: unknown key .*did you mean 'max_connections'",
    ),
    (
        "negative host limit",
        """
        hosts:
          "ftp.example.org:2121":
            max_connections: -1
        jobs: []
        """,
        r"bad\.yaml:3:\d+: hosts\['ftp.example.org:2121'\]\.max_connections: must be >= 1, got -1",
    ),
    (
        "duplicate job name",
        """
        jobs:
          - {name: a, kind: test.probe}
          - {name: a, kind: test.probe}
        """,
        r"bad\.yaml:3:\d+: jobs\[1\]\.name: duplicate job name 'a'",
    ),
    (
        "duplicate key",
        """
        jobs:
          - name: a
            name: b
            kind: test.probe
        """,
        r"bad\.yaml:3:5: duplicate key 'name'",
    ),
    (
        "invalid glob pattern",
        """
        jobs:
          - name: a
            kind: ftp.mirror
            remote: ftp://ftp.example.org/
            local: out
            include: ["*.c", "[z-a]"]
        """,
        r"bad\.yaml:6:\d+: jobs\[0\]\.include: invalid pattern '\[z-a\]': bad character range z-a$",
    ),
    (
        "negated glob pattern",
        """
        jobs:
          - name: a
            kind: ftp.pull
            remote: ftp://ftp.example.org/
            local: out
            files: ["!*.sig"]
        """,
        r"bad\.yaml:6:\d+: jobs\[0\]\.files: pattern '!\*\.sig': a leading '!' is not allowed",
    ),
    (
        "top level not a mapping",
        """
        - just
        - a list
        """,
        r"bad\.yaml:1:1: expected a mapping",
    ),
]


@pytest.mark.parametrize("text, pattern", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_bad_file_names_line_column_and_key(
    probe_kind: object, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, pattern: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert re.search(pattern, err), err


def test_a_typo_shows_every_error_unknown_key_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("jobs:\n  - name: a\n    kind: ftp.mirror\n    remot: ftp://h/\n    local: out\n    retries: -1\n")
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"xfer: {path}:4:5: jobs[0].remot: unknown key 'remot' (did you mean 'remote'?)",
        f"xfer: {path}:6:14: jobs[0].retries: must be >= 0, got -1",
        f"xfer: {path}:2:5: jobs[0].remote: required key is missing",
    ]


def test_errors_beyond_the_limit_are_counted(probe_kind: object) -> None:
    text = "jobs:\n" + "".join(f"  - {{name: j{i}, kind: test.probe, count: x}}\n" for i in range(25))
    with pytest.raises(SpecError) as caught:
        parse_job_text(text, "f.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 21 and lines[-1] == "f.yaml: ... and 5 more errors"


def test_validate_reports_each_file(probe_kind: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("jobs:\n  - {name: a, kind: test.probe}\n")
    bad.write_text("jobs:\n  - {name: a, kind: test.probe, cuont: 1}\n")
    assert main(["validate", str(bad), str(good)]) == 2
    out, err = capsys.readouterr()
    assert out == f"{good}: ok, 1 job(s)\n"
    assert err.startswith(f"xfer: {bad}:2:") and "did you mean 'count'" in err


def test_anchors_and_merge_keys_keep_a_hundred_jobs_short(probe_kind: object, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "jobs:\n  - &probe {name: job0, kind: test.probe, count: 7}\n"
        + "\n".join(f"  - {{<<: *probe, name: job{i}}}" for i in range(1, 100))
        + "\n"
    )
    loaded = load_job_file(path)
    assert len(loaded.jobs) == 100
    assert {job.count for job in loaded.jobs} == {7}  # type: ignore[attr-defined]
    assert loaded.jobs[99].name == "job99"


def test_error_inside_merged_job_points_at_the_job(probe_kind: object) -> None:
    text = "jobs:\n  - &p {name: a, kind: test.probe}\n  - <<: *p\n    name: b\n    count: -x\n"
    with pytest.raises(SpecError, match=r"^f\.yaml:5:\d+: jobs\[1\]\.count"):
        parse_job_text(text, "f.yaml")


def test_environment_variables_are_expanded(probe_kind: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XFER_TEST_COUNT", "9")
    loaded = parse_job_text(
        "jobs:\n  - {name: a, kind: test.probe, count: '${XFER_TEST_COUNT}'}\n"
        "  - {name: b, kind: test.probe, count: '${XFER_TEST_MISSING:-4}'}\n",
        "f.yaml",
    )
    assert [job.count for job in loaded.jobs] == [9, 4]  # type: ignore[attr-defined]


def test_password_is_never_echoed_in_an_error(probe_kind: object) -> None:
    text = "hosts:\n  h:\n    password: [hunter2secret]\njobs: []\n"
    with pytest.raises(SpecError) as caught:
        parse_job_text(text, "f.yaml")
    assert "hunter2secret" not in str(caught.value)
    assert "hosts.h.password" in str(caught.value)


def test_unreadable_file_is_a_spec_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: cannot read" in capsys.readouterr().err


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=300), yaml_values.map(repr)))
def test_random_text_never_escapes_as_a_traceback(probe_kind: object, text: str) -> None:
    try:
        parse_job_text(text, "fuzz.yaml")
    except SpecError as exc:
        assert str(exc).startswith("fuzz.yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(["defaults", "hosts", "jobs", "other"]),
        st.one_of(yaml_values, st.lists(st.dictionaries(st.sampled_from(["name", "kind", "count", "max_connections", "x"]), yaml_values, max_size=4), max_size=3)),
        max_size=3,
    )
)
def test_random_structures_give_spec_errors_only(probe_kind: object, data: dict) -> None:
    import yaml

    text = yaml.safe_dump(data)
    try:
        parse_job_text(text, "fuzz.yaml")
    except SpecError as exc:
        lines = str(exc).splitlines()
        assert 1 <= len(lines) <= 21
        assert all(line.startswith("fuzz.yaml") for line in lines), lines
