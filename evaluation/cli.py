"""`gensearch eval all|retrieval|safety|speed|decodability`: measure every system side by side, offline."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

log = logging.getLogger(__name__)


class Part(str, Enum):
    all = "all"
    retrieval = "retrieval"
    safety = "safety"
    speed = "speed"
    decodability = "decodability"


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
    part: Annotated[Part, typer.Argument(help="What to measure; 'all' writes eval.json, a single part eval_<part>.json.")] = Part.all,
    quick: Annotated[bool, typer.Option("--quick", help="CI subset: 10 queries per task, ~45 passages, tiny generation budgets.")] = False,
    systems: Annotated[str | None, typer.Option(help="Comma-separated: llm2vec-gen, llm2vec-gen-asym, llm2vec-gen-fused, teacher, baseline, hyde, hyde-mean, backbone-mean (default: all; decodability: llm2vec-gen).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many queries per task (seeded sample).")] = None,
    corpus_per_label: Annotated[int | None, typer.Option(min=1, help="Corpus subset: relevant passages + this many per label.")] = None,
    backbone: Annotated[str | None, typer.Option(help="Backbone for llm2vec-gen / hyde / backbone-mean (default: settings; 'test' = SmolLM2).")] = None,
    adapter: Annotated[Path | None, typer.Option(help="LLM2Vec-Gen adapter folder (default: the shipped one).")] = None,
    hyde_tokens: Annotated[int | None, typer.Option(min=1, help="HyDE answer budget in new tokens (default 128, quick 16).")] = None,
    decode_tokens: Annotated[int | None, typer.Option(min=1, help="Decodability: tokens decoded per query (default 64).")] = None,
    decode_queries: Annotated[int | None, typer.Option(min=1, help="Decodability: held-out queries used (default 64).")] = None,
    latency_queries: Annotated[int | None, typer.Option(min=1, help="Single queries timed per system (default 5).")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: settings.reports_dir, 'reports').")] = None,
    seed: Annotated[int, typer.Option(help="Seed for every sample.")] = 0,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads (default: torch's choice).")] = None,
) -> None:
    """Retrieval (Python FAQ), AdvBench-IR-style safety, speed and decodability for every system, in one run.

    Full run on the default 0.5B backbone: about 1.5-2 h on 2 CPU cores (see docs/evaluation.md).
    """
    import torch

    from .run import PARTS, EvalConfig, EvalError, run_eval
    from .systems import SYSTEMS

    if threads:
        torch.set_num_threads(threads)
    parts = PARTS if part is Part.all else (part.value,)
    names = tuple(s.strip() for s in systems.split(",") if s.strip()) if systems else (("llm2vec-gen",) if part is Part.decodability else SYSTEMS)
    options = dict(
        parts=parts, systems=names, limit=limit, corpus_per_label=corpus_per_label, backbone=backbone, adapter=adapter,
        hyde_tokens=hyde_tokens, decode_tokens=decode_tokens, decode_queries=decode_queries, latency_queries=latency_queries,
        out_dir=out, seed=seed, command=command_line(ctx),
    )
    config = EvalConfig.quick_config(**options) if quick else EvalConfig(**{k: v for k, v in options.items() if v is not None})
    try:
        report, paths = run_eval(config)
    except (EvalError, ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1) from exc
    from .report import markdown

    typer.echo(markdown(report))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))
