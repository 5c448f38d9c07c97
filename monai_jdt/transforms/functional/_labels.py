"""Parsing of the label forms the soft-label transforms accept: index maps and one-hot/soft maps.

* **index map** ``(B, 1, *spatial)``: integer, bool, or floating dtype holding integers (``LoadImage`` output);
  values in ``[0, C)`` or equal to ``ignore_index``.
* **dense** ``(B, C, *spatial)``: one-hot or soft probabilities, values in ``[0, 1]``, every voxel's vector sums
  to 1, or is all zero (an ignored voxel, the package convention for soft targets).

Losses and metrics validate their targets with :func:`monai_jdt.utils.targets.prepare_target`; the transforms
need the same forms with messages that name their own argument (``labels``) and no prediction tensor, hence
this small module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from monai_jdt.transforms.functional.boundary import _check_integer_labels
from monai_jdt.utils.checks import check_positive_int
from monai_jdt.utils.errors import ShapeError

__all__ = ["ParsedLabels", "parse_labels"]

#: a one-hot/soft vector must sum to 1 within this tolerance (or be all zero).
SUM_TOLERANCE = 1e-4
_VALUE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ParsedLabels:
    """Validated labels.

    Attributes:
        index: ``(B, *spatial)`` class indices (uint8 for ``C <= 255``, else int64), ignored voxels hold 0;
            ``None`` for dense labels.
        dense: ``(B, C, *spatial)`` floating one-hot/soft labels; ``None`` for index maps.
        valid: ``(B, *spatial)`` bool, ``False`` at ignored voxels; ``None`` when no voxel is ignored.
        num_classes: ``C``.
    """

    index: torch.Tensor | None
    dense: torch.Tensor | None
    valid: torch.Tensor | None
    num_classes: int

    def hard(self) -> tuple[torch.Tensor, int | None]:
        """Class index per voxel (argmax of dense labels, lowest index on ties) and the ignore sentinel used."""
        if self.index is not None:
            index = self.index
        else:
            index = torch.argmax(self.dense, dim=1).to(_index_dtype(self.num_classes))  # type: ignore[arg-type]
        if self.valid is None:
            return index, None
        sentinel = 255 if index.dtype == torch.uint8 else -1
        return index.masked_fill(~self.valid, sentinel), sentinel


def _check_ignore_index(ignore_index: int | None) -> None:
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} {ignore_index!r}")


def _index_dtype(num_classes: int) -> torch.dtype:
    """uint8 (8x less memory traffic than int64) while 255 stays free as the ignore sentinel of :meth:`hard`."""
    return torch.uint8 if num_classes <= 255 else torch.int64


def _parse_index(labels: torch.Tensor, num_classes: int, ignore_index: int | None) -> ParsedLabels:
    raw = _check_integer_labels(labels[:, 0])
    valid = None
    if ignore_index is not None:
        valid = raw != ignore_index
        if bool(valid.all()):
            valid = None
    lo, hi = torch.aminmax(raw)
    if int(lo) < 0 or int(hi) >= num_classes:
        bad = (raw < 0) | (raw >= num_classes)
        if valid is not None:
            bad &= valid
        if bool(bad.any()):
            values = torch.unique(raw[bad])[:8].tolist()
            extra = "" if ignore_index is None else f" or equal to ignore_index={ignore_index}"
            raise ValueError(f"labels must hold class indices in [0, {num_classes}){extra}, got values {values}")
    index = raw.to(_index_dtype(num_classes))
    if valid is not None:
        index = index.masked_fill(~valid, 0)  # the ignored values may not fit the compact dtype
    return ParsedLabels(index=index, dense=None, valid=valid, num_classes=num_classes)


def _parse_dense(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> ParsedLabels:
    if labels.dtype.is_complex:
        raise TypeError(f"labels must be a real tensor, got dtype {labels.dtype}")
    dense = labels.to(dtype)
    lo, hi = torch.aminmax(dense)
    if bool(torch.isnan(lo) | torch.isnan(hi)) or float(lo) < -_VALUE_TOLERANCE or float(hi) > 1 + _VALUE_TOLERANCE:
        raise ValueError(f"labels one-hot/soft values must be in [0, 1], got values in [{float(lo):g}, {float(hi):g}]")
    total = dense.sum(dim=1)
    empty = total == 0
    off = (total - 1).abs() > SUM_TOLERANCE
    off &= ~empty
    if bool(off.any()):
        raise ValueError(
            "labels one-hot/soft vectors must sum to 1 (or be all zero at ignored voxels), "
            f"got a voxel summing to {float(total[off].flatten()[0]):g}"
        )
    valid = ~empty if bool(empty.any()) else None
    return ParsedLabels(index=None, dense=dense, valid=valid, num_classes=num_classes)


def parse_labels(
    labels: torch.Tensor, num_classes: int, ignore_index: int | None = None, dtype: torch.dtype = torch.float32
) -> ParsedLabels:
    """Validate a batch of index-map or one-hot/soft labels (see the module docstring).

    Args:
        labels: ``(B, 1, *spatial)`` index map or ``(B, C, *spatial)`` one-hot/soft map, 2 or 3 spatial dims.
        num_classes: ``C >= 2``.
        ignore_index: label of ignored voxels in an index map. Dense labels mark ignored voxels with all-zero
            vectors, so it must be ``None`` for them.
        dtype: floating dtype of the parsed dense labels.

    Raises:
        TypeError: not a tensor, a complex dtype, a non-int ``ignore_index``.
        ShapeError: not ``(B, 1 or C, *spatial)`` with 2 or 3 spatial dims.
        ValueError: out-of-range or fractional indices, soft values outside ``[0, 1]`` or not summing to 1,
            ``ignore_index`` with dense labels.
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    num_classes = check_positive_int("num_classes", num_classes, minimum=2)
    _check_ignore_index(ignore_index)
    if labels.ndim not in (4, 5) or labels.shape[1] not in (1, num_classes):
        raise ShapeError(
            f"labels must have shape (B, 1, *spatial) (index map) or (B, {num_classes}, *spatial) (one-hot/soft) "
            f"with 2 or 3 spatial dims, got {tuple(labels.shape)}"
        )
    if type(labels) is not torch.Tensor:
        labels = labels.as_subclass(torch.Tensor)
    labels = labels.detach()
    if labels.shape[1] == 1:
        return _parse_index(labels, num_classes, ignore_index)
    if ignore_index is not None:
        raise ValueError(
            f"ignore_index applies to index-map labels; one-hot/soft labels mark ignored voxels with all-zero "
            f"vectors, got ignore_index={ignore_index} with labels of shape {tuple(labels.shape)}"
        )
    return _parse_dense(labels, num_classes, dtype)
