"""Response generation: the frozen backbone (or a stronger generator) answers every training query.

Greedy decoding with the model's chat template and KV cache (``model.generate``), batched with left
padding; within each chunk of ``chunk_batches`` batches the queries are sorted by prompt length, so a
partial file is still a random sample of the queries. Each response ends with the generator's real
EOS token string when the model stopped by itself (``finished: true``), so the reconstruction loss
learns to stop; ``eos`` holds that suffix ("" when cut at ``max_new_tokens``).

Output ``<run_dir>/responses.jsonl`` (appended and flushed per batch; a re-run skips ids already
present, so a killed run resumes where it stopped), one row per query::

    {"id", "query", "source", "split", "response", "eos", "finished", "n_tokens",
     "generator", "system", "max_new_tokens"}

Cost on this 2-core CPU (Qwen2.5-Coder-0.5B, fp32, 128 new tokens): see ``training/cli.py``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from encoder.backbone import Backbone

from .jsonl import append_jsonl, drop_torn_tail, read_jsonl

log = logging.getLogger(__name__)

SAFETY_SYSTEM_PROMPT = (
    "You are a helpful, honest and harmless assistant. If a request is harmful, unethical or illegal, "
    "refuse it briefly and do not provide the harmful content."
)
# "default": no system message of ours, i.e. the chat template's own default (Qwen: "You are Qwen, ...").
SYSTEM_PROMPTS: dict[str, str | None] = {"default": None, "safety": SAFETY_SYSTEM_PROMPT}
DEFAULT_SYSTEM = "safety"  # chosen from training/reports/refusals.json (see training/refusals.py)


def resolve_system(system: str | None) -> tuple[str, str | None]:
    """(label recorded with each row, system prompt text or None) for a preset name or a literal prompt."""
    if system is None or system in SYSTEM_PROMPTS:
        label = system or "default"
        return label, SYSTEM_PROMPTS[label]
    return "custom-" + hashlib.sha256(system.encode()).hexdigest()[:8], system


def default_max_new_tokens(device: torch.device) -> int:
    """128 new tokens on CPU (budget), 500 on GPU (the paper's setting)."""
    return 500 if device.type == "cuda" else 128


def chat_prompts(tokenizer, queries: list[str], system: str | None) -> list[str]:
    """Each query as a chat-template prompt ending with the assistant turn header."""
    prompts = []
    for query in queries:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": query}]
        prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return prompts


@dataclass(frozen=True)
class Answer:
    response: str  # the text, plus the EOS token string when finished
    eos: str
    finished: bool
    n_tokens: int  # generated tokens, EOS included


def split_answer(tokens: list[int], eos_ids: set[int], tokenizer) -> Answer:
    """Cut generated ids at the first EOS; decode the text and re-append the EOS token's own string."""
    stop = next((i for i, t in enumerate(tokens) if t in eos_ids), None)
    body = tokens if stop is None else tokens[:stop]
    text = tokenizer.decode(body, skip_special_tokens=True)
    if stop is None:
        return Answer(text, "", False, len(tokens))
    eos = tokenizer.decode([tokens[stop]], skip_special_tokens=False)
    return Answer(text + eos, eos, True, stop + 1)


@torch.inference_mode()
def answer_batch(backbone: Backbone, queries: list[str], *, system: str | None, max_new_tokens: int) -> list[Answer]:
    """Greedy answers for one batch (left padding, KV cache, batch-safe EOS handling by ``generate``)."""
    tok = backbone.tokenizer
    enc = tok(
        chat_prompts(tok, queries, system), return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    ).to(backbone.model.device)
    out = backbone.model.generate(
        **enc,
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=backbone.eos_token_ids,
        pad_token_id=backbone.pad_token_id,
    )
    new = out[:, enc["input_ids"].shape[1] :].tolist()
    eos_ids = set(backbone.eos_token_ids)
    return [split_answer(tokens, eos_ids, tok) for tokens in new]


def plan_batches(rows: list[dict[str, Any]], lengths: list[int], batch_size: int, chunk_batches: int = 16) -> Iterator[list[dict]]:
    """Batches in file order by chunks of ``batch_size * chunk_batches`` rows, length-sorted within a chunk."""
    chunk = batch_size * chunk_batches
    for start in range(0, len(rows), chunk):
        order = sorted(range(start, min(start + chunk, len(rows))), key=lambda i: lengths[i])
        for b in range(0, len(order), batch_size):
            yield [rows[i] for i in order[b : b + batch_size]]


def done_ids(out_path: Path) -> set[str]:
    """Ids already answered in an output file (empty if it does not exist)."""
    return {row["id"] for row in read_jsonl(out_path)} if out_path.is_file() else set()


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
    backbone: Backbone,
    *,
    system: str | None = DEFAULT_SYSTEM,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, Any]:
    """Answer every row not yet in ``out_path`` and append the results batch by batch; returns run stats."""
    label, system_text = resolve_system(system)
    meta = {"generator": backbone.name, "system": label, "max_new_tokens": max_new_tokens}
    _check_compatible(out_path, meta)
    if drop_torn_tail(out_path):
        log.warning("%s ended with a partial line (killed writer); it was cut", out_path)
    done = done_ids(out_path)
    todo = [r for r in rows if r["id"] not in done]
    log.info("%d queries, %d already answered, %d to go -> %s", len(rows), len(rows) - len(todo), len(todo), out_path)
    lengths = [len(p) for p in chat_prompts(backbone.tokenizer, [r["query"] for r in todo], system_text)]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    n_tokens, n_finished, started = 0, 0, time.perf_counter()
    with open(out_path, "a", encoding="utf-8") as fh, tqdm(total=len(todo), unit="q", disable=not progress) as bar:
        for i, batch in enumerate(plan_batches(todo, lengths, batch_size)):
            answers = answer_batch(backbone, [r["query"] for r in batch], system=system_text, max_new_tokens=max_new_tokens)
            append_jsonl(fh, [{**r, **vars(a), **meta} for r, a in zip(batch, answers)])
            n_tokens += sum(a.n_tokens for a in answers)
            n_finished += sum(a.finished for a in answers)
            rate = n_tokens / (time.perf_counter() - started)
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{rate:.1f}")
            if i % 10 == 0:
                log.info("batch %d: %d/%d queries, %.1f generated tok/s", i, bar.n, len(todo), rate)
    elapsed = time.perf_counter() - started
    stats = {
        "answered": len(todo),
        "finished": n_finished,
        "tokens": n_tokens,
        "seconds": round(elapsed, 1),
        "tokens_per_s": round(n_tokens / elapsed, 2) if elapsed > 0 else None,
        **meta,
    }
    log.info("generation done: %s", stats)
    return stats
