"""Synthetic data sets of the bundle tests, written once per session (per xdist worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_jdt.data.synthetic import write_synthetic_kits, write_synthetic_lits, write_synthetic_qubiq
from tests.bundle._helpers import KITS, LITS, QUBIQ


@pytest.fixture(scope="session")
def bundle_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """QUBIQ kidney (4 cases, 32 px), LiTS (4 cases + 1 test volume) and KiTS23 (4 cases), all small."""
    root = tmp_path_factory.mktemp("bundle_data")
    return {
        QUBIQ: write_synthetic_qubiq(root / "qubiq", tasks="kidney", cases=4, size=32, progress_bar=False),
        LITS: write_synthetic_lits(root / "lits", cases=4, size=(32, 32, 16), test_cases=1, progress_bar=False),
        KITS: write_synthetic_kits(root / "kits", cases=4, size=(16, 32, 32), progress_bar=False),
    }
