"""The `match:` models of `nntp.scan` (validation only; the filtering itself is in
`engine/news/match.py`, which a run uses without pydantic)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from xfer.spec import StrictModel


class Terms(StrictModel):
    all: list[str] = Field(default_factory=list, description="every term must occur (AND)")
    any: list[str] = Field(default_factory=list, description="at least one term must occur (OR)")

    @field_validator("all", "any")
    @classmethod
    def _terms(cls, terms: list[str]) -> list[str]:
        if any(not term.strip() for term in terms):
            raise ValueError("a match term must not be empty")
        return [term.casefold() for term in terms]

    @model_validator(mode="after")
    def _not_empty(self) -> Terms:
        if not self.all and not self.any:
            raise ValueError("give 'all' or 'any' terms (or both)")
        return self


class Match(StrictModel):
    """`match: {subject: {any: [...]}, from: {all: [...]}, body: {all: [...]}}`."""

    subject: Terms | None = None
    from_: Terms | None = Field(None, alias="from")
    body: Terms | None = None

    @model_validator(mode="after")
    def _some_field(self) -> Match:
        if self.subject is None and self.from_ is None and self.body is None:
            raise ValueError("match needs at least one of subject, from, body")
        return self
