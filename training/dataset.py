"""Training examples: response rows (``responses.jsonl``) joined with their cached teacher targets."""

from __future__ import annotations

from pathlib import Path

from .fit import Example
from .jsonl import read_jsonl
from .targets import TargetStore, load_targets, response_text


MIN_RESPONSE_CHARS = 12  # one-word answers ("E", "La") say little about what the model would answer


def load_examples(responses: Path, store: TargetStore, split: str, eos_token: str, min_chars: int = MIN_RESPONSE_CHARS) -> list[Example]:
    """Examples of one split (``train`` / ``heldout``): query, response, teacher vector.

    Responses shorter than ``min_chars`` (without EOS) are left out: many capped OpenAI-evals prompts ask
    for a single letter or word, which carries no retrieval signal.

    A response the generator finished by itself ends with ``eos_token`` (the *trained* backbone's EOS,
    which may differ from the generator's), so L_recon teaches the soft prompts where to stop.
    Rows are sorted by id so the example list (and hence a resumed run's batches) does not depend on
    the order in which responses were generated.
    """
    rows = sorted((r for r in read_jsonl(responses) if r["split"] == split and len(response_text(r).strip()) >= min_chars), key=lambda r: r["id"])
    if not rows:
        return []
    vectors = load_targets(rows, store)
    return [
        Example(row["query"], response_text(row) + (eos_token if row["finished"] else ""), vector)
        for row, vector in zip(rows, vectors)
    ]
