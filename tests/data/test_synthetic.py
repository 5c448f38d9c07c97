from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from monai_jdt.data import kits_datalist, lits_datalist, qubiq_datalist
from monai_jdt.data.synthetic import write_synthetic_kits, write_synthetic_lits, write_synthetic_qubiq

TASKS_2D = ("brain-growth", "brain-tumor", "kidney", "prostate")


def _array(path: str) -> np.ndarray:
    return np.asanyarray(nib.load(path).dataobj)


@pytest.fixture(scope="module")
def qubiq_64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default 64 x 64 slices, 6 cases per 2D task."""
    return write_synthetic_qubiq(tmp_path_factory.mktemp("q64"), cases=6, progress_bar=False)


def _raters(root: Path, task: str) -> list[list[np.ndarray]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the prostate case with 5 raters
        entries = qubiq_datalist(root, task, folds=None)
    return [[_array(p) > 0 for p in e["raters"]] for e in entries]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("task", TASKS_2D)
def test_raters_disagree_mostly_near_the_boundary(qubiq_64: Path, task: str) -> None:
    pairwise, near = [], []
    for masks in _raters(qubiq_64, task):
        pairwise += [_dice(a, b) for a, b in itertools.combinations(masks, 2)]
        mean = np.mean(masks, axis=0)
        hard = mean >= 0.5
        boundary = hard ^ ndimage.binary_erosion(hard)
        distance = ndimage.distance_transform_edt(~boundary)  # px to the mean mask's boundary
        disagree = (mean > 0) & (mean < 1)
        near.append((distance[disagree] <= 2).mean())
    assert 0.6 < np.mean(pairwise) < 0.95
    assert np.mean(near) > 0.75 and min(near) > 0.6


@pytest.mark.parametrize("task", ["brain-growth", "prostate"])
def test_mean_majority_and_staple_differ(qubiq_64: Path, task: str) -> None:
    soft, staple_vs_mean, staple_vs_majority = 0, 0, 0
    for masks in _raters(qubiq_64, task):
        mean = np.mean(masks, axis=0)
        majority = mean > 0.5
        staple = sitk.GetArrayFromImage(sitk.STAPLE([sitk.GetImageFromArray(m.astype(np.uint8)) for m in masks], 1.0))
        soft += int(((mean > 0) & (mean < 1)).sum())
        staple_vs_mean += int((np.abs(staple - mean) > 0.1).sum())
        staple_vs_majority += int(((staple > 0.5) != majority).sum())
    assert soft > 500 and staple_vs_mean > 500 and staple_vs_majority > 0


def test_one_rater_is_sloppier(qubiq_64: Path) -> None:
    hits = []
    for masks in _raters(qubiq_64, "prostate"):
        agreement = [np.mean([_dice(a, b) for b in masks if b is not a]) for a in masks]
        # the rater who agrees least with the others is the one who over-segments
        hits.append(int(np.argmin(agreement)) == int(np.argmax([m.sum() for m in masks])))
    assert np.mean(hits) >= 0.6


def test_qubiq_images(qubiq_64: Path) -> None:
    entry = qubiq_datalist(qubiq_64, "brain-tumor", folds=None)[0]
    image = nib.load(entry["image"])
    assert image.shape == (64, 64, 4) and image.get_data_dtype() == np.float32
    data = image.get_fdata()
    assert data.min() >= 0  # MR magnitudes (Rician noise)
    channels = [np.median(data[..., c][_array(entry["raters"][0]) > 0]) for c in range(4)]
    assert len({round(c, -1) for c in channels}) == 4  # four sequences with different tumour contrast
    kidney = qubiq_datalist(qubiq_64, "kidney", folds=None)[0]
    hu = nib.load(kidney["image"]).get_fdata()
    assert hu[0, 0] < -900 and 120 < np.median(hu[_array(kidney["raters"][0]) > 0]) < 180


def test_lits_geometry_and_hounsfield_units(lits_root: Path) -> None:
    for entry in lits_datalist(lits_root, folds=None):
        image, label = nib.load(entry["image"]), _array(entry["label"])
        assert image.shape == (32, 32, 16) and image.get_data_dtype() == np.int16 and label.dtype == np.uint8
        spacing = image.header.get_zooms()
        assert spacing[:2] == pytest.approx((0.8, 0.8)) and 2.5 <= spacing[2] <= 5.0
        assert nib.aff2axcodes(image.affine) == ("L", "P", "S") and np.abs(image.affine[:3, 3]).min() > 1
        hu = image.get_fdata()
        assert set(np.unique(label)) == {0, 1, 2}
        assert hu[0, 0, 0] < -900 and abs(np.median(hu[label == 1]) - 60) < 10
        assert abs(np.median(hu[label == 2]) - 20) < 15 and np.median(hu[label == 2]) < np.median(hu[label == 1])


def test_kits_geometry_and_hounsfield_units(kits_roots: dict[str, Path]) -> None:
    seen = set()
    for edition, root in kits_roots.items():
        for entry in kits_datalist(root, edition, folds=None):
            image, label = nib.load(entry["image"]), _array(entry["label"])
            assert image.shape == (16, 32, 32) and image.get_data_dtype() == np.float32  # slices first
            assert nib.aff2axcodes(image.affine) == ("S", "P", "L")  # axis 0 runs along z, as in KiTS
            hu = image.get_fdata()
            # 32 px volumes: small organs, so partial-volume blur pulls the medians towards the neighbours
            assert 110 < np.median(hu[label == 1]) < 170 and 50 < np.median(hu[label == 2]) < 120
            if (label == 3).any():
                assert np.median(hu[label == 3]) < np.median(hu[label == 1]) - 50  # fluid, about 10 HU
            seen |= set(np.unique(label).tolist())
            assert edition != "kits19" or label.max() <= 2
    assert {0, 1, 2} <= seen


def _arrays(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): np.asanyarray(nib.load(p).dataobj).tobytes() for p in sorted(root.rglob("*.nii*"))
    }


@pytest.mark.parametrize(
    "write",
    [
        lambda out, **kw: write_synthetic_qubiq(out, tasks=["prostate", "pancreas"], cases=2, size=20, **kw),
        lambda out, **kw: write_synthetic_lits(out, cases=2, size=20, test_cases=1, **kw),
        lambda out, **kw: write_synthetic_kits(out, edition="kits21", cases=2, size=20, **kw),
    ],
    ids=["qubiq", "lits", "kits"],
)
def test_deterministic_by_seed(tmp_path: Path, write) -> None:
    a = _arrays(write(tmp_path / "a", seed=3))
    b = _arrays(write(tmp_path / "b", seed=3))
    c = _arrays(write(tmp_path / "c", seed=4))
    assert a == b
    images = [k for k in a if "image" in k or "imaging" in k or "volume" in k]
    assert images and all(a[k] != c[k] for k in images)
    files = sorted((tmp_path / "a").rglob("*.nii*"))
    assert all(f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes() for f in files)


def test_a_case_does_not_depend_on_the_number_of_cases(tmp_path: Path) -> None:
    few = write_synthetic_kits(tmp_path / "few", cases=1, size=20)
    many = write_synthetic_kits(tmp_path / "many", cases=3, size=20)
    assert _arrays(few / "case_00000") == _arrays(many / "case_00000")


def test_sizes_and_compression(tmp_path: Path) -> None:
    root = write_synthetic_qubiq(tmp_path / "q", tasks="kidney", cases=1, size=(40, 24), compress=False)
    image = root / "training_data_v2" / "kidney" / "Training" / "case01" / "image.nii"
    assert nib.load(image).shape == (40, 24)
    lits = write_synthetic_lits(
        tmp_path / "l", cases=1, size=(40, 36, 12), compress=True, batch_folders=False, test_cases=0
    )
    assert nib.load(lits / "volume-0.nii.gz").shape == (40, 36, 12)
    kits = write_synthetic_kits(tmp_path / "k", edition="kits19", cases=1, size=24, compress=False)
    assert nib.load(kits / "case_00000" / "imaging.nii").shape == (12, 24, 24)
    assert not (kits / "case_00000" / "instances").exists()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda out: write_synthetic_qubiq(out, tasks="liver"), ValueError, "tasks must be one of"),
        (lambda out: write_synthetic_qubiq(out, tasks=[]), ValueError, "at least one QUBIQ task"),
        (
            lambda out: write_synthetic_qubiq(out, tasks="pancreas", release="2020"),
            ValueError,
            r"tasks \['pancreas'\] exist only in the 2021 release",
        ),
        (lambda out: write_synthetic_qubiq(out, size=8), ValueError, r"size must be at least \[16, 16\] voxels"),
        (lambda out: write_synthetic_lits(out, size=(32, 32)), ValueError, "size must hold 3 values for 3D data"),
        (lambda out: write_synthetic_lits(out, cases=0), ValueError, "cases must be an integer >= 1, got 0"),
        (lambda out: write_synthetic_kits(out, edition="kits22"), ValueError, "edition must be one of"),
        (lambda out: write_synthetic_kits(out, seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
        (lambda out: write_synthetic_kits(out, size=32.5), TypeError, "size must be an integer"),
    ],
)
def test_argument_errors(tmp_path: Path, call, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(tmp_path)
