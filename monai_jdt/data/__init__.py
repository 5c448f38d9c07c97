"""Dataset readers (QUBIQ, LiTS, KiTS) that build MONAI datalists, and synthetic stand-ins in their layouts."""

from __future__ import annotations

__all__: list[str] = []
