"""Synthetic stand-ins for QUBIQ, LiTS and KiTS, written with nibabel in the real folder layouts.

All writers are deterministic by seed, small by default (a CPU demo trains on them in minutes) and scalable
through ``cases`` and ``size``. See ``docs/datasets.md``.
"""

from __future__ import annotations

from monai_jdt.data.synthetic.kits import write_synthetic_kits
from monai_jdt.data.synthetic.lits import LITS_BATCH_FOLDERS, write_synthetic_lits
from monai_jdt.data.synthetic.qubiq import QUBIQ_RELEASE_FOLDERS, SYNTHETIC_QUBIQ_RATERS, write_synthetic_qubiq

__all__ = [
    "LITS_BATCH_FOLDERS",
    "QUBIQ_RELEASE_FOLDERS",
    "SYNTHETIC_QUBIQ_RATERS",
    "write_synthetic_kits",
    "write_synthetic_lits",
    "write_synthetic_qubiq",
]
