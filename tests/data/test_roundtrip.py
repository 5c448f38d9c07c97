"""Synthetic data -> datalist -> JSON -> MONAI loader -> LoadImaged, for every layout and edition."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged
from monai.utils import optional_import

from monai_jdt.data import kits_datalist, lits_datalist, qubiq_datalist, write_datalist
from monai_jdt.data.synthetic import write_synthetic_lits

_, HAS_ITK = optional_import("itk")


def _via_json(entries: list[dict], folder: Path) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no value collides here; keep the test about the round trip
        path = write_datalist(folder / "lists" / "datalist.json", entries)
    loaded = load_decathlon_datalist(path)
    assert [d["image"] for d in loaded] == [e["image"] for e in entries]
    return loaded


def _check_geometry(image: torch.Tensor, label: torch.Tensor) -> None:
    torch.testing.assert_close(label.affine, image.affine)
    assert label.shape == image.shape


@pytest.mark.parametrize("task", ["prostate", "brain-tumor", "pancreas"])
def test_qubiq(qubiq_root: Path, tmp_path: Path, task: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        entries = qubiq_datalist(qubiq_root, task, folds=2)
    entry = _via_json(entries, tmp_path)[0]
    out = LoadImaged(["image", "raters", "raters_task01"], reader="NibabelReader", image_only=True)(entry)
    n = entry["n_raters"]
    assert out["raters"].shape[0] == n and out["raters"].meta["original_channel_dim"] == 0
    torch.testing.assert_close(out["raters"], out["raters_task01"])
    spatial = tuple(out["raters"].shape[1:])
    assert tuple(out["image"].shape) == (spatial if task != "brain-tumor" else (*spatial, 4))
    torch.testing.assert_close(out["raters"].affine, out["image"].affine)
    assert set(torch.unique(out["raters"]).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("compress", [False, True], ids=["nii", "nii.gz"])
def test_lits(tmp_path: Path, compress: bool) -> None:
    root = write_synthetic_lits(
        tmp_path / "lits", cases=2, size=24, test_cases=1, compress=compress, progress_bar=False
    )
    entry = _via_json(lits_datalist(root, folds=2), tmp_path)[1]
    assert entry["image"].endswith(".nii.gz" if compress else ".nii")
    out = LoadImaged(["image", "label"], reader="NibabelReader", image_only=True)(entry)
    _check_geometry(out["image"], out["label"])
    assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0, 2.0}
    test = load_decathlon_datalist(
        write_datalist(tmp_path / "t.json", [], test=lits_datalist(root, split="test")), data_list_key="test"
    )
    assert LoadImaged("image", image_only=True)(test[0])["image"].shape == (24, 24, 12)


@pytest.mark.parametrize("edition", ["kits19", "kits21", "kits23"])
def test_kits(kits_roots: dict[str, Path], tmp_path: Path, edition: str) -> None:
    entry = _via_json(kits_datalist(kits_roots[edition], edition, folds=2), tmp_path)[0]
    keys = ["image", "label"] + (["instances"] if edition != "kits19" else [])
    out = LoadImaged(keys, reader="NibabelReader", image_only=True)(entry)
    _check_geometry(out["image"], out["label"])
    if edition != "kits19":
        assert out["instances"].shape[0] == len(entry["instances"])  # every instance file, stacked
        torch.testing.assert_close(out["instances"].affine, out["image"].affine)


@pytest.mark.parametrize("which", ["qubiq", "lits", "kits23"])
def test_simpleitk_reads_the_files_like_nibabel(
    qubiq_root: Path, lits_root: Path, kits_roots: dict[str, Path], which: str
) -> None:
    if which == "qubiq":
        entry = qubiq_datalist(qubiq_root, "kidney", folds=None)[0]
        paths = [entry["image"], *entry["raters"]]
    elif which == "lits":
        entry = lits_datalist(lits_root, folds=None)[0]
        paths = [entry["image"], entry["label"]]
    else:
        entry = kits_datalist(kits_roots["kits23"], "kits23", folds=None)[0]
        paths = [entry["image"], entry["label"], entry["instances"][0]]
    for path in paths:
        itk_image, nib_image = sitk.ReadImage(path), nib.load(path)
        assert itk_image.GetSize() == nib_image.shape  # both list the axes fastest-first
        np.testing.assert_allclose(itk_image.GetSpacing(), nib_image.header.get_zooms(), rtol=1e-6)
        # SimpleITK stores LPS, nibabel RAS: the origins differ by the sign of x and y
        dims = len(nib_image.shape)
        np.testing.assert_allclose(
            np.multiply(itk_image.GetOrigin(), [-1, -1, 1][:dims]), nib_image.affine[:dims, 3], atol=1e-3
        )
        np.testing.assert_array_equal(sitk.GetArrayFromImage(itk_image).transpose(), np.asanyarray(nib_image.dataobj))


@pytest.mark.skipif(
    not HAS_ITK,
    reason="MONAI's ITKReader needs the 'itk' package, which is not installed (SimpleITK is tested directly above)",
)
def test_monai_itk_reader(qubiq_root: Path, lits_root: Path, kits_roots: dict[str, Path]) -> None:
    qubiq = qubiq_datalist(qubiq_root, "kidney", folds=None)[0]
    cases = [
        (lits_datalist(lits_root, folds=None)[0], ["image", "label"]),
        (kits_datalist(kits_roots["kits21"], 21, folds=None)[0], ["image", "label", "instances"]),
        (qubiq, ["image", "raters"]),
    ]
    for entry, keys in cases:
        itk_out = LoadImaged(keys, reader="ITKReader", image_only=True)(entry)
        nib_out = LoadImaged(keys, reader="NibabelReader", image_only=True)(entry)
        for key in keys:
            torch.testing.assert_close(itk_out[key].as_tensor(), nib_out[key].as_tensor())
            a_itk, a_nib = itk_out[key].affine, nib_out[key].affine
            if a_itk.shape != a_nib.shape:  # 2D files: ITKReader gives a 3x3 affine, nibabel always 4x4
                a_nib = a_nib[[0, 1, 3]][:, [0, 1, 3]]
            torch.testing.assert_close(a_itk, a_nib, atol=1e-4, rtol=0)


def test_qubiq_raters_fuse_into_a_soft_label(qubiq_root: Path) -> None:
    from monai_jdt.transforms import FuseRatersd

    entry = qubiq_datalist(qubiq_root, "kidney", folds=None)[0]
    out = LoadImaged(["image", "raters"], image_only=True)(entry)
    fused = FuseRatersd("raters", output_key="label", method="mean", num_classes=2)(out)["label"]
    torch.testing.assert_close(fused[1], out["raters"].float().mean(0))  # foreground = share of raters
    torch.testing.assert_close(fused[0] + fused[1], torch.ones_like(fused[0]))
