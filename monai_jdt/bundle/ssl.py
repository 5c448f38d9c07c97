"""``label_mode ssl`` of the LiTS/KiTS bundles: labelled/unlabelled split of the training cases, mean-teacher trainer.

* :func:`ssl_split`: ``labeled_fraction`` of the fold's training cases keep their labels (a seeded choice, the
  same for every run with the same ``labeled_seed``, whatever the training ``seed``); the others become unlabelled
  (their ``label`` is dropped, so it cannot leak into training).
* :func:`make_mean_teacher_trainer`: :class:`monai_jdt.engines.MeanTeacherTrainer` for the configs, one epoch being
  one pass over the larger of the two loaders (with 10% labelled cases, ``epochs`` then means about as many
  iterations as in the supervised modes).

See ``docs/semi_supervised.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from monai_jdt.bundle.datalists import one_line_error
from monai_jdt.utils.checks import check_in_range

if TYPE_CHECKING:
    from monai_jdt.engines import MeanTeacherTrainer

__all__ = ["SSL_LABEL_MODE", "UNLABELED_KEYS", "make_mean_teacher_trainer", "ssl_split"]

#: the label mode that trains semi-supervised.
SSL_LABEL_MODE = "ssl"
#: the keys an unlabelled entry keeps.
UNLABELED_KEYS = ("image", "case_id")


def ssl_split(
    entries: Sequence[dict[str, Any]], label_mode: str, labeled_fraction: float = 0.1, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """``{"labeled": [...], "unlabeled": [...]}`` of the training cases (all labelled unless ``label_mode="ssl"``).

    ``k = max(1, floor(labeled_fraction * n + 0.5))`` of the ``n`` cases are labelled, chosen by
    ``numpy.random.default_rng(seed).permutation(n)[:k]`` (numpy's stable PCG64 stream: the same cases on every
    machine); both lists keep the order of ``entries``. Unlabelled entries keep only ``image`` and ``case_id``.

    Args:
        entries: the fold's training entries (``bundle_datalists(...)["train"]``).
        label_mode: the bundle's label mode; other than ``"ssl"`` every case is labelled.
        labeled_fraction: fraction of labelled cases, in ``(0, 1)``.
        seed: seed of the choice (``labeled_seed`` in the configs).

    Raises:
        SystemExit: one line ``error: ...`` for a fraction outside ``(0, 1)`` or fewer than 2 cases (one labelled
            and one unlabelled are needed).

    Example:
        >>> cases = [{"image": f"im{i}.nii", "label": f"lb{i}.nii", "case_id": f"c{i}"} for i in range(10)]
        >>> parts = ssl_split(cases, "ssl", labeled_fraction=0.2, seed=0)
        >>> len(parts["labeled"]), len(parts["unlabeled"]), sorted(parts["unlabeled"][0])
        (2, 8, ['case_id', 'image'])
        >>> len(ssl_split(cases, "hard")["labeled"])
        10
    """
    if label_mode != SSL_LABEL_MODE:
        return {"labeled": list(entries), "unlabeled": []}
    try:
        fraction = check_in_range("labeled_fraction", labeled_fraction, 0, 1, low_inclusive=False, high_inclusive=False)
    except (TypeError, ValueError) as err:
        raise one_line_error(err) from None
    n = len(entries)
    if n < 2:
        raise SystemExit(f"error: label_mode ssl needs at least 2 training cases (1 labelled, 1 unlabelled), got {n}")
    k = min(max(1, math.floor(fraction * n + 0.5)), n - 1)
    chosen = set(np.random.default_rng(seed).permutation(n)[:k].tolist())
    labeled = [dict(e) for i, e in enumerate(entries) if i in chosen]
    unlabeled = [{key: e[key] for key in UNLABELED_KEYS if key in e} for i, e in enumerate(entries) if i not in chosen]
    return {"labeled": labeled, "unlabeled": unlabeled}


def _length(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def make_mean_teacher_trainer(**kwargs: Any) -> MeanTeacherTrainer:
    """:class:`~monai_jdt.engines.MeanTeacherTrainer` of the keyword arguments (``SupervisedTrainer``'s plus the
    mean-teacher ones: ``unlabeled_data_loader``, ``teacher``, ``unsup_loss_function``, ``ema_decay``, ...).

    Without ``epoch_length`` an epoch is one pass over the larger of the labelled and unlabelled loaders (both are
    cycled), so every unlabelled case is seen once per epoch.

    Raises:
        SystemExit: no ``unlabeled_data_loader`` (one line).
    """
    from monai_jdt.engines import MeanTeacherTrainer

    labelled, unlabelled = kwargs.get("train_data_loader"), kwargs.get("unlabeled_data_loader")
    if unlabelled is None:
        raise SystemExit("error: label_mode ssl needs unlabelled cases: the unlabelled data loader is missing")
    if kwargs.get("epoch_length") is None:
        lengths = [n for n in (_length(labelled), _length(unlabelled)) if n]
        kwargs["epoch_length"] = max(lengths) if lengths else None
    return MeanTeacherTrainer(**kwargs)
