"""Small synthetic copies of the three layouts, written once per test session (per xdist worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_jdt.data.synthetic import write_synthetic_kits, write_synthetic_lits, write_synthetic_qubiq


@pytest.fixture(scope="session")
def qubiq_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All six QUBIQ tasks (2021 folder names), 4 training cases and 1 validation case each, 32 px."""
    return write_synthetic_qubiq(
        tmp_path_factory.mktemp("qubiq"), tasks="all", cases=4, size=32, validation_cases=1, progress_bar=False
    )


@pytest.fixture(scope="session")
def lits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_lits(tmp_path_factory.mktemp("lits"), cases=3, size=32, test_cases=1, progress_bar=False)


@pytest.fixture(scope="session")
def kits_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small copy per edition; kits19 also has an unlabelled test case."""
    return {
        edition: write_synthetic_kits(
            tmp_path_factory.mktemp(edition),
            edition=edition,
            cases=2,
            size=32,
            test_cases=1 if edition == "kits19" else 0,
            progress_bar=False,
        )
        for edition in ("kits19", "kits21", "kits23")
    }
