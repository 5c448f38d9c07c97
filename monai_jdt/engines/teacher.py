"""Build a frozen teacher network from a network object or a MONAI bundle config, and a checkpoint file."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from monai_jdt.engines.bundle_config import read_bundle_config

__all__ = ["load_checkpoint_state", "load_teacher"]


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _select(obj: Any, key: str | None, path: Path) -> Mapping[str, torch.Tensor]:
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            found = sorted(map(str, obj)) if isinstance(obj, Mapping) else type(obj).__name__
            raise ValueError(f"key {key!r} is not in the checkpoint {path} (its top-level keys: {found})")
        obj = obj[key]
        if not _is_state_dict(obj):
            raise ValueError(f"checkpoint {path} key {key!r} does not hold a state_dict of tensors")
        return obj
    if _is_state_dict(obj):
        return obj
    if isinstance(obj, Mapping) and _is_state_dict(obj.get("model")):
        return obj["model"]
    found = sorted(map(str, obj)) if isinstance(obj, Mapping) else type(obj).__name__
    raise ValueError(
        f"checkpoint {path} is neither a state_dict nor a MONAI CheckpointSaver dict with a 'model' entry "
        f"(top-level keys: {found}); pass key= to choose the entry"
    )


def load_checkpoint_state(
    checkpoint_path: str | os.PathLike, key: str | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """The network state_dict of a checkpoint file.

    Accepts a plain ``state_dict``, a MONAI ``CheckpointSaver``/ignite ``Checkpoint`` dict (``{"model": ...,
    "optimizer": ...}``; the ``"model"`` entry is taken by default) or any dict with ``key``. A DDP ``"module."``
    prefix on every key is removed. Loaded with ``torch.load(weights_only=True)`` (no arbitrary code runs).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be read, or holds no state_dict (under ``key``); the message names the file.
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint file {path} could not be read with torch.load(weights_only=True): {err}") from err
    state = dict(_select(obj, key, path))
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_teacher(
    network_def_or_config: torch.nn.Module | str | os.PathLike | Sequence[str | os.PathLike],
    checkpoint_path: str | os.PathLike | None,
    key: str | None = None,
    device: str | torch.device = "cpu",
    *,
    network_def_id: str = "network_def",
    strict: bool = True,
) -> torch.nn.Module:
    """A frozen teacher: the network, its checkpoint weights, on ``device``, in eval mode, without gradients.

    Args:
        network_def_or_config: a network object, or a MONAI bundle folder / config file(s) whose
            ``network_def_id`` item builds the network.
        checkpoint_path: checkpoint file (see :func:`load_checkpoint_state`), or None to keep the weights as
            they are (a network object that is already trained).
        key: entry of a checkpoint dict to use (default: the ``"model"`` entry of a CheckpointSaver dict, or the
            file itself when it is a state_dict).
        device: where to put the teacher.
        network_def_id: id of the network in the bundle config.
        strict: as ``torch.nn.Module.load_state_dict``.

    Returns:
        The network with ``requires_grad=False`` parameters, in eval mode.

    Raises:
        FileNotFoundError: a missing bundle folder, config or checkpoint file (named).
        ValueError: the config has no such id, the checkpoint holds no state_dict, or its weights do not match.
        TypeError: ``network_def_or_config`` is neither a network nor a path.

    Example:
        >>> import tempfile, pathlib
        >>> from monai.networks.nets import UNet
        >>> make = lambda: UNet(2, 1, 2, channels=(4, 8), strides=(2,))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.pt"
        >>> trained = make()
        >>> torch.save({"model": trained.state_dict()}, path)  # a CheckpointSaver-style dict
        >>> teacher = load_teacher(make(), path)
        >>> teacher.training, any(p.requires_grad for p in teacher.parameters())
        (False, False)
    """
    if isinstance(network_def_or_config, torch.nn.Module):
        network = network_def_or_config
    elif isinstance(network_def_or_config, (str, os.PathLike, list, tuple)):
        network = read_bundle_config(network_def_or_config).get(network_def_id, "network")
        if not isinstance(network, torch.nn.Module):
            got = type(network).__name__
            raise ValueError(f"bundle item {network_def_id!r} must build a torch.nn.Module, got {got}")
    else:
        raise TypeError(
            "network_def_or_config must be a torch.nn.Module, a bundle folder or config file path, got "
            f"{type(network_def_or_config).__name__}"
        )
    if checkpoint_path is not None:
        state = load_checkpoint_state(checkpoint_path, key, map_location="cpu")
        try:
            network.load_state_dict(state, strict=strict)
        except RuntimeError as err:
            where = f" key {key!r}" if key is not None else ""
            raise ValueError(f"checkpoint {checkpoint_path}{where} does not fit the teacher network: {err}") from err
    network = network.to(device)
    network.requires_grad_(False)
    return network.eval()
