"""Decodability: does the query embedding still "say" the backbone's answer?

For held-out training queries (``<run_dir>/responses.jsonl`` rows with ``split == "heldout"``, never
trained on) the frozen LM decodes the query's soft prompts into text; the teacher embeds that text and the
backbone's real response; we report their mean cosine. ``query_teacher_cosine`` (teacher of the query
itself vs the response) is the reference a system gets without generating anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from encoder import Encoder, LLM2VecGenEncoder
from encoder.generation import strip_eos
from training.jsonl import read_jsonl

from .datasets import sample
from .metrics import mean


def response_text(row: dict[str, Any]) -> str:
    """The response of a responses.jsonl row without its trailing EOS token string."""
    return strip_eos(row["response"], row.get("eos")).strip()


def heldout_rows(path: Path, limit: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Held-out rows of a responses file (a seeded sample of ``limit``); [] if the file does not exist."""
    if not Path(path).is_file():
        return []
    rows = [r for r in read_jsonl(Path(path)) if r.get("split") == "heldout" and isinstance(r.get("response"), str)]
    return sample(rows, limit, seed)


def decodability(
    encoder: LLM2VecGenEncoder, teacher: Encoder, rows: list[dict[str, Any]], max_new_tokens: int = 64
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(metrics, examples): mean teacher cosine of decoded text vs real response, and the reference cosine."""
    if not rows:
        raise ValueError("no held-out rows to decode")
    queries = [r["query"] for r in rows]
    responses = [response_text(r) for r in rows]
    decoded = encoder.decode(queries, task="query", max_new_tokens=max_new_tokens)
    d, t, q = (teacher.encode(x, task="document", show_progress_bar=False) for x in (decoded, responses, queries))
    cosine, reference = np.sum(d * t, axis=1), np.sum(q * t, axis=1)
    metrics = {
        "teacher_cosine": mean(cosine.tolist()),
        "query_teacher_cosine": mean(reference.tolist()),
        "n": len(rows),
        "max_new_tokens": max_new_tokens,
    }
    examples = [{"query": qq, "decoded": dd, "response": rr} for qq, dd, rr in zip(queries, decoded, responses)]
    return metrics, examples
