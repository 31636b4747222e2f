"""Keyword filters (`match:`): case-insensitive substrings on subject, from and body.

Within one field, `all` terms must all occur (AND) and at least one `any` term must
occur (OR); across fields every given filter must pass. Header filters run first,
so bodies are fetched only for articles that already passed them."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from engine.spec import StrictModel


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

    def test(self, text: str) -> bool:
        folded = text.casefold()
        if not all(term in folded for term in self.all):
            return False
        return not self.any or any(term in folded for term in self.any)


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

    def headers_pass(self, record: dict[str, Any]) -> bool:
        if self.subject is not None and not self.subject.test(record.get("subject", "")):
            return False
        return self.from_ is None or self.from_.test(record.get("from", ""))

    def body_passes(self, body: str) -> bool:
        return self.body is None or self.body.test(body)
