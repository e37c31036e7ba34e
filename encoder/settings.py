"""One typed settings object for all of gensearch.

Every field reads from an environment variable ``GENSEARCH_<FIELD>`` (upper case) or from a
``.env`` file in the working directory, e.g. ``GENSEARCH_DEVICE=cuda`` or
``GENSEARCH_QDRANT_URL=http://localhost:6333``.

Settings are read at the edges: CLI, app, and the Python entry points load_encoder / load_backbone /
fetch_model / open_client (``settings=None`` there means ``get_settings()``); everything else takes a Settings.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gensearch"


class Settings(BaseSettings):
    """gensearch configuration (env prefix ``GENSEARCH_``, ``.env`` supported)."""

    model_config = SettingsConfigDict(env_prefix="GENSEARCH_", env_file=".env", extra="ignore")

    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where model packages are unpacked and dequantised weights are cached.",
    )
    device: str = Field("auto", description="'auto' (CUDA if present, else CPU), 'cpu', 'cuda', 'cuda:1', ...")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Precision of every model (backbone, teacher, baseline; training targets are always fp32). "
        "'auto': bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16/AMX), else fp32.",
    )
    backbone: str = Field(
        "qwen2.5-coder-0.5b-instruct",
        description="Registry name (see `gensearch models list`), local HF folder, or HF hub id.",
    )
    adapter: Path | None = Field(
        None, description="Adapter folder; default: the one published for the backbone (adapters_dir), else the shipped one."
    )
    adapters_dir: Path | None = Field(
        None,
        description="Where `gensearch train fit|refit-align --publish` installs an adapter (<dir>/<backbone>/) and where the "
        "default adapter is looked for first; default <cache_dir>/adapters. In a checkout, encoder/adapters ships it.",
    )
    generation_engine: Literal["auto", "transformers", "llama.cpp", "ctranslate2"] = Field(
        "auto",
        description="Text generation runtime (training responses, refusal measurement, HyDE): 'auto' is CTranslate2 (int8) "
        "on CPU for registry backbones and transformers otherwise (benchmarks/generation_engines.py).",
    )
    encoder: str = Field(
        "llm2vec-gen-fused",
        description="The encoder `gensearch index`, `embed`, `serve` and the app use when none is named. llm2vec-gen-fused: "
        "LLM2Vec-Gen query vectors fused with the teacher's, documents embedded by the teacher (best measured; indexing ~4x "
        "faster than llm2vec-gen); llm2vec-gen-asym: the same without the teacher's query vector; llm2vec-gen: documents "
        "through the backbone too (symmetric); or any --encoder value (baseline, teacher, a backbone, an adapter folder).",
    )
    fusion_weight: float = Field(
        8.0,
        ge=0.0,
        allow_inf_nan=False,
        description="llm2vec-gen-fused: the teacher's weight w in the query vector unit(w * teacher(q) + LLM2Vec-Gen(q)) of "
        "benign queries. 8 is what the development sweep picks for human-written answers (`gensearch eval fusion`, sets from "
        "the training sources). Safety no longer rides on w: the refusal gate gives harmful requests LLM2Vec-Gen's own vector, pulled towards refusals "
        "(GENSEARCH_SAFETY); 0 is llm2vec-gen-asym.",
    )
    teacher: str = Field("all-mpnet-base-v2", description="Sentence encoder used as the training teacher.")
    baseline: str = Field("all-minilm-l6-v2", description="Sentence encoder used for comparisons.")
    max_length: int = Field(512, ge=16, description="Max tokens per input (instruction + text + special tokens).")
    batch_size: int = Field(16, ge=1, description="Default encode batch size.")
    encode_path: Literal["packed", "eager", "bf16", "onnx"] = Field(
        "packed",
        description="How LLM2Vec-Gen runs the backbone in encode: 'packed' (a copy of its linear layers with weights prepacked "
        "for oneDNN, CPU only: 1.6x (bf16) to 2x (fp32) eager per single query, same vectors; the teacher and baseline pack "
        "theirs too; costs a second copy of the backbone's linear weights in memory, ~0.7 GB for the 0.5B in bf16), 'eager' (PyTorch, in `dtype`), 'bf16' (a bf16 copy of an "
        "fp32 backbone for the special states only (encode, and the soft prompts decode starts from; generation and training stay fp32): 2.5x eager on a CPU with AMX, 2.0x with AVX512-BF16 alone, ~3.6x slower on AVX2-only "
        "CPUs) or 'onnx' (ONNX Runtime fp32 on CPU, exported once "
        "into cache_dir; needs onnxruntime, onnxscript, onnx). Vectors match eager (cosine >= 0.999); "
        "benchmarks/encode_paths.py measures the speed (and the paths it rejected: torch.compile, int8). With dtype 'auto' a CPU with native bf16 already runs eager in bf16; "
        "on CUDA 'packed' adds nothing.",
    )
    run_dir: Path = Field(
        Path("runs/default"),
        description="Training run folder: queries, responses, teacher targets, logs, checkpoints (git-ignored).",
    )
    reports_dir: Path = Field(
        Path("reports"), description="Where `gensearch eval` writes eval.json / eval.md / charts (the app's safety panel reads it)."
    )
    qdrant_path: Path = Field(Path("data/qdrant"), description="Embedded Qdrant folder (used when no URL is set).")
    qdrant_engine: Literal["auto", "edge", "local"] = Field(
        "auto",
        description="The embedded store's engine: edge (Qdrant Edge, Qdrant's own engine in the process: HNSW, payload indexes; scales to millions of chunks), local (qdrant-client's pure-Python local mode, fine to ~20k chunks) or auto (local for a store that local mode made, so existing stores keep working until `gensearch store migrate`; else edge).",
    )
    qdrant_url: str | None = Field(None, description="Qdrant server URL; overrides qdrant_path.")
    qdrant_api_key: str | None = Field(None, description="API key for a Qdrant server.")
    collection: str = Field("python-docs", description="Default Qdrant collection.")
    chunk_size: int = Field(256, ge=32, description="Indexer chunk size, in tokens of the encoder's tokenizer.")
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by consecutive chunks of one section.")
    search_mode: Literal["auto", "dense", "sparse", "hybrid"] = Field(
        "dense",
        description="Retrieval on every read path: dense (the encoder's vectors), sparse (BM25 keywords), hybrid (both, fused by "
        "reciprocal rank in Qdrant) or auto (hybrid where the collection has keyword vectors, else dense). dense is what the "
        "development set picks for the default encoder (`gensearch eval search-modes --tasks chatterbot-dev`: 0.572 vs hybrid "
        "0.525 nDCG@10); hybrid helps identifier-heavy corpora (PostgreSQL settings and catalogs, docs/indexer.md).",
    )
    safety: Literal["route", "block", "off"] = Field(
        "route",
        description="What search does with a query the adapter's refusal gate calls a harmful request (every read path): "
        "'route' searches with LLM2Vec-Gen's own query vector alone, dense only (it lands near refusals, not near harmful "
        "passages); 'block' returns no hits and a notice that the model would refuse the request; 'off' ignores the gate. "
        "Encoders without a gate (teacher, baseline, an adapter trained before the gate) are never routed.",
    )
    keyword_idf: Literal["public", "collection"] = Field(
        "public",
        description="Where keyword (BM25) search takes a word's rarity from, for collections created from now on: "
        "'public' (word frequencies of public English text: a score never depends on documents the caller cannot read) "
        "or 'collection' (Qdrant's IDF over every chunk: a word's weight reveals that it occurs in documents the caller "
        "may not read). docs/indexer.md has the retrieval cost of each.",
    )
    access_default: Literal["deny", "public"] | None = Field(
        None,
        description="Who may read a document no .gensearch.yml rule matches, for a folder indexed for the first time "
        "(unset: deny if the folder has rules, public if it has none; a collection then keeps what it recorded; "
        "a root .gensearch.yml `default:` overrides it).",
    )
    users_file: Path | None = Field(None, description="YAML mapping each user to their groups (`alice: [hr, staff]`) for `--as USER` and the app.")
    app_user_header: str | None = Field(
        None,
        description="Request header a trusted reverse proxy sets to the signed-in user, e.g. X-Forwarded-User (the app). "
        "Unset: nobody is signed in. Set it only behind a proxy that strips the header from client requests.",
    )
    app_view_as: bool = Field(False, description="Let the app's sidebar pick any user of the users file (local testing only; never behind a proxy).")
    serve_host: str = Field("127.0.0.1", description="`gensearch serve` bind address (0.0.0.0 in a container).")
    serve_port: int = Field(8000, ge=0, le=65535, description="`gensearch serve` port.")
    serve_max_batch_size: int = Field(32, ge=1, description="Most texts the server runs in one model batch.")
    serve_max_wait_ms: float = Field(5.0, ge=0, description="How long an idle server waits for a batch to fill.")
    serve_max_queue: int = Field(512, ge=1, description="Most texts queued or running; beyond it requests get 429.")
    serve_max_items: int = Field(128, ge=1, description="Most texts in one request (must be <= serve_max_queue).")
    serve_max_chars: int = Field(20_000, ge=1, description="Longest text accepted, in characters (tokens beyond max_length are cut).")
    serve_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="`gensearch serve` API keys, comma-separated (GENSEARCH_SERVE_API_KEYS=k1,k2): every route but /health "
        "then needs `Authorization: Bearer <key>`. Never logged.",
    )

    @field_validator("serve_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            keys = [key.strip() for key in value.split(",") if key.strip()]
            if value.strip() and not keys:  # "," or " , ": meant to set keys, would leave the server open
                raise ValueError("GENSEARCH_SERVE_API_KEYS holds separators but no key; set k1,k2,... or unset it for an open server")
            return keys
        return value

    @property
    def adapters_path(self) -> Path:
        """Where ``--publish`` installs adapters and ``load_encoder`` looks first (``adapters_dir`` or the cache)."""
        return self.adapters_dir or self.cache_dir / "adapters"

    @property
    def models_dir(self) -> Path:
        """Folder holding one ready-to-load model folder per registry entry."""
        return self.cache_dir / "models"

    @property
    def wheels_dir(self) -> Path:
        """Folder where model packages are downloaded before assembly."""
        return self.cache_dir / "wheels"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
