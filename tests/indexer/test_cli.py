"""`gensearch index / search / ask` end to end (baseline encoder, embedded Qdrant in a tmp dir)."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from app.cli import cli
from encoder.settings import get_settings


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(tmp_path / "qdrant"))
    monkeypatch.setenv("GENSEARCH_COLLECTION", "kb")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_index_search_json_and_reindex(env, docs_dir):
    (docs_dir / "bad.txt").write_bytes(b"\x00\x01binary\x00")
    first = invoke("index", str(docs_dir), "--encoder", "baseline")
    assert first.exit_code == 0, first.output
    assert "kb-all-minilm-l6-v2" not in first.output and "kb-baseline" in first.output
    assert "skipped" in first.output and "bad.txt: binary" in first.output

    again = invoke("index", str(docs_dir), "--encoder", "baseline")
    assert again.exit_code == 0 and "added 0 " in again.output

    out = invoke("search", "how do I sort a list", "-k", "2", "--collection", "kb-baseline", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["encoder"]["encoder"] == "all-minilm-l6-v2"  # loaded from the collection's record
    hit = data["hits"][0]
    assert set(hit) >= {"id", "score", "source", "text", "keywords"}
    assert os.path.basename(hit["source"]) == "lists.rst" and len(data["hits"]) == 2

    human = invoke("search", "steam engines", "-e", "baseline")
    assert human.exit_code == 0 and "trains.html" in human.stdout.splitlines()[0]

    chunks = json.loads(invoke("search", "cats and pets", "-k", "4", "-c", "kb-baseline", "--json").stdout)["hits"]
    documents = json.loads(invoke("search", "cats and pets", "-k", "4", "-c", "kb-baseline", "--json", "--per-document").stdout)["hits"]
    assert len({h["source"] for h in chunks}) < len(chunks)  # several chunks of one file...
    assert len({h["source"] for h in documents}) == len(documents) == 4  # ...one per document with --per-document


def test_errors_are_clear(env, docs_dir):
    assert invoke("index").exit_code == 2
    assert invoke("index", str(docs_dir), "--python-docs").exit_code == 2
    missing = invoke("index", str(docs_dir / "nope"), "-e", "baseline")
    assert missing.exit_code == 1 and "does not exist" in missing.output
    empty = invoke("search", "  ")
    assert empty.exit_code == 1 and "query is empty" in empty.output
    no_collection = invoke("search", "cats", "-c", "nothing")
    assert no_collection.exit_code == 1 and "does not exist" in no_collection.output
    assert invoke("index", str(docs_dir), "-e", "baseline").exit_code == 0
    huge = invoke("search", "word " * 600, "-e", "baseline")
    assert huge.exit_code == 1 and "limit is 512" in huge.output


def test_ask_json(env, tmp_path):
    from .conftest import write_docs

    root = write_docs(tmp_path / "kb", {"lists.md": "# Lists\n\nTo reverse a list in Python call items.reverse().\n"})
    assert invoke("index", str(root), "-e", "test").exit_code == 0
    out = invoke("ask", "How do I reverse a list?", "-c", "kb-test", "-k", "1", "--max-new-tokens", "4", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["answer"] and data["citations"][0]["source"].endswith("lists.md")


def test_the_default_encoder_gets_the_plain_collection_name():
    from indexer.cli import default_collection

    assert default_collection(None, "kb", "llm2vec-gen-fused") == "kb"
    assert default_collection("llm2vec-gen-fused", "kb", "llm2vec-gen-fused") == "kb"
    assert default_collection("baseline", "kb", "llm2vec-gen-fused") == "kb-baseline"
    assert default_collection("llm2vec-gen", "safety", "llm2vec-gen-fused") == "safety-llm2vec-gen"


def test_index_without_encoder_uses_the_configured_one(env, docs_dir, monkeypatch):
    monkeypatch.setenv("GENSEARCH_ENCODER", "baseline")
    get_settings.cache_clear()
    assert invoke("index", str(docs_dir)).exit_code == 0
    out = invoke("search", "how do I reverse a list", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["collection"] == "kb" and json.loads(out.output)["encoder"]["encoder"] == "all-minilm-l6-v2"


def test_a_collection_indexed_with_an_adapter_folder_reopens_with_it(env, docs_dir, tmp_path):
    """Issue row: `index --encoder path/to/adapter` then `search` (no --encoder) reloaded the installed adapter and
    refused the collection. The collection records the folder and search loads it."""
    import shutil

    from encoder.adapter import default_adapter_path
    from encoder.settings import get_settings

    installed = default_adapter_path("smollm2-135m-instruct", get_settings().adapters_path)
    mine = tmp_path / "my-adapter"
    shutil.copytree(installed, mine)
    from safetensors.torch import load_file, save_file

    tensors = load_file(mine / "adapter.safetensors")
    name = next(k for k in tensors if k.startswith("align"))
    tensors[name] = tensors[name] * 1.01  # another adapter: another digest
    save_file(tensors, mine / "adapter.safetensors")

    assert invoke("index", str(docs_dir), "--encoder", str(mine), "-c", "mine").exit_code == 0
    found = invoke("search", "what do cats eat", "-c", "mine", "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["encoder"]["adapter_path"] == str(mine.resolve())
