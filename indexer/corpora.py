"""What a collection remembers about each folder indexed into it, so that later runs fail closed.

For each corpus root the collection's metadata records the access default the operator chose (``--access``, or
``GENSEARCH_ACCESS_DEFAULT`` when the folder was first indexed; none: every run decides ``deny`` when the folder has
``.gensearch.yml`` rules and ``public`` when it has none, and a root file's ``default:`` beats all), the rules files
it had and when a run last finished. A later run

- of a sub-folder of a recorded root indexes that sub-folder *as part of the root*: rules are read from the
  root down and nothing outside the sub-folder is re-labelled (``locate``; a new folder below rules it would
  escape is refused);
- keeps the recorded choice unless the operator names another with ``--access`` (``access_for``);
- stops when a rules file that was there is now missing or says nothing (``check_rules_files``): emptied,
  renamed or deleted rules would otherwise make documents public.

``widened`` finds documents whose readers a run would widen; ``pipeline.plan_index`` refuses those runs
unless the operator allows it, before anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from qdrant_client import QdrantClient

from .permissions import ACL_FILE, NOBODY, PUBLIC, Access, PermissionsError

CORPORA_KEY = "corpora"  # collection metadata: {root: {"access": ..., "rules_files": [...]}}
NEAR_MISSES = (".gensearch.yaml", "gensearch.yml", "gensearch.yaml", ".gensearch.yml.txt")


@dataclass(frozen=True)
class CorpusRecord:
    """One folder as a collection remembers it: its root, access default and rules files (relative)."""

    root: str
    access: Access | None  # the operator's explicit choice; None: decided on each run from the rules
    rules_files: tuple[str, ...] = ()
    synced: float | None = None  # when an index run of it last finished (Unix seconds)

    def to_dict(self) -> dict:
        out = {"access": self.access, "rules_files": list(self.rules_files)}
        return out if self.synced is None else {**out, "synced": self.synced}


class WideningError(PermissionsError):
    """A run would let more people read some documents than before, and the operator has not allowed it."""


def corpus_records(client: QdrantClient, collection: str) -> dict[str, CorpusRecord]:
    """Root -> record of every folder indexed into ``collection`` (none for a new collection)."""
    if not client.collection_exists(collection):
        return {}
    return records_in(_raw_records(client, collection))


def _raw_records(client: QdrantClient, collection: str) -> dict:
    """The collection's ``corpora`` metadata as stored: root -> record dict."""
    return (client.get_collection(collection).config.metadata or {}).get(CORPORA_KEY) or {}


def records_in(raw: dict) -> dict[str, CorpusRecord]:
    """The records of a collection's ``corpora`` metadata."""
    return {root: CorpusRecord(root, entry["access"], tuple(entry.get("rules_files") or ()), entry.get("synced")) for root, entry in raw.items()}


def save_record(client: QdrantClient, collection: str, record: CorpusRecord) -> None:
    """Record (or update) one folder in the collection's metadata; other folders' records (and this one's last
    sync time, unless given) are kept."""
    raw = _raw_records(client, collection)
    client.update_collection(collection, metadata={CORPORA_KEY: {**raw, record.root: {**raw.get(record.root, {}), **record.to_dict()}}})


def mark_synced(client: QdrantClient, collection: str, root: str) -> None:
    """Note that an index run of the folder at ``root`` just finished."""
    raw = _raw_records(client, collection)
    if root in raw:
        client.update_collection(collection, metadata={CORPORA_KEY: {**raw, root: {**raw[root], "synced": time.time()}}})


def locate(records: dict[str, CorpusRecord], path: str | Path) -> tuple[Path, str | None]:
    """The corpus root to index ``path`` under, and the sub-folder of it (None: the whole root).

    A folder inside a recorded root is part of that corpus (the deepest such root), so its rules and access
    default come from the root, never from the sub-folder alone. PermissionsError for a folder that would
    escape rules: one that holds a recorded root (its documents would be indexed twice, under two sets of
    rules), or a new one below a folder with a ``.gensearch.yml`` (whose rules cover it)."""
    path = Path(path).expanduser().resolve()
    inside = [Path(root) for root in records if path != Path(root) and path.is_relative_to(root)]
    if inside:
        root = max(inside, key=lambda r: len(r.parts))
        return root, path.relative_to(root).as_posix()
    held = sorted(root for root in records if Path(root) != path and Path(root).is_relative_to(path))
    if held:
        raise PermissionsError(
            f"{held[0]} is already indexed in this collection as a folder of its own; indexing {path} would hold its "
            "documents twice under two sets of rules. Index into another collection, or rebuild this one from "
            f"{path} (`--recreate`)."
        )
    if path not in map(Path, records):
        above = [parent for parent in path.parents if (parent / ACL_FILE).is_file()]
        if above:
            raise PermissionsError(
                f"{above[-1] / ACL_FILE} sets rules for {path}, but {path} would be indexed as a folder of its own "
                f"without them. Index {above[-1]} first (then {path} is indexed as part of it)."
            )
    return path, None


def access_for(record: CorpusRecord | None, explicit: Access | None, new_folders: Access | None = None) -> Access | None:
    """The access default to load a folder with: the operator's explicit choice (``--access``), else the recorded
    one, else for a folder not recorded yet ``new_folders`` (``GENSEARCH_ACCESS_DEFAULT``), else None
    (``load_policy`` decides on each run: ``deny`` with rules, ``public`` without). The root file's ``default`` beats all."""
    if explicit:
        return explicit
    return record.access if record is not None else new_folders


def check_rules_files(record: CorpusRecord | None, root: str | Path, found: Iterable[str], allow: bool = False) -> list[str]:
    """Recorded rules files that are now missing or empty. PermissionsError unless ``allow`` (then returned)."""
    found = set(found)
    lost = [name for name in (record.rules_files if record else ()) if name not in found]
    if lost and not allow:
        hints = [near_miss(Path(root) / name) for name in lost]
        hint = "".join(f" ({h})" for h in hints if h)
        raise PermissionsError(
            f"{len(lost)} rules file(s) of {root} that the last run read are now missing or empty: {', '.join(lost[:5])}{hint}. "
            "Without them documents would get the default readers. Restore them, or, if they were removed on purpose, "
            "re-run with --allow-widen."
        )
    return lost


def near_miss(expected: Path) -> str | None:
    """A hint when a rules file sits beside ``expected`` under a name gensearch does not read."""
    for name in NEAR_MISSES:
        if (expected.parent / name).exists():
            return f"found {expected.parent / name}: rules are read only from files named {ACL_FILE}"
    return None


def widened(before: dict[str, set[str]], after: dict[str, tuple[str, ...]]) -> list[tuple[str, set[str], set[str]]]:
    """Documents (path -> reader tokens) that ``after`` lets someone read who could not in ``before``.

    Documents new to the collection widen nothing; ``-`` (nobody) counts as no reader; a public document
    cannot widen."""
    out = []
    for path, readers in sorted(after.items()):
        if path not in before:
            continue
        old = before[path] - {NOBODY}
        new = set(readers) - {NOBODY}
        if PUBLIC not in old and new - old:
            out.append((path, old, new))
    return out


def widening_message(changes: list[tuple[str, set[str], set[str]]]) -> str:
    """The error a refused widening run prints: how many documents, and the first few with old -> new readers."""
    def show(tokens: set[str]) -> str:
        return ", ".join(sorted(tokens)) or "nobody"

    lines = "; ".join(f"{path}: {show(old)} -> {show(new)}" for path, old, new in changes[:5])
    more = f" (and {len(changes) - 5} more)" if len(changes) > 5 else ""
    return (
        f"this run would let more people read {len(changes)} document(s): {lines}{more}. Nothing was changed. "
        "If that is intended (a rule or default was loosened on purpose), re-run with --allow-widen."
    )
