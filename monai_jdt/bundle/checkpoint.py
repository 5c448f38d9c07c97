"""Atomic checkpoints and resume for the bundles' trainers.

MONAI's ``CheckpointSaver`` (monai 1.6) builds ignite ``DiskSaver(atomic=False)`` and ignite's ``Checkpoint``
deletes the previous file *before* writing the new one, so a run killed while saving can leave a truncated file,
or none. Here every file is written to a temporary name in the same folder, flushed to disk and renamed over the
old one (``os.replace`` is atomic on POSIX and Windows): a kill at any moment leaves either the previous file or
the new one, complete.

* :class:`CheckpointResume` (trainer handler): at every epoch end writes ``latest.pt`` with the network,
  optimizer, LR scheduler, trainer state (epoch, iteration), AMP scaler and the best-model tracker; at start,
  if ``latest.pt`` exists, loads it, so the same command after a kill continues from the last finished epoch.
* :class:`BestModelSaver` (evaluator handler): writes ``model.pt`` (a plain ``state_dict``, as the MONAI bundle
  specification asks) when the key metric improves.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from torch.optim.lr_scheduler import LRScheduler

from monai_jdt.utils.atomic import TMP_PREFIX, atomic_write
from monai_jdt.utils.checks import check_bool, check_positive_int

__all__ = ["BestModelSaver", "CheckpointResume", "atomic_torch_save", "is_main_process", "unwrap"]


#: the entries of an LR scheduler's state that are progress (restored on resume); the others are settings
#: (e.g. ``t_total`` of MONAI's ``WarmupCosineSchedule``) and keep the values of the current command.
_SCHEDULER_PROGRESS = ("last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "_is_initial")


def is_main_process() -> bool:
    """``True`` outside ``torch.distributed`` or on rank 0.

    Example:
        >>> is_main_process()
        True
    """
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def unwrap(module: Any) -> Any:
    """The wrapped module of ``DistributedDataParallel`` / ``DataParallel``, else ``module``.

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> unwrap(torch.nn.DataParallel(net)) is net, unwrap(net) is net
        (True, True)
    """
    return (
        module.module
        if isinstance(module, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel))
        else module
    )


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through a temporary file in the same folder, fsync and ``os.replace``.

    If anything fails (or the process is killed) before the rename, ``path`` keeps its previous content; the
    temporary file is removed on an exception (a hard kill may leave a ``.tmp-*`` file, which the handlers here
    delete when they start).

    Example:
        >>> import tempfile, pathlib
        >>> p = atomic_torch_save({"w": torch.ones(2)}, pathlib.Path(tempfile.mkdtemp()) / "a.pt")
        >>> torch.load(p)["w"].tolist()
        [1.0, 1.0]
    """
    return atomic_write(path, lambda handle: torch.save(obj, handle), binary=True)


def _remove_stale_temporaries(folder: Path, name: str) -> None:
    for stale in folder.glob(f"{TMP_PREFIX}{name}.*"):
        stale.unlink(missing_ok=True)


def _keep_scheduler_settings(scheduler: LRScheduler, fresh: Mapping[str, Any]) -> None:
    """After loading a checkpoint: the settings of ``fresh`` (this command), the progress of the checkpoint.

    So ``--epochs 200`` after a finished 100-epoch run continues the schedule with ``t_total = 200``; for a
    ``LambdaLR`` (``WarmupCosineSchedule``, ``PolynomialLR``-like lambdas) the learning rates are recomputed for
    the restored step.
    """
    state = scheduler.state_dict()
    state.update({k: v for k, v in fresh.items() if k not in _SCHEDULER_PROGRESS and k != "lr_lambdas"})
    scheduler.load_state_dict(state)
    if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        lrs = [base * fn(scheduler.last_epoch) for fn, base in zip(scheduler.lr_lambdas, scheduler.base_lrs)]
        for group, lr in zip(scheduler.optimizer.param_groups, lrs):
            group["lr"] = lr
        scheduler._last_lr = lrs


class BestModelSaver:
    """Evaluator handler: atomically write the network's ``state_dict`` when the key metric improves.

    Its :meth:`state_dict` (best value and epoch) goes into the trainer's ``latest.pt`` (see
    :class:`CheckpointResume`), so a resumed run does not overwrite a better model with a worse one.

    Args:
        save_dir: folder of the file.
        network: the network (a DDP wrapper is unwrapped).
        filename: file name (default ``model.pt``).
        metric_name: metric to track; default the evaluator's key metric.
        greater_is_better: ``False`` for errors such as ECE.

    Example:
        >>> import tempfile
        >>> saver = BestModelSaver(tempfile.mkdtemp(), torch.nn.Linear(2, 1), metric_name="dice")
        >>> engine = Engine(lambda e, b: None)
        >>> saver.attach(engine)
        >>> engine.state.metrics = {"dice": 0.5}
        >>> saver(engine); saver.best
        0.5
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        network: torch.nn.Module,
        filename: str = "model.pt",
        metric_name: str | None = None,
        greater_is_better: bool = True,
    ) -> None:
        self.path = Path(save_dir) / filename
        self.network = network
        self.metric_name = metric_name
        self.greater_is_better = check_bool("greater_is_better", greater_is_better)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        _remove_stale_temporaries(self.path.parent, self.path.name)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _value(self, engine: Engine) -> float:
        name = self.metric_name or getattr(engine.state, "key_metric_name", None)
        if name is None or name not in engine.state.metrics:
            raise ValueError(f"BestModelSaver: metric {name!r} not found in {sorted(engine.state.metrics)}")
        return float(engine.state.metrics[name])

    def _better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.greater_is_better else value < self.best

    def __call__(self, engine: Engine) -> None:
        value = self._value(engine)
        if not self._better(value):
            return
        self.best, self.best_epoch = value, int(engine.state.epoch)
        if is_main_process():
            atomic_torch_save(unwrap(self.network).state_dict(), self.path)
            self.logger.info(f"saved {self.path} (key metric {value:.4f}, epoch {self.best_epoch})")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")


class CheckpointResume:
    """Trainer handler: write ``latest.pt`` atomically every ``save_interval`` epochs and resume from it.

    The saved objects are ``save_dict`` (e.g. network, optimizer, LR scheduler, a :class:`BestModelSaver`) plus
    the trainer itself (``"trainer"``: epoch and iteration) and, when AMP is on, its ``GradScaler``
    (``"scaler"``) and the EMA teacher of a mean-teacher trainer (``"teacher"``), added at :meth:`attach` so the
    configs need no reference cycle to the trainer. An LR
    scheduler gets back its progress (step count, last learning rates) but keeps the settings of the current
    command (e.g. ``t_total``), so a longer ``max_epochs`` stretches the schedule instead of ending it early.

    On ``STARTED`` an existing ``latest.pt`` is loaded into all of them; the trainer continues with the epoch after
    the saved one and keeps the ``max_epochs`` of the current command (a finished run started again with the same
    ``max_epochs`` does nothing; a larger ``max_epochs`` trains the extra epochs).

    Args:
        ckpt_dir: folder of ``latest.pt``.
        save_dict: objects with ``state_dict``/``load_state_dict``.
        filename: file name (default ``latest.pt``).
        resume: load an existing file at start (``False``: start over and overwrite it).
        save_interval: epochs between saves.
        map_location: ``map_location`` of ``torch.load`` (default: the CPU; the objects move the tensors).

    Example:
        >>> import tempfile
        >>> net = torch.nn.Linear(2, 1)
        >>> handler = CheckpointResume(tempfile.mkdtemp(), {"model": net})
        >>> trainer = Engine(lambda e, b: None)
        >>> handler.attach(trainer)
        >>> _ = trainer.run([0], max_epochs=2)
        >>> saved = torch.load(handler.path, weights_only=True)
        >>> sorted(saved), saved["trainer"]["iteration"]
        (['model', 'trainer'], 2)
    """

    def __init__(
        self,
        ckpt_dir: str | os.PathLike,
        save_dict: Mapping[str, Any],
        filename: str = "latest.pt",
        resume: bool = True,
        save_interval: int = 1,
        map_location: Any = "cpu",
    ) -> None:
        self.path = Path(ckpt_dir) / filename
        self.save_dict = dict(save_dict)
        self.resume = check_bool("resume", resume)
        self.save_interval = check_positive_int("save_interval", save_interval)
        self.map_location = map_location
        self.resumed_from: int | None = None
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        self.save_dict["trainer"] = engine
        scaler = getattr(engine, "scaler", None)
        if scaler is not None:
            self.save_dict["scaler"] = scaler
        teacher = getattr(engine, "teacher", None)  # the EMA teacher of MeanTeacherTrainer (label_mode ssl)
        if isinstance(teacher, torch.nn.Module):
            self.save_dict.setdefault("teacher", teacher)
        _remove_stale_temporaries(self.path.parent, self.path.name)
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self.save)

    def load(self, engine: Engine) -> None:
        """Load ``latest.pt`` into the objects if it exists (the ``max_epochs`` of this run is kept)."""
        if not self.path.is_file():
            return
        checkpoint = torch.load(self.path, map_location=self.map_location, weights_only=True)
        to_load = {k: unwrap(v) for k, v in self.save_dict.items() if k in checkpoint}
        missing = sorted(set(self.save_dict) - set(checkpoint))
        if missing:
            self.logger.warning(f"{self.path} has no {missing}: they start fresh")
        max_epochs = engine.state.max_epochs
        schedulers = {k: (v, v.state_dict()) for k, v in to_load.items() if isinstance(v, LRScheduler)}
        Checkpoint.load_objects(to_load=to_load, checkpoint=checkpoint)
        for scheduler, fresh in schedulers.values():
            _keep_scheduler_settings(scheduler, fresh)
        engine.state.max_epochs = max_epochs
        self.resumed_from = int(engine.state.epoch)
        if max_epochs is not None and engine.state.epoch >= max_epochs:
            self.logger.info(f"{self.path}: training already reached epoch {engine.state.epoch} of {max_epochs}")
        else:
            self.logger.info(f"resumed from {self.path} after epoch {engine.state.epoch}")

    def save(self, engine: Engine) -> None:
        """Write ``latest.pt`` (rank 0 only)."""
        if not is_main_process():
            return
        state = {k: unwrap(v).state_dict() for k, v in self.save_dict.items()}
        atomic_torch_save(state, self.path)
