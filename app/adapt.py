"""The `gensearch adapt` job, shared by the CLI and the app: a collection's chunks (``indexer.adaptation``) ->
a fitted query adapter (``training.adapt``) -> recorded in the collection, so its every read path uses it.

Work files live in ``<run_dir>/adapt/<collection>/`` (questions) and ``<run_dir>/features/`` (the feature cache
shared with ``refit-align``): a killed run resumes from them;
the adapter goes to ``<adapters>/collections/<collection>-<time>/`` (the installed adapter with the refined
``align`` and the teacher's weight chosen for the collection) with ``adapt_report.json`` beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from encoder.settings import Settings

log = logging.getLogger(__name__)

Stage = Callable[[str, int, int], None]  # (stage name, done, total)


def work_dir(settings: Settings, collection: str) -> Path:
    return settings.run_dir / "adapt" / collection


def adapters_root(settings: Settings) -> Path:
    return settings.adapters_path / "collections"


def store_client(settings: Settings, client=None):
    """``client`` as a context (the app's open one), else a connection of its own (the CLI)."""
    from indexer.store import connect

    return contextlib.nullcontext(client) if client is not None else connect(settings)


def adapt_collection(settings: Settings, collection: str, max_chunks: int | None = 1000, config=None, progress: bool = True,
                     on_stage: Stage | None = None, restricted: bool = False, client=None) -> dict:
    """Adapt ``collection``'s queries to its documents (module docstring); returns the report (``adapter``: where it went).
    ``restricted``: learn from chunks not everyone may read too (``indexer.adaptation``); ``client``: an open store client."""
    from encoder.asymmetric import AsymmetricEncoder
    from encoder.generation import load_engine
    from indexer.adaptation import adaptation, check_adaptable, record_adapter, sample_chunks
    from indexer.identity import load_encoder_for
    from indexer.store import collection_identity
    from training.adapt import AdaptConfig, Chunk, adapt, dev_safety, general_rows
    from training.jsonl import read_jsonl
    from training.recipes import responses_path
    from training.targets import build_targets, load_targets, open_store

    config = config or AdaptConfig()
    started = time.perf_counter()
    with store_client(settings, client) as c:
        check_adaptable(c, collection)
        identity = collection_identity(c, collection)
        previous = adaptation(c, collection)
        rows = sample_chunks(c, collection, max_chunks, seed=config.seed, restricted=restricted)
    chunks = [Chunk(cid, text, np.asarray(vector, np.float32)) for cid, text, vector in rows]
    if previous:  # adapting again starts from the adapter the collection had before it was adapted
        identity = dataclasses.replace(identity, adapter_path=previous["previous_adapter_path"])
    encoder = load_encoder_for(identity, settings)
    assert isinstance(encoder, AsymmetricEncoder)
    generative, teacher = encoder.generative, encoder.teacher
    responses = list(read_jsonl(responses_path(None, settings, generative.backbone.name)))
    general = general_rows(responses, config.general, config.seed)
    store = open_store(settings.run_dir / "targets", teacher)
    build_targets(general, store, teacher, progress=progress)
    engine = load_engine(settings.generation_engine, generative.backbone, settings=settings, batch_size=16)
    work = work_dir(settings, collection)
    result = adapt(generative, teacher, engine, chunks, general, load_targets(general, store), work, config, progress=progress,
                   on_stage=on_stage, base_weight=encoder.teacher_weight, features=settings.run_dir / "features")
    out = adapters_root(settings) / f"{collection}-{time.strftime('%Y%m%d-%H%M%S')}"
    save_adapted(generative, result, out)
    result.report["safety"] = dev_safety(encoder, result.query_map, responses, store, progress)  # before/after the map
    report = {**result.report, "collection": collection, "restricted_chunks": restricted, "adapter": str(out), "base_adapter": str(generative.source),
              "seconds_total": round(time.perf_counter() - started, 1)}
    (out / "adapt_report.json").write_text(json.dumps(report, indent=2) + "\n")
    with store_client(settings, client) as c:
        record_adapter(c, collection, out, {k: report[k] for k in ("held_out", "questions", "chunks", "safety")} | {"fusion_weight": result.fusion_weight})
    log.info("adapted %s: adapter %s", collection, out)
    return report


def save_adapted(generative, result, out: Path) -> None:
    """The installed adapter with the refined align head, the chosen teacher's weight and the query map, into ``out``;
    the encoder in memory is left as it was."""
    import torch

    from encoder.query_map import QueryMap

    align = generative.model.align
    before = (align.weight.detach().clone(), align.bias.detach().clone(), generative.config, generative.query_map)
    try:
        with torch.no_grad():
            align.weight.copy_(torch.from_numpy(result.weight))
            align.bias.copy_(torch.from_numpy(result.bias))
        generative.config = dataclasses.replace(generative.config, fusion_weight=result.fusion_weight,
                                                training={**generative.config.training, "adapt": {"fusion_weight": result.fusion_weight}})
        generative.query_map = QueryMap(result.query_map) if result.query_map is not None else None
        generative.save(out)
    finally:
        with torch.no_grad():
            align.weight.copy_(before[0])
            align.bias.copy_(before[1])
        generative.config, generative.query_map = before[2], before[3]


def adapt_status(settings: Settings, collection: str, client=None) -> dict | None:
    """The collection's adaptation record (None: not adapted)."""
    from indexer.adaptation import adaptation

    with store_client(settings, client) as c:
        return adaptation(c, collection)


def undo_adapt(settings: Settings, collection: str, client=None) -> str | None:
    """Give the collection's queries back their adapter from before; returns the adapter that was in use."""
    from indexer.adaptation import undo_adapter

    with store_client(settings, client) as c:
        return undo_adapter(c, collection)
