from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_jdt.data import KITS_REGIONS, kits_datalist, kits_edition, parse_instance_name, region_masks
from tests.data._helpers import write_nifti


@pytest.mark.parametrize(
    ("edition", "label", "folder"),
    [
        ("kits19", "segmentation", None),
        ("kits21", "aggregated_MAJ_seg", "segmentations"),
        ("kits23", "segmentation", "instances"),
    ],
)
def test_entries_of_each_edition(kits_roots: dict[str, Path], edition: str, label: str, folder: str | None) -> None:
    root = kits_roots[edition]
    data = kits_datalist(root, edition, folds=2)
    assert [(d["case_id"], d["fold"]) for d in data] == [("case_00000", 0), ("case_00001", 1)]
    assert data[0]["image"] == str(root / "case_00000" / "imaging.nii.gz")
    assert data[0]["label"] == str(root / "case_00000" / f"{label}.nii.gz")
    if folder is None:
        assert "instances" not in data[0]
        return
    files = sorted((root / "case_00001" / folder).iterdir())
    assert sorted(data[1]["instances"]) == [str(f) for f in files]
    assert data[1]["n_annotators"] == 3
    assert {parse_instance_name(f)[0] for f in files} >= {"kidney", "tumor"}
    assert "instances" not in kits_datalist(root, edition, folds=None, instances=False)[0]


def test_test_split_and_label_file(kits_roots: dict[str, Path]) -> None:
    test = kits_datalist(kits_roots["kits19"], "kits19", split="test")
    assert test == [{"image": str(kits_roots["kits19"] / "case_00002" / "imaging.nii.gz"), "case_id": "case_00002"}]
    assert len(kits_datalist(kits_roots["kits19"], 19, folds=2)) == 2  # the unlabelled case is not a training case
    data = kits_datalist(kits_roots["kits21"], "kits21", label_file="aggregated_AND_seg", folds=None)
    assert data[0]["label"].endswith("aggregated_AND_seg.nii.gz")
    with pytest.raises(FileNotFoundError, match="no KiTS test case"):
        kits_datalist(kits_roots["kits23"], "kits23", split="test")


def test_repository_layouts(kits_roots: dict[str, Path], tmp_path: Path) -> None:
    for edition, inner in (("kits23", "dataset"), ("kits21", "kits21/data"), ("kits19", "data")):
        repo = tmp_path / edition
        shutil.copytree(kits_roots[edition], repo / inner)
        assert [d["case_id"] for d in kits_datalist(repo, edition, folds=None)] == ["case_00000", "case_00001"]


def test_every_missing_and_mismatched_file_is_named(kits_roots: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "kits23"
    shutil.copytree(kits_roots["kits23"], root)
    (root / "case_00000" / "imaging.nii.gz").unlink()
    shutil.rmtree(root / "case_00001" / "instances")
    write_nifti(root / "case_00002" / "segmentation.nii.gz", np.zeros((16, 32, 32), np.uint8))
    write_nifti(root / "case_00002" / "imaging.nii.gz", np.zeros((16, 32, 32), np.float32))
    bad = write_nifti(
        root / "case_00002" / "instances" / "kidney_instance-1_annotation-1.nii.gz", np.zeros((16, 32, 31), np.uint8)
    )
    with pytest.raises(ValueError) as info:
        kits_datalist(root, "kits23")
    message = str(info.value)
    assert "3 problem(s)" in message
    assert f"missing: {root / 'case_00000'}/imaging.nii[.gz] (KiTS ships the imaging separately" in message
    assert f"missing: {root / 'case_00001' / 'instances'}/{{kidney,tumor,cyst}}_instance-*" in message
    assert f"{bad} (shape (16, 32, 31) does not match shape (16, 32, 32)" in message


def test_errors(kits_roots: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="edition must be one of 'kits19', 'kits21', 'kits23', got 'kits20'"):
        kits_datalist(kits_roots["kits23"], "kits20")
    with pytest.raises(FileNotFoundError, match="no KiTS case folder"):
        kits_datalist(tmp_path, "kits23")
    with pytest.raises(FileNotFoundError, match="root must be an existing folder"):
        kits_datalist(tmp_path / "nope")
    with pytest.raises(ValueError, match="split must be one of 'training', 'test', got 'validation'"):
        kits_datalist(kits_roots["kits23"], split="validation")


def test_edition_names() -> None:
    assert [kits_edition(e) for e in ("kits19", "KiTS21", 23, "2021", " kits23 ")] == [
        "kits19",
        "kits21",
        "kits23",
        "kits21",
        "kits23",
    ]


def test_region_masks_follow_the_kits_definitions() -> None:
    label = np.random.default_rng(0).integers(0, 4, size=(5, 6, 7))
    regions = region_masks(label)
    assert list(KITS_REGIONS) == ["kidney_and_mass", "mass", "tumor"]
    np.testing.assert_array_equal(regions[0], label > 0)  # kidney, tumour or cyst
    np.testing.assert_array_equal(regions[1], (label == 2) | (label == 3))  # tumour or cyst
    np.testing.assert_array_equal(regions[2], label == 2)
    torch.testing.assert_close(region_masks(torch.as_tensor(label)), torch.as_tensor(regions))


def test_annotations_without_ground_truth_are_not_taken_for_a_test_case(
    kits_roots: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "kits21"
    shutil.copytree(kits_roots["kits21"], root)
    (root / "case_00001" / "aggregated_MAJ_seg.nii.gz").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"case_00001/aggregated_MAJ_seg.nii\[.gz\] \(the case has segmentations/\)"
    ):
        kits_datalist(root, "kits21")
