"""Save and load the small trained part of LLM2Vec-Gen: ``adapter.safetensors`` + ``config.json``.

The adapter holds only the K special-token rows and the two projections (a few MB). Its config
names the backbone it was trained on (name and source hash), so loading it onto another backbone,
a truncated file or an unknown format version fails with a clear message.

An adapter folder is also a sentence-transformers model: ``modules.json``,
``config_sentence_transformers.json`` (the instructions as prompts) and ``1_Normalize/`` make
``SentenceTransformer(folder, trust_remote_code=True)`` load it (``encoder/st_module.py``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1
WEIGHTS = "adapter.safetensors"
CONFIG = "config.json"
ADAPTERS_DIR = Path(__file__).parent / "adapters"
ST_MODULE_CLASS = "encoder.st_module.LLM2VecGenModule"
ST_NORMALIZE_CLASS = "sentence_transformers.base.modules.normalize.Normalize"
# mteb runs tasks without a query/document role (STS, clustering, classification) with the default prompt.
ST_DEFAULT_PROMPT = "similarity"


class AdapterError(ValueError):
    """An adapter folder is missing, corrupt, of another format version, or for another backbone."""


@dataclass
class AdapterConfig:
    backbone: str
    backbone_sha256: str | None
    hidden_size: int
    num_tokens: int
    teacher: str
    teacher_dim: int
    instructions: dict[str, str]
    max_length: int = 512
    training: dict = field(default_factory=dict)
    fusion_weight: float | None = None  # the teacher's weight in fused queries chosen for one collection (`gensearch adapt`)
    format: str = "gensearch-llm2vec-gen-adapter"
    format_version: int = FORMAT_VERSION


def default_adapter_path(backbone: str, published: Path | None = None) -> Path | None:
    """The default adapter of a registry backbone: the one published to ``published``
    (``Settings.adapters_path``, where ``gensearch train ... --publish`` installs), else the one shipped
    with gensearch (``encoder/adapters/``); None if neither exists."""
    for base in (published, ADAPTERS_DIR):
        if base is not None and (Path(base) / backbone / CONFIG).is_file():
            return Path(base) / backbone
    return None


def is_adapter_folder(path: Path) -> bool:
    return (path / CONFIG).is_file() and (path / WEIGHTS).is_file()


def save_adapter(folder: str | Path, config: AdapterConfig, tensors: dict) -> Path:
    """Write ``adapter.safetensors`` and ``config.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}, str(folder / WEIGHTS))
    (folder / CONFIG).write_text(json.dumps(asdict(config), indent=2) + "\n")
    return folder


def write_sentence_transformers_files(folder: str | Path, instructions: dict[str, str]) -> Path:
    """Make an adapter folder a sentence-transformers model: our module, then ``Normalize``; prompts = instructions.

    ``encode_query`` / ``encode_document`` use the "query" / "document" instruction, plain ``encode`` the
    "similarity" one. Leaves ``adapter.safetensors`` and ``config.json`` alone.
    """
    folder = Path(folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": ST_MODULE_CLASS},
        {"idx": 1, "name": "1", "path": "1_Normalize", "type": ST_NORMALIZE_CLASS},
    ]
    config = {
        "model_type": "SentenceTransformer",
        "__version__": {name: _version(package) for name, package in _VERSIONED.items()},
        "prompts": dict(instructions),
        "default_prompt_name": ST_DEFAULT_PROMPT,
        "similarity_fn_name": "cosine",
    }
    (folder / "1_Normalize").mkdir(parents=True, exist_ok=True)
    (folder / "1_Normalize" / "config.json").write_text(json.dumps({"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"}, indent=2) + "\n")
    (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder


_VERSIONED = {"sentence_transformers": "sentence-transformers", "transformers": "transformers", "pytorch": "torch"}


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def read_adapter_config(folder: str | Path) -> AdapterConfig:
    """Parse and validate ``config.json`` of an adapter folder."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise AdapterError(f"no adapter at {folder}: {CONFIG} is missing")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{path} is not valid JSON ({exc}); the adapter is corrupt") from exc
    if raw.get("format") != AdapterConfig.format:
        raise AdapterError(f"{path} is not a gensearch adapter config (format={raw.get('format')!r})")
    if raw.get("format_version") != FORMAT_VERSION:
        raise AdapterError(
            f"{path} has adapter format version {raw.get('format_version')}, this gensearch reads version "
            f"{FORMAT_VERSION}; retrain it or use a matching gensearch release"
        )
    try:
        return AdapterConfig(**raw)
    except TypeError as exc:
        raise AdapterError(f"{path} has unexpected fields: {exc}") from exc


def read_adapter_tensors(folder: str | Path) -> dict:
    """Load the adapter tensors; a truncated or corrupt file raises AdapterError."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise AdapterError(f"no adapter weights at {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterError(f"{path} is corrupt or truncated ({exc}); restore it or retrain") from exc


def check_compatible(config: AdapterConfig, backbone: str, backbone_sha256: str | None, hidden_size: int) -> None:
    """Refuse an adapter trained for another backbone."""
    if config.backbone_sha256 and backbone_sha256 and config.backbone_sha256 != backbone_sha256:
        raise AdapterError(
            f"adapter was trained on backbone {config.backbone} (sha256 {config.backbone_sha256[:12]}…), "
            f"but the loaded backbone is {backbone} (sha256 {backbone_sha256[:12]}…)"
        )
    if config.hidden_size != hidden_size or (not (config.backbone_sha256 and backbone_sha256) and config.backbone != backbone):
        raise AdapterError(
            f"adapter was trained on backbone {config.backbone} (hidden {config.hidden_size}), "
            f"but the loaded backbone is {backbone} (hidden {hidden_size}); pass the matching backbone"
        )
