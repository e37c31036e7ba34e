"""`gensearch adapt` end to end on the real SmolLM2 test backbone and the real teacher, in subprocesses on a real
embedded store: killed with SIGKILL while the backbone writes questions, run again, it goes on from where it stopped
(the chunks asked before are not asked again) and the collection then searches with its own adapter."""

from __future__ import annotations

import inspect
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

MODULES = ("json", "textwrap", "collections", "pathlib", "shutil", "tarfile", "zipfile", "argparse", "logging", "subprocess",
           "datetime", "random", "statistics", "string", "functools", "itertools", "csv", "sqlite3", "email", "http.client",
           "os", "re", "typing", "inspect", "unittest", "asyncio", "decimal", "difflib", "heapq", "bisect", "enum", "dataclasses",
           "contextlib", "threading", "socket", "hashlib", "base64", "pickle", "copy", "pprint", "calendar", "io", "tempfile",
           "glob", "fnmatch", "gzip", "uuid", "configparser", "urllib.request", "xml.etree.ElementTree")


def write_docs(root: Path, n: int = 160) -> int:
    """``n`` real documents: the standard library's longer docstrings, one per file."""
    import importlib

    root.mkdir(parents=True)
    written = 0
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in sorted(vars(module).items()):
            doc = inspect.getdoc(obj) if (inspect.isfunction(obj) or inspect.isclass(obj)) and not attr.startswith("_") else None
            if doc and len(doc) >= 300 and written < n:
                (root / f"{name}.{attr}.txt").write_text(f"{name}.{attr}\n\n{doc}\n")
                written += 1
    return written


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    """A fused collection ``kb`` of ~160 chunks, a run folder with a few general training responses, own adapters folder."""
    root = tmp_path_factory.mktemp("adapt-job")
    assert write_docs(root / "docs") >= 140
    env = {**os.environ, "GENSEARCH_QDRANT_PATH": str(root / "qdrant"), "GENSEARCH_RUN_DIR": str(root / "run"),
           "GENSEARCH_ADAPTERS_DIR": str(root / "adapters"), "GENSEARCH_BACKBONE": "test", "GENSEARCH_DTYPE": "float32"}
    (root / "run").mkdir()
    general = [{"id": f"g{i}", "split": "train", "source": "evals/test", "query": f"How do I {task}?",
                "response": f"To {task}, open the settings page, choose the option for it and save; the change applies at once."}
               for i, task in enumerate(["reset my password", "export a report", "add a user", "change the language", "archive a project",
                                         "rename a file", "share a folder", "delete a comment", "print an invoice", "undo a change"])]
    (root / "run" / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in general))
    index = gensearch(env, "index", str(root / "docs"), "-c", "kb", "--access", "public")
    assert index.returncode == 0, index.stderr[-2000:]
    return root, env


def gensearch(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True, timeout=900, **kwargs)


def test_a_run_killed_while_writing_questions_goes_on_and_the_collection_searches_with_its_adapter(kb):
    root, env = kb
    questions = root / "run" / "adapt" / "kb" / "questions.jsonl"
    log = open(root / "first.log", "w")
    first = subprocess.Popen([sys.executable, "-m", "app.cli", "adapt", "kb", "--max-chunks", "128"], env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    deadline = time.monotonic() + 600
    while not (questions.is_file() and questions.read_text().count("\n") >= 1):
        assert first.poll() is None, (root / "first.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "no questions written in 10 minutes"
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    asked_before = [json.loads(line)["chunk"] for line in questions.read_text().splitlines() if line.endswith("}")]
    assert asked_before, "the killed run had written questions"
    assert "not adapted" in gensearch(env, "adapt", "kb", "--status").stdout, "a killed run records nothing"

    second = gensearch(env, "adapt", "kb", "--max-chunks", "128")
    assert second.returncode == 0, second.stderr[-3000:]
    said = re.search(r"questions: (\d+) chunks asked before", second.stderr)
    assert said and int(said.group(1)) == len(asked_before), "the re-run went on from the questions written before the kill"
    chunks = [json.loads(line)["chunk"] for line in questions.read_text().splitlines()]
    assert chunks[: len(asked_before)] == asked_before and len(chunks) == len(set(chunks)), "no chunk was asked twice"

    status = json.loads(gensearch(env, "adapt", "kb", "--status", "--json").stdout)
    adapter = Path(status["adapter"])
    assert adapter.parent == root / "adapters" / "collections" and (adapter / "adapt_report.json").is_file()
    report = json.loads((adapter / "adapt_report.json").read_text())
    assert report["chunks"] == len(chunks) and report["collection"] == "kb"
    found = gensearch(env, "search", "How do I read a JSON file?", "-c", "kb", "--json")
    assert found.returncode == 0 and json.loads(found.stdout), found.stderr[-2000:]
