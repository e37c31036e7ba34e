"""What the pages ask of the models and the store, without any Streamlit: easy to test, reused by every page."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qdrant_client import QdrantClient

from encoder import Encoder
from encoder.adapter import default_adapter_path
from encoder.settings import Settings

if TYPE_CHECKING:
    import torch

DECODE_TOKENS = 48  # enough for the gist of the "answer"; ~6 s on the 0.5B backbone on 2 CPU cores
REPORT_NAME = "eval.json"  # written by `gensearch eval all` into settings.reports_dir (passage-level diagnostic)
EVAL_COMMAND = "gensearch eval all"
PRODUCT_REPORT_NAME = "eval_product.json"  # written by `gensearch eval product`: as users search (the headline)
PRODUCT_EVAL_COMMAND = "gensearch eval product"


class ReportError(ValueError):
    """The evaluation report exists but cannot be read."""


@dataclass
class QueryView:
    """What the model makes of a query: the decoded text of its embedding and its logit-lens words."""

    decoded: str | None
    lens: list[str] = field(default_factory=list)


def collection_names(client: QdrantClient) -> list[str]:
    """Every collection in the store, sorted."""
    return sorted(c.name for c in client.get_collections().collections)


def store_location(settings: Settings) -> str:
    """Where the app reads vectors from: the server URL or the embedded store's folder."""
    return settings.qdrant_url or str(settings.qdrant_path.expanduser().resolve())


def is_generative(encoder: Encoder) -> bool:
    """True where LLM2Vec-Gen embeds the queries (they decode and have a logit lens), in every mode."""
    return encoder.generative is not None


def is_untrained(encoder: Encoder, settings: Settings) -> bool:
    """True if LLM2Vec-Gen runs a freshly initialised adapter (no shipped or configured one)."""
    gen = encoder.generative
    return gen is not None and settings.adapter is None and default_adapter_path(gen.backbone.name, settings.adapters_path) is None


def explain_query(encoder: Encoder, query: str, max_new_tokens: int = DECODE_TOKENS, states: torch.Tensor | None = None) -> QueryView:
    """Decoded text and lens words of the query's LLM2Vec-Gen embedding (None / [] for sentence encoders).
    ``states``: the query's special states from its search (``SearchResult.states``), so no second encoder pass."""
    gen = encoder.generative
    if gen is None:
        return QueryView(None, [])
    if states is None:
        states = gen.query_vectors([query]).states
    decoded, lens = gen.explain(states[:1], max_new_tokens=max_new_tokens)
    return QueryView(decoded[0], lens[0])


def product_report_path(settings: Settings) -> Path:
    """Where `gensearch eval product` writes its JSON report."""
    return settings.reports_dir / PRODUCT_REPORT_NAME


def report_path(settings: Settings) -> Path:
    """Where `gensearch eval all` writes its JSON report."""
    return settings.reports_dir / REPORT_NAME


def load_report(path: Path, command: str = EVAL_COMMAND) -> dict | None:
    """The evaluation report at ``path`` (``report_path(settings)``), or None if it has not been produced yet;
    ReportError (naming ``command``, which makes it) if it is not valid."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path} is not readable JSON ({exc}); re-run `{command}`") from exc
    if not isinstance(report, dict) or not isinstance(report.get("systems"), dict):
        raise ReportError(f"{path} has no 'systems' table; re-run `{command}`")
    return report


def user_names(users_file) -> list[str]:
    """The users of the users file, sorted (the app's local "view as" picker)."""
    from indexer.permissions import load_users

    return sorted(load_users(users_file))
