"""The package layers of DESIGN.md §3, imports only downward: app > evaluation > training | indexer > encoder.

The contract lives in pyproject.toml ([tool.importlinter]); ``lint-imports`` checks every import,
including the lazy ones inside functions."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_points_down_the_layers():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_the_contract_breaks_when_a_lower_layer_imports_a_higher_one(tmp_path):
    import os
    import shutil

    for package in ("encoder", "training", "indexer", "evaluation", "app"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("adapters", "responses", "reports", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "encoder" / "device.py", "a") as fh:
        fh.write("\n\ndef _upward():\n    from indexer.store import open_client  # the bottom layer reaching up\n")
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # the copy, not the installed checkout
    result = subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "0 kept, 1 broken" in result.stdout, result.stdout[-3000:]
    assert "encoder.device -> indexer.store" in result.stdout
