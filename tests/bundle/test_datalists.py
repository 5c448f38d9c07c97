"""Datalists, folds and the one-line errors of the bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_jdt.bundle import bundle_datalists, dataset_entries, inference_datalist, one_line_error, require_file
from monai_jdt.data import kits_datalist, write_datalist
from tests.bundle._helpers import KITS, LITS, QUBIQ


def _single_line_exit(excinfo: pytest.ExceptionInfo) -> str:
    message = excinfo.value.code
    assert isinstance(message, str) and message.startswith("error: ")
    assert "\n" not in message
    return message


def test_folds_are_contiguous_blocks_and_keys_are_projected(bundle_data: dict[str, Path]) -> None:
    parts = bundle_datalists("lits", bundle_data[LITS], fold=0, num_folds=2)
    # 4 cases, 2 folds: cases 0-1 validate, 2-3 train (the DML paper's contiguous blocks)
    assert [e["case_id"] for e in parts["val"]] == ["volume-0", "volume-1"]
    assert [e["case_id"] for e in parts["train"]] == ["volume-2", "volume-3"]
    assert all(set(e) == {"image", "label", "case_id"} for e in parts["train"] + parts["val"])
    assert all(Path(e["image"]).is_file() and Path(e["label"]).is_file() for e in parts["train"])


def test_qubiq_entries_keep_the_raters_of_the_subtask(bundle_data: dict[str, Path]) -> None:
    parts = bundle_datalists("qubiq", bundle_data[QUBIQ], fold=1, num_folds=2, task="kidney")
    entry = parts["train"][0]
    assert set(entry) == {"image", "raters", "case_id"}
    assert [Path(r).name for r in entry["raters"]] == [
        "task01_seg01.nii.gz",
        "task01_seg02.nii.gz",
        "task01_seg03.nii.gz",
    ]


def test_extra_keys_only_for_training(bundle_data: dict[str, Path]) -> None:
    parts = bundle_datalists("kits", bundle_data[KITS], fold=0, num_folds=2, extra_keys=("instances",))
    assert all(len(e["instances"]) > 0 for e in parts["train"])
    assert all("instances" not in e for e in parts["val"])


def test_prepared_datalist_json_with_and_without_folds(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    entries = kits_datalist(bundle_data[KITS], edition="kits23", folds=None)
    path = write_datalist(tmp_path / "kits.json", entries)
    parts = bundle_datalists("kits", None, datalist=path, fold=1, num_folds=2)  # no "fold" key: contiguous folds
    assert [e["case_id"] for e in parts["val"]] == ["case_00002", "case_00003"]
    with_folds = [dict(e, fold=i % 2) for i, e in enumerate(entries)]
    path = write_datalist(tmp_path / "kits_folds.json", with_folds)
    parts = bundle_datalists("kits", None, datalist=path, fold=1, num_folds=2)  # the file's folds win
    assert [e["case_id"] for e in parts["val"]] == ["case_00001", "case_00003"]


@pytest.mark.parametrize("dataset", ["qubiq", "lits", "kits"])
def test_missing_dataset_dir_is_one_line(dataset: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as excinfo:
        bundle_datalists(dataset, missing)
    message = _single_line_exit(excinfo)
    assert str(missing) in message and "is not an existing folder" in message and "--dataset_dir" in message


@pytest.mark.parametrize("dataset", ["qubiq", "lits", "kits"])
def test_empty_dataset_dir_names_what_is_missing(dataset: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as excinfo:
        bundle_datalists(dataset, tmp_path, task="kidney")
    message = _single_line_exit(excinfo)
    assert message.startswith(f"error: dataset_dir {tmp_path}: ")
    assert {"qubiq": "kidney", "lits": "volume-", "kits": "case"}[dataset] in message


def test_missing_files_are_listed_in_one_line(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "lits"
    shutil.copytree(bundle_data[LITS], root)
    for name in ("segmentation-1.nii", "segmentation-2.nii", "segmentation-3.nii"):
        next(root.rglob(name)).unlink()
    with pytest.raises(SystemExit) as excinfo:
        bundle_datalists("lits", root, num_folds=2)
    message = _single_line_exit(excinfo)
    assert "segmentation-1.nii" in message and "3 problem(s)" in message


def test_missing_extra_key_and_missing_file_in_a_datalist(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    entries = kits_datalist(bundle_data[KITS], edition="kits23", folds=2)
    path = write_datalist(tmp_path / "kits.json", entries)
    with pytest.raises(SystemExit) as excinfo:
        bundle_datalists("kits", None, datalist=path, num_folds=2, extra_keys=("teacher",))
    assert "has no 'teacher': label_mode kd needs --teacher_ckpt" in _single_line_exit(excinfo)
    content = json.loads(path.read_text())
    content["training"][3]["image"] = "gone.nii.gz"
    path.write_text(json.dumps(content))
    with pytest.raises(SystemExit) as excinfo:
        bundle_datalists("kits", None, datalist=path, num_folds=2)
    assert "gone.nii.gz does not exist" in _single_line_exit(excinfo)


def test_fold_errors(bundle_data: dict[str, Path]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        bundle_datalists("lits", bundle_data[LITS], fold=3, num_folds=2)
    assert "fold must be one of [0, 1], got 3" in _single_line_exit(excinfo)
    with pytest.raises(SystemExit) as excinfo:
        dataset_entries("lits", bundle_data[LITS], num_folds=5)  # 4 cases
    assert "folds must be <= the number of cases (4), got 5" in _single_line_exit(excinfo)


def test_one_line_error_folds_long_messages() -> None:
    err = FileNotFoundError("head: 5 problem(s)\n  missing: a\n  missing: b\n  missing: c\n  missing: d\n  missing: e")
    assert one_line_error(err).code == "error: head: 5 problem(s): missing: a; missing: b; missing: c; ... and 2 more"


def test_inference_datalist_and_require_file(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    found = inference_datalist(bundle_data[KITS], "**/imaging.nii*")
    assert [Path(e["image"]).parent.name for e in found] == ["case_00000", "case_00001", "case_00002", "case_00003"]
    single = inference_datalist(found[0]["image"], "ignored")
    assert single == [found[0]]
    with pytest.raises(SystemExit) as excinfo:
        inference_datalist(tmp_path, "**/*.nii.gz")
    assert "no image matches '**/*.nii.gz'" in _single_line_exit(excinfo)
    with pytest.raises(SystemExit) as excinfo:
        require_file(tmp_path / "model.pt", "the trained model", "run train.json first")
    assert (
        _single_line_exit(excinfo) == f"error: the trained model {tmp_path / 'model.pt'} does not exist "
        "(run train.json first)"
    )
