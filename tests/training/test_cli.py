"""`gensearch train ...`: options checked before any model loads, and publishing a finished run's adapter."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli


@pytest.mark.parametrize("command", ["fit", "refit-align"])
@pytest.mark.parametrize("value", ["0", "-3", "some"])
def test_a_bad_harmful_cap_is_refused_with_the_values_it_takes(tmp_path, command, value):
    args = ["train", command, "--out", str(tmp_path / "out"), "--harmful-cap", value]
    if command == "refit-align":
        args += ["--adapter", str(tmp_path / "adapter")]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "300"})  # the error box must not wrap the message
    assert result.exit_code == 2
    assert "use shared, none or a positive number" in result.output
    assert not (tmp_path / "out").exists(), "nothing was written"


@pytest.mark.parametrize("extra", [["--objective", "lasso"], ["--cosine-weight", "2"], ["--epochs", "10"]])
def test_refit_align_refuses_an_unknown_objective_and_contrastive_options_without_it(tmp_path, extra):
    args = ["train", "refit-align", "--out", str(tmp_path / "out"), "--adapter", str(tmp_path / "adapter"), *extra]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "--objective" in result.output
    assert not (tmp_path / "out").exists(), "nothing was written"


@pytest.mark.parametrize("value", ["", "recon,lora", "all"])
def test_a_bad_train_group_list_is_refused_with_the_groups_it_takes(tmp_path, value):
    result = CliRunner().invoke(cli, ["train", "fit", "--out", str(tmp_path / "out"), "--train", value], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "use one or more of special, recon, align" in result.output
    assert not (tmp_path / "out").exists(), "nothing was written"


def test_a_fresh_adapter_cannot_train_only_a_part(tmp_path):
    result = CliRunner().invoke(cli, ["train", "fit", "--out", str(tmp_path / "out"), "--train", "recon"], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "train a part of one with --init-adapter" in result.output
    assert not (tmp_path / "out").exists(), "nothing was written"


def test_publishing_a_warm_start_keeps_the_history_of_the_adapter_it_started_from(tmp_path):
    from training.recipes import publish_fit

    out, target = tmp_path / "run", tmp_path / "adapters" / "backbone"
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "adapter.safetensors").write_bytes(b"new weights")
    (out / "report.json").write_text('{"complete": true, "steps": 3}')
    (out / "loss.png").write_bytes(b"png")
    target.mkdir(parents=True)
    (target / "adapter.safetensors").write_bytes(b"old weights")
    (target / "training_report.json").write_text('{"steps": 398, "align_refit": {"lam": 0.003}}')
    publish_fit(out, target, init_adapter=target)
    report = json.loads((target / "training_report.json").read_text())
    assert report["steps"] == 3 and report["init_adapter_report"] == {"steps": 398, "align_refit": {"lam": 0.003}}
    assert (target / "adapter.safetensors").read_bytes() == b"new weights" and (target / "loss.png").is_file()
