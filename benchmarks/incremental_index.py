"""Re-indexing an unchanged folder: files read and time against the first run, in one run.

    .venv/bin/python benchmarks/incremental_index.py              # 1,000 files -> reports/incremental_index.json
    .venv/bin/python benchmarks/incremental_index.py --files 200 --encoder test

Writes a seeded folder of Markdown files, indexes it as `gensearch index` does (the collection's stamps read first,
``pipeline.known_files``) into a fresh embedded Qdrant, then re-runs it unchanged, then after editing 1% of the
files. Prints files read and seconds per run and the re-run / first-run ratio (the goal: no file read, < 5%).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from encoder import get_settings, load_encoder
from encoder.device import cpu_model
from indexer.corpus import load_folder
from indexer.pipeline import chunking_fingerprint, index_corpus, known_files
from indexer.store import connect

WORDS = "report budget meeting policy release deploy holiday laptop travel invoice customer server backup contract".split()


def write_folder(root: Path, files: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for i in range(files):
        path = root / f"team{i % 10}" / f"note{i}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120)))
        path.write_text(f"# Note {i}\n\n{body.capitalize()}.\n")
        paths.append(path)
    return paths


def run(client, encoder, root: Path, settings) -> dict:
    started = time.perf_counter()
    corpus = load_folder(root, known=known_files(client, "bench", str(root.resolve()), chunking_fingerprint(settings)))
    report = index_corpus(client, encoder, corpus, "bench", settings=settings, show_progress=False)
    return {"seconds": round(time.perf_counter() - started, 2), "files": report.files, "read": report.read, "added": report.added,
            "removed": report.removed, "chunks": report.chunks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--encoder", default="baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("reports/incremental_index.json"))
    args = parser.parse_args()

    encoder = load_encoder(args.encoder)
    with tempfile.TemporaryDirectory(prefix="gensearch-incremental-") as tmp:
        root = Path(tmp) / "folder"
        paths = write_folder(root, args.files, args.seed)
        settings = get_settings().model_copy(update={"qdrant_path": Path(tmp) / "qdrant"})
        with connect(settings) as client:
            first = run(client, encoder, root, settings)
            unchanged = run(client, encoder, root, settings)
            for path in paths[:: 100]:  # 1% edited
                path.write_text(path.read_text() + "\nEdited.\n")
            edited = run(client, encoder, root, settings)
    report = {"cpu": cpu_model(), "encoder": args.encoder, "files": args.files, "first": first, "unchanged": unchanged, "edited_1pct": edited,
              "unchanged_over_first": round(unchanged["seconds"] / first["seconds"], 4)}
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
