"""`gensearch app`: Streamlit argv with offline defaults that user flags override."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from app.cli import cli
from app.launch import MAIN, streamlit_argv


def test_defaults_are_added_and_user_flags_win():
    argv = streamlit_argv(["--server.port", "8600", "--server.address=0.0.0.0"])
    assert argv[:5] == [sys.executable, "-m", "streamlit", "run", str(MAIN)]
    assert "--browser.gatherUsageStats=false" in argv and "--server.showEmailPrompt=false" in argv
    assert not any(a.startswith("--server.address=127") for a in argv)
    assert argv[-3:] == ["--server.port", "8600", "--server.address=0.0.0.0"]


def test_app_script_exists_and_cli_lists_app():
    assert MAIN.is_file()
    result = CliRunner().invoke(cli, ["app", "--help"])
    assert result.exit_code == 0 and "Streamlit flags pass" in " ".join(result.output.split())
