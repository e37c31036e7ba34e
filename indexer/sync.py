"""A folder into a collection, as `gensearch index PATH` and `gensearch watch` both do it.

The collection's records say where the folder belongs (a sub-folder is indexed as part of its recorded root, with
its access default: ``corpora``), its chunks' stamps spare reading files that did not change
(``pipeline.known_files``), then the pipeline makes the collection hold exactly the folder's chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qdrant_client import QdrantClient

from encoder import Encoder
from encoder.settings import Settings

from .corpora import access_for, corpus_records, locate
from .corpus import Corpus, CorpusError, load_folder
from .pipeline import IndexReport, chunking_fingerprint, index_corpus, known_files


@dataclass(frozen=True)
class FolderOptions:
    """How a folder is read and written (``gensearch index --help`` says what each does)."""

    glob: str | None = None
    limit: int | None = None
    recreate: bool = False
    batch_size: int = 64
    access: str | None = None  # the operator's explicit access default (--access); None: recorded, or decided from the rules
    new_folders: str | None = None  # the access default of a folder indexed for the first time (GENSEARCH_ACCESS_DEFAULT)
    allow_widen: bool = False


def open_folder(
    client: QdrantClient, collection: str, path: str | Path, options: FolderOptions = FolderOptions(), *, settings: Settings,
) -> tuple[Corpus, str | None, bool]:
    """The corpus to index for ``path`` (files with an unchanged stamp not read), the sub-folder of its root it
    covers (None: the whole root) and whether the collection already records that root. PermissionsError where
    ``path`` would escape rules (``corpora.locate``)."""
    records = {} if options.recreate else corpus_records(client, collection)
    root, folder = locate(records, path)
    access = access_for(records.get(str(root)), options.access, options.new_folders)
    known = {} if options.recreate else known_files(client, collection, str(root), chunking_fingerprint(settings))
    corpus = load_folder(root, glob=options.glob, limit=options.limit, access_default=access, folder=folder, known=known)
    return corpus, folder, str(root) in records


def sync_folder(
    client: QdrantClient, encoder: Encoder, path: str | Path, collection: str, options: FolderOptions = FolderOptions(), *,
    settings: Settings, show_progress: bool = True,
) -> tuple[Corpus, IndexReport]:
    """Make ``collection`` hold exactly the chunks of the folder at ``path`` (``open_folder``, then ``index_corpus``).
    A folder the collection holds that has lost all its files is emptied; CorpusError for a new one with none."""
    corpus, folder, recorded = open_folder(client, collection, path, options, settings=settings)
    if not corpus.files and not recorded:
        raise CorpusError(f"no indexable files under {Path(corpus.root) / folder if folder else corpus.root} ({corpus.summary()})")
    report = index_corpus(client, encoder, corpus, collection, settings=settings, batch_size=options.batch_size, recreate=options.recreate,
                          allow_widen=options.allow_widen, show_progress=show_progress)
    return corpus, report
