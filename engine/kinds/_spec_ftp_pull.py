"""The `ftp.pull` spec model (validation only: see `engine/kinds/__init__.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from xfer.kinds._pathfilter import check_patterns
from xfer.kinds._spec_ftp import FtpJobSpec
from xfer.spec import url_field


class FtpPullSpec(FtpJobSpec):
    kind: Literal["ftp.pull"]
    remote: url_field("ftp", "ftps")  # type: ignore[valid-type]
    local: Path = Field(description="where the files go (relative to the job file's folder)")
    files: list[str] = Field(["*"], min_length=1, description="names or glob patterns, relative to remote")
    recursive: bool = False
    pick: Literal["all", "newest"] = "all"
    pick_by: Literal["version", "mtime"] | None = Field(None, description="how pick: newest orders (default: version)")

    @field_validator("files")
    @classmethod
    def _files(cls, value: list[str]) -> list[str]:
        return check_patterns(value)

    @model_validator(mode="after")
    def _consistent(self) -> FtpPullSpec:
        self.check_tls(self.remote)
        if self.pick_by is not None and self.pick != "newest":
            raise ValueError("pick_by needs pick: newest")
        return self
