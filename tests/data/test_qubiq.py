from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_jdt.data import QUBIQ_TASKS, qubiq_datalist
from monai_jdt.data.synthetic import write_synthetic_qubiq
from tests.data._helpers import write_nifti

TRAIN = "training_data_v3_QC"  # the fixture asks for the pancreas sets, hence the 2021 folder names


def _copy_task(qubiq_root: Path, tmp_path: Path, task: str = "kidney") -> Path:
    """A private copy of one task (download-folder layout) that a test may damage."""
    dst = tmp_path / "qubiq"
    shutil.copytree(qubiq_root / TRAIN / task, dst / TRAIN / task)
    return dst


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return qubiq_datalist(*args, **kwargs)


@pytest.mark.parametrize("task", sorted(QUBIQ_TASKS))
def test_entries_of_every_task(qubiq_root: Path, task: str) -> None:
    data = _quiet(qubiq_root, task, folds=2)
    case_dir = qubiq_root / TRAIN / task / "Training"
    expected_cases = (
        ["case1-1", "case1-2", "case2-1", "case2-2"]
        if QUBIQ_TASKS[task].spatial_dims == 3
        else ["case01", "case02", "case03", "case04"]
    )
    assert [d["case_id"] for d in data] == expected_cases
    assert [d["fold"] for d in data] == [0, 0, 1, 1]
    first = data[0]
    assert first["image"] == str(case_dir / expected_cases[0] / "image.nii.gz")
    raters = sorted((case_dir / expected_cases[0]).glob("task01_seg*.nii.gz"))
    assert first["raters"] == [str(p) for p in raters] == first["raters_task01"]
    assert first["n_raters"] == len(raters) and first["task"] == task and first["subtask"] == 1
    subtasks = 1 if task == "pancreatic-lesion" else QUBIQ_TASKS[task].subtasks
    assert sorted(k for k in first if k.startswith("raters_task")) == [
        f"raters_task{s:02d}" for s in range(1, subtasks + 1)
    ]


def test_subtask_selects_the_rater_files(qubiq_root: Path) -> None:
    data = _quiet(qubiq_root, "brain-tumor", subtask=3, folds=None)
    assert all(Path(r).name.startswith("task03_seg") for d in data for r in d["raters"])
    assert data[0]["raters"] == data[0]["raters_task03"] and "fold" not in data[0]
    with pytest.raises(ValueError, match=r"subtask must be one of \[1, 2\] for QUBIQ prostate, got 3"):
        _quiet(qubiq_root, "prostate", subtask=3)


def test_prostate_case_with_fewer_raters(qubiq_root: Path) -> None:
    # the synthetic set reproduces the real quirk: with 4 cases, the last one has 5 of 6 raters
    with pytest.warns(UserWarning, match=r"case04 \(5\); kept"):
        kept = qubiq_datalist(qubiq_root, "prostate", folds=2)
    assert [d["n_raters"] for d in kept] == [6, 6, 6, 5]
    with pytest.warns(UserWarning, match="dropped"):
        dropped = qubiq_datalist(qubiq_root, "prostate", folds=3, incomplete_raters="drop")
    assert [d["case_id"] for d in dropped] == ["case01", "case02", "case03"]
    assert [d["fold"] for d in dropped] == [0, 1, 2]  # folds are cut after dropping
    with pytest.raises(ValueError, match=r"1 case\(s\) have fewer than 6 raters: case04 \(5\)"):
        qubiq_datalist(qubiq_root, "prostate", incomplete_raters="error", folds=None)


def test_validation_split(qubiq_root: Path) -> None:
    data = qubiq_datalist(qubiq_root, "kidney", split="validation", folds=None)
    assert [d["case_id"] for d in data] == ["case05"]
    assert "validation_data_qubiq2021_QC/kidney/Validation/case05" in data[0]["image"]


def test_layouts_and_release_folder_names(tmp_path: Path) -> None:
    root = write_synthetic_qubiq(tmp_path / "dl", tasks="kidney", cases=2, size=16, progress_bar=False)
    assert (root / "training_data_v2" / "kidney" / "Training" / "case01").is_dir()  # 2020 names by default
    from_download = qubiq_datalist(root, "kidney", folds=None)
    from_release = qubiq_datalist(root / "training_data_v2", "kidney", folds=None)
    assert from_download == from_release
    # a release without split folders: <release>/<task>/<case>
    flat = tmp_path / "flat" / "training_data_v3_QC" / "kidney"
    shutil.copytree(root / "training_data_v2" / "kidney" / "Training", flat)
    data = qubiq_datalist(tmp_path / "flat", "kidney", folds=None)
    assert [d["case_id"] for d in data] == ["case01", "case02"]
    # both releases side by side: ambiguous
    shutil.copytree(root / "training_data_v2", tmp_path / "both" / "training_data_v2")
    shutil.copytree(root / "training_data_v2", tmp_path / "both" / "training_data_v3_QC")
    with pytest.raises(ValueError, match=r"several QUBIQ training folders .*training_data_v2.*training_data_v3_QC"):
        qubiq_datalist(tmp_path / "both", "kidney")


def test_image_with_leading_singleton_axis_and_nii(tmp_path: Path) -> None:
    case = tmp_path / "prostate" / "Training" / "case01"
    write_nifti(case / "image.nii", np.zeros((1, 8, 6), np.float32))  # stored (1, H, W), uncompressed
    for r in (1, 2):
        write_nifti(case / f"task01_seg{r:02d}.nii", np.zeros((8, 6), np.uint8))
    (case / "task01_seg_majority.nii.gz").write_bytes(b"")  # files that are not rater masks are ignored
    data = qubiq_datalist(tmp_path, "prostate", folds=None)
    assert data[0]["image"].endswith("image.nii") and len(data[0]["raters"]) == 2


def test_every_missing_and_mismatched_file_is_named(qubiq_root: Path, tmp_path: Path) -> None:
    root = _copy_task(qubiq_root, tmp_path)
    cases = root / TRAIN / "kidney" / "Training"
    (cases / "case01" / "image.nii.gz").unlink()
    (cases / "case03" / "image.nii.gz").unlink()
    seg = cases / "case02" / "task01_seg02.nii.gz"
    write_nifti(seg, np.zeros((31, 32), np.uint8), nib.load(cases / "case02" / "image.nii.gz").affine)
    moved = cases / "case04" / "task01_seg01.nii.gz"
    img = nib.load(moved)
    shifted = img.affine.copy()
    shifted[:3, 3] += 5.0
    write_nifti(moved, np.asarray(img.dataobj), shifted)
    with pytest.raises(ValueError) as info:
        qubiq_datalist(root, "kidney")
    message = str(info.value)
    assert "4 problem(s)" in message
    assert f"missing: {cases / 'case01'}/image.nii[.gz]" in message
    assert f"missing: {cases / 'case03'}/image.nii[.gz]" in message
    assert f"{seg} (shape (31, 32) does not match shape (32, 32)" in message
    assert f"{moved} (affine differs" in message and "by up to 5 mm" in message
    (cases / "case01").rename(cases.parent / "case01_moved")
    (cases / "case03").rename(cases.parent / "case03_moved")
    with pytest.raises(ValueError, match="shape"):
        qubiq_datalist(root, "kidney", check_affine=False)  # the shape is still checked
    seg.unlink()
    with pytest.warns(UserWarning, match=r"case02 \(2\)"):
        assert len(qubiq_datalist(root, "kidney", check_affine=False, folds=None)) == 2


def test_missing_subtask_masks_and_duplicates(qubiq_root: Path, tmp_path: Path) -> None:
    dst = tmp_path / "q"
    shutil.copytree(qubiq_root / TRAIN / "prostate", dst / "prostate")
    cases = dst / "prostate" / "Training"
    for f in (cases / "case02").glob("task02_seg*"):
        f.unlink()
    dup = cases / "case03" / "task01_seg01.nii"
    nib.save(nib.load(cases / "case03" / "task01_seg01.nii.gz"), str(dup))
    with pytest.raises(ValueError) as info:
        qubiq_datalist(dst, "prostate", incomplete_raters="keep")
    message = str(info.value)
    assert f"{cases / 'case02'}/task02_seg01.nii[.gz] (no rater mask of sub-task 2)" in message
    assert "task01_seg01.nii[.gz] (found several copies" in message and str(dup) in message


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"task": "liver"}, ValueError, "task must be one of 'brain-growth', .*got 'liver'"),
        ({"task": "kidney", "split": "test"}, ValueError, "split must be one of 'training', 'validation', got 'test'"),
        ({"task": "kidney", "incomplete_raters": "skip"}, ValueError, "incomplete_raters must be one of"),
        ({"task": "kidney", "subtask": 0}, ValueError, "subtask must be an integer >= 1, got 0"),
        ({"task": "kidney", "check_affine": "no"}, TypeError, "check_affine must be a bool"),
    ],
)
def test_argument_errors(qubiq_root: Path, kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        qubiq_datalist(qubiq_root, **kwargs)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="root must be an existing folder"):
        qubiq_datalist(tmp_path / "nope", "kidney")
    (tmp_path / "prostate" / "Training").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"no QUBIQ training folder for task 'kidney' .*found: \['prostate'\]"):
        qubiq_datalist(tmp_path, "kidney")
    with pytest.raises(FileNotFoundError, match=r"prostate/Training holds no case folder"):
        qubiq_datalist(tmp_path, "prostate")


def test_split_without_any_mask(tmp_path: Path) -> None:
    write_nifti(tmp_path / "kidney" / "Validation" / "case01" / "image.nii.gz", np.zeros((4, 4), np.float32))
    with pytest.raises(FileNotFoundError, match=r"Validation/<case>/task01_seg01.nii\[.gz\] \(no rater mask"):
        qubiq_datalist(tmp_path, "kidney", split="validation")
