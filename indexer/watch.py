"""`gensearch watch PATH -c COLLECTION`: keep a collection in step with a folder as people edit it.

On start it reconciles (one ``sync.sync_folder`` run: whatever changed while nobody watched, a killed run's leftovers),
then watches the folder (watchdog: inotify on Linux) and runs again once the changes have been quiet for ``quiet``
seconds (or, under a steady stream of edits, every ``max_delay`` seconds): adds, edits, moves, deletes and ``.gensearch.yml`` edits all go through the same incremental run, which reads
only files whose stamp changed. It holds the store while it runs; ``stop`` (SIGTERM, Ctrl-C) ends it after a last run
if changes are pending. A run that fails (a rules file lost, readers that would widen, the store unreachable) is logged and retried at the
next change or after ``retry`` seconds: the collection stays as it was, never half-applied by the watcher.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from qdrant_client import QdrantClient

from encoder import Encoder
from encoder.settings import Settings

from .corpora import corpus_records, locate
from .corpus import Corpus
from .permissions import ACL_FILE, PermissionsError
from .pipeline import IndexReport
from .sync import FolderOptions, sync_folder

log = logging.getLogger(__name__)

OnSync = Callable[[Corpus | None, IndexReport | None, Exception | None], None]


def corpus_root(client: QdrantClient, collection: str, path: Path) -> Path:
    """The folder to watch for ``path``: the recorded corpus root it belongs to (rules files above a sub-folder
    change its documents' readers), else ``path`` itself."""
    try:
        return locate(corpus_records(client, collection), path)[0]
    except PermissionsError:
        return path  # the sync says why it cannot run, at every change


def relevant(path: str, root: Path) -> bool:
    """Whether a change at ``path`` can change the collection: not inside a hidden folder or a hidden file, except a
    rules file."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return False
    return bool(parts) and (parts[-1] == ACL_FILE or not any(p.startswith(".") for p in parts))


class FolderWatch:
    """Watches ``root`` and syncs it into ``collection`` (``run``); ``runs`` counts the sync runs done."""

    def __init__(self, client: QdrantClient, encoder: Encoder, root: str | Path, collection: str, options: FolderOptions = FolderOptions(),
                 *, settings: Settings, quiet: float = 1.0, max_delay: float = 5.0, retry: float = 30.0):
        self.client, self.encoder, self.collection, self.options, self.settings = client, encoder, collection, options, settings
        self.quiet, self.max_delay, self.retry = quiet, max_delay, retry
        self.failed = False  # the last run failed: it is retried after ``retry`` seconds even without a new change
        self.root = Path(root).expanduser().resolve()
        self.watched = corpus_root(client, collection, self.root)  # a sub-folder: its corpus's rules live above it
        self.changed = threading.Event()
        self.runs = 0

    def sync(self, on_sync: OnSync | None = None) -> None:
        """One incremental run; a failure is logged and reported, not raised (the next change retries)."""
        try:
            corpus, report = sync_folder(self.client, self.encoder, self.root, self.collection, self.options, settings=self.settings, show_progress=False)
        except Exception as exc:  # noqa: BLE001 - the watcher outlives a bad edit; the error names the fix
            log.error("sync of %s failed (retried at the next change, or in %.0f s): %s", self.root, self.retry, exc)
            self.failed = True
            if on_sync:
                on_sync(None, None, exc)
            return
        finally:
            self.runs += 1
        self.failed = False
        log.info("%s", report.summary())
        if on_sync:
            on_sync(corpus, report, None)

    def run(self, stop: threading.Event, on_sync: OnSync | None = None) -> None:
        """Reconcile, then sync after each quiet burst of changes until ``stop`` is set (and once more if changes
        are pending then)."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watch = self

        class Changes(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in ("opened", "closed_no_write") or (event.is_directory and event.event_type == "modified"):
                    return
                paths = [event.src_path, getattr(event, "dest_path", "") or ""]
                if any(p and relevant(str(p), watch.watched) for p in paths):
                    watch.changed.set()

        observer = Observer()
        observer.schedule(Changes(), str(self.watched), recursive=True)
        observer.start()
        try:
            self.sync(on_sync)
            last = time.monotonic()
            while not stop.is_set():
                if not self.changed.wait(timeout=0.2):
                    if self.failed and time.monotonic() - last >= self.retry:  # e.g. the store was unreachable
                        self.sync(on_sync)
                        last = time.monotonic()
                    continue
                first = time.monotonic()
                while self.changed.is_set() and not stop.is_set() and time.monotonic() - first < self.max_delay:
                    self.changed.clear()  # wait for the burst to end, but apply a steady stream at least every max_delay
                    time.sleep(self.quiet)
                self.sync(on_sync)
                last = time.monotonic()
            if self.changed.is_set():
                self.changed.clear()
                self.sync(on_sync)
        finally:
            observer.stop()
            observer.join()
