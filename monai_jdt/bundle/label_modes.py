"""Label modes of the bundles: which soft (or hard) training target is made, by which transforms, where.

One override key picks the mode (``--label_mode``); :func:`qubiq_targets` and :func:`ct_targets` return a
:class:`TargetTransforms` whose parts the configs put at fixed places of the pipeline:

* ``native``: right after loading, on the original voxel grid (QUBIQ rater fusion; loading the KiTS annotator
  maps or the teacher maps, which the CT configs then resample with the image: key ``annotators`` with nearest
  neighbour, key ``teacher`` bilinearly);
* ``resampled``: after orientation, resampling and the foreground crop (label smoothing, boundary label smoothing
  with a ``radius_mm`` measured on the resampled grid), ending with :class:`~monai_jdt.bundle.SelectTargetd`;
* ``random``: first step of the random (not cached) transforms (the per-sample random rater).

Label maps (``label``, ``annotators``) are resampled with nearest neighbour and padded with background;
probability maps (offline ``teacher`` maps) bilinearly and padded by replicating the border, so every voxel
keeps a probability vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from monai.transforms import Compose, CopyItemsd, DeleteItemsd, EnsureChannelFirstd

from monai_jdt.bundle.transforms import SelectTargetd, ThreadSafeLoadImaged
from monai_jdt.data import LoadKiTSAnnotatorsd
from monai_jdt.transforms import BoundaryLabelSmoothingd, FuseRatersd, LabelSmoothingd
from monai_jdt.utils.checks import check_in_range, check_option, check_positive_int

__all__ = ["CT_LABEL_MODES", "QUBIQ_LABEL_MODES", "SOFT_KEY", "TargetTransforms", "ct_targets", "qubiq_targets"]

#: QUBIQ: how the raters become the training target (:func:`monai_jdt.transforms.fuse_raters` methods).
QUBIQ_LABEL_MODES = ("mean", "weighted", "majority", "random", "staple")

#: LiTS/KiTS: hard labels, label smoothing, boundary label smoothing, mean of the KiTS annotators, distillation,
#: semi-supervised mean teacher (hard labels on the labelled fraction, see :mod:`monai_jdt.bundle.ssl`).
CT_LABEL_MODES = ("hard", "ls", "bls", "raters_mean", "kd", "ssl")

#: intermediate key of a soft target before :class:`~monai_jdt.bundle.SelectTargetd` moves it to ``label``.
SOFT_KEY = "soft_label"


@dataclass(frozen=True)
class TargetTransforms:
    """The transforms of one label mode (see the module docstring for where each part goes).

    Attributes:
        label_mode: the mode.
        native: transforms on the original grid.
        resampled: transforms after resampling; ends with ``SelectTargetd``.
        random: random transforms applied first in the random part.
        soft: the training target is a probability map (the loss must not one-hot it: ``to_onehot_y=False``).
        extra_keys: datalist keys the mode needs besides image and label (``"instances"``, ``"teacher"``).
        teacher_key: batch key of offline teacher maps (distillation), else ``None``.
    """

    label_mode: str
    native: Compose
    resampled: Compose
    random: Compose
    soft: bool
    extra_keys: tuple[str, ...] = field(default=())
    teacher_key: str | None = None


def qubiq_targets(label_mode: str = "mean", raters_key: str = "raters") -> TargetTransforms:
    """Training target of a QUBIQ bundle: the raters of the sub-task fused into a 2-channel label.

    ``mean``, ``weighted``, ``majority`` and ``staple`` are deterministic (computed once and cached);
    ``random`` draws one rater per sample and epoch (:class:`~monai_jdt.transforms.RandFuseRatersd`). Every mode
    gives a ``(2, *spatial)`` float target (one-hot for ``majority``/``random``), so the loss takes it as is.

    Raises:
        ValueError: an unknown ``label_mode``.

    Example:
        >>> t = qubiq_targets("random")
        >>> len(t.native.transforms), type(t.random.transforms[0]).__name__, t.soft
        (0, 'RandFuseRatersd', True)
    """
    label_mode = check_option("label_mode", label_mode, QUBIQ_LABEL_MODES)
    fuse = [FuseRatersd(raters_key, output_key="label", method=label_mode, num_classes=2), DeleteItemsd(raters_key)]
    native, random = ([], fuse) if label_mode == "random" else (fuse, [])
    return TargetTransforms(label_mode, Compose(native), Compose([]), Compose(random), soft=True)


def _smoothing(
    label_mode: str,
    num_classes: int,
    epsilon: float | None,
    radius_mm: Sequence[float] | float | None,
    kernel_size: int,
) -> list:
    copy = CopyItemsd("label", names=SOFT_KEY)
    if label_mode == "ls":
        eps = 0.1 if epsilon is None else epsilon
        return [copy, LabelSmoothingd(SOFT_KEY, num_classes=num_classes, epsilon=eps)]
    eps = 0.5 if epsilon is None else epsilon
    return [
        copy,
        BoundaryLabelSmoothingd(SOFT_KEY, num_classes, epsilon=eps, kernel_size=kernel_size, radius_mm=radius_mm),
    ]


def ct_targets(
    label_mode: str = "hard",
    num_classes: int = 3,
    *,
    epsilon: float | None = None,
    bls_radius_mm: Sequence[float] | float | None = None,
    bls_kernel_size: int = 3,
    teacher_key: str | None = None,
) -> TargetTransforms:
    """Training target of a LiTS/KiTS bundle.

    * ``hard``: the label map (the loss one-hots it).
    * ``ls``: uniform label smoothing, ``(1 - e) onehot + e / C`` everywhere (default ``e = 0.1``).
    * ``bls``: boundary label smoothing (default ``e = 0.5``, the papers'), on the resampled grid; the window is
      ``bls_kernel_size`` voxels or, with ``bls_radius_mm``, a box of that half-size in mm.
    * ``raters_mean``: mean of the KiTS21/23 per-annotator label maps (``instances`` datalist key); the maps are
      resampled with the label (nearest neighbour, key ``annotators``) and fused on the resampled grid.
    * ``kd``: hard labels; with ``teacher_key`` the datalist's offline teacher maps (``teacher-maps`` command) are
      loaded into that key and resampled bilinearly; without, the trainer runs the teacher online.
    * ``ssl``: hard labels on the labelled cases (:func:`~monai_jdt.bundle.ssl_split`); the unlabelled ones go
      through the mean-teacher trainer's own pipeline.

    Args:
        label_mode: one of :data:`CT_LABEL_MODES`.
        num_classes: classes of the label map (LiTS 3; KiTS21/23 4, KiTS19 3).
        epsilon: smoothing of ``ls``/``bls`` in ``[0, 1)``; ``None`` for the mode's default.
        bls_radius_mm: half-size of the ``bls`` window in mm (overrides ``bls_kernel_size``).
        bls_kernel_size: odd window size of ``bls`` in voxels.
        teacher_key: datalist key of offline teacher maps for ``kd``.

    Raises:
        ValueError: an unknown mode or bad option.

    Example:
        >>> t = ct_targets("bls", 3, bls_radius_mm=2.0)
        >>> [type(x).__name__ for x in t.resampled.transforms], t.soft
        (['CopyItemsd', 'BoundaryLabelSmoothingd', 'SelectTargetd'], True)
    """
    label_mode = check_option("label_mode", label_mode, CT_LABEL_MODES)
    num_classes = check_positive_int("num_classes", num_classes, minimum=2)
    if epsilon is not None:
        epsilon = check_in_range("epsilon", epsilon, 0, 1, high_inclusive=False)
    native: list = []
    resampled: list = []
    extra: tuple[str, ...] = ()
    if label_mode in ("ls", "bls"):
        resampled = _smoothing(label_mode, num_classes, epsilon, bls_radius_mm, bls_kernel_size)
    elif label_mode == "raters_mean":
        native = [LoadKiTSAnnotatorsd("instances", output_keys="annotators"), DeleteItemsd("instances")]
        resampled = [
            FuseRatersd("annotators", output_key=SOFT_KEY, method="mean", num_classes=num_classes),
            DeleteItemsd("annotators"),
        ]
        extra = ("instances",)
    elif label_mode == "kd" and teacher_key:
        native = [ThreadSafeLoadImaged(teacher_key, image_only=True), EnsureChannelFirstd(teacher_key)]
        extra = (teacher_key,)
    soft = label_mode in ("ls", "bls", "raters_mean")
    teacher = teacher_key if label_mode == "kd" and teacher_key else None
    return TargetTransforms(
        label_mode, Compose(native), Compose([*resampled, SelectTargetd()]), Compose([]), soft, extra, teacher
    )
