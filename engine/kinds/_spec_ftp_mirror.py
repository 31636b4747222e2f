"""The `ftp.mirror` spec model (validation only: see `engine/kinds/__init__.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from xfer.kinds._pathfilter import check_patterns
from xfer.kinds._tree_share import parse_share
from xfer.kinds._spec_ftp import FtpJobSpec
from xfer.spec import url_field


class FtpMirrorSpec(FtpJobSpec):
    kind: Literal["ftp.mirror"]
    remote: url_field("ftp", "ftps")  # type: ignore[valid-type]
    local: Path = Field(description="the local tree (relative to the job file's folder)")
    direction: Literal["download", "upload"] = "download"
    recursive: bool = True
    max_depth: int | None = Field(None, ge=0, description="directory levels below the top (0: the top only)")
    include: list[str] = Field([], description="glob patterns; when given, only matching files are transferred")
    delete: bool = Field(False, description="download only: remove local files the server no longer has")
    archive: Literal["zip", "tgz", "tbz2"] | None = Field(None, description="also pack the mirrored tree into one archive")
    archive_path: Path | None = Field(None, description="where the archive goes (default: LOCAL.zip / .tar.gz / .tar.bz2)")
    atomic_upload: bool = Field(True, description="upload to NAME.part, then rename (RNFR/RNTO)")
    share: tuple[int, int] | None = Field(
        None, description="I/N: mirror only share I of N of the top-level directories (engine/kinds/_tree_share.py)"
    )

    @field_validator("share", mode="before")
    @classmethod
    def _share(cls, value: object) -> tuple[int, int] | None:
        return None if value is None else value if isinstance(value, tuple) else parse_share(value)

    @field_validator("include")
    @classmethod
    def _include(cls, value: list[str]) -> list[str]:
        return check_patterns(value)

    @model_validator(mode="after")
    def _consistent(self) -> FtpMirrorSpec:
        self.check_tls(self.remote)
        if self.max_depth is not None and not self.recursive:
            raise ValueError("max_depth needs recursive: true (recursive: false already means the top only)")
        if self.direction == "upload":
            for key in ("delete", "archive", "share"):
                if getattr(self, key):
                    raise ValueError(f"{key} works with direction: download only")
        if self.share is not None and self.archive is not None:
            raise ValueError("share: an archive needs the whole tree (one job, not shares)")
        if self.archive_path is not None and self.archive is None:
            raise ValueError("archive_path needs archive: zip, tgz or tbz2")
        return self
