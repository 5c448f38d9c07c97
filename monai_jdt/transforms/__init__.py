"""Soft-label sources as MONAI transforms: boundary label smoothing, label smoothing, multi-rater fusion."""

from __future__ import annotations

__all__: list[str] = []
