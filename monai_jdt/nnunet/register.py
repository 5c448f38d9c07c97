"""Make monai_jdt's trainers visible to nnU-Net's ``-tr`` lookup.

nnU-Net 2.8 looks a trainer up by name with ``recursive_find_trainer_class_by_name``: first in its own package
``nnunetv2/training/nnUNetTrainer/`` (modules of a folder before its sub-packages), then in the folders listed in
the environment variable ``nnUNet_extTrainer``. Two ways to use our trainers follow:

* ``nnUNet_extTrainer=$(python -m monai_jdt nnunet-register --print-ext-path)``: the folder
  :func:`external_trainer_dir`, which holds one module importing our trainers. Nothing is written anywhere.
  It needs every module of nnU-Net's own trainer package to import, including the Primus trainers, which need
  ``timm`` (and so ``torchvision``): true for ``pip install "monai_jdt[nnunet]"``, not for the torch-preserving
  CPU install of ``scripts/install_nnunet_cpu.sh``.
* :func:`register_trainers` (``python -m monai_jdt nnunet-register``): writes the small module
  ``nnUNetTrainer_monai_jdt.py`` into nnU-Net's trainer folder. It sorts after ``nnUNetTrainer.py`` (so the
  default trainer's lookup never imports monai_jdt) and before the sub-packages (so the lookup finds our trainers
  before it reaches the Primus trainers). It works with every install; :func:`unregister_trainers` removes it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from monai_jdt.utils.atomic import atomic_write_text

__all__ = [
    "SHIM_MARKER",
    "SHIM_NAME",
    "TRAINER_NAMES",
    "external_trainer_dir",
    "is_registered",
    "nnunet_trainer_dir",
    "register_trainers",
    "shim_source",
    "unregister_trainers",
]

#: file name of the registration module inside ``nnunetv2/training/nnUNetTrainer/``.
SHIM_NAME = "nnUNetTrainer_monai_jdt.py"
#: first line of every file this module writes; :func:`unregister_trainers` only removes files that carry it.
SHIM_MARKER = "# monai_jdt nnU-Net trainer registration (python -m monai_jdt nnunet-register)"
#: the trainer classes that the registration makes visible.
TRAINER_NAMES = (
    "nnUNetTrainerDMLCE",
    "nnUNetTrainerJMLCE",
    "nnUNetTrainerDMLCE_BLS",
    "nnUNetTrainerDMLCE_ClassAgnostic",
)


def shim_source() -> str:
    """The Python source of the registration module (also the module of :func:`external_trainer_dir`)."""
    names = ", ".join(TRAINER_NAMES)
    return f'''{SHIM_MARKER}
"""Makes monai_jdt's nnU-Net trainers findable by nnUNetv2_train -tr:
{names}.

Remove with: python -m monai_jdt nnunet-register --unregister
"""

try:
    from monai_jdt.nnunet.trainers import (  # noqa: F401
        {(","+chr(10)+"        ").join(sorted(TRAINER_NAMES))},
    )
except ImportError as _err:  # monai_jdt missing or broken: keep nnU-Net's own trainer lookup working
    import warnings as _warnings

    _warnings.warn(f"monai_jdt's nnU-Net trainers are unavailable: {{_err}}", stacklevel=1)
'''


def external_trainer_dir() -> Path:
    """The folder to put in ``nnUNet_extTrainer`` (ships with monai_jdt; one module importing our trainers)."""
    return Path(__file__).resolve().parent / "ext_trainers"


def nnunet_trainer_dir() -> Path:
    """nnU-Net's ``nnunetv2/training/nnUNetTrainer`` folder, found without importing nnU-Net.

    Raises:
        ImportError: nnU-Net is not installed (the message names the extra and the install script).
    """
    from monai_jdt.nnunet._availability import require_nnunet

    require_nnunet("registering the trainers with nnU-Net")
    spec = importlib.util.find_spec("nnunetv2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nnunetv2 imports but has no package folder (a namespace or zip install?)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "training" / "nnUNetTrainer"
    if not folder.is_dir():
        raise FileNotFoundError(f"nnU-Net's trainer folder does not exist: {folder}")
    return folder


def _target(trainer_dir: str | os.PathLike | None) -> Path:
    folder = nnunet_trainer_dir() if trainer_dir is None else Path(trainer_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"trainer_dir does not exist or is not a folder: {folder}")
    return folder / SHIM_NAME


def is_registered(trainer_dir: str | os.PathLike | None = None) -> bool:
    """Whether the registration module exists in ``trainer_dir`` (default: the installed nnU-Net's)."""
    path = _target(trainer_dir)
    return path.is_file() and path.read_text().startswith(SHIM_MARKER)


def register_trainers(trainer_dir: str | os.PathLike | None = None) -> Path:
    """Write the registration module (atomically; idempotent) and return its path.

    Args:
        trainer_dir: nnU-Net's trainer folder; default that of the installed ``nnunetv2``.

    Raises:
        ImportError: nnU-Net is not installed (with ``trainer_dir=None``).
        FileNotFoundError: ``trainer_dir`` is not a folder.
        FileExistsError: a file of the same name that monai_jdt did not write is in the way.
    """
    path = _target(trainer_dir)
    if path.exists() and not path.read_text().startswith(SHIM_MARKER):
        raise FileExistsError(f"{path} exists and was not written by monai_jdt; remove it first")
    return atomic_write_text(path, shim_source())


def unregister_trainers(trainer_dir: str | os.PathLike | None = None) -> bool:
    """Remove the registration module; ``True`` if one was removed, ``False`` if there was none.

    Raises:
        ImportError: nnU-Net is not installed (with ``trainer_dir=None``).
        FileExistsError: the file exists but was not written by monai_jdt (it is left alone).
    """
    path = _target(trainer_dir)
    if not path.exists():
        return False
    if not path.read_text().startswith(SHIM_MARKER):
        raise FileExistsError(f"{path} was not written by monai_jdt; not removing it")
    path.unlink()
    cache = path.parent / "__pycache__"
    for stale in cache.glob(f"{path.stem}.*.pyc") if cache.is_dir() else ():
        stale.unlink(missing_ok=True)
    return True
