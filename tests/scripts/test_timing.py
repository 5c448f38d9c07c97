"""The round-robin timer shared by the benchmark scripts (scripts/_timing.py)."""

from __future__ import annotations

import importlib.util
import inspect
import time
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "scripts" / "_timing.py"


@pytest.fixture
def timing():
    spec = importlib.util.spec_from_file_location("_timing", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_round_robin_alternates_the_functions_after_the_warm_up(timing):
    calls: list[str] = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    samples = timing.round_robin(fns, repeats=3, warmup=2)
    assert calls == ["a", "b"] * 5  # 2 untimed rounds, then 3 timed ones, each in turn
    assert {name: len(v) for name, v in samples.items()} == {"a": 3, "b": 3}
    assert all(t >= 0.0 for v in samples.values() for t in v)


def test_round_robin_times_each_call_with_its_clock(timing):
    assert inspect.signature(timing.round_robin).parameters["clock"].default is time.perf_counter  # wall clock
    ticks = iter([0.0, 1.0, 10.0, 12.0, 20.0, 23.0, 30.0, 34.0])  # start/stop pairs: 1, 2, 3, 4 seconds
    samples = timing.round_robin({"a": lambda: None, "b": lambda: None}, repeats=2, warmup=0, clock=lambda: next(ticks))
    assert samples == {"a": [1.0, 3.0], "b": [2.0, 4.0]}
    assert timing.medians({"a": [3.0, 1.0, 2.0], "b": [4.0, 1.0]}) == {"a": 2.0, "b": 2.5}

