"""Is nnU-Net v2 (>= 2.8) importable, and the ImportError that says how to get it."""

from __future__ import annotations

import importlib.metadata
import importlib.util

__all__ = ["INSTALL_HINT", "NNUNET_MIN_VERSION", "nnunet_available", "nnunet_version", "require_nnunet"]

#: the oldest nnU-Net v2 release whose trainer/loss API the integration is written and tested against.
NNUNET_MIN_VERSION = (2, 8)

INSTALL_HINT = (
    'install the optional extra: pip install "monai_jdt[nnunet]" (GPU machines), or on CPU-only machines where '
    "pip would replace torch with a CUDA build: bash scripts/install_nnunet_cpu.sh (installs nnU-Net without "
    "touching torch)"
)


def nnunet_version() -> tuple[int, ...] | None:
    """The installed ``nnunetv2`` version as integers (``(2, 8, 1)``), or ``None`` if it is not installed."""
    if importlib.util.find_spec("nnunetv2") is None:
        return None
    try:
        text = importlib.metadata.version("nnunetv2")
    except importlib.metadata.PackageNotFoundError:
        return None
    parts: list[int] = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def nnunet_available() -> bool:
    """Whether ``nnunetv2 >= 2.8`` is installed (checked without importing it)."""
    version = nnunet_version()
    return version is not None and version[:2] >= NNUNET_MIN_VERSION


def require_nnunet(feature: str) -> None:
    """Raise an :class:`ImportError` naming ``feature``, the extra and the install script unless nnU-Net is usable.

    Raises:
        ImportError: ``nnunetv2`` is missing or older than 2.8.
    """
    version = nnunet_version()
    if version is None:
        raise ImportError(f"{feature} needs nnU-Net v2 (nnunetv2>=2.8), which is not installed; {INSTALL_HINT}")
    if version[:2] < NNUNET_MIN_VERSION:
        found = ".".join(str(v) for v in version)
        raise ImportError(f"{feature} needs nnunetv2>=2.8, found {found}; {INSTALL_HINT}")
