"""What a search may return: the caller's permissions plus metadata filters, as one Qdrant filter.

Every read path (CLI search and ask, the app, the LlamaIndex retriever and query engine) passes a
``SearchFilter`` into the Qdrant query itself, so a chunk the caller may not read is never returned,
ranked or handed to an LLM. Points indexed before permissions existed carry no ``readers`` and count
as public until the next ``gensearch index`` run writes them (without re-embedding).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from qdrant_client import models

from .permissions import Principal


@dataclass(frozen=True)
class SearchFilter:
    """The caller and optional metadata restrictions (all must hold)."""

    principal: Principal = field(default_factory=Principal.anonymous)
    folder: str | None = None  # a folder of the corpus, relative to its root ("hr" or "hr/policies")
    formats: tuple[str, ...] = ()  # file types as indexed: markdown, rst, html, text, pdf
    modified_after: float | None = None  # Unix seconds, inclusive
    modified_before: float | None = None  # Unix seconds, exclusive

    def to_qdrant(self) -> models.Filter:
        readable = models.Filter(
            should=[
                models.FieldCondition(key="readers", match=models.MatchAny(any=self.principal.tokens)),
                models.IsEmptyCondition(is_empty=models.PayloadField(key="readers")),  # indexed before permissions
            ]
        )
        must: list = [readable]
        if self.folder:
            must.append(models.FieldCondition(key="folders", match=models.MatchValue(value=self.folder.strip("/"))))
        if self.formats:
            must.append(models.FieldCondition(key="format", match=models.MatchAny(any=list(self.formats))))
        if self.modified_after is not None or self.modified_before is not None:
            must.append(models.FieldCondition(key="modified", range=models.Range(gte=self.modified_after, lt=self.modified_before)))
        return models.Filter(must=must)


def parse_date(value: str) -> float:
    """An ISO date or date-time (``2026-11-30``, ``2026-11-30T12:00``; UTC unless it says otherwise) in Unix seconds."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an ISO date such as 2026-11-30 or 2026-11-30T12:00") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()
