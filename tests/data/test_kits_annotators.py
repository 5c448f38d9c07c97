from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import Compose, LoadImaged

from monai_jdt.data import (
    LoadKiTSAnnotators,
    LoadKiTSAnnotatorsd,
    annotator_label_maps,
    annotator_plan,
    kits_datalist,
    load_kits_annotators,
)
from tests.data._helpers import write_nifti


def test_overlap_precedence_tumour_over_cyst_over_kidney() -> None:
    kidney = np.array([1, 1, 1, 1, 0, 0])
    cyst = np.array([0, 1, 1, 0, 1, 0])
    tumor = np.array([0, 0, 1, 1, 0, 0])
    maps = annotator_label_maps({("tumor", 1, 1): tumor, ("kidney", 1, 1): kidney, ("cyst", 1, 1): cyst})
    # kidney only -> 1; kidney+cyst -> 3; kidney+cyst+tumour -> 2; kidney+tumour -> 2; cyst only -> 3
    assert maps.tolist() == [[1, 3, 2, 2, 3, 0]]
    assert maps.dtype == torch.uint8


def test_plan_uses_the_smallest_annotation_count_and_wraps_on_request() -> None:
    keys = [("kidney", 1, 1), ("kidney", 1, 2), ("kidney", 1, 3), ("kidney", 2, 2), ("kidney", 2, 5)]
    count, plan = annotator_plan(keys)
    assert count == 2
    assert plan == [(("kidney", 1, 1), [0]), (("kidney", 1, 2), [1]), (("kidney", 2, 2), [0]), (("kidney", 2, 5), [1])]
    count, plan = annotator_plan(keys, num_annotators=3)
    assert count == 3 and dict(plan)[("kidney", 2, 2)] == [0, 2]  # instance 2 has only two annotations
    with pytest.raises(ValueError, match="instance class must be one of 'kidney', 'tumor', 'cyst', got 'liver'"):
        annotator_plan([("liver", 1, 1)])
    with pytest.raises(ValueError, match="at least one instance annotation"):
        annotator_plan([])
    with pytest.raises(ValueError, match="num_annotators must be an integer >= 1, got 0"):
        annotator_plan(keys, num_annotators=0)
    with pytest.raises(ValueError, match=r"instance masks must all have shape \(3,\), got \('tumor', 1, 1\) \(4,\)"):
        annotator_label_maps({("kidney", 1, 1): np.zeros(3), ("tumor", 1, 1): np.zeros(4)})


def _maps_by_hand(files: list[str], annotators: int) -> np.ndarray:
    """Independent reference: annotator a paints annotation a+1 of every instance, kidney, cyst, then tumour."""
    shape = nib.load(files[0]).shape
    out = np.zeros((annotators, *shape), np.uint8)
    for a in range(annotators):
        for value, cls in ((1, "kidney"), (3, "cyst"), (2, "tumor")):
            for f in files:
                if Path(f).name.startswith(f"{cls}_") and f.endswith(f"_annotation-{a + 1}.nii.gz"):
                    out[a][np.asanyarray(nib.load(f).dataobj) > 0] = value
    return out


@pytest.mark.parametrize("edition", ["kits21", "kits23"])
def test_transform_builds_the_maps_of_the_synthetic_cases(kits_roots: dict[str, Path], edition: str) -> None:
    for entry in kits_datalist(kits_roots[edition], edition, folds=None):
        pipeline = Compose(
            [
                LoadImaged(["image", "label"], image_only=True),
                LoadKiTSAnnotatorsd("instances", output_keys="annotators"),
            ]
        )
        out = pipeline(entry)
        maps = out["annotators"]
        assert tuple(maps.shape) == (3, *out["label"].shape)
        np.testing.assert_array_equal(maps.numpy(), _maps_by_hand(entry["instances"], 3))
        torch.testing.assert_close(maps.affine, out["image"].affine)
        assert maps.meta["original_channel_dim"] == 0 and maps.dtype == torch.uint8
        assert out["instances"] == entry["instances"]  # the file list is kept when output_keys is given
        # the ground truth is the per-instance majority, so every annotator agrees with it on most voxels
        for a in range(3):
            assert (maps[a].numpy() == out["label"].numpy()).mean() > 0.95


def test_in_place_and_array_transform(kits_roots: dict[str, Path]) -> None:
    entry = kits_datalist(kits_roots["kits23"], "kits23", folds=None)[0]
    out = LoadKiTSAnnotatorsd("instances", num_annotators=2)(entry)
    assert out["instances"].shape[0] == 2
    direct = LoadKiTSAnnotators()(entry["instances"])
    torch.testing.assert_close(direct[:2], out["instances"].as_tensor())
    torch.testing.assert_close(load_kits_annotators(entry["instances"]), direct)


def test_file_errors(kits_roots: dict[str, Path], tmp_path: Path) -> None:
    src = kits_roots["kits23"] / "case_00000" / "instances"
    folder = tmp_path / "instances"
    shutil.copytree(src, folder)
    files = sorted(str(f) for f in folder.iterdir())
    stray = write_nifti(tmp_path / "liver_instance-1_annotation-1.nii.gz", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError) as info:
        load_kits_annotators([*files, str(stray), str(folder / "tumor_instance-9_annotation-1.nii.gz")])
    message = str(info.value)
    assert f"{stray} (not a KiTS instance file" in message
    assert f"missing: {folder / 'tumor_instance-9_annotation-1.nii.gz'}" in message
    wrong = write_nifti(folder / "kidney_instance-1_annotation-2.nii.gz", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match=rf"{wrong} \(shape \(2, 2, 2\) differs from \(16, 32, 32\)"):
        load_kits_annotators(files)
    with pytest.raises(FileNotFoundError, match="tumor_instance-9"):
        load_kits_annotators([str(folder / "tumor_instance-9_annotation-1.nii.gz")])
    with pytest.raises(TypeError, match="files must be a list of KiTS instance files, got a single path"):
        LoadKiTSAnnotators()(files[0])
    with pytest.raises(ValueError, match=r"output_keys must have one key per key \(1\), got \['a', 'b'\]"):
        LoadKiTSAnnotatorsd("instances", output_keys=["a", "b"])


def test_maps_fuse_into_a_soft_label(kits_roots: dict[str, Path]) -> None:
    from monai_jdt.transforms import FuseRatersd

    entry = kits_datalist(kits_roots["kits23"], "kits23", folds=None)[1]
    pipeline = Compose(
        [
            LoadImaged("image", image_only=True),
            LoadKiTSAnnotatorsd("instances", "annotators"),
            FuseRatersd("annotators", output_key="soft", method="mean", num_classes=4),
        ]
    )
    out = pipeline(entry)
    maps = out["annotators"].long()
    expected = torch.stack([(maps == c).float().mean(0) for c in range(4)])  # per-class share of the annotators
    torch.testing.assert_close(out["soft"].as_tensor(), expected)
    torch.testing.assert_close(out["soft"].affine, out["image"].affine)
