"""Indexer fixtures: the real baseline encoder, a small document folder, embedded Qdrant in tmp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from encoder import get_settings

DOCS = {
    "pets/cats.md": "# Cats\n\nCats are small furry pets. They purr, sleep most of the day and chase mice.\n\n"
    "## Feeding cats\n\nCats are carnivores: feed them meat or fish, never chocolate or onions.\n",
    "python/lists.rst": "Python lists\n============\n\nReversing\n---------\n\n"
    "To reverse a list in place call ``items.reverse()``; ``reversed(items)`` returns an iterator.\n\n"
    "Sorting\n-------\n\nUse ``sorted(items)`` for a new sorted list or ``items.sort()`` to sort in place.\n",
    "trains.html": "<html><head><title>Steam trains</title><style>p {color: red}</style></head><body>"
    "<h1>Steam trains</h1><p>A <b>steam locomotive</b> burns coal to boil water and pull trains on railway tracks.</p>"
    "<script>var x = 1;</script></body></html>",
    "notes/gardening.txt": "Tomatoes need six hours of sun a day, deep watering twice a week and a stake to climb.\n",
}


def write_docs(root: Path, docs: dict[str, str] = DOCS) -> Path:
    for name, text in docs.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture()
def docs_dir(tmp_path) -> Path:
    return write_docs(tmp_path / "docs")


@pytest.fixture()
def settings(tmp_path):
    """Settings with the embedded store in a tmp dir and small chunks (several per file)."""
    return get_settings().model_copy(update={"qdrant_path": tmp_path / "qdrant", "chunk_size": 48, "chunk_overlap": 8})


@pytest.fixture()
def client(settings):
    from indexer.store import connect

    with connect(settings) as c:
        yield c


@pytest.fixture(scope="session")
def baseline_encoder():
    """all-MiniLM-L6-v2: a trained encoder, so retrieval quality can be asserted."""
    from encoder import load_encoder

    return load_encoder("baseline", device="cpu")
