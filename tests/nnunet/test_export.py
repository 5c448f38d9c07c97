"""nnU-Net raw-format export: layout, dataset.json, label values and errors (does not need nnU-Net)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_jdt.cli import main
from monai_jdt.data import write_datalist
from monai_jdt.nnunet.export import dataset_folder_name, write_nnunet_dataset, write_synthetic_nnunet_dataset


def _labels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asanyarray(nib.load(p).dataobj) for p in sorted((folder / "labelsTr").iterdir())}


def test_synthetic_lits_layout_and_dataset_json(tmp_path: Path):
    folder = write_synthetic_nnunet_dataset(tmp_path, like="lits", dataset_id=7, cases=2, size=(16, 16, 8))
    assert folder == tmp_path / "Dataset007_SynthLiTS"
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta == {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumor": 2},
                    "numTraining": 2, "file_ending": ".nii.gz"}
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == ["lits_000_0000.nii.gz", "lits_001_0000.nii.gz"]
    for name, label in _labels(folder).items():
        image = nib.load(folder / "imagesTr" / name.replace(".nii.gz", "_0000.nii.gz"))
        assert image.shape == label.shape == (16, 16, 8)
        assert label.dtype == np.uint8 and set(np.unique(label)) <= {0, 1, 2}
        assert 1 in np.unique(label)  # the liver is there
        np.testing.assert_allclose(nib.load(folder / "labelsTr" / name).affine, image.affine)


def test_synthetic_kits_regions_with_ignore(tmp_path: Path):
    folder = write_synthetic_nnunet_dataset(tmp_path, like="kits", cases=2, size=(24, 24, 12), regions=True,
                                            ignore_label=True, dataset_id=502)
    meta = json.loads((folder / "dataset.json").read_text())
    assert list(meta["labels"]) == ["background", "kidney_and_masses", "masses", "tumor", "ignore"]  # order kept
    assert meta["labels"]["ignore"] == 4 and meta["regions_class_order"] == [1, 3, 2]
    for name, label in _labels(folder).items():
        zooms = nib.load(folder / "labelsTr" / name).header.get_zooms()
        slice_axis = int(np.argmax(zooms))  # KiTS is stored slices first
        moved = np.moveaxis(label, slice_axis, 0)
        assert (moved[1::2] == 4).all() and not (moved[0::2] == 4).any()


def test_write_nnunet_dataset_from_entries(tmp_path: Path):
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    entries = []
    for k in range(2):
        img, lab = tmp_path / f"i{k}.nii", tmp_path / f"l{k}.nii.gz"
        nib.save(nib.Nifti1Image(np.full((4, 4, 3), k, np.float32), affine), img)
        nib.save(nib.Nifti1Image(np.eye(4)[:, :, None].repeat(3, 2).astype(np.float32), affine), lab)
        entries.append({"image": [str(img), str(img)], "label": str(lab), "case_id": f"c{k}"})
    folder = write_nnunet_dataset(entries, tmp_path / "raw", 12, "Two", {"background": 0, "organ": 1}, ("T1", "T2"))
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "T2"} and meta["numTraining"] == 2
    assert (folder / "imagesTr" / "c1_0001.nii.gz").is_file()
    np.testing.assert_array_equal(nib.load(folder / "imagesTr" / "c1_0000.nii.gz").get_fdata(), 1.0)
    np.testing.assert_array_equal(_labels(folder)["c0.nii.gz"][:, :, 0], np.eye(4))


def test_errors_name_the_problem(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        write_nnunet_dataset([{"image": tmp_path / "missing.nii.gz", "label": tmp_path / "l.nii.gz"}], tmp_path, 1,
                             "A", {"background": 0, "x": 1})
    img = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(np.full((3, 3, 3), 5, np.int16), np.eye(4)), img)
    with pytest.raises(ValueError, match=r"values \[5\] not declared"):
        write_nnunet_dataset([{"image": img, "label": img}], tmp_path, 1, "A", {"background": 0, "x": 1})
    with pytest.raises(ValueError, match="regions_class_order is required"):
        write_nnunet_dataset([{"image": img, "label": img}], tmp_path, 1, "A", {"background": 0, "x": [1, 2]})
    with pytest.raises(ValueError, match="highest label value"):
        write_nnunet_dataset([], tmp_path, 1, "A", {"background": 0, "ignore": 1, "x": 2})
    with pytest.raises(ValueError, match="entries is empty"):
        write_nnunet_dataset([], tmp_path, 1, "A", {"background": 0, "x": 1})
    with pytest.raises(ValueError, match="dataset_id must be in"):
        dataset_folder_name(1000, "A")
    with pytest.raises(ValueError, match="no spaces"):
        dataset_folder_name(1, "my data")
    with pytest.raises(ValueError, match="like must be one of"):
        write_synthetic_nnunet_dataset(tmp_path, like="brats")


def test_cli_writes_the_dataset(tmp_path: Path, capsys: pytest.CaptureFixture):
    args = ["nnunet-export", "--out", str(tmp_path), "--dataset-id", "42", "--cases", "2", "--size", "16", "16", "8"]
    assert main([*args, "--ignore-label"]) == 0
    out = capsys.readouterr().out
    assert "Dataset042_SynthLiTSIgnore (2 training cases)" in out
    assert "nnUNetv2_plan_and_preprocess -d 42" in out
    labels = _labels(tmp_path / "Dataset042_SynthLiTSIgnore")
    assert all(3 in np.unique(v) for v in labels.values())
    assert main([*args, "--datalist", str(tmp_path / "none.json")]) == 1
    assert "none.json" in capsys.readouterr().err


def test_cli_exports_a_datalist(tmp_path: Path, capsys: pytest.CaptureFixture):
    img, lab = tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), img)
    nib.save(nib.Nifti1Image(np.ones((4, 4, 2), np.uint8) * 2, np.eye(4)), lab)
    datalist = tmp_path / "list.json"
    write_datalist(datalist, [{"image": str(img), "label": str(lab), "case_id": "liver_1", "fold": 0}])
    assert main(["nnunet-export", "--out", str(tmp_path / "raw"), "--datalist", str(datalist), "--name", "L"]) == 0
    folder = tmp_path / "raw" / "Dataset501_L"
    assert (folder / "imagesTr" / "liver_1_0000.nii.gz").is_file()
    assert json.loads((folder / "dataset.json").read_text())["labels"] == {"background": 0, "liver": 1, "tumor": 2}
