"""The LLM2Vec-Gen encoder: tokenisation, left-padded batching, encode / decode / logit lens.

One forward pass per batch, no generation, for ``encode``; ``decode`` turns the soft prompts of
a text back into words with the same frozen backbone; ``logit_lens`` reads the LM head directly
off the special-token states (cheap enough to store with every indexed chunk).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .adapter import (
    AdapterConfig,
    AdapterError,
    check_compatible,
    read_adapter_config,
    read_adapter_tensors,
    save_adapter,
    write_sentence_transformers_files,
)
from .backbone import Backbone
from .base import BatchEncoder, QueryVectors, Task, as_text_list
from .gate import RefusalGate, has_gate, load_gate
from .model import KV, LLM2VecGen
from .query_map import QueryMap, load_query_map

log = logging.getLogger(__name__)

DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "query": "Generate a passage that best answers this question: ",
    "document": "Summarize the following passage: ",
    "similarity": "Generate text that is semantically similar to this text: ",
}
SAFETY_INSTRUCTION = "Generate a relevant document that answers this query: "


class LLM2VecGenEncoder(BatchEncoder):
    """A frozen backbone plus a (trained or fresh) LLM2Vec-Gen adapter."""

    def __init__(
        self,
        backbone: Backbone,
        model: LLM2VecGen,
        config: AdapterConfig,
        name: str = "llm2vec-gen",
        max_length: int | None = None,
        batch_size: int = 16,
        cache_instruction: bool = True,
        gate: RefusalGate | None = None,
    ):
        self.backbone = backbone
        self.model = model
        self.config = config
        self.name = name
        self.dim = config.teacher_dim
        self.max_length = max_length or config.max_length
        self.default_batch_size = batch_size
        self.instructions = {**DEFAULT_INSTRUCTIONS, **config.instructions}
        self.cache_instruction = cache_instruction  # run each instruction's tokens once, not once per text
        self._instruction_ids: dict[str, list[int]] = {}
        self._instruction_kv: dict[tuple, KV] = {}
        self.gate = gate.to(self.device) if gate is not None else None  # P(harmful request) from the soft prompts
        self._gate_teacher = None  # what the gate reads besides the soft prompts, if anything (``gate_teacher``)
        self.source: Path | None = None  # the adapter folder it was loaded from (``load``); None for a fresh one
        self.query_map: QueryMap | None = None  # a collection's map of fused query vectors (``encoder.query_map``)

    # ----------------------------------------------------------------- construction

    @classmethod
    def fresh(cls, backbone: Backbone, num_tokens: int = 10, teacher: str = "all-mpnet-base-v2", teacher_dim: int = 768, seed: int = 0, **kwargs) -> LLM2VecGenEncoder:
        """An untrained adapter on ``backbone`` (for training, or before one exists)."""
        model = LLM2VecGen(backbone.model, num_tokens=num_tokens, teacher_dim=teacher_dim, seed=seed)
        config = AdapterConfig(
            backbone=backbone.name,
            backbone_sha256=backbone.sha256,
            hidden_size=backbone.hidden_size,
            num_tokens=num_tokens,
            teacher=teacher,
            teacher_dim=teacher_dim,
            instructions=dict(DEFAULT_INSTRUCTIONS),
        )
        return cls(backbone, model, config, **kwargs)

    @classmethod
    def load(cls, folder: str | Path, backbone: Backbone, **kwargs) -> LLM2VecGenEncoder:
        """Load an adapter folder onto ``backbone``; refuses a mismatched or corrupt adapter."""
        config = read_adapter_config(folder)
        check_compatible(config, backbone.name, backbone.sha256, backbone.hidden_size)
        tensors = read_adapter_tensors(folder)
        model = LLM2VecGen(backbone.model, num_tokens=config.num_tokens, teacher_dim=config.teacher_dim)
        expected = {k: tuple(v.shape) for k, v in model.adapter_state_dict().items()}
        found = {k: tuple(v.shape) for k, v in tensors.items()}
        if expected != found:
            raise AdapterError(f"adapter tensors in {folder} do not fit this model: expected {expected}, found {found}")
        model.load_state_dict(tensors, strict=False)
        gate = load_gate(folder, config.hidden_size, config.teacher_dim) if has_gate(folder) else None
        encoder = cls(backbone, model, config, gate=gate, **kwargs)
        encoder.source = Path(folder)
        encoder.query_map = load_query_map(folder, config.teacher_dim)
        return encoder

    def save(self, folder: str | Path, sentence_transformers_files: bool = True) -> Path:
        """Write the adapter (not the backbone; its refusal gate if any) to ``folder``, by default loadable by
        ``SentenceTransformer(folder)``."""
        folder = save_adapter(folder, self.config, self.model.adapter_state_dict())
        if self.gate is not None:
            self.gate.save(folder)
        if self.query_map is not None:
            self.query_map.save(folder)
        if sentence_transformers_files:
            write_sentence_transformers_files(folder, self.instructions)
        return folder

    # ----------------------------------------------------------------- batching

    @property
    def generative(self) -> LLM2VecGenEncoder:
        return self

    @property
    def tokenizer(self):
        """The backbone's tokenizer (chunks are sized in its tokens)."""
        return self.backbone.tokenizer

    @property
    def device(self) -> torch.device:
        return self.model.special.device

    def tokenize(self, texts: list[str], task: str) -> list[list[int]]:
        """``instruction + text`` ids for the task's instruction (see ``tokenize_instructed``)."""
        return self.tokenize_instructed(texts, self.instructions[task])

    def tokenize_instructed(self, texts: list[str], instruction: str) -> list[list[int]]:
        """``instruction + text`` ids, truncated so the K special tokens always fit after them."""
        limit = self.max_length - self.model.num_tokens
        return self.backbone.tokenizer([instruction + t for t in texts], truncation=True, max_length=limit)["input_ids"]

    def _left_pad(self, token_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(t) for t in token_ids)
        pad = self.backbone.pad_token_id
        ids = torch.tensor([[pad] * (width - len(t)) + t for t in token_ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in token_ids], device=self.device)
        return ids, mask

    def special_states_batch(self, token_ids: list[list[int]]) -> torch.Tensor:
        """Raw special-token states h (B, K, H) for one batch.

        The instruction tokens every row starts with run once per encoder (their keys and values are
        cached); each batch then runs only its texts and the K special tokens. Same states, fewer tokens.
        """
        if not self.cache_instruction:
            return self.model.special_states(*self._left_pad(token_ids))
        prefix = self._instruction_prefix(token_ids)
        rows = [t[len(prefix) :] for t in token_ids]
        return self.model.special_states(*self._left_pad(rows), prefix=self._prefix_kv(prefix) if prefix else None)

    def _instruction_prefix(self, token_ids: list[list[int]]) -> tuple[int, ...]:
        """The longest start of an instruction's token ids that every row begins with.

        Instructions end in a space that BPE merges into the text's first word, so a whole instruction is
        not always a prefix of ``tokenize(instruction + text)``; the common part is."""
        best: tuple[int, ...] = ()
        for instruction in set(self.instructions.values()):
            if instruction not in self._instruction_ids:
                self._instruction_ids[instruction] = self.backbone.tokenizer(instruction)["input_ids"]
            ids = self._instruction_ids[instruction]
            n = common_prefix_length([ids, *token_ids])
            if n > len(best):
                best = tuple(ids[:n])
        return best

    def _prefix_kv(self, prefix: tuple[int, ...]) -> KV:
        key = (prefix, self.device, self.model.lm_dtype)
        if key not in self._instruction_kv:
            with torch.inference_mode(False):  # ordinary tensors: usable inside and outside inference mode
                self._instruction_kv[key] = self.model.prefix_kv(torch.tensor(prefix, device=self.device))
        return self._instruction_kv[key]

    def embed_batch(self, token_ids: list[list[int]]) -> torch.Tensor:
        return self.model.project(self.special_states_batch(token_ids))[1]

    def query_batch(self, token_ids: list[list[int]]) -> torch.Tensor:
        """(B, K * H + D + 1) from one pass: the special states h (flattened), the embedding and, last,
        the soft-prompt part of the refusal gate's logit (0 without a gate)."""
        h = self.special_states_batch(token_ids)
        p, e = self.model.project(h)
        harm = self.gate.soft_logit(p) if self.gate is not None else torch.zeros(len(token_ids), device=e.device)
        return torch.cat([h.flatten(1).float(), e.float(), harm.float().unsqueeze(-1)], dim=-1)

    # ----------------------------------------------------------------- public API

    def query_vectors(self, texts: str | Sequence[str], batch_size: int | None = None, teacher_vectors: np.ndarray | None = None) -> QueryVectors:
        """Query vectors, P(harmful request) per query (with a refusal gate) and the special states, from ONE
        forward pass; ``explain`` turns the states into the decoded answer and lens words. A gate that also reads
        the teacher's query vector takes ``teacher_vectors`` (the fused mode has them) or encodes them itself."""
        items = as_text_list(texts)
        k, hidden = self.config.num_tokens, self.config.hidden_size
        if not items:
            empty = np.zeros((0, self.dim), np.float32)
            harm = np.zeros(0, np.float32) if self.gate is not None else None
            return QueryVectors(empty, empty, harm, self.gate.threshold if self.gate else None, torch.zeros(0, k, hidden), empty if self.gate else None)
        out = self.run_batches(items, "query", self.query_batch, batch_size, show_progress_bar=False)
        vectors = torch.nn.functional.normalize(out[:, k * hidden : -1], dim=-1).cpu().numpy()
        harm = None
        if self.gate is not None:
            teacher = None
            if self.gate.needs_teacher:
                if teacher_vectors is None:
                    teacher_vectors = self.gate_teacher().encode(items, task="query", batch_size=batch_size, show_progress_bar=False)
                teacher = torch.from_numpy(np.asarray(teacher_vectors, dtype=np.float32))
            harm = self.gate.probability(out[:, -1], teacher).cpu().numpy()
        return QueryVectors(vectors, vectors, harm, self.gate.threshold if self.gate else None, out[:, : k * hidden].view(-1, k, hidden),
                            self.gate.route(vectors) if self.gate else None)

    def gate_teacher(self):
        """The sentence encoder the refusal gate reads (loaded on first use; the fused mode passes its vectors instead)."""
        if self._gate_teacher is None:
            from .loading import load_encoder

            self._gate_teacher = load_encoder(self.gate.config.teacher, device=str(self.device))
        return self._gate_teacher

    def explain(self, states: torch.Tensor, max_new_tokens: int = 48, top_k: int = 5, limit: int = 12) -> tuple[list[str], list[list[str]]]:
        """The decoded text and logit-lens words of given special states (N, K, H), e.g. ``QueryVectors.states``:
        no encoder pass (decoding generates ``max_new_tokens`` from the soft prompts)."""
        with torch.inference_mode():
            prompts = self.model.project(states.to(self.device))[0]
        return self.decode(prompts, max_new_tokens=max_new_tokens), self.words_from_states(states.to(self.device), top_k, limit)

    def special_states(self, texts: str | Sequence[str], task: Task = "query", batch_size: int | None = None) -> torch.Tensor:
        """h (N, K, H) for texts, in input order."""
        return self.run_batches(as_text_list(texts), task, self.special_states_batch, batch_size, desc="states")

    def soft_prompts(self, texts: str | Sequence[str], task: Task = "query", batch_size: int | None = None) -> torch.Tensor:
        """p = recon(h), (N, K, H): what ``decode`` feeds the frozen LM."""
        with torch.inference_mode():
            return self.model.project(self.special_states(texts, task, batch_size))[0]

    def decode(
        self,
        texts_or_prompts: str | Sequence[str] | torch.Tensor,
        task: Task = "query",
        max_new_tokens: int = 64,
        batch_size: int | None = None,
    ) -> list[str]:
        """Greedy text the frozen LM writes from each text's soft prompts (or given prompts (N, K, H))."""
        if isinstance(texts_or_prompts, torch.Tensor):
            prompts = texts_or_prompts.to(self.device)
        else:
            prompts = self.soft_prompts(texts_or_prompts, task, batch_size)
        size = batch_size or self.default_batch_size
        tokenizer = self.backbone.tokenizer
        out: list[str] = []
        with torch.inference_mode():
            for start in range(0, len(prompts), size):
                ids = self.model.generate(
                    prompts[start : start + size], max_new_tokens, self.backbone.eos_token_ids, self.backbone.pad_token_id
                )
                out.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
        return out

    def logit_lens(self, texts: str | Sequence[str], task: Task = "query", top_k: int = 5, batch_size: int | None = None) -> list[list[list[str]]]:
        """Top-k LM-head tokens at each special position: [text][position][rank] -> token string."""
        return self.lens_tokens(self.special_states(texts, task, batch_size), top_k)

    def lens_tokens(self, h: torch.Tensor, top_k: int = 5) -> list[list[list[str]]]:
        """Logit lens of given special states h (N, K, H): [text][position][rank] -> token string."""
        with torch.inference_mode():
            ids = self.model.lens(h, top_k).tolist()
        decode = self.backbone.tokenizer.decode
        return [[[decode([t]) for t in position] for position in row] for row in ids]

    def lens_words(self, texts: str | Sequence[str], task: Task = "document", top_k: int = 5, limit: int = 12, batch_size: int | None = None) -> list[list[str]]:
        """Distinct readable words of the logit lens per text, most confident first."""
        return self.words_from_states(self.special_states(texts, task, batch_size), top_k, limit)

    def words_from_states(self, h: torch.Tensor, top_k: int = 5, limit: int = 12) -> list[list[str]]:
        """``lens_words`` for given special states h (N, K, H)."""
        skip = set(self.backbone.tokenizer.all_special_tokens)
        return [lens_keywords(rows, limit, skip) for rows in self.lens_tokens(h, top_k)]

    def encode_with_lens(
        self, texts: str | Sequence[str], task: Task = "document", batch_size: int | None = None, top_k: int = 5, limit: int = 12
    ) -> tuple[np.ndarray, list[list[str]]]:
        """Normalised embeddings (N, D) and logit-lens words from ONE forward pass (what indexing stores)."""
        h = self.special_states(texts, task, batch_size)
        with torch.inference_mode():
            vectors = torch.nn.functional.normalize(self.model.project(h)[1], dim=-1).cpu().numpy()
        return vectors, self.words_from_states(h, top_k, limit)


def common_prefix_length(rows: list[list[int]]) -> int:
    """How many leading ids all rows share."""
    n = 0
    for column in zip(*rows):
        if any(c != column[0] for c in column):
            break
        n += 1
    return n


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_+#.-]*")
_CONTROL = re.compile(r"<\|[^|]*\|>")  # chat-template tokens such as <|im_start|>, special or not


def lens_keywords(per_position: list[list[str]], limit: int = 12, skip: set[str] = frozenset()) -> list[str]:
    """Flatten logit-lens tokens rank by rank into distinct words (≥ 3 letters, case-folded), minus ``skip``."""
    seen: dict[str, None] = {}
    for rank in range(max((len(p) for p in per_position), default=0)):
        for position in per_position:
            if rank < len(position) and position[rank] not in skip and not _CONTROL.fullmatch(position[rank].strip()):
                for word in _WORD.findall(position[rank]):
                    if len(word) >= 3:
                        seen.setdefault(word.lower().rstrip(".-"), None)
    return list(seen)[:limit]
