"""``DistillationTrainer``: MONAI's ``SupervisedTrainer`` with a frozen teacher (online knowledge distillation).

Each iteration runs the teacher (eval mode, ``torch.no_grad``, autocast when ``amp=True``) on the student's
batch, then the student and ``loss_function(student_output, label, teacher_output)`` (e.g.
:class:`monai_jdt.losses.DistillationLoss`), then backward and the optimizer step, firing the same ignite events
as ``SupervisedTrainer`` so MONAI handlers (``StatsHandler``, ``CheckpointSaver``, ``ValidationHandler``, ...)
work unchanged. Offline teacher maps (written by :func:`monai_jdt.engines.write_teacher_maps`) plug into the
same trainer with ``teacher_key`` instead of ``teacher_network``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.inferers import Inferer, SimpleInferer
from monai.utils.enums import CommonKeys as Keys
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

from monai_jdt.engines._iteration import amp_context, backward_and_step, plain, start_iteration, store_loss_parts

__all__ = ["TEACHER_KEY", "DistillationTrainer"]

#: key of the teacher's output in ``engine.state.output``.
TEACHER_KEY = "teacher"
#: prefix of the loss parts (``loss_function.last_parts``) in ``engine.state.output``.
LOSS_PART_PREFIX = "loss_"


class DistillationTrainer(SupervisedTrainer):
    """Supervised training of a student against labels and a frozen teacher (arXiv 2302.05666, 2303.16296).

    Iteration: ``prepare_batch`` -> teacher output (``teacher_inferer(inputs, teacher_network)`` in eval mode
    under ``torch.no_grad()``, inside ``torch.autocast("cuda", **amp_kwargs)`` when ``amp=True``; or the batch's
    ``teacher_key`` entry) -> ``FORWARD_COMPLETED`` after the student's ``inferer(inputs, network)`` ->
    ``loss_function(pred, label, teacher).mean()`` -> ``LOSS_COMPLETED`` -> backward (GradScaler with AMP) ->
    ``BACKWARD_COMPLETED`` -> optimizer step (every ``accumulation_steps``) -> ``MODEL_COMPLETED``.

    ``engine.state.output`` holds ``image``, ``label``, ``pred``, ``loss`` as in ``SupervisedTrainer``, plus
    ``"teacher"`` (the teacher's output, without grad) and, when the loss has a ``last_parts`` dict (as
    :class:`~monai_jdt.losses.DistillationLoss`), each part as ``"loss_<part>"`` (e.g. ``"loss_teacher_kl"``);
    log them with ``StatsHandler(output_transform=from_engine(["loss_teacher_kl"], first=True))``.

    The teacher's parameters get ``requires_grad_(False)`` and it is put in eval mode before every forward (a
    validation handler cannot switch it to training mode). It is not moved: put it on the trainer's device
    (:func:`monai_jdt.engines.load_teacher` does). ``prepare_batch``'s extra ``args``/``kwargs`` go to the student
    only. With ``compile=True`` MetaTensor inputs are given to both networks as plain tensors.

    Example:
        >>> from monai.networks.nets import UNet
        >>> from monai_jdt.losses import DistillationLoss
        >>> net = lambda: UNet(2, 1, 3, channels=(4, 8), strides=(2,), num_res_units=0)
        >>> student, teacher = net(), net()
        >>> data = [{"image": torch.randn(2, 1, 16, 16), "label": torch.randint(0, 3, (2, 1, 16, 16))}]
        >>> trainer = DistillationTrainer("cpu", 1, data, student, torch.optim.SGD(student.parameters(), 0.1),
        ...                               DistillationLoss(to_onehot_y=True), teacher_network=teacher)
        >>> trainer.run()
        >>> sorted(str(k) for k in trainer.state.output[0] if k.startswith("loss"))
        ['loss', 'loss_label_ce', 'loss_label_overlap', 'loss_teacher_kl', 'loss_teacher_overlap']
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable | DataLoader,
        network: torch.nn.Module,
        optimizer: Optimizer,
        loss_function: Callable[..., torch.Tensor],
        teacher_network: torch.nn.Module | None = None,
        *,
        teacher_inferer: Inferer | None = None,
        teacher_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            device, max_epochs, train_data_loader, network, optimizer: as ``SupervisedTrainer``.
            loss_function: called as ``loss_function(pred, label, teacher)``, e.g.
                :class:`~monai_jdt.losses.DistillationLoss` (``teacher_is_logits=False`` for teacher maps).
            teacher_network: the trained teacher (online distillation). Frozen here.
            teacher_inferer: how to run the teacher, default ``SimpleInferer()`` (e.g. a ``SlidingWindowInferer``
                when the teacher needs another patch size).
            teacher_key: instead of a network, the batch key holding precomputed teacher probabilities (offline
                distillation); moved to ``device`` with ``non_blocking``.
            kwargs: every other argument of ``monai.engines.SupervisedTrainer`` (``epoch_length``,
                ``non_blocking``, ``prepare_batch``, ``inferer``, ``postprocessing``, ``key_train_metric``,
                ``additional_metrics``, ``metric_cmp_fn``, ``train_handlers``, ``amp``, ``event_names``,
                ``event_to_attr``, ``decollate``, ``optim_set_to_none``, ``to_kwargs``, ``amp_kwargs``,
                ``compile``, ``compile_kwargs``, ``accumulation_steps``); ``iteration_update`` replaces this
                class's iteration and is refused.

        Raises:
            ValueError: both or neither of ``teacher_network`` and ``teacher_key``; the teacher is the student;
                an ``iteration_update``.
            TypeError: ``teacher_network`` is not a ``torch.nn.Module`` or ``teacher_key`` not a string.
        """
        if (teacher_network is None) == (teacher_key is None):
            raise ValueError(
                "give exactly one of teacher_network (online distillation) and teacher_key (precomputed teacher "
                f"maps in the batch), got teacher_network={type(teacher_network).__name__}, teacher_key={teacher_key!r}"
            )
        if teacher_network is not None and not isinstance(teacher_network, torch.nn.Module):
            raise TypeError(f"teacher_network must be a torch.nn.Module, got {type(teacher_network).__name__}")
        if teacher_key is not None and not isinstance(teacher_key, str):
            raise TypeError(f"teacher_key must be a str, got {type(teacher_key).__name__} {teacher_key!r}")
        if teacher_network is not None and teacher_network is network:
            raise ValueError("teacher_network must not be the student network (the teacher is frozen)")
        if kwargs.get("iteration_update") is not None:
            raise ValueError("iteration_update would replace the distillation iteration; use SupervisedTrainer for it")
        super().__init__(device, max_epochs, train_data_loader, network, optimizer, loss_function, **kwargs)
        self.teacher_network = teacher_network
        self.teacher_key = teacher_key
        self.teacher_inferer = SimpleInferer() if teacher_inferer is None else teacher_inferer
        if teacher_network is not None:
            teacher_network.requires_grad_(False)
            teacher_network.eval()

    def teacher_output(self, inputs: torch.Tensor, batchdata: Any) -> torch.Tensor:
        """The teacher's output for this batch: a network forward without grad, or the batch's teacher maps."""
        if self.teacher_network is None:
            if not isinstance(batchdata, dict) or self.teacher_key not in batchdata:
                found = sorted(batchdata) if isinstance(batchdata, dict) else type(batchdata).__name__
                raise ValueError(f"teacher_key {self.teacher_key!r} is not in the batch (keys: {found})")
            maps = batchdata[self.teacher_key]
            return plain(maps).to(device=self.state.device, non_blocking=self.non_blocking)
        self.teacher_network.eval()
        with torch.no_grad():
            return self.teacher_inferer(plain(inputs) if self.compile else inputs, self.teacher_network)

    def _iteration(self, engine: DistillationTrainer, batchdata: dict[str, torch.Tensor]) -> dict:  # type: ignore[override]
        """One distillation iteration (see the class docstring); returns ``engine.state.output``.

        Raises:
            ValueError: ``batchdata`` is None, or the batch lacks ``teacher_key``.
        """
        inputs, targets, args, kwargs, acc, step = start_iteration(engine, batchdata)
        with amp_context(engine):
            teacher = engine.teacher_output(inputs, batchdata)
            engine.state.output[TEACHER_KEY] = teacher
            engine.state.output[Keys.PRED] = engine.inferer(inputs, engine.network, *args, **kwargs)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            loss = engine.loss_function(engine.state.output[Keys.PRED], targets, teacher).mean()
            engine.state.output[Keys.LOSS] = loss
            store_loss_parts(engine, engine.loss_function, LOSS_PART_PREFIX.rstrip("_"))
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
        backward_and_step(engine, loss, acc, step)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
