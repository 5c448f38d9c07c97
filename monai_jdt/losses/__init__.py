"""Soft-label overlap losses (DML, JML, CTL), their CE compounds and the Lovász baselines."""

from __future__ import annotations

__all__: list[str] = []
