"""Corpus loading: a folder of documents (recursive) or the built-in Python docs.

Every file either becomes a ``SourceDoc`` or a ``Skipped`` entry with a reason (not a regular file,
unsupported type, unreadable, binary, undecodable text, empty, ...); loading never stops on a bad file.
Symlinked folders are followed once (loops and repeats are detected by device + inode).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from encoder.settings import Settings

from .formats import CONTAINERS, bom_encoding, extract, format_of
from .permissions import NOBODY, PUBLIC, Access, Policy, load_policy, relative_path

log = logging.getLogger(__name__)

PYTHON_DOCS_PACKAGE = "python3.11-doc"
PYTHON_DOCS_SOURCES = Path("usr/share/doc/python3.11/html/_sources")
MAX_FILE_BYTES = 50_000_000


@dataclass(frozen=True)
class SourceDoc:
    """One loaded file: its resolved path, its text (``#`` headings), format and title."""

    source: str
    text: str
    format: str
    title: str
    readers: tuple[str, ...] = (PUBLIC,)  # reader tokens from the corpus's .gensearch.yml rules (permissions)
    modified: float = 0.0  # the file's modification time (Unix seconds), for "modified after/before" filters
    size: int = 0  # bytes on disk when loaded; with mtime_ns, the file's stamp (``Stamp``): a re-run skips it unchanged
    mtime_ns: int = 0


Stamp = tuple[int, int]  # (size, mtime_ns) of a file: what tells a re-run that it has not changed


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Corpus:
    """The documents of one root folder plus the files skipped, with reasons."""

    root: str
    docs: list[SourceDoc] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    access: Access | None = None  # a folder's access default where no rule matches (None: not a folder corpus)
    chosen_access: Access | None = None  # the explicit choice it was loaded with (recorded); None: decided from the rules
    policy: Policy | None = None  # the folder's rules: readers of any path, read or not (``pipeline`` relabels with it)
    rules_files: tuple[str, ...] = ()  # its .gensearch.yml files that say something, relative to the root
    unchanged: list[SourceDoc] = field(default_factory=list)  # files whose stamp the collection holds: not read (text "")

    @property
    def files(self) -> int:
        """Files this run covers: read, or known unchanged."""
        return len(self.docs) + len(self.unchanged)

    def summary(self) -> str:
        """One line: files loaded (unchanged ones not read) and skipped, grouped by reason."""
        counts = Counter(s.reason.split(":")[0].split(" (")[0] for s in self.skipped)
        reasons = ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
        unchanged = f" ({len(self.unchanged)} unchanged, not read)" if self.unchanged else ""
        return f"{self.files} files loaded{unchanged}, {len(self.skipped)} skipped" + (f" ({reasons})" if reasons else "")


class CorpusError(ValueError):
    """The corpus root itself is unusable (missing, not a folder, Python docs not installed)."""


def walk_files(root: Path) -> tuple[list[Path], list[Skipped]]:
    """Every entry under ``root`` that is not a folder, sorted; symlinked folders followed once."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=lambda e: skipped.append(Skipped(str(e.filename), f"unreadable folder: {e.strerror}"))):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen_dirs:
            skipped.append(Skipped(dirpath, "folder already visited (symlink loop or repeat)"))
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / name for name in sorted(filenames) if not name.startswith("."))
    return files, skipped


def load_file(path: Path) -> SourceDoc | Skipped:
    """Read and extract one file, or say why it was skipped."""
    fmt = format_of(path.name)
    if fmt is None:
        return Skipped(readable(str(path)), f"unsupported file type ({''.join(path.suffixes) or 'no extension'})")
    try:
        st = path.stat()  # follows symlinks: a dangling link fails here
        if not stat.S_ISREG(st.st_mode):
            return Skipped(readable(str(path)), "not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            return Skipped(readable(str(path)), f"too large ({st.st_size:,} bytes > {MAX_FILE_BYTES:,})")
        data = path.read_bytes()
    except OSError as exc:
        return Skipped(readable(str(path)), f"unreadable: {exc.strerror or exc}")
    if fmt not in CONTAINERS and b"\x00" in data[:8192] and bom_encoding(data) is None:  # UTF-16/32 text has NULs and a BOM
        return Skipped(readable(str(path)), "binary content (NUL bytes)")
    try:
        extracted = extract(data, fmt)
    except UnicodeDecodeError as exc:
        return Skipped(readable(str(path)), f"undecodable text (byte {data[exc.start]:#04x} at offset {exc.start} fits no known encoding)")
    except ValueError as exc:
        return Skipped(readable(str(path)), f"unreadable: {exc}")
    if not extracted.text.strip():
        return Skipped(readable(str(path)), "empty (no text)")
    title = extracted.title or readable(path.name).split(".")[0]
    return SourceDoc(readable(str(path.resolve())), extracted.text, extracted.format, title, modified=st.st_mtime, size=st.st_size, mtime_ns=st.st_mtime_ns)


def unchanged_file(path: Path, root: Path, known: Mapping[str, Stamp]) -> SourceDoc | None:
    """A text-less SourceDoc for a file whose (size, mtime_ns) the collection already holds complete, else None.
    Only ``stat`` is called: the file is not opened."""
    try:
        resolved = path.resolve()
        st = resolved.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or not resolved.is_relative_to(root):
        return None
    source = readable(str(resolved))
    if known.get(relative_path(source, str(root))) != (st.st_size, st.st_mtime_ns):
        return None
    fmt = format_of(path.name) or "text"
    return SourceDoc(source, "", fmt, "", modified=st.st_mtime, size=st.st_size, mtime_ns=st.st_mtime_ns)


def readable(name: str) -> str:
    """A file name as valid text: bytes that are not UTF-8 (kept by Python as surrogate escapes) become U+FFFD,
    so they can reach a tokenizer, a JSON payload and a terminal."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def load_folder(
    root: str | Path, glob: str | None = None, limit: int | None = None, access_default: Access | None = None, folder: str | None = None,
    known: Mapping[str, Stamp] | None = None,
) -> Corpus:
    """Load every supported file under ``root`` (optionally only those under ``folder``, a path relative to the
    root, and whose path matches ``glob``; the first ``limit``).

    ``known`` (relative path -> stamp, ``pipeline.known_files``): files the collection holds complete with the same
    size and modification time are not read; they go to ``corpus.unchanged`` with their (possibly new) readers.

    Each document gets its readers from the ``.gensearch.yml`` rules read from the root down (``permissions``);
    where no rule matches, the root file's ``default``, else ``access_default``, else ``deny`` if the corpus has
    rules and ``public`` if it has none."""
    root = Path(root).expanduser()
    if not root.exists():
        raise CorpusError(f"{root} does not exist")
    if not root.is_dir():
        raise CorpusError(f"{root} is not a folder; pass the folder that holds your documents")
    root = root.resolve()
    policy = load_policy(root, access_default)
    paths, skipped = walk_files(root / folder if folder else root)
    if glob:
        paths = [p for p in paths if fnmatch.fnmatch(str(p.relative_to(root)), glob)]
    corpus = Corpus(str(root), skipped=skipped, access=policy.default, rules_files=policy.files, chosen_access=access_default, policy=policy)
    seen: set[str] = set()
    for path in paths:
        if limit is not None and corpus.files >= limit:
            break
        same = unchanged_file(path, root, known) if known else None
        if same is not None and same.source not in seen:
            seen.add(same.source)
            corpus.unchanged.append(replace(same, readers=policy.readers(relative_path(same.source, str(root)))))
            continue
        result = load_file(path)
        if isinstance(result, SourceDoc) and result.source in seen:
            result = Skipped(str(path), "duplicate (same file reached through a symlink)")
        if isinstance(result, Skipped):
            corpus.skipped.append(result)
            log.debug("skipped %s: %s", result.path, result.reason)
        else:
            seen.add(result.source)
            inside = Path(result.source).is_relative_to(root)  # a link out of the corpus gets no rule: nobody reads it
            readers = policy.readers(relative_path(result.source, str(root))) if inside else (NOBODY,)
            corpus.docs.append(replace(result, readers=readers))  # rules follow the real file, not the link
    log.info("%s: %s", root / folder if folder else root, corpus.summary())
    return corpus


def python_docs_dir(settings: Settings) -> Path:
    """The reST sources of the Python docs: the installed Debian package, or its copy unpacked in the cache."""
    for base in (Path("/"), settings.cache_dir / PYTHON_DOCS_PACKAGE):
        folder = base / PYTHON_DOCS_SOURCES
        if folder.is_dir():
            return folder
    raise CorpusError(
        f"the Python docs corpus is not installed: run `make corpus` (or `apt-get install {PYTHON_DOCS_PACKAGE}`, "
        f"or without root `apt-get download {PYTHON_DOCS_PACKAGE} && dpkg-deb -x {PYTHON_DOCS_PACKAGE}_*.deb "
        f"{settings.cache_dir / PYTHON_DOCS_PACKAGE}`)"
    )
