"""Permissions property: whatever the operator does, no search by anyone returns a chunk they may not read.

A seeded generator plays thousands of steps on a real folder and a real embedded Qdrant: files added, edited,
moved between permission groups and deleted; rules files rewritten, emptied and deleted; full runs, sub-folder
runs and runs killed after their first batch, with and without ``--allow-widen``. The oracle computes each
document's readers from the rules the generator wrote, independently of ``indexer.permissions``. After
every run, every user searches in every mode and each hit must be a document that user may read; after a run
that completes, the stored chunks carry exactly the oracle's readers; a refused run changes nothing.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from indexer.corpora import access_for, corpus_records, locate
from indexer.corpus import load_folder
from indexer.filters import SearchFilter
from indexer.permissions import NOBODY, PUBLIC, PermissionsError, Principal
from indexer.pipeline import index_corpus
from indexer.search import search

STEPS = int(os.environ.get("GENSEARCH_PROPERTY_STEPS", 2000))
FOLDERS = ("", "hr", "pub", "eng", "eng/secret")
RULE_FOLDERS = ("", "eng")  # where rules files live
USERS = {"alice": ("hr", "staff"), "bob": ("staff",), "carol": ("eng",), "dave": ()}
CALLERS = [Principal.anonymous(), *(Principal(u, g) for u, g in USERS.items())]
WORDS = "memo budget deploy salary holiday keys release policy travel laptop".split()
MODES = ("dense", "sparse", "hybrid")


class Killed(Exception):
    """A run stopped after its first durable batch, as by kill -9."""


@dataclass
class Rule:
    pattern: str  # "**", "<sub>/**" or "*.md" / "*.txt" (this folder only)
    readers: tuple[str, ...]


@dataclass
class World:
    """The folder on disk as the generator wrote it, and what the index should say about it."""

    root: Path
    rng: random.Random
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    rules: dict[str, tuple[str | None, list[Rule]] | None] = field(default_factory=dict)  # folder -> (default, rules)
    recorded_default: str | None = None
    readers_now: dict[str, frozenset[str]] = field(default_factory=dict)  # path -> who may read it in the index now
    counter: int = 0

    # the oracle: last matching rule wins, shallow files before deep, else the default
    def readers(self, path: str) -> frozenset[str]:
        found: tuple[str, ...] | None = None
        for folder in RULE_FOLDERS:
            entry = self.rules.get(folder)
            if not entry or (folder and not path.startswith(folder + "/")):
                continue
            relative = path[len(folder) + 1 :] if folder else path
            for rule in entry[1]:
                if matches(relative, rule.pattern):
                    found = rule.readers or (NOBODY,)
        if found is not None:
            return frozenset(found)
        root_default = (self.rules.get("") or (None, []))[0]
        has_rules = any(self.rules.get(f) and (self.rules[f][0] or self.rules[f][1]) for f in RULE_FOLDERS)
        default = root_default or self.recorded_default or ("deny" if has_rules else "public")
        return frozenset({PUBLIC} if default == "public" else {NOBODY})

    # what the generator does to the folder
    def write_file(self, path: str, text: str) -> None:
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_text(text)
        self.files[path] = text

    def add(self) -> None:
        self.counter += 1
        folder = self.rng.choice(FOLDERS)
        name = f"doc{self.counter}.{self.rng.choice(['md', 'txt'])}"
        self.write_file(f"{folder}/{name}".lstrip("/"), self.text())

    def edit(self) -> None:
        if self.files:
            self.write_file(self.rng.choice(sorted(self.files)), self.text())

    def move(self) -> None:
        if self.files:
            old = self.rng.choice(sorted(self.files))
            new = f"{self.rng.choice(FOLDERS)}/{Path(old).name}".lstrip("/")
            if new != old and new not in self.files:
                (self.root / new).parent.mkdir(parents=True, exist_ok=True)
                (self.root / old).rename(self.root / new)
                self.files[new] = self.files.pop(old)

    def delete(self) -> None:
        if self.files:
            path = self.rng.choice(sorted(self.files))
            (self.root / path).unlink()
            del self.files[path]

    def rewrite_rules(self) -> None:
        folder = self.rng.choice(RULE_FOLDERS)
        target = self.root / folder / ".gensearch.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        action = self.rng.random()
        if action < 0.1:
            target.unlink(missing_ok=True)
            self.rules[folder] = None
        elif action < 0.15:
            target.write_text("")
            self.rules[folder] = None
        else:
            default = self.rng.choice([None, None, "deny", "public"]) if not folder else None
            subs = [f.split("/", 1)[1] for f in FOLDERS if f.startswith(folder + "/")] if folder else [f for f in FOLDERS if f and "/" not in f]
            patterns = ["**", "*.md", "*.txt", *(f"{s}/**" for s in subs)]
            rules = [Rule(self.rng.choice(patterns), self.principals()) for _ in range(self.rng.randint(0, 3))]
            data: dict = {"rules": [{"paths": [r.pattern], **split_readers(r.readers)} for r in rules]}
            if default:
                data["default"] = default
            target.write_text(yaml.safe_dump(data))
            self.rules[folder] = (default, rules)

    def principals(self) -> tuple[str, ...]:
        pool = ["group:hr", "group:staff", "group:eng", "user:carol", "user:dave"]
        return tuple(sorted(self.rng.sample(pool, self.rng.randint(0, 2))))

    def text(self) -> str:
        return "memo " + " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(3, 12))) + f" n{self.rng.randint(0, 10**6)}."


def matches(relative: str, pattern: str) -> bool:
    if pattern == "**":
        return True
    if pattern.endswith("/**"):
        return relative.startswith(pattern[:-3] + "/")
    return "/" not in relative and relative.endswith(pattern[1:])  # "*.md": this folder only


def split_readers(readers: tuple[str, ...]) -> dict:
    out: dict = {}
    for token in readers:
        kind, name = token.split(":")
        out.setdefault("groups" if kind == "group" else "users", []).append(name)
    return out


def stored(client) -> dict[str, set[str]]:
    """Relative path -> reader tokens of its visible chunks (hidden ones are readable by nobody)."""
    if not client.collection_exists("kb"):
        return {}
    points, _ = client.scroll("kb", limit=10_000, with_payload=["path", "readers"])
    out: dict[str, set[str]] = {}
    for p in points:
        if p.payload["readers"] != [NOBODY] or "hidden_readers" not in p.payload:
            out.setdefault(p.payload["path"], set()).update(p.payload["readers"])
    return out


def may_read(caller: Principal, readers: frozenset[str]) -> bool:
    return bool(readers & set(caller.tokens))


def run_index(world: World, client, encoder, settings, *, sub: str | None, kill: bool, allow_widen: bool) -> str:
    """One `gensearch index` run as the CLI does it (sub-folder located in its recorded root); returns the outcome."""
    records = corpus_records(client, "kb")
    if sub and (not records or not (world.root / sub).is_dir()):
        return "no folder"  # a sub-folder is indexed after its root (else `locate` refuses it)
    root, folder = locate(records, world.root / sub if sub else world.root)
    corpus = load_folder(root, access_default=access_for(records.get(str(root)), None), folder=folder)

    def stop(done: int, total: int) -> None:
        if kill and done < total:
            raise Killed

    try:
        index_corpus(client, encoder, corpus, "kb", settings=settings, batch_size=2, show_progress=False, on_batch=stop, allow_widen=allow_widen)
    except PermissionsError:
        return "refused"
    except Killed:
        return "killed"
    return "done"


@pytest.fixture()
def encoder(baseline_encoder, monkeypatch):
    """The baseline, each query embedded once: the property is about filters, and every search asks "memo"."""
    embedded: dict[tuple[str, ...], object] = {}
    original = baseline_encoder.query_vectors

    def query_vectors(texts):
        key = tuple(texts)
        if key not in embedded:
            embedded[key] = original(texts)
        return embedded[key]

    monkeypatch.setattr(baseline_encoder, "query_vectors", query_vectors)
    return baseline_encoder


@pytest.mark.parametrize("seed", [0])
def test_no_search_ever_returns_a_chunk_its_caller_may_not_read(tmp_path, client, encoder, settings, seed):
    world = World(tmp_path / "kb", random.Random(seed))
    world.root.mkdir()
    for _ in range(6):
        world.add()
    world.rewrite_rules()
    actions = [world.add, world.edit, world.move, world.delete, world.rewrite_rules]
    outcomes: dict[str, int] = {}
    leaks: list[str] = []
    for step in range(STEPS):
        if world.rng.random() < 0.6:
            world.rng.choice(actions)()
            continue
        sub = world.rng.choice([None, None, "hr", "eng", "eng/secret"])
        before = stored(client)
        allow = world.rng.random() < 0.5
        outcome = run_index(world, client, encoder, settings, sub=sub, kill=world.rng.random() < 0.25, allow_widen=allow)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "no folder":
            continue
        if outcome == "refused":
            assert stored(client) == before, f"step {step}: a refused run changed the index"
            continue
        records = corpus_records(client, "kb")
        world.recorded_default = records[str(world.root)].access
        nobody = frozenset({NOBODY})
        for path in list(world.readers_now):  # outside the run's scope: gone from disk -> deleted; else relabelled by the rules
            if path not in world.files:
                del world.readers_now[path]
            elif world.readers_now[path] != nobody:  # a file readable by nobody widens only when it is read
                world.readers_now[path] = world.readers(path)
        in_scope = [p for p in world.files if sub is None or p.startswith(sub + "/")]
        world.readers_now.update({p: world.readers(p) for p in in_scope})
        now = stored(client)
        if not allow:
            gained = [p for p, r in now.items() if p in before and (r - {NOBODY}) - before[p] and PUBLIC not in before[p] and NOBODY not in r]
            assert not gained, f"step {step}: readers widened without --allow-widen: {gained}"
        if outcome == "done":
            expected = {p: set(r) for p, r in world.readers_now.items()} if sub is None else None
            if expected is not None:
                assert now == expected, f"step {step}: stored readers differ from the rules"
        for caller in CALLERS:
            for mode in MODES:
                for hit in search(client, encoder, "kb", "memo", 200, SearchFilter(caller), mode=mode).hits:
                    path = Path(hit.source).relative_to(world.root.resolve()).as_posix()
                    if path not in world.readers_now or not may_read(caller, world.readers_now[path]):
                        leaks.append(f"step {step} {mode} {caller.user}: {path}")
        assert not leaks, leaks[:5]
    assert sum(outcomes.values()) > STEPS * 0.3 and {"done", "killed", "refused"} <= set(outcomes), outcomes
