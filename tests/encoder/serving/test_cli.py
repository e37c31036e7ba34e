"""`gensearch serve` refuses contradictory or invalid limits before loading any model."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-items", "600", "--max-queue", "10"], "must not exceed max queue"),
        (["--max-batch-size", "0"], "serve_max_batch_size"),
        (["--port", "70000"], "serve_port"),
    ],
)
def test_serve_refuses_bad_limits(args, message):
    result = CliRunner().invoke(cli, ["serve", "--encoder", "test", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_serve_is_registered():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "--max-batch-size" in result.output
