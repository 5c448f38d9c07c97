from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_jdt.data import lits_datalist
from tests.data._helpers import write_nifti


def test_batch_folders_are_searched_recursively(lits_root: Path) -> None:
    data = lits_datalist(lits_root, folds=3)
    assert [(d["case_id"], d["fold"]) for d in data] == [("volume-0", 0), ("volume-1", 1), ("volume-2", 2)]
    assert data[0]["image"] == str(lits_root / "Training Batch 1" / "volume-0.nii")
    assert data[0]["label"] == str(lits_root / "Training Batch 1" / "segmentation-0.nii")
    assert data[2]["label"] == str(lits_root / "Training Batch 2" / "segmentation-2.nii")
    test = lits_datalist(lits_root, split="test")
    assert test == [{"image": str(lits_root / "test-volume-0.nii"), "case_id": "test-volume-0"}]


def test_numeric_order_nii_gz_and_hidden_files(tmp_path: Path) -> None:
    for n in (10, 2, 1):
        write_nifti(tmp_path / "a" / f"volume-{n}.nii.gz", np.zeros((4, 4, 2), np.int16))
        write_nifti(tmp_path / "b" / f"segmentation-{n}.nii.gz", np.zeros((4, 4, 2), np.uint8))
    (tmp_path / "a" / "._volume-3.nii").write_bytes(b"\0" * 10)  # macOS resource fork: skipped
    (tmp_path / ".cache").mkdir()
    write_nifti(tmp_path / ".cache" / "volume-4.nii", np.zeros((4, 4, 2), np.int16))
    data = lits_datalist(tmp_path, folds=None)
    assert [d["case_id"] for d in data] == ["volume-1", "volume-2", "volume-10"]
    assert all(d["image"].endswith(".nii.gz") and "fold" not in d for d in data)


def test_every_unpaired_duplicate_and_mismatched_file_is_named(lits_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "lits"
    shutil.copytree(lits_root, root)
    batch1, batch2 = root / "Training Batch 1", root / "Training Batch 2"
    (batch2 / "segmentation-1.nii").unlink()
    (batch2 / "volume-2.nii").unlink()
    shutil.copy(batch1 / "volume-0.nii", batch2 / "volume-0.nii")
    write_nifti(batch2 / "volume-5.nii", np.zeros((32, 32, 16), np.int16))
    write_nifti(batch2 / "segmentation-5.nii", np.zeros((32, 32, 15), np.uint8))
    with pytest.raises(ValueError) as info:
        lits_datalist(root)
    message = str(info.value)
    assert "4 problem(s)" in message
    assert f"missing: volume-2.nii[.gz] (for {batch2 / 'segmentation-2.nii'})" in message
    assert f"missing: segmentation-1.nii[.gz] (for {batch2 / 'volume-1.nii'})" in message
    assert f"volume-0.nii (found several copies: {batch1 / 'volume-0.nii'}, {batch2 / 'volume-0.nii'})" in message
    assert f"{batch2 / 'segmentation-5.nii'} (shape (32, 32, 15) does not match shape (32, 32, 16)" in message


def test_affine_mismatch(lits_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "lits"
    shutil.copytree(lits_root / "Training Batch 1", root)
    seg = root / "segmentation-0.nii"
    img = nib.load(seg, mmap=False)  # the file is rewritten below: no memory map on it
    flipped = img.affine.copy()
    flipped[0, 0] *= -1
    write_nifti(seg, np.asanyarray(img.dataobj), flipped)
    with pytest.raises(ValueError, match=rf"{seg} \(affine differs from the affine of image .*volume-0.nii"):
        lits_datalist(root, folds=None)
    assert len(lits_datalist(root, folds=None, check_affine=False)) == 1
    assert len(lits_datalist(root, folds=None, check_headers=False)) == 1


def test_only_missing_files_give_file_not_found(tmp_path: Path) -> None:
    write_nifti(tmp_path / "volume-0.nii", np.zeros((4, 4, 2), np.int16))
    with pytest.raises(FileNotFoundError, match=r"missing: segmentation-0.nii\[.gz\]"):
        lits_datalist(tmp_path)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="root must be an existing folder"):
        lits_datalist(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"no LiTS volume-N.nii\[.gz\] / segmentation-N.nii\[.gz\] file under"):
        lits_datalist(tmp_path)
    with pytest.raises(FileNotFoundError, match="no LiTS test-volume-N"):
        lits_datalist(tmp_path, split="test")
    with pytest.raises(ValueError, match="split must be one of 'training', 'test', got 'validation'"):
        lits_datalist(tmp_path, split="validation")


def test_header_checks_read_no_voxels(tmp_path: Path) -> None:
    write_nifti(tmp_path / "volume-0.nii", np.zeros((16, 16, 8), np.int16))
    seg = write_nifti(tmp_path / "segmentation-0.nii", np.zeros((16, 16, 8), np.uint8))
    header_bytes = nib.load(seg).dataobj.offset  # 352: the header and its extension flag
    seg.write_bytes(seg.read_bytes()[:header_bytes])  # keep the header, drop every voxel
    with pytest.raises(Exception):  # noqa: B017  (nibabel's error type for truncated data is not part of its API)
        nib.load(seg).get_fdata()
    assert lits_datalist(tmp_path, folds=None)[0]["label"] == str(seg)
