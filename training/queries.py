"""Training queries: pinned data packages -> one deduplicated, shuffled, split JSONL with provenance.

Sources (training only; ``shared/SOURCES.md``), with the ``source`` label each row carries:

    chatterbot/<file>       chatterbot-corpus==1.3.3, english/*.yml: first item of each conversation
    evals/<task>            evals==3.0.1.post1, registry/data/<task>/*.jsonl: chat ``input`` (system
                            turns + last user turn), at most ``cap_per_task`` per task (seeded sample)
    pyrit/many_shot         pyrit==1.1.0 jailbreak/many_shot_examples.json, field ``user`` (harmful)
    pyrit/objective/<file>  pyrit==1.1.0 scorer_evals/objective/*.csv, column ``objective`` (harmful)
    pyrit/airt/<file>       pyrit==1.1.0 seed_datasets/local/airt/*.prompt, ``seeds[].value``

AdvBench (``adv_bench.prompt``) is evaluation data: it is never read as a source, and any query equal to
an AdvBench goal (after normalising case and whitespace) is dropped as well.

Output ``<run_dir>/queries.jsonl``: rows ``{"id", "query", "source", "split"}`` in a seeded shuffled
order. ``id`` is a hash of the normalised query (stable across re-runs; generation resumes by id);
``split`` is ``"heldout"`` for a seeded hash-based fraction (default 5%), else ``"train"``, so adding a
source never moves an existing query between splits. ``queries.stats.json`` holds counts by source and
skipped rows by reason (non-text, empty, too-long, advbench, duplicate, over-cap).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from encoder.settings import Settings

from . import datapkg
from .jsonl import write_jsonl

log = logging.getLogger(__name__)

HARMFUL_GROUP = "pyrit"
SOURCE_GROUPS = ("chatterbot", "evals", HARMFUL_GROUP)  # source_group() of every training query


@dataclass(frozen=True)
class Candidate:
    """A raw value read from a source, before cleaning (may be non-text)."""

    source: str
    value: Any


# --------------------------------------------------------------------------- parsers (pure)


def parse_chatterbot(text: str) -> list[Any]:
    """First item (the user's line) of every conversation in a chatterbot-corpus YAML file."""
    data = yaml.safe_load(text) or {}
    return [conv[0] if isinstance(conv, list) and conv else conv for conv in data.get("conversations") or []]


def parse_chatterbot_pairs(text: str) -> list[tuple[str, str]]:
    """(question, human answer): the first two items of every conversation whose first two items are text.

    The answers are never training data; ``evaluation.fusion`` uses them as passages of a development set."""
    data = yaml.safe_load(text) or {}
    convs = [c for c in data.get("conversations") or [] if isinstance(c, list) and len(c) >= 2]
    return [(c[0].strip(), c[1].strip()) for c in convs if isinstance(c[0], str) and isinstance(c[1], str) and c[0].strip() and c[1].strip()]


def chat_to_query(chat: Any) -> Any:
    """An evals ``input`` as one query: a string as is; a chat as its system turns + last user turn.

    Anything else (or a chat with no user turn) is returned unchanged / as None and later counted as non-text.
    """
    if isinstance(chat, str) or not isinstance(chat, list):
        return chat
    turns = [m for m in chat if isinstance(m, dict) and isinstance(m.get("content"), str)]
    users = [m["content"] for m in turns if m.get("role") == "user"]
    if not users:
        return None
    system = [m["content"] for m in turns if m.get("role") == "system"]
    return "\n\n".join([*system, users[-1]])


def parse_evals_jsonl(text: str) -> list[Any]:
    """The ``input`` of every line of an evals samples file, as a query (None for unparseable lines)."""
    values = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            values.append(None)
            continue
        values.append(chat_to_query(row.get("input")) if isinstance(row, dict) else None)
    return values


def parse_many_shot(text: str) -> list[Any]:
    """Field ``user`` of PyRIT's many_shot_examples.json (HarmBench-style requests)."""
    return [row.get("user") if isinstance(row, dict) else None for row in json.loads(text)]


def parse_objective_csv(text: str) -> list[Any]:
    """Column ``objective`` of a PyRIT scorer-eval CSV (leading ``#`` comment lines skipped)."""
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    return [row.get("objective") for row in csv.DictReader(io.StringIO(body))]


def parse_seed_prompt(text: str) -> list[Any]:
    """``seeds[].value`` of a PyRIT ``.prompt`` (YAML seed dataset) file."""
    data = yaml.safe_load(text) or {}
    return [seed.get("value") if isinstance(seed, dict) else seed for seed in data.get("seeds") or []]


# --------------------------------------------------------------------------- cleaning and assembly (pure)


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive key used for deduplication and the AdvBench filter."""
    return " ".join(text.casefold().split())


def query_id(text: str) -> str:
    """Stable 16-hex id of a query (hash of its normalised form)."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:16]


def clean_query(value: Any, max_chars: int) -> tuple[str | None, str | None]:
    """(stripped text, None) for a usable query, else (None, reason): non-text, empty or too-long."""
    if not isinstance(value, str):
        return None, "non-text"
    text = value.strip()
    if not text:
        return None, "empty"
    if len(text) > max_chars:
        return None, "too-long"
    return text, None


def source_group(source: str) -> str:
    """``"evals/foo"`` -> ``"evals"``."""
    return source.split("/", 1)[0]


def assign_split(qid: str, seed: int, heldout_fraction: float) -> str:
    """"heldout" for a seeded, hash-based ``heldout_fraction`` of ids, else "train"."""
    bucket = int(hashlib.sha256(f"{seed}:{qid}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "heldout" if bucket < heldout_fraction else "train"


def build_queries(
    candidates: Iterable[Candidate],
    *,
    exclude: Iterable[str] = (),
    max_chars: int = 2000,
    cap_per_task: int = 30,
    capped_groups: tuple[str, ...] = ("evals",),
    seed: int = 0,
    heldout_fraction: float = 0.05,
) -> tuple[list[dict[str, str]], Counter]:
    """Clean, exclude, deduplicate (first occurrence wins), cap, shuffle and split the candidates.

    Returns (rows ``{"id", "query", "source", "split"}``, skipped-row counts by reason).
    """
    excluded = {normalise(e) for e in exclude}
    skipped: Counter = Counter()
    seen: set[str] = set()
    by_source: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for cand in candidates:
        text, reason = clean_query(cand.value, max_chars)
        if text is None:
            skipped[reason] += 1
            continue
        key = normalise(text)
        if key in excluded:
            skipped["advbench"] += 1
        elif key in seen:
            skipped["duplicate"] += 1
        else:
            seen.add(key)
            by_source[cand.source].append((query_id(text), text))

    rows = []
    for source in sorted(by_source):
        items = by_source[source]
        if source_group(source) in capped_groups and len(items) > cap_per_task:
            skipped["over-cap"] += len(items) - cap_per_task
            items = random.Random(f"{seed}:{source}").sample(items, cap_per_task)
        rows += [{"id": qid, "query": text, "source": source} for qid, text in items]
    random.Random(seed).shuffle(rows)
    for row in rows:
        row["split"] = assign_split(row["id"], seed, heldout_fraction)
    return rows, skipped


def select_budget(
    rows: list[dict[str, Any]], limit: int | None, keep_groups: tuple[str, ...] = (HARMFUL_GROUP,)
) -> list[dict[str, Any]]:
    """At most ``limit`` rows: every row of the ``keep_groups`` source groups, the rest filled from the
    other groups in proportion to their sizes (each group's first rows: a random sample of a shuffled file).

    The result interleaves the groups evenly (row j of a group's n picks sits at position ~j/n), so any
    prefix, e.g. what a stopped generation run answered, has the mix of the whole selection."""
    if limit is None or limit >= len(rows):
        return list(rows)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[source_group(row["source"])].append(i)
    kept = sum(len(v) for g, v in groups.items() if g in keep_groups)
    if kept >= limit:
        raise ValueError(f"limit {limit} is not larger than the {kept} queries of {', '.join(keep_groups)}, which are always kept")
    room, total = limit - kept, len(rows) - kept
    picks = {g: v if g in keep_groups else v[: round(room * len(v) / total)] for g, v in groups.items()}
    order = sorted((j / len(v), i) for v in picks.values() for j, i in enumerate(v))
    return [rows[i] for _, i in order]


def summarise(rows: list[dict[str, Any]], skipped: Counter) -> dict[str, Any]:
    """Counts by source group, split and source, plus skipped rows by reason."""
    return {
        "total": len(rows),
        "by_group": dict(sorted(Counter(source_group(r["source"]) for r in rows).items())),
        "by_split": dict(sorted(Counter(r["split"] for r in rows).items())),
        "skipped": dict(sorted(skipped.items())),
        "by_source": dict(sorted(Counter(r["source"] for r in rows).items())),
    }


# --------------------------------------------------------------------------- reading the packages (I/O)


def _stem(member: str) -> str:
    return PurePosixPath(member).stem


def load_candidates(settings: Settings) -> Iterator[Candidate]:
    """Every raw training query from the pinned packages: harmful PyRIT prompts first, then chatterbot, evals."""
    for _, text in datapkg.read_members(datapkg.PYRIT_MANY_SHOT, settings):
        yield from (Candidate("pyrit/many_shot", v) for v in parse_many_shot(text))
    for member, text in datapkg.read_members(datapkg.PYRIT_OBJECTIVES, settings):
        yield from (Candidate(f"pyrit/objective/{_stem(member)}", v) for v in parse_objective_csv(text))
    for member, text in datapkg.read_members(datapkg.PYRIT_AIRT, settings):
        yield from (Candidate(f"pyrit/airt/{_stem(member)}", v) for v in parse_seed_prompt(text))
    for member, text in datapkg.read_members(datapkg.CHATTERBOT, settings):
        yield from (Candidate(f"chatterbot/{_stem(member)}", v) for v in parse_chatterbot(text))
    for member, text in datapkg.read_members(datapkg.EVALS, settings):
        task = PurePosixPath(member).parent.name
        yield from (Candidate(f"evals/{task}", v) for v in parse_evals_jsonl(text))


def advbench_goals(settings: Settings) -> list[str]:
    """The 520 AdvBench goals (evaluation only; used here to keep them out of training)."""
    (_, text), *_ = datapkg.read_members(datapkg.PYRIT_ADVBENCH, settings)
    return [v for v in parse_seed_prompt(text) if isinstance(v, str)]


def prepare_queries(
    out_path: Path | None = None,
    *,
    settings: Settings,
    max_chars: int = 2000,
    cap_per_task: int = 30,
    seed: int = 0,
    heldout_fraction: float = 0.05,
) -> dict[str, Any]:
    """Read all sources, build the query file (``<run_dir>/queries.jsonl``) and its stats; returns the stats."""
    out_path = out_path or settings.run_dir / "queries.jsonl"
    rows, skipped = build_queries(
        load_candidates(settings),
        exclude=advbench_goals(settings),
        max_chars=max_chars,
        cap_per_task=cap_per_task,
        seed=seed,
        heldout_fraction=heldout_fraction,
    )
    write_jsonl(out_path, rows)
    stats = summarise(rows, skipped)
    stats["params"] = {"max_chars": max_chars, "cap_per_task": cap_per_task, "seed": seed, "heldout_fraction": heldout_fraction}
    stats_path = out_path.with_suffix(".stats.json")
    stats_path.write_text(json.dumps(stats, indent=2))
    log.info("wrote %d queries to %s (%s); skipped %s", len(rows), out_path, stats["by_group"], stats["skipped"])
    return stats
