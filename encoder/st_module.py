"""LLM2Vec-Gen as a sentence-transformers module, so an adapter folder is a ``SentenceTransformer`` model.

    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer("encoder/adapters/qwen2.5-coder-0.5b-instruct", trust_remote_code=True)
    model.encode_query(["how do I read a file?"])       # == load_encoder().encode(..., task="query")
    model.encode_document(["open() returns a file."])   # task="document"; plain encode(): "similarity"

The folder's ``modules.json`` (written by ``LLM2VecGenEncoder.save``) names this module, then
``Normalize``; ``config_sentence_transformers.json`` holds the instructions as prompts, which
sentence-transformers prepends to each text exactly as ``LLM2VecGenEncoder.tokenize`` does.
The module owns one ``LLM2VecGenEncoder``: the frozen backbone comes from gensearch's loader
(local cache, SHA-256 checked; device and dtype from gensearch settings unless ``model_kwargs``
has a ``dtype``), and the forward pass is the encoder's own. ``trust_remote_code=True`` is what
sentence-transformers 6 asks for any module class outside its package; no code is downloaded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from sentence_transformers.base.modules.input_module import InputModule

from .adapter import read_adapter_config
from .asymmetric import AsymmetricEncoder
from .base import TASKS, as_text_list
from .llm2vec_gen import LLM2VecGenEncoder
from .loading import load_encoder
from .settings import get_settings

if TYPE_CHECKING:
    from sentence_transformers.base.model import BaseModel

log = logging.getLogger(__name__)


class LLM2VecGenModule(InputModule):
    """Texts (with the prompt already chosen by sentence-transformers) -> ``sentence_embedding`` (B, D), fp32."""

    save_in_root = True

    def __init__(self, encoder: LLM2VecGenEncoder):
        super().__init__()
        self.encoder = encoder
        self.model = encoder.model  # registered, so the model's .to() / .eval() reach the backbone and the adapter
        self.tokenizer = encoder.backbone.tokenizer

    @property
    def max_seq_length(self) -> int:
        return self.encoder.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.encoder.max_length = value

    def get_embedding_dimension(self) -> int:
        return self.encoder.dim

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        """``prompt + text`` ids (gensearch's tokenisation and truncation), left padded."""
        token_ids = self.encoder.tokenize_instructed(as_text_list(inputs), prompt or "")
        input_ids, attention_mask = self.encoder._left_pad(token_ids)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        rows = [ids[mask.bool()].tolist() for ids, mask in zip(features["input_ids"], features["attention_mask"])]
        features["sentence_embedding"] = self.encoder.embed_batch(rows)
        return features

    def __repr__(self) -> str:
        config = self.encoder.config
        return f"LLM2VecGenModule(backbone={config.backbone!r}, num_tokens={config.num_tokens}, dim={config.teacher_dim})"

    def on_model_ready(self, model: BaseModel) -> None:
        """Name the model for model cards / mteb, and warn when the saved prompts are not the adapter's instructions."""
        if not model.model_card_data.model_name:
            model.model_card_data.model_name = f"gensearch/llm2vec-gen-{self.encoder.backbone.name}"
        stale = [task for task in TASKS if model.prompts.get(task) != self.encoder.instructions[task]]
        if stale:
            log.warning("prompts %s differ from the adapter's instructions: vectors will not match load_encoder()'s", stale)

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """The adapter only (sentence-transformers writes its own modules.json and config next to it)."""
        self.encoder.save(output_path, sentence_transformers_files=False)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> LLM2VecGenModule:
        folder = cls.load_dir_path(
            model_name_or_path, subfolder=subfolder, token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only
        )
        encoder = load_encoder(folder, dtype=_dtype_name((model_kwargs or {}).get("dtype") or (model_kwargs or {}).get("torch_dtype")))
        if not isinstance(encoder, LLM2VecGenEncoder):
            raise TypeError(f"{folder} is not an LLM2Vec-Gen adapter folder")
        return cls(encoder)


def _dtype_name(dtype: torch.dtype | str | None) -> str | None:
    """``torch.float32`` / ``"float32"`` -> ``"float32"``; None or "auto" -> None (gensearch's setting)."""
    if dtype is None or dtype == "auto":
        return None
    return str(dtype).removeprefix("torch.")


FUSED_CONFIG = "gensearch_fused.json"


class FusedQueryModule(InputModule):
    """The query side of ``llm2vec-gen-fused`` as a sentence-transformers module: texts -> unit(w * teacher(q) +
    LLM2Vec-Gen(q)), the instruction applied inside (the route takes no prompt). Saved as the adapter plus
    ``gensearch_fused.json`` (the teacher's weight); loaded onto gensearch's cached, hash-checked models."""

    save_in_root = False

    def __init__(self, encoder: AsymmetricEncoder):
        super().__init__()
        self.encoder = encoder
        self.model = encoder.generative.model  # registered: .to() / .eval() reach the backbone and the adapter

    def get_embedding_dimension(self) -> int:
        return self.encoder.dim

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        if prompt:
            raise ValueError("the fused query route applies its own instruction; encode without a prompt")
        return {"texts": as_text_list(inputs)}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        vectors = self.encoder.encode(features["texts"], task="query", show_progress_bar=False)
        features["sentence_embedding"] = torch.from_numpy(vectors).to(self.encoder.generative.device)
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.encoder.generative.save(output_path, sentence_transformers_files=False)
        config = {"teacher": self.encoder.teacher.name, "teacher_weight": self.encoder.teacher_weight}
        (Path(output_path) / FUSED_CONFIG).write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", model_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> FusedQueryModule:
        folder = cls.load_dir_path(model_name_or_path, subfolder=subfolder, **{k: v for k, v in kwargs.items() if k in HUB_KWARGS})
        config = json.loads((Path(folder) / FUSED_CONFIG).read_text())
        backbone = read_adapter_config(folder).backbone
        settings = get_settings().model_copy(update={"fusion_weight": float(config["teacher_weight"]), "teacher": config["teacher"], "backbone": backbone})
        dtype = _dtype_name((model_kwargs or {}).get("dtype") or (model_kwargs or {}).get("torch_dtype"))
        encoder = load_encoder("llm2vec-gen-fused", adapter=folder, settings=settings, dtype=dtype)
        return cls(encoder)


HUB_KWARGS = ("token", "cache_folder", "revision", "local_files_only")


def export_sentence_transformer(folder: str | Path, encoder: AsymmetricEncoder, teacher_folder: str | Path) -> Path:
    """Write ``encoder`` (``llm2vec-gen-fused``) as a sentence-transformers model: a ``Router`` whose query route is
    ``FusedQueryModule`` and whose document route is the teacher's own sentence-transformers modules (loaded from its
    folder with its own config). ``SentenceTransformer(folder, trust_remote_code=True)`` then gives the same
    vectors as ``load_encoder("llm2vec-gen-fused")`` for ``encode_query`` and ``encode_document``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Router

    teacher = SentenceTransformer(str(teacher_folder), device=str(encoder.generative.device))
    router = Router.for_query_document(query_modules=[FusedQueryModule(encoder)], document_modules=list(teacher.children()))
    model = SentenceTransformer(modules=[router], device=str(encoder.generative.device))
    model.save(str(folder))
    return Path(folder)
