"""Generation engines: greedy chat answers from a frozen backbone, one interface, several runtimes.

Every engine gets the same prompt token ids (``prompts.chat_prompt_ids``) and returns generated token
ids, which ``answers.split_answer`` turns into ``Answer`` rows the same way for all of them:

- ``transformers``: ``model.generate`` on the loaded backbone (fp32 / bf16, CPU or CUDA), batched with
  left padding and a KV cache. The reference; used on CUDA.
- ``llama.cpp`` (``xllamacpp``, prebuilt CPU wheels): the pinned GGUF itself (the quantised weights the
  dequantised fp32 folder was made from), continuous batching over ``parallel`` slots, each slot
  reusing the KV of the prompt prefix it shares with its last request (the system prompt).
- ``ctranslate2``: int8 weights converted once from the dequantised folder (cached beside it), static
  batches, the shared system-prompt prefix run once and cached (``static_prompt``).

``benchmarks/generation_engines.py`` measures them side by side (speed and agreement with transformers).

``load_engine`` picks one by name; ``auto`` is CTranslate2 on CPU for a registry backbone (the fastest
here: 4.7x transformers' wall time on 200 training prompts, see ``reports/generation_engines.json``),
transformers on CUDA and for any other model.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import torch

from ..backbone import Backbone
from ..settings import Settings
from .answers import Answer, split_answer
from .prompts import chat_prompt_ids

log = logging.getLogger(__name__)

EngineName = Literal["auto", "transformers", "llama.cpp", "ctranslate2"]
ENGINES: tuple[str, ...] = ("auto", "transformers", "llama.cpp", "ctranslate2")


class Engine:
    """Greedy generation from prompt token ids; subclasses implement ``generate_ids``."""

    name: str = "engine"

    def __init__(self, backbone: Backbone):
        self.backbone = backbone
        self.eos_ids = set(backbone.eos_token_ids)

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Generated ids per prompt (EOS included when the model stopped by itself)."""
        raise NotImplementedError

    def stream_ids(self, prompt: list[int], max_new_tokens: int) -> Iterator[int]:
        """Generated ids of one prompt as they come (engines that cannot stream yield them all at the end)."""
        yield from self.generate_ids([prompt], max_new_tokens)[0]

    def stream_answer(self, query: str, *, system: str | None, max_new_tokens: int) -> Iterator[str]:
        """The greedy chat answer to ``query`` as text pieces, as fast as the engine writes it; joined, they are
        ``answer([query], ...)[0].text`` (the end-of-sequence token is not written)."""
        tokenizer = self.backbone.tokenizer
        ids: list[int] = []
        shown = ""
        for token in self.stream_ids(chat_prompt_ids(tokenizer, [query], system)[0], max_new_tokens):
            if token in self.eos_ids:
                break
            ids.append(token)
            text = tokenizer.decode(ids, skip_special_tokens=True)
            if len(text) > len(shown) and not text.endswith("\ufffd"):  # a multi-byte character waits for its last token
                yield text[len(shown) :]
                shown = text
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if len(text) > len(shown):  # cut inside a character at max_new_tokens: what answer() has too
            yield text[len(shown) :]

    def answer(self, queries: list[str], *, system: str | None, max_new_tokens: int) -> list[Answer]:
        """Greedy chat answers to ``queries`` (one user turn each, after the optional system prompt)."""
        if not queries:
            return []
        tokenizer = self.backbone.tokenizer
        generated = self.generate_ids(chat_prompt_ids(tokenizer, queries, system), max_new_tokens)
        return [split_answer(ids, self.eos_ids, tokenizer) for ids in generated]

    def describe(self) -> dict:
        return {"engine": self.name}


class TransformersEngine(Engine):
    """``model.generate`` on the loaded backbone, ``batch_size`` prompts at a time (left padded, KV cache)."""

    name = "transformers"

    def __init__(self, backbone: Backbone, batch_size: int = 16):
        super().__init__(backbone)
        self.batch_size = batch_size

    @torch.inference_mode()
    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        model, pad = self.backbone.model, self.backbone.pad_token_id
        out: list[list[int]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            width = max(len(p) for p in batch)
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch], device=model.device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=model.device)
            generated = model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=self.backbone.eos_token_ids,
                pad_token_id=pad,
            )
            out += [self._trim(row) for row in generated[:, width:].tolist()]
        return out

    def stream_ids(self, prompt: list[int], max_new_tokens: int) -> Iterator[int]:
        """``model.generate`` on one prompt in a worker thread, its ids handed over as each step finishes (so the
        stream is exactly what ``generate_ids`` returns)."""
        from transformers.generation.stopping_criteria import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        ids: queue.Queue[int | BaseException | None] = queue.Queue()
        abandoned = threading.Event()  # the reader stopped reading: generation stops at the next token

        class Abandoned(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
                return torch.full((input_ids.shape[0],), abandoned.is_set(), dtype=torch.bool, device=input_ids.device)

        class Ids(BaseStreamer):
            first = True

            def put(self, value: torch.Tensor) -> None:
                if self.first:  # generate puts the prompt first
                    self.first = False
                    return
                for token in value.reshape(-1).tolist():
                    ids.put(int(token))

            def end(self) -> None:
                ids.put(None)

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.backbone.model.generate(
                        input_ids=torch.tensor([prompt], device=self.backbone.model.device), attention_mask=torch.ones(1, len(prompt), dtype=torch.long, device=self.backbone.model.device),
                        do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=self.backbone.eos_token_ids, pad_token_id=self.backbone.pad_token_id, streamer=Ids(),
                        stopping_criteria=StoppingCriteriaList([Abandoned()]),
                    )
            except BaseException as exc:  # noqa: BLE001 - handed to the reader, raised there
                ids.put(exc)
            finally:
                ids.put(None)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            while (token := ids.get()) is not None:
                if isinstance(token, BaseException):
                    raise RuntimeError(f"generation failed: {token!r}") from token
                yield token
        finally:
            abandoned.set()
            worker.join()

    def _trim(self, row: list[int]) -> list[int]:
        """Drop the padding ``generate`` appends to rows that finished before the longest one."""
        stop = next((i for i, t in enumerate(row) if t in self.eos_ids), None)
        return row if stop is None else row[: stop + 1]

    def describe(self) -> dict:
        return {"engine": self.name, "dtype": str(self.backbone.model.dtype).removeprefix("torch."), "batch_size": self.batch_size}


class LlamaCppEngine(Engine):
    """llama.cpp (``xllamacpp``) on the backbone's GGUF: ``parallel`` slots decoded together, refilled as
    answers finish (continuous batching), so a long answer never holds a whole batch back.

    Requests are submitted from a thread pool; the calls release the GIL while llama.cpp works.
    """

    name = "llama.cpp"

    def __init__(self, backbone: Backbone, gguf: os.PathLike | str, parallel: int = 16, context_per_slot: int = 1024, threads: int | None = None):
        super().__init__(backbone)
        import xllamacpp

        self.gguf, self.parallel, self.context_per_slot = str(gguf), parallel, context_per_slot
        self.threads = threads or torch.get_num_threads()
        params = xllamacpp.CommonParams()
        params.model.path = self.gguf
        params.n_parallel = parallel
        params.n_ctx = parallel * context_per_slot
        params.n_batch = 512
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.warmup = False
        params.verbosity = 0  # llama.cpp logs every slot event at the default level
        started = time.perf_counter()
        self._server = xllamacpp.Server(params)
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="llama.cpp")
        log.info("llama.cpp engine on %s: %d slots x %d tokens, %d threads (%.1f s)", self.gguf, parallel, context_per_slot, self.threads, time.perf_counter() - started)

    def _one(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        if len(prompt) + max_new_tokens > self.context_per_slot:
            raise ValueError(f"a prompt of {len(prompt)} tokens + {max_new_tokens} new ones exceeds the {self.context_per_slot}-token slot; raise context_per_slot")
        request = {"prompt": prompt, "max_tokens": max_new_tokens, "temperature": 0.0, "top_k": 1, "logprobs": 1}
        result = self._server.handle_completions(request)
        if "error" in result:
            raise RuntimeError(f"llama.cpp failed: {result['error']}")
        return [token["id"] for token in result["choices"][0]["logprobs"]["content"]]

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        return list(self._pool.map(lambda p: self._one(p, max_new_tokens), prompts))

    def describe(self) -> dict:
        return {"engine": self.name, "weights": os.path.basename(self.gguf), "parallel": self.parallel, "threads": self.threads}


class CTranslate2Engine(Engine):
    """CTranslate2 on int8 weights converted from the backbone's folder; the prompts' common prefix (the
    chat template's system turn) is passed as ``static_prompt``, which CTranslate2 runs once and caches."""

    name = "ctranslate2"

    def __init__(self, backbone: Backbone, folder: os.PathLike | str, batch_size: int = 32, threads: int | None = None, compute_type: str = "int8"):
        super().__init__(backbone)
        import ctranslate2

        self.folder, self.batch_size, self.compute_type = str(folder), batch_size, compute_type
        self.threads = threads or torch.get_num_threads()
        device = "cuda" if backbone.model.device.type == "cuda" else "cpu"
        self._generator = ctranslate2.Generator(self.folder, device=device, compute_type=compute_type, intra_threads=self.threads)
        self._end = [self.backbone.tokenizer.convert_ids_to_tokens(i) for i in sorted(self.eos_ids)]

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        tokens = self.backbone.tokenizer.convert_ids_to_tokens
        shared = common_prefix(prompts) if len(prompts) > 1 else 0
        shared = min(shared, min(len(p) for p in prompts) - 1)  # every prompt keeps at least one token of its own
        results = self._generator.generate_batch(
            [tokens(p[shared:]) for p in prompts],
            static_prompt=tokens(prompts[0][:shared]) if shared else None,
            max_batch_size=self.batch_size,
            max_length=max_new_tokens,
            sampling_topk=1,
            end_token=self._end,
            return_end_token=True,
            include_prompt_in_result=False,
        )
        return [r.sequences_ids[0] for r in results]

    def stream_ids(self, prompt: list[int], max_new_tokens: int) -> Iterator[int]:
        """CTranslate2's own token stream (``generate_tokens``), greedy, stopping at an end token."""
        tokens = self.backbone.tokenizer.convert_ids_to_tokens
        for step in self._generator.generate_tokens(tokens(prompt), max_length=max_new_tokens, sampling_topk=1, end_token=self._end):
            yield step.token_id
            if step.token_id in self.eos_ids:
                return

    def describe(self) -> dict:
        return {"engine": self.name, "compute_type": self.compute_type, "batch_size": self.batch_size, "threads": self.threads}


def common_prefix(rows: list[list[int]]) -> int:
    """Length of the longest prefix all ``rows`` share."""
    first = rows[0]
    n = min(len(r) for r in rows)
    for i in range(n):
        if any(r[i] != first[i] for r in rows):
            return i
    return n


def ctranslate2_model(backbone: Backbone, settings: Settings, quantization: str = "int8"):
    """The backbone converted for CTranslate2 (once, cached in ``<model folder>/ctranslate2-<quantization>``)."""
    from filelock import FileLock

    from ..fetch import ensure_model

    folder = ensure_model(backbone.name, settings)
    out = folder / f"ctranslate2-{quantization}"
    with FileLock(str(out) + ".lock"):
        if not (out / "model.bin").is_file():
            from ctranslate2.converters import TransformersConverter

            log.info("converting %s for CTranslate2 (%s, once)", backbone.name, quantization)
            TransformersConverter(str(folder)).convert(str(out), quantization=quantization, force=True)
    return out


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def resolve_engine(name: EngineName, backbone: Backbone) -> str:
    """``auto`` -> CTranslate2 on CPU for a registry backbone (measured fastest on CPU), else transformers."""
    if name != "auto":
        return name
    from ..registry import get_spec, resolve_name

    registry_name = resolve_name(backbone.name)
    is_registry_backbone = registry_name is not None and get_spec(registry_name).kind == "gguf"
    on_cpu = backbone.model.device.type == "cpu"
    return "ctranslate2" if on_cpu and is_registry_backbone and _installed("ctranslate2") else "transformers"


def load_engine(
    name: EngineName, backbone: Backbone, *, settings: Settings, batch_size: int = 16, parallel: int = 16, threads: int | None = None
) -> Engine:
    """An engine for ``backbone``: ``transformers`` batches ``batch_size`` prompts per ``generate`` call,
    ``llama.cpp`` decodes ``parallel`` slots at once on the backbone's pinned GGUF (hash-checked like the model)."""
    chosen = resolve_engine(name, backbone)
    if chosen == "transformers":
        return TransformersEngine(backbone, batch_size=batch_size)
    if chosen == "llama.cpp":
        from ..fetch import ensure_gguf

        return LlamaCppEngine(backbone, ensure_gguf(backbone.name, settings), parallel=parallel, threads=threads)
    if chosen == "ctranslate2":
        return CTranslate2Engine(backbone, ctranslate2_model(backbone, settings), batch_size=batch_size, threads=threads)
    raise ValueError(f"unknown generation engine {name!r}; use one of {', '.join(ENGINES)}")
