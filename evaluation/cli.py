"""`gensearch eval all|retrieval|safety|speed|decodability|search-modes|fusion|product|rephrase|adapt`: measure every system side by side, offline.

``product`` is the headline (``evaluation.product``): every system as users search it (indexed corpora, the
product's search function and read modes, the refusal gate), on the held-out safety and over-refusal sets;
``--systems`` takes ``ENCODER[@W][:MODE][:SAFETY]`` specs there. ``rephrase`` writes the rephrased AdvBench set once.

``search-modes`` (dense / keyword / hybrid search through Qdrant, ``evaluation.search_modes``) takes its own
options (``--encoder``, ``--tasks``, ``--gucs``, ``--chunks-per-query``) and is not part of ``all``; nor is
``fusion`` (the teacher's weight in the fused query vector on development sets, ``evaluation.fusion``:
``--weights``, ``--adapter``), nor ``adapt`` (``evaluation.adapt``: ``gensearch adapt`` measured with real questions)."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from encoder.cli_support import OutDir, Threads, fail, user_errors

if TYPE_CHECKING:
    from encoder.settings import Settings

log = logging.getLogger(__name__)


class Part(str, Enum):
    all = "all"
    retrieval = "retrieval"
    safety = "safety"
    speed = "speed"
    decodability = "decodability"
    search_modes = "search-modes"  # not in `all`: another kind of run (one encoder, the Qdrant read path)
    fusion = "fusion"  # not in `all`: development sets from the training sources, not the evaluation's
    product = "product"  # as users search: indexed corpora, the product's search function, the gate (the headline)
    rephrase = "rephrase"  # builds evaluation/data/advbench_rephrased.jsonl with the backbone (once, committed)
    adapt = "adapt"  # `gensearch adapt` on the search-modes corpora, their real questions before and after


SEARCH_MODES_OPTIONS = {"encoder", "tasks", "gucs", "chunks_per_query", "keyword_idf"}  # only search-modes takes these
SHARED_OPTIONS = {"part", "limit", "out", "seed", "threads"}  # every part but fusion takes these
FUSION_OPTIONS = {"part", "adapter", "weights", "out", "seed", "threads"}  # all that fusion takes
PRODUCT_OPTIONS = {"part", "systems", "sets", "limit", "corpus_per_label", "out", "seed", "threads"}  # all that product takes
REPHRASE_OPTIONS = {"part", "limit", "out", "seed", "threads"}  # all that rephrase takes
ADAPT_OPTIONS = {"part", "tasks", "max_chunks", "out", "threads"}  # all that adapt takes


def command_line(ctx: typer.Context) -> str:
    """The command as typed: sub-command path plus the options given on the command line."""
    words = [ctx.command_path.replace(ctx.find_root().info_name or "", "gensearch", 1)]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name != "COMMANDLINE":
            continue
        if param.param_type_name == "argument":
            words.append(str(getattr(value, "value", value)))
        elif isinstance(value, bool):
            words.append(param.opts[0] if value else (param.secondary_opts or param.opts)[0])
        else:
            words += [param.opts[0], str(value)]
    return " ".join(words)


def eval_command(
    ctx: typer.Context,
    part: Annotated[Part, typer.Argument(help="What to measure; 'all' (retrieval, safety, speed, decodability) writes eval.json, a single part eval_<part>.json; search-modes is not in 'all'.")] = Part.all,
    quick: Annotated[bool, typer.Option("--quick", help="CI subset: 10 queries per task, ~45 passages, tiny generation budgets.")] = False,
    systems: Annotated[str | None, typer.Option(help="Comma-separated: llm2vec-gen, llm2vec-gen-asym, llm2vec-gen-fused, llm2vec-gen-fused@W (teacher weight W), teacher, baseline, hyde, hyde-mean, backbone-mean (default: all but @W; decodability: llm2vec-gen).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many queries per task (seeded sample).")] = None,
    corpus_per_label: Annotated[int | None, typer.Option(min=1, help="Corpus subset: relevant passages + this many per label.")] = None,
    backbone: Annotated[str | None, typer.Option(help="Backbone for llm2vec-gen / hyde / backbone-mean (default: settings; 'test' = SmolLM2).")] = None,
    adapter: Annotated[Path | None, typer.Option(help="LLM2Vec-Gen adapter folder (default: the shipped one).")] = None,
    hyde_tokens: Annotated[int | None, typer.Option(min=1, help="HyDE answer budget in new tokens (default 128, quick 16).")] = None,
    decode_tokens: Annotated[int | None, typer.Option(min=1, help="Decodability: tokens decoded per query (default 64).")] = None,
    decode_queries: Annotated[int | None, typer.Option(min=1, help="Decodability: held-out queries used (default 64).")] = None,
    latency_queries: Annotated[int | None, typer.Option(min=1, help="Single queries timed per system, the systems taking turns (default 10).")] = None,
    out: OutDir = None,
    seed: Annotated[int, typer.Option(help="Seed for every sample.")] = 0,
    threads: Threads = None,
    encoder: Annotated[str | None, typer.Option(help="search-modes: the dense side (default baseline, ~3 min for both tasks; llm2vec-gen indexes ~0.7 chunks/s on 2 cores: ~25 min of indexing, ~0.5 s per dense query).")] = None,
    tasks: Annotated[str | None, typer.Option(help="search-modes: comma-separated faq, postgres-identifiers (default: both; the second needs apt-get install postgresql-doc-15).")] = None,
    gucs: Annotated[int | None, typer.Option(min=1, help="search-modes: configuration-parameter queries sampled for postgres-identifiers (default 150).")] = None,
    chunks_per_query: Annotated[int | None, typer.Option(min=10, help="search-modes: chunk hits fetched per query before collapsing to pages (default 30).")] = None,
    weights: Annotated[str | None, typer.Option(help="fusion: comma-separated teacher weights to try (default 0,0.5,1,1.5,2,3,4,8,inf; inf = the teacher alone).")] = None,
    keyword_idf: Annotated[str | None, typer.Option(help="search-modes: comma-separated keyword IDF sources to compare, public and/or collection (default: GENSEARCH_KEYWORD_IDF); each indexes the tasks once more.")] = None,
    sets: Annotated[str | None, typer.Option(help="product: comma-separated faq, advbench, advbench-rephrased, heldout-sources, benign-dangerous (default: all).")] = None,
    max_chunks: Annotated[int, typer.Option(min=1, help="adapt: chunks sampled per collection for the backbone to write questions about.")] = 1000,
) -> None:
    """Retrieval (Python FAQ), AdvBench-IR-style safety, speed and decodability for every system, in one run;
    or (search-modes) dense / keyword / hybrid search through Qdrant on the FAQ and PostgreSQL identifiers;
    or (fusion) the teacher's weight in llm2vec-gen-fused on development sets from the training sources (~3 min).

    Full run on the default 0.5B backbone: about 1.5-2 h on 2 CPU cores (see docs/evaluation.md).
    search-modes with the baseline encoder: a few minutes. Reports go to --out (default GENSEARCH_REPORTS_DIR, reports/).
    """
    import torch

    from encoder.settings import get_settings

    if threads:
        torch.set_num_threads(threads)
    given = {p.name for p in ctx.command.params if (src := ctx.get_parameter_source(p.name)) is not None and src.name == "COMMANDLINE"}
    if part is Part.search_modes:
        takes = SHARED_OPTIONS | SEARCH_MODES_OPTIONS
    elif part is Part.fusion:
        takes = FUSION_OPTIONS
    elif part is Part.product:
        takes = PRODUCT_OPTIONS
    elif part is Part.rephrase:
        takes = REPHRASE_OPTIONS
    elif part is Part.adapt:
        takes = ADAPT_OPTIONS
    else:
        takes = set(ctx.params) - SEARCH_MODES_OPTIONS - {"weights", "sets"}
    if given - takes:
        flags = ", ".join(sorted("--" + name.replace("_", "-") for name in given - takes))
        raise fail(f"`gensearch eval {part.value}` does not take {flags}", 2)
    settings = get_settings()
    if part is Part.search_modes:
        search_modes(ctx, encoder, tasks, gucs, chunks_per_query, limit, seed, out, settings, keyword_idf)
        return
    if part is Part.fusion:
        fusion(adapter, weights, seed, out, settings)
        return
    if part is Part.product:
        product(ctx, systems, sets, limit, corpus_per_label, seed, out, settings)
        return
    if part is Part.rephrase:
        rephrase(limit or 150, seed, out, settings)
        return
    if part is Part.adapt:
        adapt(ctx, tasks, max_chunks, out, settings)
        return

    from .run import PARTS, EvalConfig, EvalError, run_eval
    from .systems import SYSTEMS
    parts = PARTS if part is Part.all else (part.value,)
    names = tuple(s.strip() for s in systems.split(",") if s.strip()) if systems else (("llm2vec-gen",) if part is Part.decodability else SYSTEMS)
    options = dict(
        parts=parts, systems=names, limit=limit, corpus_per_label=corpus_per_label, backbone=backbone, adapter=adapter,
        hyde_tokens=hyde_tokens, decode_tokens=decode_tokens, decode_queries=decode_queries, latency_queries=latency_queries,
        out_dir=out, seed=seed, command=command_line(ctx),
    )
    config = EvalConfig.quick_config(**options) if quick else EvalConfig(**{k: v for k, v in options.items() if v is not None})
    with user_errors(EvalError):
        report, paths = run_eval(config, settings)
    from .report import markdown

    typer.echo(markdown(report))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


def parse_weights(text: str | None) -> tuple[float, ...]:
    """``--weights`` as non-negative floats ("inf" allowed); a clear error before any model loads."""
    from .fusion import WEIGHTS

    if text is None:
        return WEIGHTS
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(not v >= 0 for v in values) or all(v == float("inf") for v in values):
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of weights >= 0 with a finite one (inf allowed)", param_hint="--weights")
    return values


def fusion(adapter: Path | None, weights: str | None, seed: int, out: Path | None, settings: Settings) -> None:
    """`gensearch eval fusion`: reports/eval_fusion.json and .md."""
    from encoder import load_encoder

    from . import fusion as fu

    grid = parse_weights(weights)
    with user_errors():
        fused = load_encoder("llm2vec-gen-fused", adapter=adapter, settings=settings)
        report = fu.run_fusion(fused, settings, grid, seed=seed)  # type: ignore[arg-type]
        paths = fu.write_report(report, out or settings.reports_dir)
    typer.echo(fu.markdown(report))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


def product(
    ctx: typer.Context, systems: str | None, sets: str | None, limit: int | None, per_label: int | None, seed: int, out: Path | None, settings: Settings,
) -> None:
    """`gensearch eval product`: reports/eval_product.json and .md (the README's table and the app's Safety page)."""
    from . import product as pr

    split = lambda text: tuple(s.strip() for s in text.split(",") if s.strip())  # noqa: E731
    names, set_names = split(systems) if systems else pr.DEFAULT_SYSTEMS, split(sets) if sets else pr.SETS
    try:  # bad specs and sets are refused before any model or data loads
        [pr.parse_spec(name, settings) for name in names]
        pr.check_sets(set_names)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    with user_errors():
        report, paths = pr.evaluate_product(
            settings, systems=names, sets=set_names, limit=limit, per_label=per_label or 100, seed=seed, out_dir=out, command=command_line(ctx),
        )
    typer.echo(pr.markdown(report))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


def adapt(ctx: typer.Context, tasks: str | None, max_chunks: int, out: Path | None, settings: Settings) -> None:
    """`gensearch eval adapt`: reports/eval_adapt.json and .md. The adapt job itself is the `gensearch` command's
    (``ctx.obj["adapt"]``, set by ``app.cli``): this layer measures it, it does not import the app."""
    from . import adapt as ad
    from .search_modes import parse_tasks

    job = (ctx.find_root().obj or {}).get("adapt")
    if job is None:
        raise fail("`eval adapt` runs from the gensearch command, which provides the adapt job", 2)
    try:
        names = parse_tasks(tasks)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    with user_errors():
        report, paths = ad.evaluate_adapt(settings, job, names, max_chunks, out_dir=out, command=command_line(ctx))
    typer.echo(ad.markdown(report))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


def rephrase(n: int, seed: int, out: Path | None, settings: Settings) -> None:
    """`gensearch eval rephrase`: AdvBench goals rephrased by the backbone -> evaluation/data/advbench_rephrased.jsonl."""
    from encoder.backbone import load_backbone
    from encoder.device import resolve_device, resolve_dtype
    from encoder.generation import load_engine
    from training.queries import advbench_goals

    from . import datasets as ds
    from .rephrase import rephrase as run
    from .rephrase import write_rephrased

    with user_errors():
        device = resolve_device(settings.device)
        backbone = load_backbone(settings.backbone, device, resolve_dtype(settings.dtype, device), settings)
        engine = load_engine(settings.generation_engine, backbone, batch_size=settings.batch_size, settings=settings)
        rows = run(engine, advbench_goals(settings), n, seed=seed + 1)  # seed + 1: not the advbench set's own sample
        path = (out or ds.DATA_DIR) / ds.REPHRASED
        write_rephrased(rows, path)
    typer.echo(f"wrote {len(rows)} rephrased goals to {path}")


def parse_idf_sources(text: str | None) -> tuple[str, ...]:
    """``--keyword-idf public,collection``; a clear error before anything loads."""
    from indexer.sparse import IDF_SOURCES

    names = tuple(t.strip() for t in (text or "").split(",") if t.strip())
    unknown = [n for n in names if n not in IDF_SOURCES]
    if unknown:
        raise fail(f"unknown --keyword-idf {', '.join(unknown)}; use public and/or collection", 2)
    return names


def search_modes(
    ctx: typer.Context, encoder: str | None, tasks: str | None, gucs: int | None, chunks_per_query: int | None,
    limit: int | None, seed: int, out: Path | None, settings: Settings, keyword_idf: str | None = None,
) -> None:
    """`gensearch eval search-modes`: reports/eval_search_modes[_<encoder>].json and .md."""
    from . import search_modes as sm

    with user_errors():
        report, paths = sm.evaluate_search_modes(
            encoder or sm.DEFAULT_ENCODER, tasks, gucs=gucs or sm.GUCS, chunks_per_query=chunks_per_query or sm.CHUNKS_PER_QUERY,
            limit=limit, seed=seed, out_dir=out, command=command_line(ctx), settings=settings, idf_sources=parse_idf_sources(keyword_idf),
        )
    typer.echo(sm.markdown(report))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))
