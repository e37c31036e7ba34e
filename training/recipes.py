"""The training recipes behind `gensearch train fit | refit-align | gate`: what each step loads, runs and writes.

The CLI (``training.cli``) parses and checks options and prints; these functions do the work with typed
arguments and one ``Settings``, so a notebook or a test can run a step without typer. Every path defaults
under ``Settings.run_dir``; responses default to the run's file, else the committed one of the backbone.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from encoder.settings import Settings

    from .dataset import HarmfulCap

log = logging.getLogger(__name__)

REFUSALS_REPORT = Path(__file__).parent / "reports" / "refusals.json"
DANGEROUS_DEV = Path(__file__).parent / "data" / "benign_dangerous_dev.jsonl"


class RecipeError(ValueError):
    """A recipe cannot run as asked (a missing adapter or file, an adapter made for another teacher)."""


def device_dtype(settings: Settings):
    """The torch device and dtype ``settings`` ask for on this machine."""
    from encoder.device import resolve_device, resolve_dtype

    device = resolve_device(settings.device)
    return device, resolve_dtype(settings.dtype, device)


def responses_path(path: Path | None, settings: Settings, backbone: str | None = None) -> Path:
    """The response file a step reads: ``path``, else the run folder's, else the committed one of the backbone."""
    if path is not None:
        return path
    run_file = settings.run_dir / "responses.jsonl"
    if run_file.is_file():
        return run_file
    from encoder.registry import resolve_name

    from .generate import shipped_responses

    name = resolve_name(backbone or settings.backbone)
    shipped = shipped_responses(name) if name else None
    return shipped if shipped is not None and shipped.is_file() else run_file


def target_store(folder: Path, teacher):
    """The teacher's target cache under ``folder``."""
    from .targets import TargetStore

    return TargetStore(Path(folder) / teacher.name, teacher.name, teacher.dim)


def warm_start_encoder(folder: Path, backbone, target_meta: dict):
    """The adapter in ``folder`` on ``backbone``, checked against the teacher whose targets the run trains on."""
    from encoder.adapter import AdapterError
    from encoder.llm2vec_gen import LLM2VecGenEncoder

    try:
        encoder = LLM2VecGenEncoder.load(folder, backbone)
    except (AdapterError, OSError) as e:
        raise RecipeError(str(e)) from e
    made_for = (encoder.config.teacher, encoder.config.teacher_dim)
    if made_for != (target_meta["teacher"], target_meta["dim"]):
        raise RecipeError(f"{folder} was trained towards {made_for}, the targets are {target_meta['teacher']} ({target_meta['dim']})")
    return encoder


def warm_start_lr_scales(folder: Path) -> dict[str, float]:
    """The calibrated learning-rate factors an adapter was trained with (empty, with a warning, if unknown)."""
    from .fit import warm_start_lr_scales as scales_of

    # a published adapter carries training_report.json; a run's adapter/ sits beside the run's report.json
    for report in (folder / "training_report.json", folder.parent / "report.json"):
        if report.is_file():
            return scales_of(json.loads(report.read_text()))
    log.warning("no training_report.json for %s; the projections' learning rates are not scaled to their calibrated weights", folder)
    return {}


def publish_fit(out: Path, target: Path, init_adapter: Path | None = None) -> None:
    """Install a finished fit run's adapter (``out/adapter``) at ``target``, with its report and loss curve as
    ``training_report.json`` and ``loss.png``. A warm start keeps the history of the adapter it started from
    (its ``training_report.json``) under ``init_adapter_report``."""
    report = json.loads((out / "report.json").read_text())
    if init_adapter is not None and (Path(init_adapter) / "training_report.json").is_file():
        report["init_adapter_report"] = json.loads((Path(init_adapter) / "training_report.json").read_text())  # read before target's is rewritten (they may be one file)
    shutil.copytree(out / "adapter", target, dirs_exist_ok=True)
    if REFUSALS_REPORT.is_file():  # the system-prompt measurement behind the responses' refusals
        report["generator_refusals"] = json.loads(REFUSALS_REPORT.read_text())
    (target / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.copy(out / "loss.png", target / "loss.png")


@dataclass
class FitRun:
    """What `gensearch train fit` trains on and where it writes (the optimisation itself: ``fit.FitConfig``)."""

    responses: Path | None = None
    store: Path | None = None
    out: Path | None = None
    backbone: str | None = None
    documents: bool = True
    max_copies: int = 24
    harmful_responses: Path | None = None
    harmful_cap: HarmfulCap = "shared"
    init_adapter: Path | None = None
    time_budget_min: float | None = None
    resume: bool = True
    publish: bool = False
    config: dict = field(default_factory=dict)  # FitConfig fields the caller sets (epochs, batch_size, lr, ...)


def fit(run: FitRun, settings: Settings) -> tuple[dict, Path]:
    """Train the adapter on the frozen backbone: a fresh one, or a warm start from ``run.init_adapter`` (with its
    calibrated learning rates, no new calibration). Returns the report and the output folder; with
    ``run.publish`` a complete run is installed as the backbone's default adapter."""
    import torch

    from encoder.backbone import load_backbone
    from encoder.llm2vec_gen import LLM2VecGenEncoder
    from encoder.registry import get_spec

    from .dataset import load_examples, summarize_examples
    from .fit import FitConfig, Trainer

    teacher = get_spec(settings.teacher)  # name and dim are enough to open its target store
    responses = responses_path(run.responses, settings, run.backbone)
    store = target_store(run.store or settings.run_dir / "targets", teacher)
    device, dtype = device_dtype(settings)
    loaded = load_backbone(run.backbone, device, dtype, settings)
    eos = loaded.tokenizer.eos_token
    train = load_examples(
        responses, store, "train", eos, max_copies=run.max_copies, documents=run.documents, harmful_responses=run.harmful_responses,
        harmful_cap=run.harmful_cap,
    )
    held_out = load_examples(responses, store, "heldout", eos, max_copies=run.max_copies)  # queries: comparable across runs
    held_out_docs = [ex for ex in load_examples(responses, store, "heldout", eos, documents=True) if ex.task == "document"]
    out = run.out or settings.run_dir / "fit" / loaded.name
    config = dict(run.config)
    config.setdefault("align_weight", float(teacher.dim))  # L_align as the squared distance |e - t|^2, as large as L_recon
    extra: dict = {}
    if run.init_adapter is None:
        encoder = LLM2VecGenEncoder.fresh(loaded, teacher=store.meta["teacher"], teacher_dim=store.meta["dim"], seed=config.get("seed", 0))
    else:
        encoder = warm_start_encoder(run.init_adapter, loaded, store.meta)
        config.update(lr_scales=warm_start_lr_scales(run.init_adapter), calibrate=False)
        extra["init_adapter"] = str(run.init_adapter)
    if run.harmful_responses:
        extra["harmful_responses"] = str(run.harmful_responses)
    if run.harmful_cap != "shared":
        extra["harmful_cap"] = run.harmful_cap
    mixed = "bf16" if dtype == torch.bfloat16 and device.type == "cuda" else "no"
    fit_config = FitConfig(**config, extra=extra, mixed_precision=mixed)
    n_docs = sum(ex.task == "document" for ex in train)
    log.info("training %s: %d train (%d queries, %d documents) / %d held-out examples -> %s", loaded.name, len(train), len(train) - n_docs, n_docs, len(held_out), out)
    data = {"train": summarize_examples(train), "held_out": summarize_examples(held_out)}
    budget = run.time_budget_min * 60 if run.time_budget_min else None
    report = Trainer(encoder, train, held_out, fit_config, out, data_summary=data, held_out_documents=held_out_docs).run(resume=run.resume, time_budget_s=budget)
    if run.publish and report.get("complete"):
        publish_fit(out, settings.adapters_path / loaded.name, run.init_adapter)
    return report, out


@dataclass
class RefitRun:
    """What `gensearch train refit-align` refits and on which data."""

    adapter: Path
    out: Path
    responses: Path | None = None
    store: Path | None = None
    cache: Path | None = None
    backbone: str | None = None
    lambdas: tuple[float, ...] | None = None
    documents: bool = True
    harmful_refusals_only: bool = True
    harmful_responses: Path | None = None
    harmful_cap: HarmfulCap = "shared"
    objective: str = "ridge"
    contrastive: dict = field(default_factory=dict)  # ContrastiveConfig fields the caller sets
    batch_size: int = 16
    publish: bool = False


def refit_align(run: RefitRun, settings: Settings) -> dict:
    """Refit the align projection of ``run.adapter`` (ridge, or ridge then contrastive) from cached special-state
    means; writes the adapter and report into ``run.out`` (and installs it with ``run.publish``)."""
    from encoder.backbone import load_backbone
    from encoder.registry import get_spec

    from .contrastive import ContrastiveConfig
    from .dataset import load_examples
    from .head import LAMBDAS
    from .head import refit_align as refit

    teacher = get_spec(settings.teacher)
    responses = responses_path(run.responses, settings, run.backbone)
    store = target_store(run.store or settings.run_dir / "targets", teacher)
    device, dtype = device_dtype(settings)
    loaded = load_backbone(run.backbone, device, dtype, settings)
    encoder = warm_start_encoder(run.adapter, loaded, store.meta)
    eos = loaded.tokenizer.eos_token
    train = load_examples(
        responses, store, "train", eos, documents=run.documents, harmful_refusals_only=run.harmful_refusals_only,
        harmful_responses=run.harmful_responses, harmful_cap=run.harmful_cap,
    )
    held_out = load_examples(responses, store, "heldout", eos)
    held_out_docs = [ex for ex in load_examples(responses, store, "heldout", eos, documents=True) if ex.task == "document"]
    log.info("refitting align of %s on %d examples (%d held out) -> %s", run.adapter, len(train), len(held_out), run.out)
    report = refit(encoder, train, held_out, run.cache or settings.run_dir / "features", run.lambdas or LAMBDAS, run.batch_size, held_out_docs,
                   objective=run.objective, contrastive=ContrastiveConfig(**run.contrastive))
    report.update(init_adapter=str(run.adapter), harmful_refusals_only=run.harmful_refusals_only,
                  harmful_responses=str(run.harmful_responses) if run.harmful_responses else None, harmful_cap=run.harmful_cap)
    encoder.config.training = {**(encoder.config.training or {}), "align_refit": {k: report.get(k) for k in ("objective", "lam", "train_examples", "held_out_before", "held_out_after")}}
    encoder.save(run.out / "adapter")
    (run.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if run.publish:
        target = settings.adapters_path / loaded.name
        shutil.copytree(run.out / "adapter", target, dirs_exist_ok=True)
        history = target / "training_report.json" if (target / "training_report.json").is_file() else run.adapter / "training_report.json"
        published = json.loads(history.read_text()) if history.is_file() else {}  # how the special rows and recon were trained
        published["align_refit"] = report
        (target / "training_report.json").write_text(json.dumps(published, indent=2) + "\n")
        log.info("published the adapter to %s", target)
    return report


def adapter_encoder(settings: Settings, adapter: Path | None, why: str):
    """The LLM2Vec-Gen encoder of ``adapter`` (default: ``settings.adapter``, else the backbone's installed one) and
    its folder; RecipeError (``why`` it is needed) when there is none."""
    from encoder.adapter import default_adapter_path, read_adapter_config
    from encoder.backbone import load_backbone
    from encoder.llm2vec_gen import LLM2VecGenEncoder

    device, dtype = device_dtype(settings)
    loaded = load_backbone(None, device, dtype, settings) if adapter is None else None
    adapter = adapter or settings.adapter or default_adapter_path(loaded.name, settings.adapters_path)
    if adapter is None:
        raise RecipeError(f"no adapter to read: pass --adapter ({why})")
    backbone = loaded or load_backbone(read_adapter_config(adapter).backbone, device, dtype, settings)
    return LLM2VecGenEncoder.load(adapter, backbone, max_length=settings.max_length), Path(adapter)


def train_gate(settings: Settings, adapter: Path | None, out: Path | None, responses: Path | None, cache: Path | None, dangerous_dev: Path,
               negatives: Path | None, options, with_teacher: bool = False) -> tuple[dict, Path]:
    """Train the refusal gate on ``adapter`` (default: the backbone's installed one) and write it into ``out`` (default:
    the adapter folder). Hard negatives are written by the backbone when the file is missing. Returns the report and
    where the gate went."""
    from .gate import read_questions
    from .gate import train_gate as fit_gate

    if not dangerous_dev.is_file():
        raise RecipeError(f"{dangerous_dev} does not exist")
    device, _ = device_dtype(settings)
    encoder, adapter = adapter_encoder(settings, adapter, "the gate reads a trained adapter's soft prompts")
    backbone = encoder.backbone
    responses = responses_path(responses, settings, backbone.name)
    negatives = negatives or Path(__file__).parent / "data" / f"gate_negatives_{backbone.name}.jsonl"
    if not negatives.is_file():
        from encoder.generation import load_engine

        from .jsonl import write_jsonl
        from .negatives import write_negatives

        log.info("writing hard negatives with %s -> %s", backbone.name, negatives)
        write_jsonl(negatives, write_negatives(load_engine(settings.generation_engine, backbone, batch_size=48, settings=settings)))
    teacher = None
    if with_teacher:
        from encoder.loading import load_encoder

        teacher = load_encoder(encoder.config.teacher, settings=settings, device=str(device))
    gate, report = fit_gate(encoder, responses, cache or settings.run_dir / "gate_features.npz", read_questions(dangerous_dev), options, negatives,
                            teacher)
    if encoder.gate is not None and encoder.gate.anchor is not None:  # the anchor depends on the adapter, not on the gate: kept
        gate = gate.with_anchor(encoder.gate.anchor, encoder.gate.config.anchor_weight, encoder.gate.config.anchor)
    gate.save(out or adapter)
    return report, Path(out or adapter)


def anchor_gate(settings: Settings, adapter: Path | None, responses: Path | None, benign: int = 300, batch_size: int = 16) -> tuple[dict, Path]:
    """Choose where routed queries search (``training.anchor``) on the development safety task built from the training
    responses, and write the anchor and its weight into the gate of ``adapter`` (default: the backbone's installed one).
    Returns the report (the whole sweep) and the adapter folder."""
    import torch

    from encoder.gate import load_gate
    from encoder.loading import load_encoder

    from .anchor import choose_weight, dev_safety_set, refusal_direction
    from .jsonl import read_jsonl

    device, _ = device_dtype(settings)
    encoder, adapter = adapter_encoder(settings, adapter, "the anchor goes into a trained adapter's gate")
    backbone = encoder.backbone
    if encoder.gate is None:
        raise RecipeError(f"{adapter} has no refusal gate: train one first (`gensearch train gate`)")
    dev = dev_safety_set(list(read_jsonl(responses_path(responses, settings, backbone.name))), benign=benign)
    log.info("development safety task: %d passages (%s), %d anchor refusals, %d queries", len(dev.passages),
             {label: dev.labels.count(label) for label in sorted(set(dev.labels))}, len(dev.anchor_refusals), len(dev.queries))
    teacher = load_encoder(encoder.config.teacher, settings=settings, device=str(device))
    passages = teacher.encode(dev.passages, task="document", batch_size=batch_size, show_progress_bar=True)
    direction = refusal_direction(teacher.encode(dev.anchor_refusals, task="document", batch_size=batch_size, show_progress_bar=True))
    generative = encoder.query_vectors(dev.queries, batch_size, teacher_vectors=teacher.encode(dev.queries, task="query")).generative
    weight, sweep = choose_weight(generative, direction, passages, dev.labels)
    report = {"made_from": f"teacher vectors of {len(dev.anchor_refusals)} refusals of train-split harmful requests by {backbone.name}",
              "chosen_on": {"passages": len(dev.passages), "labels": {label: dev.labels.count(label) for label in sorted(set(dev.labels))},
                            "queries": f"{len(dev.queries)} held-out-split harmful requests"},
              "criterion": "lowest harmful@1 + harmful share@5, ties to the smaller weight", "weight": weight, "sweep": sweep}
    gate = load_gate(adapter, encoder.config.hidden_size, encoder.config.teacher_dim)
    gate.with_anchor(torch.from_numpy(direction), weight, report).save(adapter)
    return report, Path(adapter)
