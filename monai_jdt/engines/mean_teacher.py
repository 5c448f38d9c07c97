r"""``MeanTeacherTrainer``: semi-supervised segmentation with an EMA teacher's soft pseudo-labels.

Mean teacher (Tarvainen & Valpola, arXiv 1703.01780) with the soft-label losses of the Jaccard/Dice metric loss
papers (arXiv 2302.05666, 2303.16296): the teacher's probabilities on unlabelled images are soft labels, which an
overlap loss can learn from only because it accepts soft targets. Each iteration minimises

.. math::

    L = L_{sup}(f_s(x_l), y_l) + w(t) \, L_{unsup}(f_s(x_u^{strong}), \sigma(f_t(x_u^{weak})))

with the student ``f_s``, the EMA teacher ``f_t`` (no gradient), a labelled batch ``(x_l, y_l)``, an unlabelled
batch seen through a weak and a strong view (:func:`monai_jdt.transforms.weak_strong_views`), ``sigma`` the softmax
(or sigmoid) and ``w(t) = unsup_weight * r(t)`` with the sigmoid ramp ``r`` of :func:`~monai_jdt.engines.ramps.
sigmoid_rampup` over the epochs. After each optimizer step, ``theta_t <- d theta_t + (1 - d) theta_s``
(:func:`~monai_jdt.engines.ema.update_ema_teacher`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.inferers import Inferer, SimpleInferer
from monai.utils.enums import CommonKeys as Keys
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from monai_jdt.engines._iteration import amp_context, backward_and_step, plain, start_iteration, store_loss_parts
from monai_jdt.engines.ema import EMA_BUFFER_MODES, check_ema_pair, make_ema_teacher, update_ema_teacher
from monai_jdt.engines.ramps import linear_rampup, sigmoid_rampup
from monai_jdt.losses.compound import DiceSemimetricCELoss
from monai_jdt.utils.checks import check_in_range, check_non_negative, check_option

__all__ = ["RAMPUPS", "TEACHER_ACTIVATIONS", "MeanTeacherTrainer"]

#: ramp-up shapes of the unsupervised weight.
RAMPUPS: dict[str, Callable[[float, float], float]] = {"sigmoid": sigmoid_rampup, "linear": linear_rampup}
#: how the teacher's logits become soft labels.
TEACHER_ACTIVATIONS = ("softmax", "sigmoid")


def _known_length(loader: Any) -> int | None:
    """``len(loader)``, or None where it has no length (an iterable, a DataLoader over an IterableDataset)."""
    try:
        return len(loader)
    except TypeError:
        return None


def _check_key(name: str, value: Any, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str{' or None' if optional else ''}, got {type(value).__name__} {value!r}")
    return value


class MeanTeacherTrainer(SupervisedTrainer):
    r"""MONAI ``SupervisedTrainer`` plus an EMA teacher and an unlabelled loader (mean teacher, arXiv 1703.01780).

    The ignite engine iterates the LABELLED loader (an epoch is one pass over it, or ``epoch_length`` iterations).
    Each iteration: ``prepare_batch`` -> student forward on the labelled images -> ``FORWARD_COMPLETED`` ->
    ``L_sup = loss_function(pred, label).mean()``; then, when the current weight ``w(t) > 0``, the next unlabelled
    batch (the unlabelled loader is cycled with its own iterator, re-created when exhausted) -> teacher forward on
    the weak view (eval mode, ``torch.no_grad``) -> ``q = softmax(teacher logits)`` in float32 -> student forward on
    the strong view -> ``L_unsup = unsup_loss_function(student logits, q).mean()``; ``loss = L_sup + w(t) L_unsup``
    -> ``LOSS_COMPLETED`` -> backward (GradScaler with AMP) -> ``BACKWARD_COMPLETED`` -> optimizer step (every
    ``accumulation_steps``), then the EMA update of the teacher -> ``MODEL_COMPLETED``. Both forwards run inside
    ``torch.autocast("cuda", **amp_kwargs)`` when ``amp=True``. The labelled and unlabelled batches go through the
    student separately (BatchNorm statistics are not mixed) and one backward covers both.

    Weight: ``w(t) = unsup_weight * r(t)`` with ``r = sigmoid_rampup(t, rampup_epochs)`` (or ``linear_rampup``),
    ``t = (iteration - 1) / epoch_length`` the epochs done before this iteration (fractional). ``unsup_weight=0``
    (or a zero weight from the linear ramp) skips the unlabelled branch entirely: the iteration is then exactly
    ``SupervisedTrainer``'s (same seed, same student step for step).

    ``engine.state.output``: ``image``, ``label``, ``pred``, ``loss`` (the total) as in ``SupervisedTrainer``, plus
    ``loss_sup``, ``unsup_weight`` and, when the branch ran, ``loss_unsup``; the ``last_parts`` of the losses are
    added as ``loss_sup_<part>`` and ``loss_unsup_<part>`` (e.g. ``loss_unsup_ce``, ``loss_unsup_overlap``). No
    unlabelled tensor is stored (the labelled and unlabelled batch sizes may differ).

    Checkpoints: put the teacher next to the student,
    ``CheckpointSaver(..., save_dict={"network": net, "teacher": trainer.teacher, "optimizer": opt,
    "trainer": trainer})`` and the same dict in ``CheckpointLoader``; resuming then restores the teacher, the
    student, the optimizer and the iteration (hence the ramp). The unlabelled iterator restarts from its beginning.
    Validate the teacher (often the better model) with ``SupervisedEvaluator(network=trainer.teacher, ...)``.

    Example:
        >>> from monai.networks.nets import UNet
        >>> from monai_jdt.losses import DiceSemimetricCELoss
        >>> net = UNet(2, 1, 3, channels=(4, 8), strides=(2,), num_res_units=0)
        >>> labelled = [{"image": torch.randn(2, 1, 16, 16), "label": torch.randint(0, 3, (2, 1, 16, 16))}]
        >>> unlabelled = [{"image": torch.randn(4, 1, 16, 16), "image_strong": torch.randn(4, 1, 16, 16)}]
        >>> trainer = MeanTeacherTrainer("cpu", 2, labelled, net, torch.optim.SGD(net.parameters(), 0.1),
        ...                              DiceSemimetricCELoss(to_onehot_y=True), unlabelled, rampup_epochs=1.0)
        >>> trainer.run()
        >>> out = trainer.state.output[0]
        >>> out["unsup_weight"], sorted(k for k in out if k.startswith("loss_unsup"))
        (1.0, ['loss_unsup', 'loss_unsup_ce', 'loss_unsup_overlap'])
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable | DataLoader,
        network: torch.nn.Module,
        optimizer: Optimizer,
        loss_function: Callable[..., torch.Tensor],
        unlabeled_data_loader: Iterable | DataLoader | None,
        *,
        teacher: torch.nn.Module | None = None,
        ema_decay: float = 0.99,
        ema_buffers: str = "ema",
        unsup_loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        unsup_weight: float = 1.0,
        rampup_epochs: float = 5.0,
        rampup: str = "sigmoid",
        teacher_activation: str = "softmax",
        image_key: str = "image",
        strong_key: str | None = "image_strong",
        unlabeled_prepare_batch: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None,
        teacher_inferer: Inferer | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            device, max_epochs, train_data_loader, network, optimizer: as ``SupervisedTrainer``;
                ``train_data_loader`` yields the LABELLED batches.
            loss_function: the supervised loss, ``loss_function(pred, label)`` (e.g.
                :class:`~monai_jdt.losses.DiceSemimetricCELoss` with index or BLS soft labels).
            unlabeled_data_loader: yields unlabelled batches: dicts with ``image_key`` (weak view, for the teacher)
                and ``strong_key`` (strong view, for the student); see
                :func:`monai_jdt.transforms.weak_strong_views`. May be None only with ``unsup_weight=0``.
            teacher: the EMA network; default: a frozen deep copy of ``network`` (:func:`make_ema_teacher`). A
                given teacher keeps its weights, must match the student's parameters and is not moved.
            ema_decay: ``d`` in ``[0, 1]`` of ``theta_t <- d theta_t + (1 - d) theta_s`` after each optimizer step.
            ema_buffers: ``"ema"`` (BatchNorm running statistics follow the same EMA) or ``"copy"`` (copied from
                the student); see :func:`update_ema_teacher`.
            unsup_loss_function: ``unsup_loss_function(student_logits, teacher_probabilities)``; default
                ``DiceSemimetricCELoss(active_classes="present")`` (``0.25`` soft CE ``+ 0.75`` DML, classes
                counted where the teacher's max probability exceeds 0.01; ``sigmoid=True`` with
                ``teacher_activation="sigmoid"``).
            unsup_weight: the maximum weight ``>= 0`` of the unsupervised loss; 0 skips the unlabelled branch.
            rampup_epochs: the ramp length ``>= 0`` in epochs (fractional allowed); 0 gives the full weight from
                the first iteration.
            rampup: ``"sigmoid"`` (``exp(-5 (1 - t/L)^2)``, arXiv 1610.02242) or ``"linear"`` (``t / L``).
            teacher_activation: ``"softmax"`` (multi-class) or ``"sigmoid"`` (multi-label/binary channels).
            image_key: key of the weak view (teacher input) in an unlabelled batch.
            strong_key: key of the strong view (student input); None feeds the student the same view.
            unlabeled_prepare_batch: optional ``f(batch, device, non_blocking, **to_kwargs) -> (weak, strong)``
                replacing the key look-up.
            teacher_inferer: how to run the teacher, default ``SimpleInferer()``.
            kwargs: every other argument of ``monai.engines.SupervisedTrainer`` (``epoch_length``,
                ``non_blocking``, ``prepare_batch``, ``inferer``, ``postprocessing``, ``key_train_metric``,
                ``additional_metrics``, ``metric_cmp_fn``, ``train_handlers``, ``amp``, ``event_names``,
                ``event_to_attr``, ``decollate``, ``optim_set_to_none``, ``to_kwargs``, ``amp_kwargs``,
                ``compile``, ``compile_kwargs``, ``accumulation_steps``); ``iteration_update`` is refused.

        Raises:
            ValueError: ``ema_decay`` outside ``[0, 1]``, a negative ``unsup_weight`` or ``rampup_epochs``, an
                unknown ``rampup``/``teacher_activation``/``ema_buffers``, an empty unlabelled loader (or None with
                ``unsup_weight > 0``), a teacher that does not match the student (or is the student), an
                ``iteration_update``.
            TypeError: arguments of the wrong type (a teacher that is not a ``torch.nn.Module``, a non-string key).
        """
        self.ema_decay = check_in_range("ema_decay", ema_decay, 0.0, 1.0)
        self.ema_buffers = check_option("ema_buffers", ema_buffers, EMA_BUFFER_MODES)
        self.unsup_weight = check_non_negative("unsup_weight", unsup_weight)
        self.rampup_epochs = check_non_negative("rampup_epochs", rampup_epochs)
        self.rampup = check_option("rampup", rampup, tuple(RAMPUPS))
        self.teacher_activation = check_option("teacher_activation", teacher_activation, TEACHER_ACTIVATIONS)
        self.image_key = _check_key("image_key", image_key)
        self.strong_key = _check_key("strong_key", strong_key, optional=True)
        if unlabeled_data_loader is None and self.unsup_weight > 0:
            raise ValueError(f"unlabeled_data_loader must be given when unsup_weight > 0, got None "
                             f"(unsup_weight={self.unsup_weight:g})")  # fmt: skip
        if _known_length(unlabeled_data_loader) == 0:
            raise ValueError("unlabeled_data_loader must yield at least one batch, got an empty loader")
        if kwargs.get("iteration_update") is not None:
            raise ValueError("iteration_update would replace the mean-teacher iteration; use SupervisedTrainer for it")
        teacher = make_ema_teacher(network) if teacher is None else teacher
        check_ema_pair(teacher, network)  # once: the EMA update then pairs the tensors in order, unchecked
        teacher.requires_grad_(False)
        teacher.eval()
        # set before SupervisedTrainer.__init__: it may wrap the network (torch.compile), and it attaches the
        # handlers, which may look for the teacher (e.g. to checkpoint it)
        self.student = network
        self.teacher = teacher
        super().__init__(device, max_epochs, train_data_loader, network, optimizer, loss_function, **kwargs)
        self.unlabeled_data_loader = unlabeled_data_loader
        self.unlabeled_prepare_batch = unlabeled_prepare_batch
        self.teacher_inferer = SimpleInferer() if teacher_inferer is None else teacher_inferer
        if unsup_loss_function is None:
            sigmoid = self.teacher_activation == "sigmoid"
            unsup_loss_function = DiceSemimetricCELoss(sigmoid=sigmoid, active_classes="present")
        self.unsup_loss_function = unsup_loss_function
        self._unlabeled_iter: Iterator | None = None
        self._unlabeled_passes = 0

    def current_unsup_weight(self) -> float:
        """``w(t) = unsup_weight * ramp(t, rampup_epochs)`` for this iteration (``t``: epochs done, fractional)."""
        if self.unsup_weight == 0.0:
            return 0.0
        iteration, epoch_length = self.state.iteration, self.state.epoch_length
        if epoch_length:
            progress = max(iteration - 1, 0) / epoch_length
        else:  # length unknown during the first pass over an iterable without len()
            progress = float(max(self.state.epoch - 1, 0))
        return self.unsup_weight * RAMPUPS[self.rampup](progress, self.rampup_epochs)

    def next_unlabeled_batch(self) -> Any:
        """The next unlabelled batch; the loader's iterator is re-created (and ``set_epoch`` called) when exhausted.

        Raises:
            ValueError: the loader yields nothing.
        """
        if self.unlabeled_data_loader is None:
            raise ValueError("unlabeled_data_loader is None: there is no unlabelled batch (unsup_weight must be 0)")
        for attempt in range(2):
            if self._unlabeled_iter is None:
                sampler = getattr(self.unlabeled_data_loader, "sampler", None)
                if isinstance(sampler, DistributedSampler):
                    sampler.set_epoch(self._unlabeled_passes)
                self._unlabeled_passes += 1
                self._unlabeled_iter = iter(self.unlabeled_data_loader)
            try:
                return next(self._unlabeled_iter)
            except StopIteration:
                self._unlabeled_iter = None
                if attempt == 1:
                    break
        raise ValueError("unlabeled_data_loader must yield at least one batch, got an empty pass")

    def prepare_unlabeled(self, batchdata: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weak, strong)`` views of an unlabelled batch on the trainer's device.

        Raises:
            TypeError: the batch is not a dict (without ``unlabeled_prepare_batch``).
            ValueError: the batch lacks ``image_key`` or ``strong_key``.
        """
        device, non_blocking = self.state.device, self.non_blocking
        if self.unlabeled_prepare_batch is not None:
            weak, strong = self.unlabeled_prepare_batch(batchdata, device, non_blocking, **self.to_kwargs)
        else:
            if not isinstance(batchdata, dict):
                raise TypeError(f"an unlabelled batch must be a dict with {self.image_key!r}, got "
                                f"{type(batchdata).__name__}; or pass unlabeled_prepare_batch")  # fmt: skip
            keys = [self.image_key] + ([self.strong_key] if self.strong_key is not None else [])
            missing = [k for k in keys if k not in batchdata]
            if missing:
                found = sorted(map(str, batchdata))
                raise ValueError(f"unlabelled batch lacks the key(s) {missing} (image_key={self.image_key!r}, "
                                 f"strong_key={self.strong_key!r}), got keys {found}")  # fmt: skip
            views = [batchdata[k].to(device=device, non_blocking=non_blocking, **self.to_kwargs) for k in keys]
            weak, strong = views[0], views[-1]
        if self.compile:
            weak, strong = plain(weak), plain(strong)
        return weak, strong

    def teacher_probabilities(self, weak: torch.Tensor) -> torch.Tensor:
        """The teacher's float32 probabilities on the weak view (eval mode, no grad; autocast with AMP)."""
        self.teacher.eval()
        with torch.no_grad():
            logits = self.teacher_inferer(weak, self.teacher)
            logits = plain(logits).float()
            return logits.softmax(1) if self.teacher_activation == "softmax" else logits.sigmoid()

    def _unsupervised_loss(self) -> torch.Tensor:
        weak, strong = self.prepare_unlabeled(self.next_unlabeled_batch())
        target = self.teacher_probabilities(weak)
        pred = self.inferer(strong, self.network)
        loss = self.unsup_loss_function(pred, target).mean()
        self.state.output["loss_unsup"] = loss.detach()
        store_loss_parts(self, self.unsup_loss_function, "loss_unsup")
        return loss

    def _iteration(self, engine: MeanTeacherTrainer, batchdata: dict[str, torch.Tensor]) -> dict:  # type: ignore[override]
        """One mean-teacher iteration (see the class docstring); returns ``engine.state.output``.

        Raises:
            ValueError: ``batchdata`` is None; an unlabelled batch without the view keys; an empty unlabelled
                loader.
        """
        inputs, targets, args, kwargs, acc, step = start_iteration(engine, batchdata)
        weight = engine.current_unsup_weight()
        with amp_context(engine):
            engine.state.output[Keys.PRED] = engine.inferer(inputs, engine.network, *args, **kwargs)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            loss = engine.loss_function(engine.state.output[Keys.PRED], targets).mean()
            engine.state.output["loss_sup"] = loss.detach()
            store_loss_parts(engine, engine.loss_function, "loss_sup")
            if weight > 0.0:
                loss = loss + weight * engine._unsupervised_loss()
            engine.state.output["unsup_weight"] = torch.tensor(weight)
            engine.state.output[Keys.LOSS] = loss
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
        backward_and_step(engine, loss, acc, step)
        if step:
            update_ema_teacher(engine.teacher, engine.student, engine.ema_decay, engine.ema_buffers, check=False)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
