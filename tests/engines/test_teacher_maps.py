"""write_teacher_maps: geometry, inversion, storage, sums, atomic writes and resumable reruns."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.inferers import SimpleInferer, SlidingWindowInferer
from monai.transforms import (
    Compose,
    CropForegroundd,
    DivisiblePadd,
    EnsureChannelFirstd,
    Lambdad,
    LoadImage,
    LoadImaged,
    Orientationd,
    ScaleIntensityd,
    Spacingd,
)

from monai_jdt.engines import (
    map_names,
    probability_nifti,
    quantize_probabilities,
    save_probability_map,
    write_teacher_maps,
)
from monai_jdt.losses import DistillationLoss

# oblique-free but permuted and flipped axes, anisotropic spacing, an offset
AFFINE = np.array([[0.0, 0.0, -2.0, 30.0], [1.5, 0.0, 0.0, -12.0], [0.0, -1.2, 0.0, 7.0], [0, 0, 0, 1.0]])


class PointwiseTeacher(torch.nn.Module):
    """Voxel-wise logits [x, -x, 0.5 x^2]: its map in the image grid is a known function of the image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([2 * x, -2 * x, x * x], dim=1)


def expected_probs(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float64)
    logits = np.stack([2 * x, -2 * x, x * x])
    e = np.exp(logits - logits.max(0))
    return e / e.sum(0)


def write_image(path, shape=(12, 10, 7), affine=AFFINE, seed=0, zero_border=0) -> np.ndarray:
    data = np.random.default_rng(seed).uniform(0.1, 1.0, shape).astype(np.float32)
    if zero_border:
        data[:zero_border] = 0
    nib.save(nib.Nifti1Image(data, affine), path)
    return data


def orient_only() -> Compose:
    return Compose([LoadImaged("image"), EnsureChannelFirstd("image"), Orientationd("image", "RAS")])


def test_maps_are_in_the_image_grid_with_its_affine_and_sum_to_one(tmp_path) -> None:
    images = [write_image(tmp_path / f"case{i}.nii.gz", shape=(12 - i, 10, 7), seed=i) for i in range(2)]
    datalist = [{"image": str(tmp_path / f"case{i}.nii.gz"), "label": f"l{i}", "fold": i} for i in range(2)]
    report = write_teacher_maps(PointwiseTeacher(), datalist, orient_only(), SlidingWindowInferer((8, 8, 8)),
                                tmp_path / "maps")  # fmt: skip
    assert len(report.written) == 2 and not report.skipped
    for i, (entry, image) in enumerate(zip(report.entries, images)):
        assert entry["label"] == f"l{i}" and entry["fold"] == i  # other keys kept
        saved = nib.load(entry["teacher"])
        np.testing.assert_allclose(saved.affine, AFFINE, atol=1e-6)
        assert saved.get_data_dtype() == np.uint16 and saved.dataobj.slope == pytest.approx(1 / 65535)
        assert saved.shape == (*image.shape, 3)
        values = saved.get_fdata()
        np.testing.assert_allclose(values.sum(-1), 1.0, atol=1e-9)  # the fixed point sum is exactly 65535
        # Orientationd is a pure permutation/flip: inverted maps equal the pointwise teacher on the original grid
        np.testing.assert_allclose(np.moveaxis(values, -1, 0), expected_probs(image), atol=3 / 65535)


def test_resampling_cropping_inversion_and_float32(tmp_path) -> None:
    write_image(tmp_path / "ct.nii.gz", shape=(16, 14, 9), zero_border=4)
    pre = Compose([LoadImaged("image", ensure_channel_first=True), Orientationd("image", "RAS"),
                   Spacingd("image", (3.0, 3.0, 3.0)), ScaleIntensityd("image"),
                   CropForegroundd("image", "image"), DivisiblePadd("image", 4)])  # fmt: skip
    report = write_teacher_maps(PointwiseTeacher(), [{"image": str(tmp_path / "ct.nii.gz")}], pre,
                                SimpleInferer(), tmp_path / "maps", dtype="float32")  # fmt: skip
    saved = nib.load(report.entries[0]["teacher"])
    assert saved.get_data_dtype() == np.float32 and saved.shape == (16, 14, 9, 3)
    np.testing.assert_allclose(saved.affine, AFFINE, atol=1e-6)
    values = np.asarray(saved.dataobj)
    np.testing.assert_allclose(values.sum(-1), 1.0, atol=1e-5)
    # voxels far outside the foreground crop are not covered by the teacher: one-hot background
    np.testing.assert_array_equal(values[:2], np.broadcast_to([1.0, 0.0, 0.0], values[:2].shape))


def test_maps_load_with_monai_as_soft_targets_for_the_loss(tmp_path) -> None:
    write_image(tmp_path / "a.nii.gz")
    report = write_teacher_maps(PointwiseTeacher(), [{"image": str(tmp_path / "a.nii.gz")}], orient_only(),
                                SimpleInferer(), tmp_path / "maps", dtype="uint8")  # fmt: skip
    teacher = LoadImage(image_only=True, ensure_channel_first=True)(report.entries[0]["teacher"])
    assert teacher.shape == (3, 12, 10, 7)
    np.testing.assert_allclose(teacher.sum(0).numpy(), 1.0, atol=1e-5)
    loss = DistillationLoss(teacher_is_logits=False, lambda_label=0.0)(torch.randn(1, 3, 12, 10, 7), None,
                                                                       teacher[None])  # fmt: skip
    assert torch.isfinite(loss)


def test_2d_images(tmp_path) -> None:
    data = write_image(tmp_path / "slice.nii.gz", shape=(9, 11), affine=np.diag([0.7, 0.7, 1.0, 1.0]))
    pre = Compose([LoadImaged("image", ensure_channel_first=True)])
    report = write_teacher_maps(PointwiseTeacher(), [{"image": str(tmp_path / "slice.nii.gz")}], pre,
                                SimpleInferer(), tmp_path)  # fmt: skip
    saved = nib.load(report.entries[0]["teacher"])
    assert saved.shape == (9, 11, 1, 3)  # as MONAI's NibabelWriter writes 2D multi-channel maps
    np.testing.assert_allclose(np.moveaxis(saved.get_fdata()[:, :, 0], -1, 0), expected_probs(data), atol=3 / 65535)


def test_rerun_skips_finished_cases_and_overwrite_rewrites(tmp_path) -> None:
    for i in range(2):
        write_image(tmp_path / f"c{i}.nii.gz", seed=i)
    datalist = [{"image": str(tmp_path / f"c{i}.nii.gz")} for i in range(2)]
    calls = []

    class Counting(PointwiseTeacher):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    first = write_teacher_maps(Counting(), datalist, orient_only(), SimpleInferer(), tmp_path / "maps")
    stamps = [p.stat().st_mtime_ns for p in first.written]
    second = write_teacher_maps(Counting(), datalist, orient_only(), SimpleInferer(), tmp_path / "maps")
    assert len(calls) == 2 and second.written == [] and second.skipped == first.written
    assert [p.stat().st_mtime_ns for p in first.written] == stamps
    assert second.entries == first.entries
    third = write_teacher_maps(Counting(), datalist, orient_only(), SimpleInferer(), tmp_path / "maps",
                               overwrite=True)  # fmt: skip
    assert len(calls) == 4 and third.written == first.written


def test_interrupted_write_leaves_no_file_and_a_rerun_completes(tmp_path, monkeypatch) -> None:
    write_image(tmp_path / "c.nii.gz")
    datalist = [{"image": str(tmp_path / "c.nii.gz")}]
    real_save = nib.save

    def killed(img, filename):
        real_save(img, filename)  # the temporary file is complete on disk...
        raise KeyboardInterrupt  # ...but the run dies before the rename

    monkeypatch.setattr(probability_nifti.nib, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        write_teacher_maps(PointwiseTeacher(), datalist, orient_only(), SimpleInferer(), tmp_path / "maps")
    assert list((tmp_path / "maps").iterdir()) == []
    monkeypatch.setattr(probability_nifti.nib, "save", real_save)
    report = write_teacher_maps(PointwiseTeacher(), datalist, orient_only(), SimpleInferer(), tmp_path / "maps")
    assert len(report.written) == 1 and [p.name for p in (tmp_path / "maps").iterdir()] == ["c_teacher.nii.gz"]


def test_quantization_sums_exactly_and_is_close() -> None:
    probs = torch.softmax(3 * torch.randn(4, 50, 40), 0)
    k = quantize_probabilities(probs, 65535)
    assert bool((k.sum(0) == 65535).all()) and int(k.min()) >= 0 and int(k.max()) <= 65535
    err = (k.double() / 65535 - probs.double()).abs()
    top = torch.nn.functional.one_hot(probs.argmax(0), 4).movedim(-1, 0).bool()
    # half a step (plus float32 rounding of p * 65535); the most probable class also takes the residue
    assert float(err[~top].max()) <= 0.501 / 65535
    assert float(err[top].max()) <= 4 * 0.501 / 65535


def test_names_and_errors(tmp_path) -> None:
    kits = [{"image": f"/data/case_0000{i}/imaging.nii.gz", "case_id": f"k{i}"} for i in range(3)]
    assert map_names(kits) == ["case_00000_imaging", "case_00001_imaging", "case_00002_imaging"]
    assert map_names(kits, name_key="case_id") == ["k0", "k1", "k2"]
    assert map_names([{"image": ["/d/a_t1.nii.gz", "/d/a_t2.nii.gz"]}]) == ["a_t1"]
    with pytest.raises(ValueError, match=r"not unique: \['x'\]"):
        map_names([{"image": "/a.nii.gz", "n": "x"}, {"image": "/b.nii.gz", "n": "x"}], name_key="n")
    with pytest.raises(ValueError, match="datalist entry 1 must hold an image path under 'image'"):
        map_names([{"image": "/a.nii.gz"}, {"img": "/b.nii.gz"}])
    with pytest.raises(ValueError, match="NIfTI has no float16 data type"):
        write_teacher_maps(PointwiseTeacher(), [], orient_only(), SimpleInferer(), tmp_path, dtype="float16")
    with pytest.raises(ValueError, match="must be one of"):
        save_probability_map(torch.ones(2, 3, 3), tmp_path / "x.nii.gz", np.eye(4), dtype="int16")
    write_image(tmp_path / "c.nii.gz")
    datalist = [{"image": str(tmp_path / "c.nii.gz")}]
    crop = Compose([orient_only(), Lambdad("image", lambda x: x[:, 2:])])  # not invertible
    with pytest.raises(ValueError, match=r"shape \(12, 10, 5\) after inverting .* the image has \(12, 10, 7\)"):
        write_teacher_maps(PointwiseTeacher(), datalist, crop, SimpleInferer(), tmp_path / "m")
    with pytest.raises(ValueError, match=r"the teacher must return \(1, C >= 2, \*spatial\) logits"):
        write_teacher_maps(torch.nn.Identity(), datalist, orient_only(), SimpleInferer(), tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="image file .*missing.nii.gz of datalist entry 0 does not exist"):
        write_teacher_maps(PointwiseTeacher(), [{"image": str(tmp_path / "missing.nii.gz")}], orient_only(),
                           SimpleInferer(), tmp_path / "m")  # fmt: skip
