"""Indexing into real embedded Qdrant: round trip, idempotence, changes, deletions, interruptions, encoder identity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from indexer.corpus import load_folder
from indexer.pipeline import index_corpus
from indexer.search import search
from indexer.store import EncoderMismatchError, StoreError, collection_identity, connect, count, point_ids

from .conftest import write_docs


def run(client, encoder, root, settings, collection="docs", **kwargs):
    return index_corpus(client, encoder, load_folder(root), collection, settings=settings, show_progress=False, **kwargs)


def test_round_trip_finds_the_right_file_first(client, docs_dir, settings, baseline_encoder):
    report = run(client, baseline_encoder, docs_dir, settings)
    assert report.files == 4 and report.added == report.chunks == count(client, "docs") > 4
    for query, expected in [
        ("how do I reverse a list in python?", "lists.rst"),
        ("what should I feed my cat", "cats.md"),
        ("how does a steam locomotive work", "trains.html"),
        ("growing tomatoes", "gardening.txt"),
    ]:
        hits = search(client, baseline_encoder, "docs", query, k=3).hits
        assert os.path.basename(hits[0].source) == expected, (query, [h.source for h in hits])
        assert hits[0].score >= hits[-1].score


def test_payload_fields(client, docs_dir, settings, baseline_encoder):
    run(client, baseline_encoder, docs_dir, settings)
    point = client.scroll("docs", limit=100, with_payload=True)[0]
    payloads = {(p.payload["title"], p.payload["section"]): p.payload for p in point}
    sorting = payloads[("Python lists", "Sorting")]
    assert "sorted(items)" in sorting["text"]
    assert sorting["source"].endswith("python/lists.rst") and os.path.isabs(sorting["source"])
    assert sorting["corpus"] == str(docs_dir.resolve())
    assert sorting["encoder"] == "all-minilm-l6-v2" and sorting["adapter"] is None
    assert isinstance(sorting["chunk_index"], int) and sorting["keywords"] == []


def test_reindex_adds_nothing_and_changes_replace_chunks(client, docs_dir, settings, baseline_encoder):
    first = run(client, baseline_encoder, docs_dir, settings)
    again = run(client, baseline_encoder, docs_dir, settings)
    assert (again.added, again.removed, again.unchanged) == (0, 0, first.chunks)
    assert count(client, "docs") == first.chunks

    # change one file: its old chunks go, its new ones come, the rest is untouched
    (docs_dir / "notes" / "gardening.txt").write_text("Roses like clay soil, morning sun and pruning in late winter.\n")
    changed = run(client, baseline_encoder, docs_dir, settings)
    assert changed.added >= 1 and changed.removed >= 1
    assert count(client, "docs") == changed.chunks
    texts = [p.payload["text"] for p in client.scroll("docs", limit=100, with_payload=True)[0]]
    assert any("Roses" in t for t in texts) and not any("Tomatoes" in t for t in texts)
    assert os.path.basename(search(client, baseline_encoder, "docs", "pruning roses", 1).hits[0].source) == "gardening.txt"

    # delete one file: its chunks are removed
    (docs_dir / "pets" / "cats.md").unlink()
    deleted = run(client, baseline_encoder, docs_dir, settings)
    assert deleted.added == 0 and deleted.removed >= 2
    sources = {p.payload["source"] for p in client.scroll("docs", limit=100, with_payload=True)[0]}
    assert not any(s.endswith("cats.md") for s in sources)
    assert count(client, "docs") == deleted.chunks


def test_other_corpora_in_the_collection_are_untouched(client, tmp_path, docs_dir, settings, baseline_encoder):
    other = write_docs(tmp_path / "other", {"space.md": "# Space\n\nThe Moon orbits the Earth every 27 days.\n"})
    a = run(client, baseline_encoder, docs_dir, settings)
    b = run(client, baseline_encoder, other, settings)
    assert b.removed == 0 and count(client, "docs") == a.chunks + b.chunks
    assert run(client, baseline_encoder, docs_dir, settings).removed == 0


def test_a_glob_or_limit_run_indexes_a_subset_and_deletes_nothing_else(client, docs_dir, settings, baseline_encoder):
    full = run(client, baseline_encoder, docs_dir, settings)
    subset = index_corpus(client, baseline_encoder, load_folder(docs_dir, glob="pets/*"), "docs", settings=settings, show_progress=False)
    assert subset.removed == 0 and count(client, "docs") == full.chunks
    limited = index_corpus(client, baseline_encoder, load_folder(docs_dir, limit=1), "docs", settings=settings, show_progress=False)
    assert limited.removed == 0 and count(client, "docs") == full.chunks
    (docs_dir / "notes" / "gardening.txt").unlink()  # really gone: its chunks go, even in a subset run
    gone = index_corpus(client, baseline_encoder, load_folder(docs_dir, glob="pets/*"), "docs", settings=settings, show_progress=False)
    assert gone.removed >= 1 and "notes/gardening.txt" not in {p.payload["path"] for p in client.scroll("docs", limit=100)[0]}


def test_a_file_unreadable_this_time_keeps_its_chunks_one_skipped_for_good_does_not(docs_dir):
    from indexer.corpus import Skipped
    from indexer.pipeline import removable_paths

    corpus = load_folder(docs_dir)
    root = corpus.root
    corpus.docs = [d for d in corpus.docs if not d.source.endswith(("cats.md", "lists.rst"))]
    corpus.skipped += [Skipped(f"{root}/pets/cats.md", "unreadable: Permission denied"), Skipped(f"{root}/python/lists.rst", "empty (no text)"),
                       Skipped(f"{root}/trains.html", "not chunked: RuntimeError: tokenizer gave up")]
    removable = removable_paths(corpus)
    assert not removable("pets/cats.md") and removable("python/lists.rst")
    assert not removable("trains.html")  # a chunking failure this time is not a verdict on the file
    assert removable("notes/gardening.txt")  # read this run: its old chunks are stale
    assert removable("deleted/long-gone.md") and removable(None)


def test_a_moved_files_old_chunks_are_hidden_as_soon_as_the_run_is_planned(client, docs_dir, settings, baseline_encoder):
    from indexer.permissions import NOBODY
    from indexer.pipeline import plan_index

    run(client, baseline_encoder, docs_dir, settings)
    (docs_dir / "secret").mkdir()
    (docs_dir / "pets" / "cats.md").rename(docs_dir / "secret" / "cats.md")
    plan = plan_index(client, baseline_encoder, load_folder(docs_dir), "docs", settings=settings, show_progress=False)  # a run killed here
    assert plan.stale
    old = client.retrieve("docs", ids=plan.stale, with_payload=True)
    assert old and all(p.payload["readers"] == [NOBODY] and p.payload["path"] == "pets/cats.md" for p in old)
    assert all(h.source.endswith("secret/cats.md") or "cats" not in h.source for h in search(client, baseline_encoder, "docs", "cats", k=10).hits)


class Interrupt(Exception):
    """A run stopped after its first durable batch (as by Ctrl-C)."""


def stop_after_first_batch(done: int, total: int) -> None:
    if done < total:
        raise Interrupt


def test_interrupted_run_then_rerun_gives_exact_count(client, docs_dir, settings, baseline_encoder):
    expected = len(point_ids(client, "docs")) if client.collection_exists("docs") else 0
    assert expected == 0

    with pytest.raises(Interrupt):
        run(client, baseline_encoder, docs_dir, settings, batch_size=3, on_batch=stop_after_first_batch)
    assert count(client, "docs") == 3
    report = run(client, baseline_encoder, docs_dir, settings, batch_size=3)
    assert report.unchanged == 3 and report.added == report.chunks - 3
    assert count(client, "docs") == report.chunks


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from encoder import get_settings, load_encoder
    from indexer.corpus import load_folder
    from indexer.pipeline import index_corpus
    from indexer.store import connect

    def slow(done, total):
        print("batch", done, total, flush=True)
        time.sleep(30)  # the parent kills us here, mid-run

    with connect() as client:
        index_corpus(client, load_encoder("baseline", device="cpu"), load_folder(sys.argv[1]), "docs",
                     settings=get_settings(), batch_size=2, show_progress=False, on_batch=slow)
    """
)


def test_kill_9_mid_run_then_rerun_gives_exact_count(tmp_path, docs_dir, settings, baseline_encoder):
    env = {**os.environ, "GENSEARCH_QDRANT_PATH": str(settings.qdrant_path), "GENSEARCH_CHUNK_SIZE": str(settings.chunk_size),
           "GENSEARCH_CHUNK_OVERLAP": str(settings.chunk_overlap)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(docs_dir)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = ""
        while line is not None and not line.startswith("batch"):  # LlamaIndex may print notes first
            line = proc.stdout.readline() or None
        assert line and line.startswith("batch 2 "), line
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with connect(settings) as client:  # the lock of the killed process is gone
        assert count(client, "docs") == 2
        report = run(client, baseline_encoder, docs_dir, settings)
        assert report.added == report.chunks - 2
        assert count(client, "docs") == report.chunks
        assert point_ids(client, "docs") == point_ids(client, "docs", str(docs_dir.resolve()))


def test_collection_refuses_another_encoder(client, docs_dir, settings, baseline_encoder, smol_encoder):
    run(client, baseline_encoder, docs_dir, settings)
    assert collection_identity(client, "docs").encoder == "all-minilm-l6-v2"
    with pytest.raises(EncoderMismatchError, match="all-minilm-l6-v2.*llm2vec-gen"):
        run(client, smol_encoder, docs_dir, settings)
    with pytest.raises(EncoderMismatchError):
        search(client, smol_encoder, "docs", "cats")
    with pytest.raises(StoreError, match="does not exist"):
        search(client, baseline_encoder, "nope", "cats")


def test_recreate_rebuilds_with_another_encoder(client, tmp_path, settings, baseline_encoder, smol_encoder):
    root = write_docs(tmp_path / "tiny", {"a.md": "# A\n\nCats purr.\n"})
    run(client, baseline_encoder, root, settings)
    report = run(client, smol_encoder, root, settings, recreate=True)
    assert report.added == count(client, "docs") == 1
    identity = collection_identity(client, "docs")
    assert identity.encoder == "llm2vec-gen" and identity.model == "smollm2-135m-instruct" and identity.adapter


def test_llm2vec_gen_payload_has_lens_words_from_the_same_pass(client, tmp_path, settings, smol_encoder):
    import numpy as np

    from indexer.embedding import embed_documents

    texts = ["Cats purr and chase mice.", "Reverse a Python list with reversed()."]
    vectors, words = embed_documents(smol_encoder, texts)
    np.testing.assert_allclose(vectors, smol_encoder.encode(texts, task="document"), atol=1e-5)
    assert words == smol_encoder.lens_words(texts, task="document")

    root = write_docs(tmp_path / "tiny", {"a.md": "# A\n\nCats purr and chase mice.\n"})
    run(client, smol_encoder, root, settings)
    (point,) = client.scroll("docs", limit=10, with_payload=True)[0]
    assert point.payload["keywords"] and all(isinstance(w, str) for w in point.payload["keywords"])
    assert point.payload["encoder"] == "llm2vec-gen" and point.payload["model"] == "smollm2-135m-instruct"
    assert len(point.payload["adapter"]) == 16


def test_fused_mode_stores_teacher_vectors_and_reloads_from_the_collection(client, docs_dir, settings, smol_encoder):
    """llm2vec-gen-fused: documents are the teacher's (no adapter in the identity), queries go through LLM2Vec-Gen."""
    import numpy as np

    from encoder import load_encoder
    from encoder.asymmetric import AsymmetricEncoder
    from indexer.identity import load_encoder_for

    teacher = load_encoder("teacher", device="cpu")
    fused = AsymmetricEncoder(smol_encoder, teacher, fuse=True)
    run(client, fused, docs_dir, settings)
    identity = collection_identity(client, "docs")
    assert (identity.encoder, identity.model, identity.adapter, identity.dim) == ("llm2vec-gen-fused", "all-mpnet-base-v2", None, 768)
    assert identity.load_name == "llm2vec-gen-fused"

    run(client, teacher, docs_dir, settings, collection="teacher")

    def vectors(collection):
        points = client.scroll(collection, limit=100, with_payload=True, with_vectors=True)[0]
        return {(p.payload["source"], p.payload["chunk_index"]): (np.array(p.vector[""]), p.payload["keywords"]) for p in points}

    ours, theirs = vectors("docs"), vectors("teacher")
    assert ours.keys() == theirs.keys()  # the teacher's tokenizer sized the chunks
    assert min(float(ours[k][0] @ theirs[k][0]) for k in ours) > 0.9999
    assert all(words == [] for _, words in ours.values())  # the teacher has no logit lens

    hits = search(client, fused, "docs", "what should I feed my cat", k=1).hits
    assert os.path.basename(hits[0].source) == "cats.md"
    with pytest.raises(EncoderMismatchError):
        search(client, teacher, "docs", "cats")  # same vectors, other query encoder: named, not guessed
    reloaded = load_encoder_for(identity, settings.model_copy(update={"backbone": "test", "device": "cpu", "dtype": "float32"}))
    assert isinstance(reloaded, AsymmetricEncoder) and reloaded.fuse and reloaded.generative.backbone.name == "smollm2-135m-instruct"


def test_a_re_run_reads_only_files_whose_size_or_time_changed(client, docs_dir, settings, baseline_encoder):
    """Issue 34: a re-run read and re-chunked every file. The collection's own payload is the manifest: a file
    stored complete with the same size and modification time is not opened; its readers still follow the rules."""
    import yaml

    from indexer.pipeline import chunking_fingerprint, known_files

    def rerun():
        corpus = load_folder(docs_dir, known=known_files(client, "docs", str(docs_dir.resolve()), chunking_fingerprint(settings)))
        return corpus, index_corpus(client, baseline_encoder, corpus, "docs", settings=settings, show_progress=False)

    first = run(client, baseline_encoder, docs_dir, settings)
    corpus, again = rerun()
    assert (again.read, len(corpus.unchanged), again.added, again.removed, again.chunks) == (0, 4, 0, 0, first.chunks)
    (docs_dir / "pets" / "cats.md").write_text("# Cats\n\nCats sleep sixteen hours a day.\n")
    (docs_dir / ".gensearch.yml").write_text(yaml.safe_dump({"default": "public", "rules": [{"paths": ["notes/**"], "groups": ["garden"]}]}))
    corpus, edited = rerun()
    assert edited.read == 1 and edited.added >= 1 and edited.removed >= 1 and edited.updated >= 1
    points = client.scroll("docs", limit=100, with_payload=["path", "readers"])[0]
    assert {p.payload["path"]: p.payload["readers"] for p in points}["notes/gardening.txt"] == ["group:garden"]  # relabelled, not read
    assert count(client, "docs") == edited.chunks


def test_a_file_a_killed_run_left_half_written_is_read_again(client, docs_dir, settings, baseline_encoder):
    from indexer.pipeline import chunking_fingerprint, known_files

    with pytest.raises(Interrupt):
        run(client, baseline_encoder, docs_dir, settings, batch_size=1, on_batch=stop_after_first_batch)
    known = known_files(client, "docs", str(docs_dir.resolve()), chunking_fingerprint(settings))
    assert len(known) < 4  # the file with a chunk missing is not known complete
    report = index_corpus(client, baseline_encoder, load_folder(docs_dir, known=known), "docs", settings=settings, show_progress=False)
    assert report.read >= 1 and count(client, "docs") == report.chunks
    assert len(known_files(client, "docs", str(docs_dir.resolve()), chunking_fingerprint(settings))) == 4


def test_files_chunked_with_other_settings_are_read_again(client, docs_dir, settings, baseline_encoder):
    from indexer.pipeline import chunking_fingerprint, known_files

    run(client, baseline_encoder, docs_dir, settings)
    assert len(known_files(client, "docs", str(docs_dir.resolve()), chunking_fingerprint(settings))) == 4
    bigger = settings.model_copy(update={"chunk_size": 96})
    assert known_files(client, "docs", str(docs_dir.resolve()), chunking_fingerprint(bigger)) == {}
