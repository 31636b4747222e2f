"""Keyword filters (`match:`): case-insensitive substrings on subject, from and body.

Within one field, `all` terms must all occur (AND) and at least one `any` term must
occur (OR); across fields every given filter must pass. Header filters run first,
so bodies are fetched only for articles that already passed them. The filters are
the records of the models in `engine/news/match_spec.py` (terms already casefolded)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xfer.news.match_spec import Match, Terms


def terms_pass(terms: Terms, text: str) -> bool:
    folded = text.casefold()
    if not all(term in folded for term in terms.all):
        return False
    return not terms.any or any(term in folded for term in terms.any)


def headers_pass(match: Match, record: dict[str, Any]) -> bool:
    if match.subject is not None and not terms_pass(match.subject, record.get("subject", "")):
        return False
    return match.from_ is None or terms_pass(match.from_, record.get("from", ""))


def body_passes(match: Match, body: str) -> bool:
    return match.body is None or terms_pass(match.body, body)
