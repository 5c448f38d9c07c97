"""Pure functional forms of the soft-label transforms (batched ``(B, ...)`` tensors, any device)."""

from __future__ import annotations

from monai_jdt.transforms.functional.boundary import boundary_mask, box_half_widths, spacing_half_widths

__all__ = ["boundary_mask", "box_half_widths", "spacing_half_widths"]
