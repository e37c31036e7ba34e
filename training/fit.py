"""The LLM2Vec-Gen training loop: L = w_recon * L_recon + w_align * L_align, only the adapter trains.

One step, for a global batch of (query, response, teacher vector) examples:

    ids, mask   = left-padded "instruction + text" (query or document)  (B, T)
    h           = special states, via the prefix-KV path              (B, K, H)
    p, e        = recon(h), align(p).mean(1)                          (B, K, H), (B, D)
    L_align     = MSE(e, teacher(response))                           over the whole batch
    L_recon     = CE of the frozen LM reading "response + EOS" after p  over the first R examples
    lr          = get_lr(step) * scale[group] on each param group; AdamW; gradient clipping.

L_recon costs ~3x a whole align pass per example (an LM forward and backward over K + response tokens
and the 150k-word LM head), so ``recon_batch_size`` R < B buys several times more alignment examples per
CPU-hour; the paper's ablation has alignment carrying retrieval quality and reconstruction carrying
decodability.

``Trainer.run`` reads top to bottom: ``resume`` (checkpoint, report so far, calibration), then per step
``should_stop`` / ``train_step`` / ``log`` / checkpoint, then ``finish`` (final report and adapter).

Several processes (``accelerate launch --multi_gpu --num_processes N``; on CPU they talk over gloo) train
one adapter on the same global batches as one process: ``accelerate`` wraps the loss module
(``Objective``) in DistributedDataParallel; process i takes examples i, i+N, ... of each planned batch;
each process's loss is weighted so that the mean over processes, which is what DDP's gradient all-reduce
takes, is the global batch's loss (L_align a mean over its examples, L_recon a mean over its recon
response tokens); only the main process writes files. ``tests/training/test_fit_distributed.py`` checks
that 2 CPU processes give the adapter 1 process gives. Precision is the backbone's dtype (the adapter is
fp32); there is no autocast.

Everything a run needs to resume lives in ``out_dir``: ``checkpoint.pt`` (adapter, optimiser with
each group's lr scale, step; written every ``checkpoint_every`` steps, after the step during which Ctrl-C or
SIGTERM arrived, and at the end),
``loss.csv`` (one row per step), ``loss.png`` and ``report.json``; the trained adapter goes to
``out_dir/adapter``. Batches are a pure function of (seed, epoch), so a resumed run sees exactly the
batches the killed one would have (with any number of processes).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator, DistributedDataParallelKwargs
from torch import nn
from tqdm.auto import tqdm

from encoder.llm2vec_gen import LLM2VecGenEncoder
from encoder.model import LLM2VecGen

log = logging.getLogger(__name__)


@dataclass
class Example:
    query: str  # the text the encoder reads after its instruction: a query, or a passage when task="document"
    response: str  # the backbone's answer, ending with its real EOS string when it stopped by itself
    target: np.ndarray  # teacher embedding of the response, (D,)
    source: str = ""  # the query's source group ("chatterbot", "evals", "pyrit"), for the report
    task: str = "query"  # which instruction the encoder puts before ``query`` ("query" or "document")


TRAIN_GROUPS = ("special", "recon", "align")  # LLM2VecGen.parameter_groups(): the parts a run can train


@dataclass
class FitConfig:
    epochs: float = 1.0
    batch_size: int = 8
    lr: float = 5e-4  # the paper's value for Qwen2.5 backbones
    weight_decay: float = 0.01
    warmup_steps: int = 100  # capped at 10% of the run for short runs
    max_grad_norm: float = 1.0
    recon_weight: float = 1.0
    align_weight: float = 1.0
    recon_batch_size: int | None = None  # L_recon on the first R examples of each batch (None: all; 0: align only)
    response_max_tokens: int = 128  # responses are truncated to this many tokens for L_recon
    checkpoint_every: int = 25
    eval_every: int = 0  # 0: held-out losses only before and after training
    prefix_cache: bool = True
    group_by_length: bool = True  # batches of similar response length: less padding in L_recon (plan_batches)
    calibrate: bool = True  # rescale the fresh projections on the first batch (LLM2VecGen.calibrate)
    lr_scales: dict = field(default_factory=dict)  # per parameter group ("recon", "align"): a warm start's LR factors
    train: tuple[str, ...] = TRAIN_GROUPS  # parameter groups that train; the others stay frozen
    seed: int = 0
    mixed_precision: str = "no"  # recorded in the report only: the LM computes in the backbone's dtype, the adapter in fp32, no autocast
    extra: dict = field(default_factory=dict)


def plan_batches(n: int, batch_size: int, epochs: float, seed: int, lengths: list[int] | None = None, group_size: int = 50) -> list[list[int]]:
    """Example indices for every step: each epoch is a fresh seeded shuffle; last partial batch dropped.

    With ``lengths`` (response tokens per example), batches are grouped by length as in Hugging Face's
    ``group_by_length``: each window of ``group_size`` batches of the shuffle is sorted by length before
    it is cut into batches, and the epoch's batches are then shuffled again. A batch pads its responses
    to its longest one, so this cuts the padded tokens L_recon runs through the LM (see ``padded_tokens``)
    while every example is still seen once per epoch in a seeded, resumable order.
    """
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"{n} examples cannot fill one batch of {batch_size}")
    if lengths is not None and len(lengths) != n:
        raise ValueError(f"{len(lengths)} lengths for {n} examples")
    total = max(1, round(per_epoch * epochs))
    steps: list[list[int]] = []
    epoch = 0
    while len(steps) < total:
        rng = random.Random(seed * 1_000_003 + epoch)
        order = list(range(n))
        rng.shuffle(order)
        if lengths is not None:
            window = batch_size * group_size
            order = [i for s in range(0, n, window) for i in sorted(order[s : s + window], key=lambda i: -lengths[i])]
        batches = [order[i * batch_size : (i + 1) * batch_size] for i in range(per_epoch)]
        if lengths is not None:
            rng.shuffle(batches)
        steps.extend(batches)
        epoch += 1
    return steps[:total]


def padded_tokens(steps: list[list[int]], lengths: list[int]) -> int:
    """Response positions L_recon computes over ``steps``: each batch pads to its longest response."""
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in steps)


class StopRequest:
    """Set by SIGINT / SIGTERM while training (see ``stop_requests``)."""

    def __init__(self) -> None:
        self.requested = False

    def handle(self, signum: int, frame: object) -> None:
        if self.requested:  # a second signal: stop now, the last periodic checkpoint stays valid
            raise KeyboardInterrupt
        self.requested = True
        log.warning("%s: stopping after this step with a checkpoint (send it again to stop at once)", signal.Signals(signum).name)


@contextmanager
def stop_requests():
    """While training, SIGINT (Ctrl-C) and SIGTERM (``kill``, ``docker stop``) ask the loop to finish its step,
    checkpoint and stop, so a checkpoint never holds a half-applied step. Both are handled explicitly because
    shells start ``nohup cmd &`` jobs with SIGINT ignored. Outside the main thread signals are left alone."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, stop.handle)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def warm_start_lr_scales(report: dict) -> dict[str, float]:
    """Per-group learning-rate factors for training on from the adapter a run produced (its ``report.json``).

    Calibration shrinks the projections and their learning rates together (``Trainer.calibrate``); a run that
    starts from the trained adapter must keep those factors, or Adam's ~lr-sized steps would be hundreds of
    times too large for the shrunk ``recon`` weights. Chained warm starts multiply through."""
    started_with = report.get("config", {}).get("lr_scales", {})
    calibration = report.get("calibration", {})
    return {name: started_with.get(name, 1.0) * calibration.get(f"{name}_scale", 1.0) for name in ("recon", "align")}


def get_lr(step: int, peak: float, warmup: int, total: int) -> float:
    """The learning rate at ``step``: ``peak * lr_factor`` (each param group multiplies it by its own scale)."""
    return peak * lr_factor(step, warmup, total)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up from 0 to 1 over ``warmup`` steps, then linear decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


class Objective(nn.Module):
    """The training forward as one module: a batch's tensors -> (L_align, L_recon, per-example cosine).

    ``accelerator.prepare`` wraps this module (in DistributedDataParallel when several processes train), so
    the loss must come from calling the wrapped module: that is what makes the backward average gradients
    across processes. Only ``special``, ``recon`` and ``align`` need gradients; the frozen LM inside has
    ``requires_grad=False``, which DDP leaves out of its gradient buckets."""

    def __init__(self, model: LLM2VecGen, prefix_cache: bool = True):
        super().__init__()
        self.model, self.prefix_cache = model, prefix_cache

    def forward(self, ids, mask, response_ids, response_mask, targets, recon_examples: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L_recon runs on the first ``recon_examples`` rows only (0 gives a zero L_recon)."""
        states = self.model.special_states_cached_prefix if self.prefix_cache else self.model.special_states
        p, e = self.model.project(states(ids, mask))
        cosine = F.cosine_similarity(e.detach(), targets, dim=-1)
        r = recon_examples
        if r == 0:
            recon = p.sum() * 0.0  # keeps every trainable parameter in the graph, as DDP expects
        else:
            width = int(response_mask[:r].sum(1).max())  # the recon rows' own padding width
            recon = self.model.recon_loss(p[:r], response_ids[:r, :width], response_mask[:r, :width])
        return self.model.align_loss(e, targets), recon, cosine


class Trainer:
    """Holds the model, optimiser and data of one run; ``run()`` trains to the end or to Ctrl-C.

    With several processes, every process builds the same Trainer (same seed, data and config); each then
    computes its share of every global batch and the wrapped backward averages the gradients, so all
    processes hold the same adapter and optimiser state at every step."""

    def __init__(
        self,
        encoder: LLM2VecGenEncoder,
        train: list[Example],
        held_out: list[Example],
        config: FitConfig,
        out_dir: Path,
        data_summary: dict | None = None,
        held_out_documents: list[Example] | None = None,
    ):
        """``data_summary`` (e.g. example and refusal counts by source) is written to the report as ``data``;
        ``held_out_documents`` (document-instruction examples) are measured before and after, beside ``held_out``."""
        self.encoder, self.train_set, self.held_out, self.config = encoder, train, held_out, config
        self.held_out_documents = held_out_documents or []
        self.data_summary = data_summary
        self.out_dir = Path(out_dir)
        # the frozen LM's only buffers are constant (rotary frequencies): no need to broadcast them every forward
        ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
        self.accelerator = Accelerator(cpu=encoder.device.type == "cpu", kwargs_handlers=[ddp])
        if config.batch_size < self.accelerator.num_processes:
            raise ValueError(f"a batch of {config.batch_size} cannot give each of {self.accelerator.num_processes} processes an example")
        self.model = encoder.model  # the adapter (LLM2VecGen), unwrapped: calibration, checkpoints, parameter groups
        self.lengths = self.response_lengths(train)  # L_recon's response tokens per example (its normaliser)
        self.steps = plan_batches(len(train), config.batch_size, config.epochs, config.seed, self.lengths if config.group_by_length else None)
        if config.group_by_length:
            ungrouped = plan_batches(len(train), config.batch_size, config.epochs, config.seed)
            log.info("grouped by length, L_recon pads to %d response tokens (%d without grouping)", padded_tokens(self.steps, self.lengths), padded_tokens(ungrouped, self.lengths))
        self.warmup = min(config.warmup_steps, max(1, len(self.steps) // 10))
        unknown = set(config.train) - {g["name"] for g in self.model.parameter_groups()}
        if unknown or not config.train:
            raise ValueError(f"train {sorted(config.train)}: choose one or more of {', '.join(TRAIN_GROUPS)}")
        for group in self.model.parameter_groups():
            for param in group["params"]:
                param.requires_grad_(group["name"] in config.train)
        self.recon_before: tuple[torch.Tensor, torch.Tensor] | None = None  # set in resume(), see keeps_embedding
        groups = [{**g, "scale": config.lr_scales.get(g["name"], 1.0)} for g in self.model.parameter_groups() if g["name"] in config.train]
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        self.objective, self.optimizer = self.accelerator.prepare(Objective(self.model, config.prefix_cache), optimizer)
        self.step = 0
        self.seconds = 0.0

    # ------------------------------------------------------------------ data -> tensors

    def response_lengths(self, examples: list[Example]) -> list[int]:
        """Response tokens per example as L_recon sees them (truncated to ``response_max_tokens``)."""
        ids = self.encoder.backbone.tokenizer([ex.response for ex in examples], add_special_tokens=False)["input_ids"]
        return [min(len(r), self.config.response_max_tokens) for r in ids]

    def _tensors(self, batch: list[Example]) -> dict[str, torch.Tensor]:
        enc, tokenizer, device = self.encoder, self.encoder.backbone.tokenizer, self.accelerator.device
        ids, mask = enc._left_pad([enc.tokenize([ex.query], ex.task)[0] for ex in batch])
        responses = tokenizer(
            [ex.response for ex in batch], add_special_tokens=False, truncation=True, max_length=self.config.response_max_tokens
        )["input_ids"]
        width = max(len(r) for r in responses)
        pad = enc.backbone.pad_token_id
        return {
            "ids": ids.to(device),
            "mask": mask.to(device),
            "response_ids": torch.tensor([r + [pad] * (width - len(r)) for r in responses], device=device),
            "response_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in responses], device=device),
            "targets": torch.tensor(np.stack([ex.target for ex in batch]), dtype=torch.float32, device=device),
        }

    def _states(self, t: dict[str, torch.Tensor]) -> torch.Tensor:
        states = self.model.special_states_cached_prefix if self.config.prefix_cache else self.model.special_states
        return states(t["ids"], t["mask"])

    def forward(self, batch: list[Example], recon_examples: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(L_align, L_recon, per-example cosine of embedding and teacher target) of one batch, with gradients,
        through the wrapped ``Objective``. L_recon runs on the first ``recon_examples`` examples only (all when
        None; 0 gives a zero L_recon)."""
        r = len(batch) if recon_examples is None else min(recon_examples, len(batch))
        return self.objective(**self._tensors(batch), recon_examples=r)

    @torch.no_grad()
    def calibrate(self, batch: list[Example]) -> dict[str, float]:
        """Rescale the fresh projections on one batch (see ``LLM2VecGen.calibrate``) and their learning rates
        with them: Adam's steps are about ``lr`` per weight whatever the weight's size, so a layer whose
        weights shrank by ``s`` gets ``s * lr`` (as if training the unscaled weights at ``lr``). Every process
        calibrates on the same whole batch, so all get the same weights and scales."""
        t = self._tensors(batch)
        target_norm = float(t["targets"].norm(dim=-1).mean())
        scales = self.model.calibrate(self._states(t), target_norm)
        factors = {"recon": scales["recon_scale"], "align": scales["align_scale"]}
        for group in self.optimizer.param_groups:
            group["scale"] *= factors.get(group["name"], 1.0)
        return scales

    @torch.no_grad()
    def evaluate(self, examples: list[Example]) -> dict[str, float]:
        """Mean held-out L_align, L_recon and embedding-teacher cosine (batches of ``batch_size``). Every process
        holds the same adapter and measures all of ``examples`` (no communication: no gradients, no buffers)."""
        if not examples:
            return {}
        size = self.config.batch_size
        totals = np.zeros(3)
        for start in range(0, len(examples), size):
            batch = examples[start : start + size]
            align, recon, cosine = self.forward(batch)
            totals += [float(align) * len(batch), float(recon) * len(batch), float(cosine.sum())]
        align, recon, cosine = totals / len(examples)
        return {"align": align, "recon": recon, "cosine": cosine}

    # ------------------------------------------------------------------ checkpoints

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        """Written by the main process (all processes hold the same state); the others wait for it."""
        if self.accelerator.is_main_process:
            state = {
                "step": self.step,
                "seconds": self.seconds,
                "adapter": self.model.adapter_state_dict(),
                "optimizer": self.optimizer.state_dict(),  # param groups keep their lr scales
                "config": asdict(self.config),
                "n_train": len(self.train_set),
                "recon_before": self.recon_before,
            }
            tmp = self.checkpoint_path.with_suffix(".tmp")
            torch.save(state, tmp)
            os.replace(tmp, self.checkpoint_path)  # a kill mid-write never leaves a torn checkpoint
        self.accelerator.wait_for_everyone()

    def load_checkpoint(self) -> bool:
        """Every process loads the same checkpoint."""
        if not self.checkpoint_path.is_file():
            return False
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)  # copied onto each parameter's device below
        made = (state["n_train"], state["config"]["batch_size"], state["config"].get("group_by_length", False), sorted(state["config"].get("train", TRAIN_GROUPS)))
        this = (len(self.train_set), self.config.batch_size, self.config.group_by_length, sorted(self.config.train))
        if made != this:
            raise ValueError(
                f"{self.checkpoint_path} was made for (examples, batch size, grouped by length, trained groups) = {made}; "
                f"this run has {this}, so its batches would differ. Use another --out folder or delete the checkpoint to start over."
            )
        self.model.load_state_dict(state["adapter"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.seconds = state["step"], state["seconds"]
        self.recon_before = state.get("recon_before")
        log.info("resumed from %s at step %d/%d", self.checkpoint_path, self.step, len(self.steps))
        return True

    # ------------------------------------------------------------------ the loop

    def run(self, resume: bool = True, stop_at_step: int | None = None, time_budget_s: float | None = None) -> dict:
        """Train from the checkpoint (if ``resume``) to the end, or until ``stop_at_step`` / the time budget,
        checkpointing on the way out; the report and adapter are written only when the run is complete."""
        deadline = None if time_budget_s is None else time.perf_counter() + time_budget_s
        report = self.resume(resume)
        main = self.accelerator.is_main_process
        with self.loss_log(resume) as write_row, stop_requests() as stop, tqdm(total=len(self.steps), initial=self.step, desc="train", unit="step", disable=not main) as bar:
            while self.step < len(self.steps):
                stopping, signalled = self.should_stop(stop_at_step, deadline, stop.requested)
                if stopping:
                    self.save_checkpoint()
                    log.info("stopping at step %d/%d with a checkpoint; re-run to resume", self.step, len(self.steps))
                    if signalled:
                        raise KeyboardInterrupt
                    return {"steps": self.step, "complete": False}
                self.log(self.train_step(), write_row, bar)
                if self.step % self.config.checkpoint_every == 0 or self.step == len(self.steps):
                    self.save_checkpoint()
                if self.config.eval_every and self.step % self.config.eval_every == 0:
                    log.info("step %d held-out %s", self.step, self.evaluate(self.held_out))
        return self.finish(report)

    def resume(self, resume: bool) -> dict:
        """Load the checkpoint (or drop it), and return the report so far: the held-out numbers before
        training (and after calibration, which a fresh run does here), written now so that a resumed run
        keeps the untrained numbers instead of re-measuring a trained adapter."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        report_path = self.out_dir / "report.json"
        if resume:
            self.load_checkpoint()
        elif self.checkpoint_path.exists() and self.accelerator.is_main_process:
            self.checkpoint_path.unlink()
        report = json.loads(report_path.read_text()) if resume and report_path.is_file() and self.step else {}
        self.accelerator.wait_for_everyone()  # every process has read the old files before the main one rewrites them
        if self.data_summary is not None:
            report["data"] = self.data_summary
        if "held_out_before" not in report:
            report["held_out_before"] = self.evaluate(self.held_out)
            log.info("held-out before training %s", report["held_out_before"])
            if self.held_out_documents:
                report["held_out_documents_before"] = self.evaluate(self.held_out_documents)
        if self.step == 0 and self.config.calibrate:
            report["calibration"] = self.calibrate([self.train_set[i] for i in self.steps[0]])
            report["held_out_calibrated"] = self.evaluate(self.held_out)
            log.info("calibrated the projections %s; held-out %s", report["calibration"], report["held_out_calibrated"])
        if self.keeps_embedding and self.recon_before is None:  # the recon that align was made for
            if self.step:
                raise ValueError(f"{self.checkpoint_path} does not hold the recon its align was made for; start over with --restart")
            self.recon_before = (self.model.recon.weight.detach().clone(), self.model.recon.bias.detach().clone())
        if self.accelerator.is_main_process:
            report_path.write_text(json.dumps(report, indent=2) + "\n")
        return report

    @property
    def keeps_embedding(self) -> bool:
        """Only recon trains (training for decoding only): at the end align is re-expressed for the new recon
        (``LLM2VecGen.keep_embedding``), so the embeddings stay what they were, up to fp32 rounding."""
        return set(self.config.train) == {"recon"}

    def should_stop(self, stop_at_step: int | None, deadline: float | None, signalled: bool) -> tuple[bool, bool]:
        """(stop now, a signal asked for it): decided together, so that all processes stop at the same step
        when any of them is signalled or out of time."""
        stopping = self.step == stop_at_step or (deadline is not None and time.perf_counter() > deadline) or signalled
        flags = self.accelerator.reduce(torch.tensor([float(stopping), float(signalled)], device=self.accelerator.device), "max")
        return bool(flags[0]), bool(flags[1])

    def my_share(self, batch: list[int]) -> tuple[list[int], int, float, float]:
        """This process's part of a global batch of example indices: (its examples, how many of them L_recon reads,
        the weights of its L_align and L_recon).

        Process i of N takes examples i, i+N, ... (the global batch's first R examples, which L_recon reads,
        are spread over the processes too). DDP averages gradients over processes, so each process's loss
        is weighted to make that average the global batch's: its L_align (a mean over its examples) by
        N * its examples / B, its L_recon (a mean over its response tokens) by N * its tokens / the global
        batch's recon tokens. With one process both weights are exactly 1."""
        n, i = self.accelerator.num_processes, self.accelerator.process_index
        mine = batch[i::n]
        recon_global = len(batch) if self.config.recon_batch_size is None else min(self.config.recon_batch_size, len(batch))
        recon_mine = len(range(i, recon_global, n))
        tokens = sum(self.lengths[j] for j in batch[:recon_global])
        recon_weight = n * sum(self.lengths[j] for j in mine[:recon_mine]) / tokens if tokens else 0.0
        return mine, recon_mine, n * len(mine) / len(batch), recon_weight

    def train_step(self) -> dict[str, float]:
        """One optimiser step on the global batch ``steps[step]``; returns its losses (over the global batch)."""
        started = time.perf_counter()
        lr = get_lr(self.step, self.config.lr, self.warmup, len(self.steps))
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["scale"]
        batch = self.steps[self.step]
        mine, recon_examples, align_weight, recon_weight = self.my_share(batch)
        align, recon, cosine = self.forward([self.train_set[i] for i in mine], recon_examples)
        align, recon = align * align_weight, recon * recon_weight  # this process's share of the global batch's losses
        loss = self.config.align_weight * align + self.config.recon_weight * recon
        self.accelerator.backward(loss)  # DDP: gradients averaged over processes = the global batch's gradients
        self.accelerator.clip_grad_norm_(self.model.trainable_parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        cosine_share = cosine.sum() * self.accelerator.num_processes / len(batch)
        means = self.accelerator.reduce(torch.stack([loss.detach(), align.detach(), recon.detach(), cosine_share]), "mean").tolist()
        elapsed = time.perf_counter() - started
        self.seconds += elapsed
        self.step += 1
        return dict(zip(["loss", "align", "recon", "cosine"], means), lr=lr, seconds=elapsed)

    @contextmanager
    def loss_log(self, resume: bool):
        """``loss.csv`` (main process; elsewhere the writer is None), cut back to the checkpoint's step on resume."""
        if not self.accelerator.is_main_process:
            yield None
            return
        csv_path = self.out_dir / "loss.csv"
        append = bool(resume and csv_path.is_file() and self.step)
        if append:  # a run killed between checkpoints logged steps it will now redo
            rows = list(csv.reader(open(csv_path)))
            kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= self.step]
            with open(csv_path, "w", newline="") as f:
                csv.writer(f).writerows(kept)
        with open(csv_path, "a" if append else "w", newline="") as f:
            writer = csv.writer(f)
            if not append:
                writer.writerow(["step", "loss", "align", "recon", "cosine", "lr", "seconds"])

            def write_row(row: list) -> None:
                writer.writerow(row)
                f.flush()

            yield write_row

    def log(self, losses: dict[str, float], write_row, bar) -> None:
        """One row of ``loss.csv`` and the progress bar, for the step just taken."""
        if write_row is not None:
            m = losses
            write_row([self.step, f"{m['loss']:.5f}", f"{m['align']:.6f}", f"{m['recon']:.4f}", f"{m['cosine']:.4f}", f"{m['lr']:.3e}", f"{m['seconds']:.2f}"])
        bar.update(1)
        bar.set_postfix(align=f"{losses['align']:.5f}", cos=f"{losses['cosine']:.3f}", recon=f"{losses['recon']:.3f}")

    def finish(self, report: dict) -> dict:
        """The complete run's report (held-out numbers after training) and adapter, written by the main process."""
        if self.recon_before is not None:
            self.model.keep_embedding(self.recon_before)
        report.update(
            complete=True,
            steps=self.step,
            train_examples=len(self.train_set),
            held_out_examples=len(self.held_out),
            train_seconds=round(self.seconds, 1),
            steps_per_second=round(self.step / self.seconds, 4) if self.seconds else None,
            held_out_after=self.evaluate(self.held_out),
            config=asdict(self.config),
        )
        if self.held_out_documents:
            report["held_out_documents_after"] = self.evaluate(self.held_out_documents)
        self.encoder.config.training = {k: report[k] for k in ("steps", "train_examples", "train_seconds", "held_out_before", "held_out_after")}
        if self.accelerator.is_main_process:
            (self.out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            plot_losses(self.out_dir / "loss.csv", self.out_dir / "loss.png")
            self.encoder.save(self.out_dir / "adapter")
        self.accelerator.wait_for_everyone()
        return report


def plot_losses(csv_path: Path, png_path: Path, smooth: int = 10) -> None:
    """One panel per logged curve (L_align, embedding-teacher cosine, L_recon) per step, with a moving average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    curves = [("align", "L_align (MSE to teacher)"), ("cosine", "cos(embedding, teacher)"), ("recon", "L_recon (CE of response)")]
    curves = [(key, title) for key, title in curves if key in rows[0]]  # loss.csv of older runs has no cosine
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5))
    for ax, (key, title) in zip(axes, curves):
        values = np.array([float(r[key]) for r in rows])
        ax.plot(steps, values, alpha=0.3, label="step")
        if len(values) >= smooth:
            ax.plot(steps[smooth - 1 :], np.convolve(values, np.ones(smooth) / smooth, mode="valid"), label=f"mean of {smooth}")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def fit(encoder: LLM2VecGenEncoder, train: list[Example], held_out: list[Example], config: FitConfig, out_dir: Path, resume: bool = True) -> dict:
    """Train ``encoder``'s adapter in place; returns the report (also written to ``out_dir``)."""
    torch.manual_seed(config.seed)
    return Trainer(encoder, train, held_out, config, out_dir).run(resume=resume)


