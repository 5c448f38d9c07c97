"""Smoke tests of the loss benchmark scripts on tiny volumes (the real numbers come from running the scripts)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str, monkeypatch: pytest.MonkeyPatch):
    """Import ``scripts/<name>.py`` as a module; the scripts import their shared ``_timing`` module from there."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_script_runs_and_prints_every_row(capsys, monkeypatch):
    monkeypatch.delenv("MONAI_JDT_NATIVE", raising=False)
    module = _load("benchmark_losses", monkeypatch)
    argv = ["--shape", "1", "3", "6", "5", "4", "--repeats", "1", "--warmup", "0", "--skip-memory"]
    assert module.main(argv) == 0
    out = capsys.readouterr().out
    for label in module.LABELS.values():
        assert label in out
    assert "x peer" in out
    for name, label in module.LABELS.items():  # every DML row (either kernel) computes the right loss
        if name.startswith("dml"):
            line = next(line for line in out.splitlines() if line.startswith(label))
            assert float(line.split()[-1]) < 1e-5, line
    assert os.environ.get("MONAI_JDT_NATIVE") is None  # the torch-kernel rows restore the environment


def test_memory_of_one_configuration_is_measured_in_this_process(monkeypatch):
    module = _load("benchmark_losses", monkeypatch)
    extra = module.measure_memory_here("dml_index", (1, 3, 24, 24, 24), "cpu")
    assert extra >= 0.0


def test_training_step_script_runs_and_prints_each_loss(capsys, monkeypatch):
    module = _load("benchmark_training_step", monkeypatch)
    assert module.main(["--size", "16", "--batch", "1", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:5]}
    assert set(rows) == {"trivial", "monai", "dml"}
    assert rows["monai"][1] == "1.00"  # the peer row divides by itself
    assert all(float(cols[0]) > 0 for cols in rows.values())


@pytest.mark.slow
def test_compiled_kernels_script_agrees_with_the_fused_loss(capsys, monkeypatch):
    """The prototype compiled kernels give the fused loss's values and gradients (torch.compile: slow)."""
    module = _load("benchmark_compiled_kernels", monkeypatch)
    assert module.main(["--shape", "1", "3", "8", "8", "8", "--repeats", "1", "--block", "128"]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines()[2:6]:
        name, cols = line[:16].strip(), line[16:].split()
        rows[name] = cols
    assert set(rows) == {"monai", "fused", "compiled blocks", "compiled whole"}
    for name in ("compiled blocks", "compiled whole"):
        assert float(rows[name][3]) < 1e-6 and float(rows[name][4]) < 1e-6  # |value diff|, |grad diff|
