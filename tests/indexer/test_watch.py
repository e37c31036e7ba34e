"""`gensearch watch`: a folder edited while it is watched ends up indexed exactly as a fresh index of it."""

from __future__ import annotations

import random
import threading
import time

import yaml

from indexer.corpus import load_folder
from indexer.pipeline import index_corpus
from indexer.sync import FolderOptions
from indexer.watch import FolderWatch, relevant
from tests.permissions_kb import ROOT_RULES, write_kb


def snapshot(client, collection: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Point id -> (path, readers): what must match between the watched collection and a fresh one."""
    points, _ = client.scroll(collection, limit=10_000, with_payload=["path", "readers"])
    return {str(p.id): (p.payload["path"], tuple(sorted(p.payload["readers"]))) for p in points}


def test_changes_in_hidden_folders_are_ignored_but_rules_files_count(tmp_path):
    assert relevant(str(tmp_path / "pub" / "a.md"), tmp_path)
    assert relevant(str(tmp_path / "hr" / ".gensearch.yml"), tmp_path)
    assert not relevant(str(tmp_path / ".git" / "index"), tmp_path) and not relevant(str(tmp_path / "pub" / ".a.md.swp"), tmp_path)
    assert not relevant("/elsewhere/a.md", tmp_path)


def test_two_hundred_edits_moves_deletes_and_rule_changes_end_as_a_fresh_index(tmp_path, client, baseline_encoder, settings):
    """Issue must-show: 200 scripted changes over a minute while the watcher runs; after it stops, the collection
    equals a fresh index of the folder (ids and readers)."""
    root = write_kb(tmp_path / "kb")
    watcher = FolderWatch(client, baseline_encoder, root, "kb", FolderOptions(allow_widen=True), settings=settings, quiet=0.5)
    stop, errors = threading.Event(), []
    thread = threading.Thread(target=watcher.run, args=(stop, lambda c, r, e: errors.append(e) if e else None))
    thread.start()
    deadline = time.time() + 60
    while watcher.runs < 1 and time.time() < deadline:  # the reconcile run
        time.sleep(0.1)
    rng = random.Random(0)
    files = [p for p in root.rglob("*") if p.is_file() and p.name != ".gensearch.yml"]
    for step in range(200):
        action = rng.choice(["add", "edit", "edit", "move", "delete", "rules"])
        if action == "add" or not files:
            path = root / rng.choice(["pub", "hr", "eng"]) / f"new{step}.md"
            path.write_text(f"# Note {step}\n\nA memo written at step {step} about the {rng.choice(['budget', 'release', 'holiday'])}.\n")
            files.append(path)
        elif action == "edit":
            path = rng.choice(files)
            path.write_text(path.read_text() + f"\nAmended at step {step}.\n")
        elif action == "move":
            path = files.pop(rng.randrange(len(files)))
            target = root / rng.choice(["pub", "hr", "eng"]) / path.name
            if target.exists():
                files.append(path)
                continue
            path.rename(target)
            files.append(target)
        elif action == "delete":
            files.pop(rng.randrange(len(files))).unlink()
        else:
            groups = rng.sample(["hr", "staff", "eng"], rng.randint(1, 2))
            (root / ".gensearch.yml").write_text(yaml.safe_dump({**ROOT_RULES, "rules": [{"paths": ["hr/**"], "groups": groups}, *ROOT_RULES["rules"][1:]]}))
        time.sleep(0.3)  # 200 changes over a minute
    stop.set()
    thread.join(timeout=120)
    assert not thread.is_alive() and not errors, errors
    assert watcher.runs > 3  # it applied bursts while the edits went on, not only at the end
    index_corpus(client, baseline_encoder, load_folder(root), "fresh", settings=settings, show_progress=False)
    assert snapshot(client, "kb") == snapshot(client, "fresh")


def test_the_watcher_killed_mid_run_then_restarted_misses_nothing_and_stops_cleanly(tmp_path, settings, baseline_encoder):
    """Issue 34: kill-safe (kill -9 while it applies a burst), reconciles on restart, SIGTERM stops it cleanly."""
    import os
    import signal
    import subprocess
    import sys

    from indexer.store import connect

    root = write_kb(tmp_path / "kb")
    env = {**os.environ, "GENSEARCH_QDRANT_PATH": str(settings.qdrant_path), "GENSEARCH_CHUNK_SIZE": str(settings.chunk_size),
           "GENSEARCH_CHUNK_OVERLAP": str(settings.chunk_overlap)}
    command = [sys.executable, "-m", "app.cli", "watch", str(root), "-c", "kb", "-e", "baseline", "--quiet", "0.2", "--allow-widen"]

    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=open(tmp_path / "watch.log", "a"), text=True, env=env)
        started.append(proc)
        line = "-"
        while line and " kb: " not in line:  # the reconcile run's summary (LlamaIndex may print notes first)
            line = proc.stdout.readline()
        assert line, (tmp_path / "watch.log").read_text()[-2000:]
        return proc

    try:
        first = start()
        for i in range(40):  # a burst big enough to be killed in the middle of
            (root / "pub" / f"burst{i}.md").write_text(f"# Burst {i}\n\nA long memo number {i} " + "about the quarterly budget " * 20 + "\n")
        (root / "pub" / "handbook.md").rename(root / "hr" / "handbook.md")
        time.sleep(1.0)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        (root / "eng" / "deploy.md").unlink()  # and a change while nobody watches
        second = start()  # reconciles on start
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 0
    finally:  # never leave a watcher running, whatever failed
        for proc in started:
            proc.kill()
            proc.wait(timeout=30)
    with connect(settings) as client:
        index_corpus(client, baseline_encoder, load_folder(root), "fresh", settings=settings, show_progress=False)
        assert snapshot(client, "kb") == snapshot(client, "fresh")
