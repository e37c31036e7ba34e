"""`gensearch models` and `gensearch embed` through the real command line app."""

from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()


def test_models_list_names_every_registry_model():
    result = runner.invoke(cli, ["models", "list"])
    assert result.exit_code == 0, result.output
    for name in ["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct", "all-mpnet-base-v2", "all-minilm-l6-v2"]:
        assert name in result.output


def test_models_verify_passes_on_the_cached_baseline():
    result = runner.invoke(cli, ["models", "verify", "baseline"])
    assert result.exit_code == 0 and "all-minilm-l6-v2: OK" in result.output


def test_fetch_of_an_unknown_model_fails_with_the_known_names():
    result = runner.invoke(cli, ["models", "fetch", "gpt-5"])
    assert result.exit_code == 1 and "known names" in result.output


def test_embed_prints_shape_and_pairwise_cosine():
    result = runner.invoke(cli, ["embed", "-e", "baseline", "sort a list", "sorting lists"])
    assert result.exit_code == 0, result.output
    assert "all-minilm-l6-v2: 2 vectors of dim 384" in result.output
    assert "+1.000" in result.output


def test_decode_needs_an_llm2vec_gen_encoder():
    result = runner.invoke(cli, ["embed", "-e", "baseline", "--decode", "hi"])
    assert result.exit_code == 2


def test_embed_with_a_broken_adapter_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "adapter.safetensors").write_bytes(b"xx")
    result = runner.invoke(cli, ["embed", "-e", str(tmp_path), "hello"])
    assert result.exit_code == 1 and "is not a gensearch adapter config" in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
