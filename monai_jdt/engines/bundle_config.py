"""Read the parts of a MONAI bundle config that the distillation tools need (``network_def``, ``preprocessing``,
``inferer``), with errors that name the file and the id.

A bundle is a folder with ``configs/inference.json`` (or ``.yaml``/``.yml``); ids follow the MONAI model-zoo
conventions. The bundle root is set as ``bundle_root`` in the parser and put on ``sys.path`` while items are
instantiated, as ``monai.bundle`` does, so ``"_target_": "scripts.x.Y"`` items of the bundle resolve.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

__all__ = ["BundleConfig", "find_bundle_config", "read_bundle_config"]

_CONFIG_NAMES = ("inference.json", "inference.yaml", "inference.yml")


def find_bundle_config(bundle_dir: str | os.PathLike) -> Path:
    """The inference config of a bundle folder: ``configs/inference.{json,yaml,yml}``.

    Raises:
        FileNotFoundError: the folder or its inference config does not exist.
    """
    root = Path(bundle_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"bundle directory {root} does not exist")
    for name in _CONFIG_NAMES:
        if (root / "configs" / name).is_file():
            return root / "configs" / name
    raise FileNotFoundError(f"bundle {root} has no configs/inference.json (or .yaml/.yml); pass the config file")


@contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(1, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


class BundleConfig:
    """A parsed bundle config that instantiates items by id.

    Attributes:
        files: the config files, merged in order.
        root: the bundle root (``bundle_root`` in the config).
        parser: the ``monai.bundle.ConfigParser``.
    """

    def __init__(self, files: Sequence[Path], root: Path, overrides: Mapping[str, Any] | None = None) -> None:
        self.files = list(files)
        self.root = root
        self.parser = ConfigParser()
        self.parser.read_config([str(f) for f in self.files])
        self.parser["bundle_root"] = str(root)
        for key, value in (overrides or {}).items():
            self.parser[key] = value

    def __contains__(self, id: str) -> bool:
        return id in self.parser

    def get(self, id: str, what: str = "item") -> Any:
        """Instantiate the item ``id`` (e.g. ``"network_def"``).

        Raises:
            ValueError: ``id`` is not in the config, or instantiating it fails (the message names both).
        """
        names = ", ".join(str(f) for f in self.files)
        if id not in self.parser:
            top = sorted(k for k in self.parser.get() if isinstance(k, str))
            raise ValueError(f"{what} id {id!r} is not in the bundle config {names} (top-level ids: {top})")
        with _on_sys_path(self.root):
            try:
                return self.parser.get_parsed_content(id, instantiate=True)
            except Exception as err:
                raise ValueError(f"could not build {what} {id!r} from the bundle config {names}: {err}") from err


def read_bundle_config(
    config: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    bundle_root: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> BundleConfig:
    """Parse a bundle config: a bundle folder, a config file, or several files merged in order (as MONAI).

    Args:
        config: bundle folder (its ``configs/inference.*`` is used), config file, or list of files.
        bundle_root: the bundle root; default: the folder above ``configs/`` (or the config file's folder).
        overrides: ids to set after reading (e.g. ``{"device": "cpu"}``).

    Raises:
        FileNotFoundError: a folder or file that does not exist.

    Example:
        >>> import json, pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "configs").mkdir()
        >>> net = {"_target_": "monai.networks.nets.UNet", "spatial_dims": 2, "in_channels": 1,
        ...        "out_channels": 2, "channels": [4, 8], "strides": [2]}
        >>> _ = (root / "configs" / "inference.json").write_text(json.dumps({"network_def": net}))
        >>> type(read_bundle_config(root).get("network_def")).__name__
        'UNet'
    """
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not path.exists():
            raise FileNotFoundError(f"bundle folder or config file {path} does not exist")
        files = [find_bundle_config(path)] if path.is_dir() else [path]
    else:
        files = [Path(c) for c in config]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"bundle config file {f} does not exist")
    first = files[0].resolve()
    root = Path(bundle_root) if bundle_root is not None else (
        first.parent.parent if first.parent.name == "configs" else first.parent)  # fmt: skip
    return BundleConfig(files, root.resolve(), overrides)
