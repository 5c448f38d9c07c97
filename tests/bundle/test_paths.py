"""Finding the bundles folder."""

from __future__ import annotations

from pathlib import Path

import pytest

import monai_jdt
from monai_jdt.bundle import BUNDLE_NAMES, BUNDLES_ENV, bundle_dir, bundles_root


def test_bundles_next_to_the_package() -> None:
    root = bundles_root()
    assert root == Path(monai_jdt.__file__).resolve().parent.parent / "bundles"
    for name in BUNDLE_NAMES:
        folder = bundle_dir(name)
        for part in (
            "configs/metadata.json",
            "configs/train.json",
            "configs/evaluate.json",
            "configs/inference.json",
            "configs/multi_gpu_train.json",
            "configs/logging.conf",
            "docs/README.md",
            "docs/data_license.txt",
            "LICENSE",
        ):
            assert (folder / part).is_file(), f"{name}/{part} is missing"


def test_environment_variable_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUNDLES_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"{BUNDLES_ENV}=.* is not a monai_jdt bundles folder"):
        bundles_root()
    (tmp_path / "meta_schema.json").write_text("{}")
    assert bundles_root() == tmp_path.resolve()
    with pytest.raises(FileNotFoundError, match="qubiq_multirater_segmentation.*is incomplete"):
        bundle_dir("qubiq_multirater_segmentation")
    with pytest.raises(ValueError, match="name must be one of"):
        bundle_dir("spleen")


def test_missing_bundles_folder_explains_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a non-editable install: the package is somewhere without a bundles folder next to it."""
    import monai_jdt.bundle.paths as paths

    monkeypatch.delenv(BUNDLES_ENV, raising=False)
    monkeypatch.setattr(paths, "__file__", str(tmp_path / "site-packages" / "monai_jdt" / "bundle" / "paths.py"))
    with pytest.raises(FileNotFoundError) as excinfo:
        bundles_root()
    message = str(excinfo.value)
    assert str(tmp_path / "site-packages" / "bundles") in message
    assert "bash scripts/setup.sh" in message and BUNDLES_ENV in message
