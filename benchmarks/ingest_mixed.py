"""Ingestion of a messy ~200 MB folder: every file read, decoded and chunked, or skipped with a reason.

    .venv/bin/python benchmarks/ingest_mixed.py                 # ~200 MB in a temp folder -> reports/ingest_mixed.json
    .venv/bin/python benchmarks/ingest_mixed.py --mb 20         # a smaller folder, same mix

The folder (seeded) holds what real shared drives hold: two very large text files (one a single paragraph
of log lines), one file over the size limit, thousands of Markdown / reST / HTML / text files in UTF-8,
Windows-1252, Latin-1 and UTF-16, binary files named ``.txt``, empty files, and odd names (bytes that are
not UTF-8, spaces, emoji, 200-character names). It runs what ``gensearch index`` runs before embedding:
``load_folder`` then ``chunk_documents`` with the baseline's tokenizer (embedding 200 MB of text, ~50M
tokens, is hours on 2 cores and does not depend on the files' form). Prints and writes: files on disk,
indexed, skipped by reason, documents whose text shows mis-decoding (U+FFFD, mojibake), chunks, seconds
per stage, peak RSS, CPU. Fails if a file is unaccounted for.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

from encoder.device import cpu_model

WORDS = ("report budget meeting policy release deploy holiday laptop travel invoice customer server backup "
         "contract review schedule training office security password network printer").split()
ACCENTED = "café résumé naïve façade Zürich déjà señor coöperate – “quoted” ’apostrophe’ €100"


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))).capitalize() + "."


def paragraph(rng: random.Random, accented: bool = False) -> str:
    text = " ".join(sentence(rng) for _ in range(rng.randint(2, 6)))
    return f"{text} {ACCENTED}" if accented else text


def document(rng: random.Random, kind: str, size: int) -> tuple[str, str]:
    """(extension, text) of about ``size`` characters."""
    parts, total = [], 0
    while total < size:
        p = paragraph(rng, accented=rng.random() < 0.3)
        parts.append(p)
        total += len(p) + 2
    if kind == "md":
        return "md", f"# {sentence(rng)}\n\n" + "\n\n".join(f"## Part {i}\n\n{p}" if i % 4 == 0 else p for i, p in enumerate(parts))
    if kind == "rst":
        return "rst", "Title\n=====\n\n" + "\n\n".join(parts)
    if kind == "html":
        return "html", "<html><head><title>Page</title></head><body>" + "".join(f"<p>{p}</p>" for p in parts) + "</body></html>"
    return "txt", "\n\n".join(parts)


def build(root: Path, mb: int, seed: int) -> dict[str, int]:
    """Write the folder; returns counts of what was written, by kind."""
    rng = random.Random(seed)
    written: Counter[str] = Counter()
    scale = mb / 200
    big = int(40_000_000 * scale)
    (root / "logs").mkdir(parents=True)
    with open(root / "logs" / "server.log.txt", "w") as f:  # one paragraph: no blank line anywhere
        while f.tell() < big:
            f.write(f"2026-12-0{rng.randint(1, 9)} 12:{rng.randint(10, 59)} INFO {sentence(rng)} ")
    written["big text, one paragraph"] += 1
    with open(root / "logs" / "archive.md", "w") as f:
        f.write("# Archive\n\n")
        while f.tell() < big:
            f.write(paragraph(rng) + "\n\n")
    written["big markdown"] += 1
    with open(root / "logs" / "too-big.txt", "wb") as f:  # over MAX_FILE_BYTES whatever --mb says
        f.truncate(60_000_000)
        f.seek(0)
        f.write(b"x")
    written["over the size limit"] += 1
    target, total, i = int(mb * 1_000_000), (root / "logs" / "server.log.txt").stat().st_size * 2, 0
    while total < target:
        i += 1
        folder = root / rng.choice(["hr", "eng", "pub", "pub/archive", "sales"])
        folder.mkdir(parents=True, exist_ok=True)
        ext, text = document(rng, rng.choice(["md", "rst", "html", "txt"]), rng.randint(2_000, 60_000))
        encoding = rng.choices(["utf-8", "cp1252", "latin-1", "utf-16"], weights=[70, 15, 5, 10])[0]
        name = f"doc {i}.{ext}" if i % 50 else f"{'long-name-' * 18}{i}.{ext}"
        data = text.encode(encoding, errors="replace")
        (folder / name).write_bytes(data)
        written[f"{ext} in {encoding}"] += 1
        total += len(data)
    odd = root / "odd"
    odd.mkdir()
    for j in range(20):  # names that are not UTF-8, emoji, and files that are not text
        raw = os.fsencode(odd) + b"/caf\xe9-" + str(j).encode() + b".txt"
        with open(raw, "wb") as f:
            f.write(paragraph(rng).encode())
        (odd / f"notes \U0001f4dd {j}.md").write_text(f"# Notes {j}\n\n{paragraph(rng)}\n")
        (odd / f"binary {j}.txt").write_bytes(bytes(rng.randrange(256) for _ in range(4096)) + b"\x00" * 64)
        (odd / f"empty {j}.md").write_text("")
    written["non-UTF-8 name"] += 20
    written["emoji name"] += 20
    written["binary named .txt"] += 20
    written["empty"] += 20
    return dict(written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200, help="Folder size in MB (the mix scales with it).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="Build the folder here (default: a temp folder, removed after).")
    parser.add_argument("--out", type=Path, default=Path("reports/ingest_mixed.json"), help="Write the results as JSON here.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from encoder import get_settings, load_encoder
    from indexer.chunking import chunk_documents
    from indexer.corpus import load_folder
    from indexer.embedding import tokenizer_of

    tokenize = tokenizer_of(load_encoder("baseline", device="cpu"))
    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="gensearch-ingest-") as tmp:
        root = args.dir or Path(tmp) / "drive"
        t0 = time.perf_counter()
        written = build(root, args.mb, args.seed)
        on_disk = sum(1 for _, _, files in os.walk(root) for _ in files)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)
        t1 = time.perf_counter()
        corpus = load_folder(root)
        t2 = time.perf_counter()
        failed: list = []
        chunks = chunk_documents(corpus.docs, corpus.root, tokenize, settings.chunk_size, settings.chunk_overlap, show_progress=True, failed=failed)
        t3 = time.perf_counter()
    skipped = Counter(s.reason.split(" (")[0].split(":")[0] for s in [*corpus.skipped, *failed])
    encodings = Counter(d.format for d in corpus.docs)
    mojibake = sum(("\ufffd" in d.text or "Ã" in d.text or "â€" in d.text) for d in corpus.docs)  # mis-decoded text
    accounted = len(corpus.docs) + len(corpus.skipped)
    report = {
        "cpu": cpu_model(), "mb": round(size / 1e6, 1), "files_on_disk": on_disk, "written": written,
        "indexed": len(corpus.docs) - len(failed), "skipped": dict(skipped), "formats": dict(encodings), "chunks": len(chunks),
        "mis_decoded_documents": mojibake,
        "seconds": {"build": round(t1 - t0, 1), "load_and_decode": round(t2 - t1, 1), "chunk": round(t3 - t2, 1)},
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "chunk_size": settings.chunk_size, "every_file_accounted_for": accounted == on_disk,
    }
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if accounted != on_disk:
        raise SystemExit(f"{on_disk - accounted} files on disk were neither indexed nor skipped with a reason")


if __name__ == "__main__":
    main()
