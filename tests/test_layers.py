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
