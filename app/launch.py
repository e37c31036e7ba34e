"""`gensearch app`: start the Streamlit UI; any Streamlit flag passes through (e.g. --server.port 8600)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

MAIN = Path(__file__).parent / "main.py"

# Offline-friendly defaults, each overridable on the command line: no usage statistics, no e-mail
# prompt on first run, local-only address, no file watcher (the app's code does not change under it).
DEFAULT_FLAGS = {
    "browser.gatherUsageStats": "false",
    "server.showEmailPrompt": "false",
    "server.address": "127.0.0.1",
    "server.fileWatcherType": "none",
    "client.showErrorDetails": "none",
    "client.toolbarMode": "minimal",
}


def flag_names(args: list[str]) -> set[str]:
    """Names of the ``--name value`` / ``--name=value`` flags in ``args`` (without the dashes)."""
    return {a[2:].split("=", 1)[0] for a in args if a.startswith("--")}


def streamlit_argv(args: list[str], script: Path = MAIN) -> list[str]:
    """``python -m streamlit run SCRIPT`` with the user's flags, plus every default the user did not set."""
    given = flag_names(args)
    defaults = [f"--{name}={value}" for name, value in DEFAULT_FLAGS.items() if name not in given]
    return [sys.executable, "-m", "streamlit", "run", str(script), *defaults, *args]


def app(ctx: typer.Context) -> None:
    """Open the search UI in the browser (Search, Compare, Safety, Ask). Streamlit flags pass through."""
    argv = streamlit_argv(list(ctx.args))
    typer.echo(" ".join(argv[1:]), err=True)
    os.execv(argv[0], argv)  # become the Streamlit server: signals and exit code are its own
