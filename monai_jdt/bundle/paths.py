"""Where the MONAI bundles of monai_jdt live: ``<repository>/bundles/<name>``."""

from __future__ import annotations

import os
from pathlib import Path

from monai_jdt.utils.checks import check_option

__all__ = ["BUNDLE_NAMES", "BUNDLES_ENV", "bundle_dir", "bundles_root"]

#: the bundles shipped with the repository.
BUNDLE_NAMES = ("qubiq_multirater_segmentation", "lits_ct_segmentation", "kits_ct_segmentation")

#: environment variable that points at another ``bundles`` folder (e.g. a copy next to a wheel install).
BUNDLES_ENV = "MONAI_JDT_BUNDLES"

_MARKER = "meta_schema.json"


def bundles_root() -> Path:
    """The ``bundles`` folder: ``$MONAI_JDT_BUNDLES`` if set, else the one next to the ``monai_jdt`` package.

    The bundles are data files of the source repository, not part of the Python package, so they are found
    when monai_jdt is installed editable from a clone (``bash scripts/setup.sh``).

    Raises:
        FileNotFoundError: the folder (recognised by its ``meta_schema.json``) is not there, with what to do.

    Example:
        >>> bundles_root().name
        'bundles'
    """
    env = os.environ.get(BUNDLES_ENV)
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / _MARKER).is_file():
            raise FileNotFoundError(f"{BUNDLES_ENV}={env} is not a monai_jdt bundles folder (no {_MARKER} in {root})")
        return root
    root = Path(__file__).resolve().parent.parent.parent / "bundles"
    if not (root / _MARKER).is_file():
        raise FileNotFoundError(
            f"the monai_jdt bundles folder was not found at {root}: the bundles ship with the source repository, "
            "not with the installed package; clone the repository and run `bash scripts/setup.sh` (editable "
            f"install), or set {BUNDLES_ENV}=<path to the repository's bundles folder>"
        )
    return root


def bundle_dir(name: str) -> Path:
    """The folder of one bundle (it holds ``configs/``, ``docs/`` and ``LICENSE``).

    Args:
        name: one of :data:`BUNDLE_NAMES`.

    Raises:
        ValueError: an unknown bundle name.
        FileNotFoundError: the bundles folder or the bundle's ``configs/metadata.json`` is missing.

    Example:
        >>> (bundle_dir("kits_ct_segmentation") / "configs" / "train.json").is_file()
        True
    """
    name = check_option("name", name, BUNDLE_NAMES)
    path = bundles_root() / name
    if not (path / "configs" / "metadata.json").is_file():
        raise FileNotFoundError(f"bundle {name!r} is incomplete: {path / 'configs' / 'metadata.json'} is missing")
    return path
