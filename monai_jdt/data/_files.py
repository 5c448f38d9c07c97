"""File helpers shared by the dataset readers: NIfTI names, natural case order, header checks, error collection."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "AFFINE_ATOL",
    "NIFTI_SUFFIXES",
    "Problems",
    "check_against_image",
    "find_nifti",
    "natural_key",
    "nifti_stem",
    "read_header",
    "shapes_compatible",
    "unique_or_problem",
]

#: accepted NIfTI file endings, in order of preference.
NIFTI_SUFFIXES = (".nii.gz", ".nii")

#: affines may differ by this much (mm) before a mask counts as misaligned with its image.
AFFINE_ATOL = 1e-3


def nifti_stem(path: str | os.PathLike) -> str | None:
    """The file name without ``.nii``/``.nii.gz``, or ``None`` for a file that is not NIfTI.

    Example:
        >>> nifti_stem("case_00001/imaging.nii.gz"), nifti_stem("volume-3.nii"), nifti_stem("notes.txt")
        ('imaging', 'volume-3', None)
    """
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders the digit runs of ``name`` numerically ("case2" < "case10", "case1-2" < "case10-1").

    Example:
        >>> sorted(["case10", "case2", "case1-2", "case1-1"], key=natural_key)
        ['case1-1', 'case1-2', 'case2', 'case10']
    """
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


def find_nifti(folder: Path, stem: str) -> list[Path]:
    """Every ``stem.nii.gz`` / ``stem.nii`` file in ``folder`` (empty list when there is none)."""
    return [folder / f"{stem}{s}" for s in NIFTI_SUFFIXES if (folder / f"{stem}{s}").is_file()]


@dataclass
class Problems:
    """Collects problems with files so that a reader can report all of them in one exception."""

    missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.invalid)

    def raise_if_any(self, what: str) -> None:
        """Raise ``FileNotFoundError`` (only missing files) or ``ValueError`` listing every problem."""
        if not self:
            return
        lines = [f"{what}: {len(self.missing) + len(self.invalid)} problem(s)"]
        lines += [f"  missing: {m}" for m in self.missing]
        lines += [f"  invalid: {m}" for m in self.invalid]
        message = "\n".join(lines)
        if self.missing and not self.invalid:
            raise FileNotFoundError(message)
        raise ValueError(message)


def read_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and 4x4 affine of a NIfTI file, read from its header only (no voxel data is loaded)."""
    import nibabel as nib

    img = nib.load(os.fspath(path))
    return tuple(int(s) for s in img.header.get_data_shape()), np.asarray(img.affine, dtype=np.float64)


def _squeeze(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1)


def shapes_compatible(image_shape: Sequence[int], mask_shape: Sequence[int]) -> bool:
    """Whether a mask fits its image, allowing singleton axes and one channel axis on the image.

    QUBIQ stores 2D slices as ``(H, W)``, ``(H, W, 1)`` or ``(1, H, W)`` and the brain-tumour image as a stack of
    four MR channels ``(H, W, 4)``; so the sizes are compared with singleton axes removed, and an image with one
    more axis than its mask may carry channels on its first or last axis.

    Example:
        >>> shapes_compatible((1, 64, 48), (64, 48)), shapes_compatible((64, 48, 4), (64, 48, 1))
        (True, True)
        >>> shapes_compatible((64, 48), (48, 64))
        False
    """
    img, msk = _squeeze(image_shape), _squeeze(mask_shape)
    if img == msk:
        return True
    return len(img) == len(msk) + 1 and msk in (img[1:], img[:-1])


def check_against_image(
    image: tuple[tuple[int, ...], np.ndarray],
    mask_path: Path,
    problems: Problems,
    *,
    check_affine: bool = True,
    image_path: Path | None = None,
) -> None:
    """Compare the header of ``mask_path`` with the image header ``(shape, affine)``; record any mismatch."""
    try:
        shape, affine = read_header(mask_path)
    except Exception as err:  # a truncated or non-NIfTI file: report it with the others
        problems.invalid.append(f"{mask_path} (unreadable NIfTI header: {err})")
        return
    against = f" of image {image_path}" if image_path is not None else " of its image"
    if not shapes_compatible(image[0], shape):
        problems.invalid.append(f"{mask_path} (shape {shape} does not match shape {image[0]}{against})")
    elif check_affine and not np.allclose(affine, image[1], rtol=0.0, atol=AFFINE_ATOL):
        diff = float(np.abs(affine - image[1]).max())
        problems.invalid.append(f"{mask_path} (affine differs from the affine{against} by up to {diff:.4g} mm)")


def unique_or_problem(candidates: Iterable[Path], what: str, problems: Problems) -> Path | None:
    """The single candidate file, or ``None`` after recording a missing/duplicate problem."""
    found = list(candidates)
    if not found:
        problems.missing.append(what)
        return None
    if len(found) > 1:
        problems.invalid.append(f"{what} (found several copies: {', '.join(str(f) for f in found)})")
        return None
    return found[0]
