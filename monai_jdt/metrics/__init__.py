"""Fine-grained overlap, QUBIQ thresholded soft Dice and calibration metrics."""

from __future__ import annotations

__all__: list[str] = []
