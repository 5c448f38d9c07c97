"""Private helpers of ``scripts/study_soft_labels.py`` (the soft-label vs hard-label study, issue 8 and issue 10).

``config``: the presets and the fixed recipe; ``data``: synthetic data sets prepared once into tensors;
``training``: networks, losses, loaders and MONAI / monai_jdt trainers of one run; ``evaluation``: the metrics of
one trained network; ``jobs``: the list of runs and their dependencies; ``report``: CSV, markdown tables and the plot.
"""

from __future__ import annotations

__all__: list[str] = []
