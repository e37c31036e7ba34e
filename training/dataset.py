"""Training examples: response rows (``responses.jsonl``) joined with their cached teacher targets."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Literal

from .fit import Example
from .jsonl import read_jsonl
from .queries import HARMFUL_GROUP, source_group
from .refusals import is_refusal
from .targets import TargetStore, load_targets, response_text

MIN_RESPONSE_CHARS = 12  # one-word answers ("E", "La") say little about what the model would answer
MAX_COPIES = 24  # identical responses kept per text: one stock refusal was 16% of the examples
MIN_PASSAGE_CHARS = 80  # a response shorter than this is no passage to train the document instruction on

HarmfulCap = int | Literal["shared"] | None
"""Copies of one response kept among the harmful prompts' rows: ``"shared"`` counts them with every other row
against ``max_copies``; an int caps them on a counter of their own; ``None`` keeps them all."""


def is_useful(row: dict[str, Any], min_chars: int = MIN_RESPONSE_CHARS) -> bool:
    """Whether a response row says more than a word or two (see ``load_examples``)."""
    return len(response_text(row).strip()) >= min_chars


def short_answer_sources(
    rows: list[dict[str, Any]], min_seen: int = 3, min_useful: float = 0.5, min_chars: int = MIN_RESPONSE_CHARS
) -> set[str]:
    """Query sources (e.g. one OpenAI-evals task) whose answered rows are mostly too short to train on.

    A source is listed once at least ``min_seen`` of its queries have responses and fewer than
    ``min_useful`` of those are useful. Many evals tasks ask for one letter or word; their remaining queries
    would cost generation time and then be dropped by ``load_examples``."""
    useful: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        useful[row["source"]].append(is_useful(row, min_chars))
    return {src for src, flags in useful.items() if len(flags) >= min_seen and sum(flags) < min_useful * len(flags)}


def is_harmful(row: dict[str, Any]) -> bool:
    """Whether the row's query is a harmful prompt (``HARMFUL_GROUP``)."""
    return source_group(row["source"]) == HARMFUL_GROUP


def complied_with_harm(row: dict[str, Any]) -> bool:
    """Whether the row answers a harmful prompt without refusing (``is_refusal``)."""
    return is_harmful(row) and not is_refusal(response_text(row))


def with_harmful_from(rows: list[dict[str, Any]], safer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with every harmful prompt (``HARMFUL_GROUP``) answered as in ``safer`` where ``safer`` has it:
    the same query id's row replaces the original, and harmful rows only ``safer`` has are added."""
    harmful = {r["id"]: r for r in safer if is_harmful(r)}
    merged = [harmful.pop(r["id"], r) if is_harmful(r) else r for r in rows]
    return merged + list(harmful.values())


def select_rows(
    rows: list[dict[str, Any]], split: str, min_chars: int = MIN_RESPONSE_CHARS, max_copies: int | None = MAX_COPIES,
    harmful_cap: HarmfulCap = "shared",
) -> list[dict[str, Any]]:
    """Rows of one split, sorted by id, without near-empty responses and with at most ``max_copies`` rows
    per identical response text (the first ones by id; ``None`` keeps all). Unless ``harmful_cap`` is
    ``"shared"``, the harmful prompts' rows (``HARMFUL_GROUP``) do not count towards that cap and have their
    own, ``harmful_cap`` copies per text (``None``: no cap)."""
    kept, copies, harmful_copies = [], Counter(), Counter()
    for row in sorted((r for r in rows if r["split"] == split), key=lambda r: r["id"]):
        if not is_useful(row, min_chars):
            continue
        own_cap = harmful_cap != "shared" and is_harmful(row)
        counter, cap = (harmful_copies, harmful_cap) if own_cap else (copies, max_copies)
        text = response_text(row).strip()
        if cap is not None and counter[text] >= cap:
            continue
        counter[text] += 1
        kept.append(row)
    return kept


def load_examples(
    responses: Path,
    store: TargetStore,
    split: str,
    eos_token: str,
    min_chars: int = MIN_RESPONSE_CHARS,
    max_copies: int | None = MAX_COPIES,
    documents: bool = False,
    harmful_refusals_only: bool = False,
    harmful_responses: Path | None = None,
    harmful_cap: HarmfulCap = "shared",
) -> list[Example]:
    """Examples of one split (``train`` / ``heldout``): query, response, teacher vector; with ``documents``,
    also one document-instruction example per distinct response of at least ``MIN_PASSAGE_CHARS``.

    Document examples: the response *is* a passage, and its own teacher vector is where the document
    instruction ("Summarize the following passage: ") should put it. Indexing encodes documents with that
    instruction; an adapter trained on queries alone has never read it. They cost no generation.

    Responses shorter than ``min_chars`` (without EOS) are left out: many capped OpenAI-evals prompts ask
    for a single letter or word, which carries no retrieval signal. At most ``max_copies`` examples share
    one response text: with a safety system prompt the backbone answers many queries (harmful ones, but
    also chit-chat such as "I PLAY SOCCER") with the same stock refusal, and dozens of copies of one target
    pull every embedding towards it (the first adapter decoded ordinary Python questions to refusals).
    ``harmful_cap`` gives the harmful prompts a cap of their own (``None``: keep all their copies): a harmful
    question *should* land on the stock refusal, and the 0.5B's 468 refusals of the 754 harmful training
    prompts share 33 texts, so the shared cap kept about a hundred of them; ``max_copies`` then only limits
    the other queries' copies.

    A response the generator finished by itself ends with ``eos_token`` (the *trained* backbone's EOS,
    which may differ from the generator's), so L_recon teaches the soft prompts where to stop.
    Rows are sorted by id so the example list (and hence a resumed run's batches) does not depend on
    the order in which responses were generated.

    ``harmful_refusals_only`` drops the query examples of harmful prompts the generator complied with
    (``complied_with_harm``): a weak generator (the 0.5B refuses about half of them even with the safety
    system prompt) would otherwise teach the embedding that a harmful question lands next to harmful
    instructions, the opposite of what the method promises. Its refusals stay, and so do the complied
    responses as document examples (a harmful passage should still be embedded as what it says).

    ``harmful_responses`` (e.g. a safer generator's answers to the harmful prompts): the query examples of
    harmful prompts take their response from that file where it has one (``with_harmful_from``); the
    document examples still come from ``responses`` alone, so only the harmful queries' targets change.
    """
    own = list(read_jsonl(responses))
    merged = with_harmful_from(own, list(read_jsonl(harmful_responses))) if harmful_responses else own
    rows = select_rows(merged, split, min_chars, max_copies, harmful_cap)
    examples = _examples(rows, store, eos_token)
    passages: dict[str, Example] = {}
    if documents:
        passage_rows = select_rows(own, split, min_chars, max_copies) if harmful_responses else rows
        passage_examples = _examples(passage_rows, store, eos_token) if harmful_responses else examples
        for row, example in zip(passage_rows, passage_examples):
            passage = response_text(row).strip()
            if len(passage) >= MIN_PASSAGE_CHARS and passage not in passages:
                passages[passage] = Example(passage, example.response, example.target, example.source, task="document")
    if harmful_refusals_only:
        examples = [ex for row, ex in zip(rows, examples) if not complied_with_harm(row)]
    return examples + list(passages.values())


def _examples(rows: list[dict[str, Any]], store: TargetStore, eos_token: str) -> list[Example]:
    """One query example per row: its query, its response (+ EOS if the generator finished), its teacher vector."""
    if not rows:
        return []
    vectors = load_targets(rows, store)
    return [
        Example(row["query"], response_text(row) + (eos_token if row["finished"] else ""), vector, source_group(row["source"]))
        for row, vector in zip(rows, vectors)
    ]


def summarize_examples(examples: list[Example]) -> dict[str, dict[str, int]]:
    """Examples and refusing responses (``is_refusal``) per source group: what the adapter learnt from."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"examples": 0, "refusals": 0})
    for example in examples:
        key = example.source if example.task == "query" else f"{example.source} ({example.task})"
        counts[key]["examples"] += 1
        counts[key]["refusals"] += is_refusal(example.response)
    return dict(sorted(counts.items()))
