"""The LLM2Vec-Gen training loop: L = w_recon * L_recon + w_align * L_align, only the adapter trains.

One step, for a batch of (query, response, teacher vector) examples:

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

Everything a run needs to resume lives in ``out_dir``: ``checkpoint.pt`` (adapter, optimiser with
each group's lr scale, step; written every ``checkpoint_every`` steps, after the step during which Ctrl-C or
SIGTERM arrived, and at the end),
``loss.csv`` (one row per step), ``loss.png`` and ``report.json``; the trained adapter goes to
``out_dir/adapter``. Batches are a pure function of (seed, epoch), so a resumed run sees exactly the
batches the killed one would have. ``accelerate`` places tensors (CPU or CUDA).
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
from accelerate import Accelerator
from tqdm.auto import tqdm

from encoder.llm2vec_gen import LLM2VecGenEncoder

log = logging.getLogger(__name__)


@dataclass
class Example:
    query: str  # the text the encoder reads after its instruction: a query, or a passage when task="document"
    response: str  # the backbone's answer, ending with its real EOS string when it stopped by itself
    target: np.ndarray  # teacher embedding of the response, (D,)
    source: str = ""  # the query's source group ("chatterbot", "evals", "pyrit"), for the report
    task: str = "query"  # which instruction the encoder puts before ``query`` ("query" or "document")


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
    seed: int = 0
    mixed_precision: str = "no"  # "bf16" on GPUs (and CPUs with native bf16)
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


class Trainer:
    """Holds the model, optimiser and data of one run; ``run()`` trains to the end or to Ctrl-C."""

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
        self.accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=encoder.device.type == "cpu")
        self.model = encoder.model
        lengths = self.response_lengths(train) if config.group_by_length else None
        self.steps = plan_batches(len(train), config.batch_size, config.epochs, config.seed, lengths)
        if lengths is not None:
            ungrouped = plan_batches(len(train), config.batch_size, config.epochs, config.seed)
            log.info("grouped by length, L_recon pads to %d response tokens (%d without grouping)", padded_tokens(self.steps, lengths), padded_tokens(ungrouped, lengths))
        self.warmup = min(config.warmup_steps, max(1, len(self.steps) // 10))
        groups = [{**g, "scale": config.lr_scales.get(g["name"], 1.0)} for g in self.model.parameter_groups()]
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
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
        model = self.accelerator.unwrap_model(self.model)
        states = model.special_states_cached_prefix if self.config.prefix_cache else model.special_states
        return states(t["ids"], t["mask"])

    def forward(self, batch: list[Example], recon_examples: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(L_align, L_recon, per-example cosine of embedding and teacher target) of one batch, with gradients.

        L_recon runs on the first ``recon_examples`` examples only (all when None; 0 gives a zero L_recon)."""
        model = self.accelerator.unwrap_model(self.model)
        t = self._tensors(batch)
        p, e = model.project(self._states(t))
        cosine = torch.nn.functional.cosine_similarity(e.detach(), t["targets"], dim=-1)
        r = len(batch) if recon_examples is None else min(recon_examples, len(batch))
        if r == 0:
            recon = p.sum() * 0.0
        else:
            width = int(t["response_mask"][:r].sum(1).max())  # the recon rows' own padding width
            recon = model.recon_loss(p[:r], t["response_ids"][:r, :width], t["response_mask"][:r, :width])
        return model.align_loss(e, t["targets"]), recon, cosine

    @torch.no_grad()
    def calibrate(self, batch: list[Example]) -> dict[str, float]:
        """Rescale the fresh projections on one batch (see ``LLM2VecGen.calibrate``) and their learning rates
        with them: Adam's steps are about ``lr`` per weight whatever the weight's size, so a layer whose
        weights shrank by ``s`` gets ``s * lr`` (as if training the unscaled weights at ``lr``)."""
        t = self._tensors(batch)
        target_norm = float(t["targets"].norm(dim=-1).mean())
        scales = self.accelerator.unwrap_model(self.model).calibrate(self._states(t), target_norm)
        factors = {"recon": scales["recon_scale"], "align": scales["align_scale"]}
        for group in self.optimizer.param_groups:
            group["scale"] *= factors.get(group["name"], 1.0)
        return scales

    @torch.no_grad()
    def evaluate(self, examples: list[Example]) -> dict[str, float]:
        """Mean held-out L_align, L_recon and embedding-teacher cosine (batches of ``batch_size``)."""
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
        state = {
            "step": self.step,
            "seconds": self.seconds,
            "adapter": self.accelerator.unwrap_model(self.model).adapter_state_dict(),
            "optimizer": self.optimizer.state_dict(),  # param groups keep their lr scales
            "config": asdict(self.config),
            "n_train": len(self.train_set),
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)  # a kill mid-write never leaves a torn checkpoint

    def load_checkpoint(self) -> bool:
        if not self.checkpoint_path.is_file():
            return False
        state = torch.load(self.checkpoint_path, map_location=self.accelerator.device, weights_only=False)
        made = (state["n_train"], state["config"]["batch_size"], state["config"].get("group_by_length", False))
        this = (len(self.train_set), self.config.batch_size, self.config.group_by_length)
        if made != this:
            raise ValueError(
                f"{self.checkpoint_path} was made for (examples, batch size, grouped by length) = {made}; "
                f"this run has {this}, so its batches would differ. Use another --out folder or delete the checkpoint to start over."
            )
        self.accelerator.unwrap_model(self.model).load_state_dict(state["adapter"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.seconds = state["step"], state["seconds"]
        log.info("resumed from %s at step %d/%d", self.checkpoint_path, self.step, len(self.steps))
        return True

    # ------------------------------------------------------------------ the loop

    def run(self, resume: bool = True, stop_at_step: int | None = None, time_budget_s: float | None = None) -> dict:
        """Train from the checkpoint (if ``resume``) to the end, or until ``stop_at_step`` / the time budget,
        checkpointing on the way out; the report and adapter are written only when the run is complete."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        session_started = time.perf_counter()
        if resume:
            self.load_checkpoint()
        elif self.checkpoint_path.exists():
            self.checkpoint_path.unlink()
        report_path = self.out_dir / "report.json"
        report = json.loads(report_path.read_text()) if resume and report_path.is_file() and self.step else {}
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
        # written now so that a resumed run keeps the untrained numbers instead of re-measuring a trained adapter
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        csv_path = self.out_dir / "loss.csv"
        new_csv = not (resume and csv_path.is_file() and self.step)
        if not new_csv:  # a run killed between checkpoints logged steps it will now redo
            rows = list(csv.reader(open(csv_path)))
            kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= self.step]
            with open(csv_path, "w", newline="") as f:
                csv.writer(f).writerows(kept)
        log_file = open(csv_path, "w" if new_csv else "a", newline="")
        writer = csv.writer(log_file)
        if new_csv:
            writer.writerow(["step", "loss", "align", "recon", "cosine", "lr", "seconds"])
        bar = tqdm(total=len(self.steps), initial=self.step, desc="train", unit="step")
        with stop_requests() as stop:
            try:
                while self.step < len(self.steps):
                    out_of_time = time_budget_s is not None and time.perf_counter() - session_started > time_budget_s
                    if self.step == stop_at_step or out_of_time or stop.requested:
                        self.save_checkpoint()
                        log.info("stopping at step %d/%d with a checkpoint; re-run to resume", self.step, len(self.steps))
                        if stop.requested:
                            raise KeyboardInterrupt
                        return {"steps": self.step, "complete": False}
                    started = time.perf_counter()
                    lr = get_lr(self.step, self.config.lr, self.warmup, len(self.steps))
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr * group["scale"]
                    batch = [self.train_set[i] for i in self.steps[self.step]]
                    align, recon, cosine = self.forward(batch, self.config.recon_batch_size)
                    loss = self.config.align_weight * align + self.config.recon_weight * recon
                    self.accelerator.backward(loss)
                    self.accelerator.clip_grad_norm_(self.accelerator.unwrap_model(self.model).trainable_parameters(), self.config.max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    elapsed = time.perf_counter() - started
                    self.seconds += elapsed
                    self.step += 1
                    writer.writerow([self.step, f"{loss.item():.5f}", f"{align.item():.6f}", f"{recon.item():.4f}", f"{cosine.mean().item():.4f}", f"{lr:.3e}", f"{elapsed:.2f}"])
                    log_file.flush()
                    bar.update(1)
                    bar.set_postfix(align=f"{align.item():.5f}", cos=f"{cosine.mean().item():.3f}", recon=f"{recon.item():.3f}")
                    if self.step % self.config.checkpoint_every == 0 or self.step == len(self.steps):
                        self.save_checkpoint()
                    if self.config.eval_every and self.step % self.config.eval_every == 0:
                        log.info("step %d held-out %s", self.step, self.evaluate(self.held_out))
            finally:
                bar.close()
                log_file.close()
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
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        plot_losses(csv_path, self.out_dir / "loss.png")
        self.encoder.config.training = {k: report[k] for k in ("steps", "train_examples", "train_seconds", "held_out_before", "held_out_after")}
        self.encoder.save(self.out_dir / "adapter")
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


