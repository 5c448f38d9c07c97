"""Training engines: knowledge distillation and semi-supervised (mean teacher) trainers."""

from __future__ import annotations

__all__: list[str] = []
