"""One loaded job file, as a run uses it: its defaults, host blocks and job specs
(records, `engine/records.py`) and where it lives. No pydantic here: the scheduler,
the kinds and the protocol adapters import this, and a run from a cached job file
must not pay for the validator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from xfer.records import Record
from xfer.urls import Url, netrc_credentials

if TYPE_CHECKING:  # records carry the fields of these models
    from xfer.spec import Defaults, HostConfig, JobSpec


@dataclass
class JobFile:
    """One loaded job file: its records plus where it lives (relative paths start there)."""

    path: Path
    defaults: Defaults
    hosts: dict[str, HostConfig]
    jobs: list[JobSpec]
    base_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.base_dir = self.path.resolve().parent

    def host_config(self, url: Url) -> HostConfig:
        """The host block for `url` (`host:port` first, then `host`), or an empty one."""
        return self.hosts.get(url.endpoint) or self.hosts.get(url.host) or NO_HOST_BLOCK

    def host_limit(self, url: Url) -> int:
        return self.host_config(url).max_connections or self.defaults.max_connections_per_host

    def with_credentials(self, url: Url) -> Url:
        """`url` with credentials from the URL, else the host block, else ~/.netrc."""
        if url.user and url.password is not None:
            return url
        host = self.host_config(url)
        user = url.user or host.user
        password = url.password or host.password
        if password is None:
            netrc_user, netrc_password = netrc_credentials(url.host)
            if netrc_user and (user is None or user == netrc_user):
                user, password = netrc_user, netrc_password
        return url.with_credentials(user, password)

    def resolve(self, relative: Path | str) -> Path:
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def state_path(self) -> Path:
        return self.resolve(self.defaults.state or Path(".xfer/state.db"))


#: The settings of a host without a block of its own: `HostConfig()` as a record
#: (tests/unit/test_records.py checks that the two agree).
NO_HOST_BLOCK: HostConfig = Record(  # type: ignore[assignment]
    "xfer.spec.HostConfig",
    {
        "max_connections": None,
        "user": None,
        "password": None,
        "tls_verify": True,
        "ca_file": None,
        "passive": True,
        "rate_limit": None,
        "connect_timeout": None,
        "allow_plaintext_auth": False,
    },
)


def global_bound(files: Sequence[JobFile], max_connections: int | None) -> int:
    """The run's bound on open connections: `--max-connections`, else the strictest
    `defaults.max_connections` of its job files."""
    return max_connections or min(file.defaults.max_connections for file in files)
