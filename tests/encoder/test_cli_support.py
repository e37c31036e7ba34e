"""``encoder.cli_support``: one error line and exit code for user errors; bugs keep their traceback."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from encoder import AdapterError, FetchError
from encoder.cli_support import EncoderOption, Task, Threads, fail, user_errors


class StoreDown(RuntimeError):
    """A layer's own error that is not a ValueError (like indexer.store.StoreError)."""


def run(body, *, extra: tuple[type[Exception], ...] = (), code: int = 1):
    """Invoke a one-command Typer app whose body runs inside ``user_errors(*extra, code=code)``."""
    app = typer.Typer()

    @app.command()
    def command() -> None:
        with user_errors(*extra, code=code):
            body()

    return CliRunner().invoke(app, [])


def raises(exc: BaseException):
    def body():
        raise exc

    return body


def test_fail_prints_one_error_line_on_stderr_and_returns_the_exit():
    def body():
        raise fail("give a folder PATH", 2)

    result = run(body)
    assert result.exit_code == 2
    assert result.stderr == "error: give a folder PATH\n" and result.stdout == ""
    assert isinstance(fail("x"), typer.Exit) and fail("x").exit_code == 1


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad value"), FileNotFoundError("no such file"), AdapterError("bad adapter"), FetchError("no wheel")],
)
def test_library_errors_become_one_line_and_exit_1(exc):
    result = run(raises(exc))
    assert result.exit_code == 1
    assert result.stderr == f"error: {exc}\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback


def test_extra_errors_and_the_exit_code_are_the_callers():
    result = run(raises(StoreDown("cannot reach the Qdrant server")), extra=(StoreDown,), code=3)
    assert result.exit_code == 3 and result.stderr == "error: cannot reach the Qdrant server\n"
    unknown = run(raises(KeyError("unknown model 'gpt-5'")), extra=(KeyError,))
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: ") and "gpt-5" in unknown.stderr


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), StoreDown("not listed"), KeyError("not listed"), ZeroDivisionError()])
def test_unexpected_exceptions_propagate_with_their_traceback(exc):
    result = run(raises(exc))
    assert result.exception is exc and result.exc_info[2] is not None
    assert "error:" not in result.stderr


def test_keyboard_interrupt_is_never_swallowed():
    with pytest.raises(KeyboardInterrupt):
        with user_errors(Exception):
            raise KeyboardInterrupt


def test_typer_exits_and_usage_errors_pass_through():
    with pytest.raises(typer.Exit) as exit_:
        with user_errors(RuntimeError):  # typer.Exit is a RuntimeError: still not turned into a message
            raise typer.Exit(4)
    assert exit_.value.exit_code == 4
    result = run(raises(typer.BadParameter("not a date", param_hint="--modified-after")), extra=(Exception,))
    assert result.exit_code == 2 and "not a date" in result.stderr and "error: not a date" not in result.stderr


def test_shared_options_keep_the_parameter_name_and_the_task_choices():
    app = typer.Typer()
    seen = {}

    @app.command()
    def command(encoder: EncoderOption = "llm2vec-gen", task: Task = Task.query, torch_threads: Threads = None) -> None:
        seen.update(encoder=encoder, task=task, threads=torch_threads)

    assert CliRunner().invoke(app, ["-e", "baseline", "--task", "document", "--torch-threads", "2"]).exit_code == 0
    assert seen == {"encoder": "baseline", "task": Task.document, "threads": 2}
    assert [t.value for t in Task] == ["query", "document", "similarity"]
    assert CliRunner().invoke(app, ["--task", "passage"]).exit_code == 2
    assert CliRunner().invoke(app, ["--torch-threads", "0"]).exit_code == 2
