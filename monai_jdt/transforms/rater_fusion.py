"""Multi-rater label fusion as MONAI array and dictionary transforms.

Several raters' label maps of one image become one soft label ``(C, H, W[, D])``: ``"mean"`` (the multi-rater soft
label of Wang et al., arXiv 2303.16296 / 2302.05666, QUBIQ), ``"weighted"`` (raters weighted by their agreement with
the others), ``"majority"`` (hard vote), ``"random"`` (one rater per sample) and ``"staple"`` (SimpleITK STAPLE).
The exact formulas are in :mod:`monai_jdt.transforms.functional.fusion`.

Raters come either as several keys / tensors, each ``(R_k, H, W[, D])`` (usually ``R_k = 1``), concatenated along
the rater axis, or as ONE key / tensor that stacks the raters along ``rater_dim`` (default 0, the channel dim:
``LoadImaged`` on a list of files stacks them there, e.g. the QUBIQ datalist's ``"raters"`` key).

``method="random"`` makes ``FuseRaters`` / ``FuseRatersd`` construct a :class:`RandFuseRaters` /
:class:`RandFuseRatersd` (a MONAI ``Randomizable``, so ``Compose.set_random_state`` / ``set_determinism`` make it
reproducible and ``CacheDataset`` stops caching before it). The other methods are deterministic and cacheable.
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms import MapTransform, Randomizable, Transform
from monai.utils import TransformBackends

from monai_jdt.transforms._meta import check_spatial, like_input, to_tensor_pair
from monai_jdt.transforms.functional.fusion import FUSION_METHODS, fuse_raters
from monai_jdt.transforms.functional.smoothing import _check_dtype
from monai_jdt.utils.checks import check_bool, check_option, check_positive_int
from monai_jdt.utils.errors import ShapeError

__all__ = [
    "FuseRaters",
    "FuseRatersD",
    "FuseRatersDict",
    "FuseRatersd",
    "RandFuseRaters",
    "RandFuseRatersD",
    "RandFuseRatersDict",
    "RandFuseRatersd",
]

#: affines of raters on the same grid may differ by this much (mm), e.g. float32 NIfTI headers.
AFFINE_TOLERANCE = 1e-4


def _requested_method(cls: type, args: tuple, kwargs: dict) -> Any:
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return None  # let __init__ report the bad call
    return bound.arguments.get("method", "mean")


def _spacing_text(affine: torch.Tensor, spatial_dims: int) -> str:
    return str(tuple(round(float(s), 4) for s in affine_to_spacing(affine, r=spatial_dims)))


def _check_same_grid(
    first: tuple[str, torch.Tensor, torch.Tensor], other: tuple[str, torch.Tensor, torch.Tensor]
) -> None:
    (name_a, holder_a, plain_a), (name_b, holder_b, plain_b) = first, other
    if plain_a.shape[1:] != plain_b.shape[1:]:
        raise ShapeError(
            f"raters {name_a!r} and {name_b!r} must have the same spatial shape, "
            f"got {tuple(plain_a.shape[1:])} and {tuple(plain_b.shape[1:])}"
        )
    if isinstance(holder_a, MetaTensor) and isinstance(holder_b, MetaTensor):
        a, b = holder_a.affine.double().cpu(), holder_b.affine.double().cpu()
        if a.shape != b.shape or not torch.allclose(a, b, rtol=0.0, atol=AFFINE_TOLERANCE):
            n = plain_a.ndim - 1
            raise ValueError(
                f"raters {name_a!r} and {name_b!r} must be on the same voxel grid (spacing and affine), got spacing "
                f"{_spacing_text(a, n)} vs {_spacing_text(b, n)} and affines {a.tolist()} vs {b.tolist()}"
            )


def _check_values(raters: torch.Tensor, names: list[str], num_classes: int) -> None:
    if raters.dtype.is_complex:
        raise TypeError(f"raters must hold integer labels, got dtype {raters.dtype}")
    if raters.dtype == torch.bool:
        return
    lo, hi = torch.aminmax(raters)
    in_range = float(lo) >= 0 and float(hi) < num_classes  # False for nan
    if in_range and not (raters.is_floating_point() and bool(torch.frac(raters).ne(0).any())):
        return  # the usual case, in one or two passes
    bad = (raters < 0) | (raters >= num_classes)
    if raters.is_floating_point():
        bad |= torch.frac(raters) != 0  # fractional or nan
    which = int(torch.nonzero(bad.flatten(1).any(1))[0])
    values = torch.unique(raters[which][bad[which]])[:8].tolist()
    raise ValueError(
        f"rater {names[which]!r} holds values {values} outside the label set {{0, ..., {num_classes - 1}}} "
        f"(num_classes={num_classes}; map other label values first, e.g. with MapLabelValued)"
    )


class FuseRaters(Transform):
    """Fuse several raters' label maps of one image into one soft label ``(C, H, W[, D])``.

    Call with one tensor stacking the raters along ``rater_dim`` or a sequence of ``(R_k, H, W[, D])`` tensors
    (numpy arrays and MetaTensors too). Binary raters (``num_classes=2``, values 0/1) give ``(2, H, W[, D])``
    (background, foreground) or, with ``foreground_only=True``, the ``(1, H, W[, D])`` foreground probability.
    The output keeps the first rater's metadata.

    Example:
        >>> raters = torch.tensor([[[0, 1, 1]], [[0, 0, 1]], [[1, 0, 1]]])  # (R=3, H=1, W=3)
        >>> FuseRaters("mean", foreground_only=True)(raters)
        metatensor([[[0.3333, 0.3333, 1.0000]]])
        >>> FuseRaters("majority")(raters)[1]
        metatensor([[0., 0., 1.]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __new__(cls, *args: Any, **kwargs: Any) -> FuseRaters:
        if cls is FuseRaters and _requested_method(cls, args, kwargs) == "random":
            cls = RandFuseRaters
        return super().__new__(cls)

    def __init__(
        self,
        method: str = "mean",
        num_classes: int = 2,
        foreground_only: bool = False,
        rater_dim: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """
        Args:
            method: ``"mean"``, ``"weighted"``, ``"majority"``, ``"random"`` or ``"staple"`` (see the module
                docstring; ``"random"`` constructs a :class:`RandFuseRaters`).
            num_classes: number of classes ``C >= 2`` of the raters' labels (2: binary raters with values 0/1).
            foreground_only: for binary raters, return only the foreground channel ``(1, H, W[, D])``.
            rater_dim: the axis that stacks the raters in each input tensor (0: the channel dim).
            dtype: floating dtype of the output.

        Raises:
            TypeError, ValueError: invalid arguments (named in the message).
        """
        self.method = check_option("method", method, FUSION_METHODS)
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.foreground_only = check_bool("foreground_only", foreground_only)
        if self.foreground_only and self.num_classes != 2:
            raise ValueError(f"foreground_only=True needs binary raters (num_classes=2), got num_classes={num_classes}")
        if isinstance(rater_dim, bool) or not isinstance(rater_dim, int):
            raise TypeError(f"rater_dim must be an int, got {type(rater_dim).__name__} {rater_dim!r}")
        self.rater_dim = rater_dim
        self.dtype = _check_dtype(dtype)

    def gather(
        self, raters: NdarrayOrTensor | Sequence[NdarrayOrTensor], names: Sequence[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Check the raters and stack them as ``(R, H, W[, D])``: returns (stack, metadata holder, rater names)."""
        items = list(raters) if isinstance(raters, (list, tuple)) else [raters]
        if names is None:
            names = [f"rater {i}" for i in range(len(items))] if isinstance(raters, (list, tuple)) else ["raters"]
        if len(items) < 1:
            raise ValueError("FuseRaters needs at least 1 rater, got 0")
        parts, rater_names, entries = [], [], []
        for name, item in zip(names, items):
            holder, plain = to_tensor_pair(item, name=f"rater {name!r}")
            if not -plain.ndim <= self.rater_dim < plain.ndim:
                raise ValueError(
                    f"rater_dim={self.rater_dim} is out of range for rater {name!r} of shape {tuple(plain.shape)}"
                )
            plain = plain.movedim(self.rater_dim, 0)
            check_spatial(plain, name=f"rater {name!r}")
            entry = (name, holder, plain)
            if entries:
                _check_same_grid(entries[0], entry)
            entries.append(entry)
            parts.append(plain)
            rater_names += [name] if plain.shape[0] == 1 else [f"{name}[{i}]" for i in range(plain.shape[0])]
        stack = torch.cat(parts) if len(parts) > 1 else parts[0]
        if stack.shape[0] < 1:
            raise ValueError(f"FuseRaters needs at least 1 rater, got 0 (raters of shape {tuple(stack.shape)})")
        _check_values(stack, rater_names, self.num_classes)
        work_dtype = torch.uint8 if self.num_classes <= 255 else torch.int64
        return stack.to(work_dtype), entries[0][1], rater_names

    def fuse(self, stack: torch.Tensor, rater_index: int | None = None) -> torch.Tensor:
        out = fuse_raters(stack, self.method, self.num_classes, rater_index, self.dtype)
        return out[1:2] if self.foreground_only else out

    def __call__(
        self, raters: NdarrayOrTensor | Sequence[NdarrayOrTensor], names: Sequence[str] | None = None
    ) -> NdarrayOrTensor:
        """Fuse ``raters``; ``names`` (one per input tensor) only label the error messages."""
        stack, holder, _ = self.gather(raters, names)
        return like_input(self.fuse(stack), holder)


class RandFuseRaters(FuseRaters, Randomizable):
    """:class:`FuseRaters` with ``method="random"``: the one-hot of one rater drawn uniformly per call.

    Example:
        >>> t = RandFuseRaters(num_classes=3).set_random_state(seed=0)
        >>> out = t(torch.tensor([[[0, 1]], [[2, 2]]]))
        >>> out.shape, float(out.sum())
        (torch.Size([3, 1, 2]), 2.0)
    """

    def __init__(
        self,
        method: str = "random",
        num_classes: int = 2,
        foreground_only: bool = False,
        rater_dim: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """
        Args:
            method: must be ``"random"`` (kept so that ``FuseRaters(method="random")`` can build this class).
            num_classes, foreground_only, rater_dim, dtype: see :class:`FuseRaters`.
        """
        if check_option("method", method, FUSION_METHODS) != "random":
            raise ValueError(f"RandFuseRaters only supports method='random', got {method!r} (use FuseRaters)")
        super().__init__(method, num_classes, foreground_only, rater_dim, dtype)
        self.rater_index: int | None = None

    def randomize(self, data: int) -> None:
        """Draw the rater index among ``data`` raters."""
        self.rater_index = int(self.R.randint(data))

    def __call__(
        self,
        raters: NdarrayOrTensor | Sequence[NdarrayOrTensor],
        names: Sequence[str] | None = None,
        randomize: bool = True,
    ) -> NdarrayOrTensor:
        """One-hot of a random rater; ``randomize=False`` reuses the last drawn index."""
        stack, holder, _ = self.gather(raters, names)
        if randomize or self.rater_index is None:
            self.randomize(stack.shape[0])
        return like_input(self.fuse(stack, self.rater_index), holder)


class FuseRatersd(MapTransform):
    """Dictionary version of :class:`FuseRaters`: fuse the raters under ``keys`` into ``output_key``.

    Several keys: each holds ``(R_k, H, W[, D])`` (usually one rater per key, e.g. after ``LoadImaged`` +
    ``EnsureChannelFirstd``). One key: it stacks the raters along ``rater_dim``. The rater keys are kept.

    Example:
        >>> d = {"r1": torch.tensor([[[0, 1]]]), "r2": torch.tensor([[[1, 1]]])}
        >>> FuseRatersd(["r1", "r2"], output_key="label")(d)["label"][1]
        metatensor([[0.5000, 1.0000]])
    """

    backend = FuseRaters.backend

    def __new__(cls, *args: Any, **kwargs: Any) -> FuseRatersd:
        if cls is FuseRatersd and _requested_method(cls, args, kwargs) == "random":
            cls = RandFuseRatersd
        return super().__new__(cls)

    def __init__(
        self,
        keys: KeysCollection,
        output_key: str = "label",
        method: str = "mean",
        num_classes: int = 2,
        foreground_only: bool = False,
        rater_dim: int = 0,
        dtype: torch.dtype = torch.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: the rater keys (or one key stacking the raters along ``rater_dim``).
            output_key: key of the fused soft label (may be one of ``keys``, which is then replaced).
            method, num_classes, foreground_only, rater_dim, dtype: see :class:`FuseRaters`.
            allow_missing_keys: fuse the raters present; with none present, return the data unchanged.
        """
        super().__init__(keys, allow_missing_keys)
        if not isinstance(output_key, str):
            raise TypeError(f"output_key must be a str, got {type(output_key).__name__} {output_key!r}")
        self.output_key = output_key
        fuser_cls = RandFuseRaters if check_option("method", method, FUSION_METHODS) == "random" else FuseRaters
        self.fuser = fuser_cls(method, num_classes, foreground_only, rater_dim, dtype)

    def _raters(self, data: Mapping[Hashable, Any]) -> tuple[list[Any], list[str]]:
        keys = list(self.key_iterator(data))
        return [data[k] for k in keys], [str(k) for k in keys]

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        raters, names = self._raters(d)
        if not raters:
            return d
        d[self.output_key] = self.fuser(raters if len(raters) > 1 else raters[0], names=names)
        return d


class RandFuseRatersd(FuseRatersd, Randomizable):
    """Dictionary version of :class:`RandFuseRaters` (what ``FuseRatersd(method="random")`` builds)."""

    def __init__(
        self,
        keys: KeysCollection,
        output_key: str = "label",
        method: str = "random",
        num_classes: int = 2,
        foreground_only: bool = False,
        rater_dim: int = 0,
        dtype: torch.dtype = torch.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys, output_key, num_classes, foreground_only, rater_dim, dtype, allow_missing_keys: see
                :class:`FuseRatersd`.
            method: must be ``"random"``.
        """
        if check_option("method", method, FUSION_METHODS) != "random":
            raise ValueError(f"RandFuseRatersd only supports method='random', got {method!r} (use FuseRatersd)")
        super().__init__(keys, output_key, method, num_classes, foreground_only, rater_dim, dtype, allow_missing_keys)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandFuseRatersd:
        super().set_random_state(seed, state)
        self.fuser.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """The draw happens in the wrapped :class:`RandFuseRaters` (it needs the number of raters)."""


FuseRatersD = FuseRatersDict = FuseRatersd
RandFuseRatersD = RandFuseRatersDict = RandFuseRatersd
