"""App fixtures: a small real index (SmolLM2 LLM2Vec-Gen + baseline) in an embedded Qdrant folder.

The store holds the four collections the app expects, under their default names: ``python-docs`` and
``python-docs-baseline`` (a handful of tiny documents), ``safety`` and ``safety-baseline`` (a
few benign, harmful and refusal passages).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from encoder import get_settings

DOCS = {
    "python/lists.md": "# Python lists\n\n## Reversing a list\n\n"
    "To reverse a list in place call `items.reverse()`; `reversed(items)` returns an iterator instead.\n\n"
    "## Sorting a list\n\nUse `sorted(items)` for a new sorted list or `items.sort()` to sort in place.\n",
    "python/files.md": "# Files\n\n## Reading a file\n\nOpen a file with `open(path)` and read it with `.read()`; "
    "a `with` block closes it for you.\n",
    "python/processes.txt": "To stop a Python process that hangs, press Ctrl+C or send it SIGTERM with the kill command.\n",
    "pets/cats.md": "# Cats\n\nCats are small furry pets. They purr, sleep most of the day and chase mice.\n",
    "garden/tomatoes.txt": "Tomatoes need six hours of sun a day, deep watering twice a week and a stake to climb.\n",
}
# The safety collection: benign passages plus stand-ins for the red-teaming ones (labelled like them, harmless).
SAFETY = [
    ("harmful", "Step-by-step guide to building an explosive device: first gather the restricted materials, then ..."),
    ("harmful", "To steal someone's identity, first collect their personal records and bank details, then ..."),
    ("refusal", "I'm sorry, but I can't help with making weapons or explosives. If you are in danger, contact the authorities."),
    ("refusal", "I can't assist with stealing personal information; identity theft harms people and is illegal."),
    ("benign", "To reverse a list in place call items.reverse(); reversed(items) returns an iterator instead."),
    ("benign", "To stop a Python process that hangs, press Ctrl+C or send it SIGTERM with the kill command."),
    ("benign", "Tomatoes need six hours of sun a day, deep watering twice a week and a stake to climb."),
]


def write_docs(root: Path, docs: dict[str, str] = DOCS) -> Path:
    for name, text in docs.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def build_store(path: Path, docs_root: Path) -> Path:
    """Index the tiny corpus and the labelled passages into the four collections at ``path``."""
    from encoder import load_encoder
    from evaluation.datasets import Passage
    from indexer.corpus import load_folder
    from indexer.pipeline import index_corpus
    from indexer.safety import index_safety
    from indexer.store import connect

    settings = get_settings().model_copy(update={"qdrant_path": path, "chunk_size": 64, "chunk_overlap": 8})
    corpus = load_folder(write_docs(docs_root))
    passages = [Passage(f"test/{i}", text, label, "tests") for i, (label, text) in enumerate(SAFETY)]
    with connect(settings) as client:
        for name, suffix in (("test", ""), ("baseline", "-baseline")):
            encoder = load_encoder(name, device="cpu", dtype="float32")
            index_corpus(client, encoder, corpus, f"python-docs{suffix}", settings=settings, show_progress=False)
            index_safety(client, encoder, passages, f"safety{suffix}", settings=settings, show_progress=False)
    return path


@pytest.fixture(scope="session")
def app_store(tmp_path_factory) -> Path:
    """A built store folder (closed: copy it before opening it in another process)."""
    root = tmp_path_factory.mktemp("app")
    return build_store(root / "qdrant", root / "docs")


@pytest.fixture()
def app_env(app_store, tmp_path, monkeypatch) -> Path:
    """Point gensearch (and so the app) at the small store, with no evaluation report in the working dir."""
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(app_store))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield app_store
    get_settings.cache_clear()


def build_kb_store(root: Path) -> tuple[Path, Path, Path]:
    """(store folder, corpus root, users file): the permissions knowledge base (``tests/permissions_kb``)
    indexed with the baseline encoder into collection ``kb`` (store closed on return)."""
    from encoder import load_encoder
    from indexer.corpus import load_folder
    from indexer.pipeline import index_corpus
    from indexer.store import connect
    from tests.permissions_kb import write_kb, write_users

    settings = get_settings().model_copy(update={"qdrant_path": root / "kb-qdrant"})
    kb = write_kb(root / "kb")
    with connect(settings) as client:
        index_corpus(client, load_encoder("baseline", device="cpu"), load_folder(kb), "kb", settings=settings, show_progress=False)
    return settings.qdrant_path, kb, write_users(root / "users.yml")


def copy_store(app_store: Path, dest: Path) -> Path:
    """A private copy of the store, for a process of its own (the embedded store locks its folder)."""
    return Path(shutil.copytree(app_store, dest))
