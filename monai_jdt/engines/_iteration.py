"""Iteration mechanics shared by the package's ``SupervisedTrainer`` subclasses (distillation, mean teacher).

They reproduce what ``monai.engines.SupervisedTrainer._iteration`` does around the loss (batch preparation,
gradient accumulation, AMP, backward and optimizer step with the same ignite events), so the subclasses only
write what differs: how the loss is computed.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from monai.data import MetaTensor
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils.enums import CommonKeys as Keys

__all__ = ["amp_context", "backward_and_step", "plain", "start_iteration", "store_loss_parts"]


def plain(x: Any) -> Any:
    """A MetaTensor as a plain tensor (``torch.compile`` and some losses do not want the metadata)."""
    return x.as_tensor() if isinstance(x, MetaTensor) else x


def amp_context(engine: SupervisedTrainer) -> contextlib.AbstractContextManager:
    """CUDA autocast with the trainer's ``amp_kwargs`` when AMP is on, else a no-op context."""
    if engine.amp and engine.scaler is not None:
        return torch.autocast("cuda", **engine.amp_kwargs)
    return contextlib.nullcontext()


def _accumulation(engine: SupervisedTrainer) -> tuple[int, bool, bool]:
    """``(steps, zero the grads now, step the optimizer now)``, as ``SupervisedTrainer``."""
    acc = int(getattr(engine, "accumulation_steps", 1))
    if acc == 1:
        return 1, True, True
    epoch_length = engine.state.epoch_length
    index = engine.state.iteration - 1
    local = index % epoch_length if epoch_length is not None else index
    at_end = epoch_length is not None and local + 1 == epoch_length
    return acc, local % acc == 0, (local + 1) % acc == 0 or at_end


def start_iteration(engine: SupervisedTrainer, batchdata: Any) -> tuple[torch.Tensor, Any, tuple, dict, int, bool]:
    """Prepare the batch, reset ``engine.state.output``, put the network in train mode and zero the grads.

    Returns:
        ``(inputs, targets, args, kwargs, accumulation steps, step the optimizer after this iteration)``.

    Raises:
        ValueError: ``batchdata`` is None.
    """
    if batchdata is None:
        raise ValueError("Must provide batch data for current iteration.")
    batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
    inputs, targets, args, kwargs = (*batch, (), {}) if len(batch) == 2 else batch
    if engine.compile:
        inputs, targets = plain(inputs), plain(targets)
    engine.state.output = {Keys.IMAGE: inputs, Keys.LABEL: targets}
    acc, zero_grad, step = _accumulation(engine)
    engine.network.train()
    if zero_grad:
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
    return inputs, targets, args, kwargs, acc, step


def store_loss_parts(engine: SupervisedTrainer, loss_function: Any, prefix: str) -> None:
    """Copy ``loss_function.last_parts`` (if any) into ``engine.state.output`` as ``<prefix>_<part>``."""
    parts = getattr(loss_function, "last_parts", None)
    if isinstance(parts, dict):
        for name, value in parts.items():
            engine.state.output[f"{prefix}_{name}"] = value


def backward_and_step(engine: SupervisedTrainer, loss: torch.Tensor, acc: int, step: bool) -> None:
    """Backward (scaled under AMP, divided by the accumulation steps) and, when ``step``, the optimizer step."""
    scaled = loss / acc if acc > 1 else loss
    if engine.amp and engine.scaler is not None:
        engine.scaler.scale(scaled).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        if step:
            engine.scaler.step(engine.optimizer)
            engine.scaler.update()
    else:
        scaled.backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        if step:
            engine.optimizer.step()
