"""Response generation: the frozen backbone (or a stronger generator) answers every training query.

Greedy decoding with the model's chat template by a generation engine (``encoder.generation``:
llama.cpp on CPU, transformers on CUDA), one batch of queries at a time; within each chunk of
``chunk_batches`` batches the queries are sorted by prompt length, so a partial file is still a
random sample of the queries. Each response ends with the generator's real
EOS token string when the model stopped by itself (``finished: true``), so the reconstruction loss
learns to stop; ``eos`` holds that suffix ("" when cut at ``max_new_tokens``).

Output ``<run_dir>/responses.jsonl`` (appended and flushed per batch; a re-run skips ids already
present, so a killed run resumes where it stopped), one row per query::

    {"id", "query", "source", "split", "response", "eos", "finished", "n_tokens",
     "generator", "system", "max_new_tokens", "engine"}

Rows of one file share generator, system prompt and ``max_new_tokens`` (checked on resume); ``engine``
records which runtime wrote each row.

Responses cost CPU-hours, so they are committed: ``pack_responses`` writes a run's file, sorted by id and
gzip-compressed, to ``training/responses/<generator>.jsonl.gz``; a fresh machine's ``generate`` starts
from it (``seed_from_shipped``) and ``targets`` / ``fit`` read it when the run folder has none.

Cost on this 2-core CPU: see ``gensearch train generate --help`` and ``benchmarks/generation_engines.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from encoder.generation import DEFAULT_SYSTEM, Engine, chat_prompt_ids, resolve_system

from .jsonl import append_jsonl, drop_torn_tail, read_jsonl, write_jsonl, write_jsonl_gz

log = logging.getLogger(__name__)

SHIPPED_RESPONSES = Path(__file__).parent / "responses"  # committed responses, one file per generator


def shipped_responses(generator: str) -> Path:
    """Where the committed responses of ``generator`` live (may not exist)."""
    return SHIPPED_RESPONSES / f"{generator}.jsonl.gz"


def pack_responses(source: Path, dest: Path) -> int:
    """Write ``source``'s rows sorted by id, gzip-compressed, to ``dest`` (the committed copy); returns the count."""
    return write_jsonl_gz(dest, sorted(read_jsonl(source), key=lambda r: r["id"]))


def seed_from_shipped(out_path: Path, generator: str) -> int:
    """Start a missing response file from the committed responses of ``generator``; returns the rows copied."""
    shipped = shipped_responses(generator)
    if out_path.exists() or not shipped.is_file():
        return 0
    count = write_jsonl(out_path, read_jsonl(shipped))
    log.info("started %s from the %d committed responses in %s", out_path, count, shipped)
    return count


def default_max_new_tokens(device: torch.device) -> int:
    """128 new tokens on CPU (budget), 500 on GPU (the paper's setting)."""
    return 500 if device.type == "cuda" else 128


def plan_batches(rows: list[dict[str, Any]], lengths: list[int], batch_size: int, chunk_batches: int = 16) -> Iterator[list[dict]]:
    """Batches in file order by chunks of ``batch_size * chunk_batches`` rows, length-sorted within a chunk."""
    chunk = batch_size * chunk_batches
    for start in range(0, len(rows), chunk):
        order = sorted(range(start, min(start + chunk, len(rows))), key=lambda i: lengths[i])
        for b in range(0, len(order), batch_size):
            yield [rows[i] for i in order[b : b + batch_size]]


def _check_compatible(out_path: Path, meta: dict[str, Any]) -> None:
    """Refuse to mix responses from a different generator / system prompt / length into one file."""
    first = next(iter(read_jsonl(out_path)), None) if out_path.is_file() else None
    if first is None:
        return
    theirs = {k: first.get(k) for k in meta}
    if theirs != meta:
        raise ValueError(
            f"{out_path} holds responses made with {theirs}, not {meta}; resume with the same settings "
            "or write to another file (--out)"
        )


def generate_responses(
    rows: list[dict[str, Any]],
    out_path: Path,
    engine: Engine,
    *,
    system: str | None = DEFAULT_SYSTEM,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    progress: bool = True,
    skip_sources: Callable[[list[dict[str, Any]]], set[str]] | None = None,
) -> dict[str, Any]:
    """Answer every row not yet in ``out_path`` and append the results batch by batch; returns run stats.

    ``skip_sources(rows answered so far)`` (e.g. ``dataset.short_answer_sources``), re-asked before every
    batch, names query sources whose remaining rows are skipped: they would be dropped from training."""
    label, system_text = resolve_system(system)
    meta = {"generator": engine.backbone.name, "system": label, "max_new_tokens": max_new_tokens}
    _check_compatible(out_path, meta)
    if drop_torn_tail(out_path):
        log.warning("%s ended with a partial line (killed writer); it was cut", out_path)
    answered = list(read_jsonl(out_path)) if out_path.is_file() else []
    done = {r["id"] for r in answered}
    todo = [r for r in rows if r["id"] not in done]
    log.info("%d queries, %d already answered, %d to go -> %s", len(rows), len(rows) - len(todo), len(todo), out_path)
    lengths = [len(p) for p in chat_prompt_ids(engine.backbone.tokenizer, [r["query"] for r in todo], system_text)]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    n_tokens, n_finished, n_answered, n_skipped, started = 0, 0, 0, 0, time.perf_counter()
    with open(out_path, "a", encoding="utf-8") as fh, tqdm(total=len(todo), unit="q", disable=not progress) as bar:
        for i, planned in enumerate(plan_batches(todo, lengths, batch_size)):
            skip = skip_sources(answered) if skip_sources else set()
            batch = [r for r in planned if r["source"] not in skip]
            n_skipped += len(planned) - len(batch)
            answers = engine.answer([r["query"] for r in batch], system=system_text, max_new_tokens=max_new_tokens)
            new_rows = [{**r, **vars(a), **meta, "engine": engine.name} for r, a in zip(batch, answers)]
            append_jsonl(fh, new_rows)
            answered += new_rows
            n_answered += len(batch)
            n_tokens += sum(a.n_tokens for a in answers)
            n_finished += sum(a.finished for a in answers)
            rate = n_tokens / (time.perf_counter() - started)
            bar.update(len(planned))
            bar.set_postfix(tok_s=f"{rate:.1f}")
            if i % 10 == 0:
                log.info("batch %d: %d/%d queries, %.1f generated tok/s", i, bar.n, len(todo), rate)
    elapsed = time.perf_counter() - started
    stats = {
        "answered": n_answered,
        "skipped": n_skipped,
        "finished": n_finished,
        "tokens": n_tokens,
        "seconds": round(elapsed, 1),
        "tokens_per_s": round(n_tokens / elapsed, 2) if elapsed > 0 else None,
        **meta,
        **engine.describe(),
    }
    log.info("generation done: %s", stats)
    return stats
