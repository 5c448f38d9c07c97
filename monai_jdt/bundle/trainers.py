"""The bundles' trainer, chosen by the label mode: the ONE place that maps a label mode to a trainer class.

``kd`` uses :class:`monai_jdt.engines.DistillationTrainer` (a frozen teacher from ``teacher_ckpt``, or the
offline teacher maps in the batch key ``teacher_key``); ``ssl`` uses :class:`monai_jdt.engines.MeanTeacherTrainer`
(:func:`monai_jdt.bundle.ssl.make_mean_teacher_trainer` with ``ssl_options``); every other mode uses MONAI's
``SupervisedTrainer``. A new mode with its own engine adds one branch to :func:`make_trainer`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import torch
from monai.engines import SupervisedTrainer

from monai_jdt.bundle.checkpoint import unwrap
from monai_jdt.bundle.datalists import one_line_error

__all__ = ["make_trainer"]


def _distillation_trainer(
    teacher_ckpt: str | os.PathLike | None,
    teacher_network: torch.nn.Module | None,
    teacher_key: str | None,
    kwargs: dict[str, Any],
) -> SupervisedTrainer:
    from monai_jdt.engines import DistillationTrainer, load_teacher

    if teacher_ckpt:
        network = teacher_network if teacher_network is not None else copy.deepcopy(unwrap(kwargs["network"]))
        try:
            teacher = load_teacher(network, teacher_ckpt, device=kwargs["device"])
        except (OSError, ValueError) as err:
            raise one_line_error(err, f"teacher_ckpt {teacher_ckpt}") from None
        return DistillationTrainer(teacher_network=teacher, **kwargs)
    if teacher_key:
        return DistillationTrainer(teacher_key=teacher_key, **kwargs)
    raise SystemExit(
        "error: label_mode kd needs a teacher: --teacher_ckpt <trained model.pt> (online distillation) or "
        "--datalist <datalist JSON written by python -m monai_jdt teacher-maps> (offline teacher maps)"
    )


def make_trainer(
    label_mode: str,
    *,
    teacher_ckpt: str | os.PathLike | None = None,
    teacher_network: torch.nn.Module | None = None,
    teacher_key: str | None = None,
    ssl_options: Mapping[str, Any] | None = None,
    **trainer_kwargs: Any,
) -> SupervisedTrainer:
    """The trainer of ``label_mode``.

    Args:
        label_mode: the bundle's label mode.
        teacher_ckpt: ``kd`` online: the teacher's checkpoint (a ``model.pt`` state_dict or a checkpoint dict).
        teacher_network: ``kd`` online: the teacher's architecture; default a copy of the student's.
        teacher_key: ``kd`` offline: batch key of the teacher maps (used when ``teacher_ckpt`` is not given).
        ssl_options: ``ssl``: the mean-teacher arguments (``unlabeled_data_loader``, ``teacher``,
            ``unsup_loss_function``, ``ema_decay``, ``unsup_weight``, ``rampup_epochs``); ignored by other modes.
        trainer_kwargs: the arguments of ``monai.engines.SupervisedTrainer`` (``device``, ``max_epochs``,
            ``train_data_loader``, ``network``, ``optimizer``, ``loss_function``, ...).

    Raises:
        SystemExit: ``kd`` without a teacher, or a teacher checkpoint that cannot be loaded (one line).

    Example:
        >>> net = torch.nn.Conv2d(1, 2, 1)
        >>> t = make_trainer("mean", device="cpu", max_epochs=1, train_data_loader=[], network=net,
        ...                  optimizer=torch.optim.SGD(net.parameters(), 0.1), loss_function=torch.nn.MSELoss())
        >>> type(t).__name__
        'SupervisedTrainer'
    """
    if label_mode == "kd":
        return _distillation_trainer(teacher_ckpt, teacher_network, teacher_key, dict(trainer_kwargs))
    if label_mode == "ssl":
        from monai_jdt.bundle.ssl import make_mean_teacher_trainer

        return make_mean_teacher_trainer(**dict(ssl_options or {}), **trainer_kwargs)
    return SupervisedTrainer(**trainer_kwargs)
