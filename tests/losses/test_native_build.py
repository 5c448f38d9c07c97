"""Building, caching and loading the native CPU kernel, and the fallback where it cannot be built."""

from __future__ import annotations

import shutil

import pytest
import torch

from monai_jdt.losses import DiceSemimetricLoss
from monai_jdt.losses.functional import _native
from monai_jdt.losses.functional._native import _build

needs_compiler = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")


def _gomp_paths() -> set[str]:
    with open("/proc/self/maps") as maps:
        return {line.split()[-1] for line in maps if "/libgomp" in line}


@needs_compiler
def test_native_kernel_builds_caches_and_reuses_torchs_openmp(tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_JDT_CACHE_DIR", str(tmp_path))
    before = _gomp_paths()
    lib = _build.build_library()
    assert hasattr(lib, "jdt_overlap_forward_f32") and hasattr(lib, "jdt_overlap_backward_f64")
    assert _gomp_paths() == before  # linked against the runtime torch loaded, not a second copy
    built = list((tmp_path / "kernels").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so"  # no temporary build folder left behind

    def must_not_compile(*args):
        raise AssertionError("the cached kernel should have been reused")

    monkeypatch.setattr(_build, "_compile", must_not_compile)
    assert _build.build_library() is not None


@needs_compiler
def test_failed_compile_names_the_command_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_JDT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    with pytest.raises(_build.NativeBuildError, match=r"false .*overlap_kernel\.c.* failed \(exit 1\)"):
        _build.build_library()
    assert list((tmp_path / "kernels").iterdir()) == []


def test_missing_compiler_warns_once_and_the_loss_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_JDT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv(_native.ENV_VAR, "1")
    monkeypatch.setattr(_native, "_cache", {})
    with pytest.warns(RuntimeWarning, match=r"native CPU kernel .* unavailable \(no C compiler found .*no-such-cc"):
        assert _native.library() is None
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 3, 8, 8, generator=g), torch.softmax(torch.randn(2, 3, 8, 8, generator=g), 1)
    torch.testing.assert_close(
        DiceSemimetricLoss(softmax=True)(logits, target), DiceSemimetricLoss(softmax=True, fused=False)(logits, target)
    )


@pytest.mark.parametrize(
    ("paths", "torch_dir", "expected"),
    [
        (["/env/sklearn.libs/libgomp-e9.so.1.0.0", "/env/torch/lib/libgomp.so.1"], "/env/torch", 1),
        (["/usr/lib/libgomp.so.1"], "/env/torch", 0),
        (["/env/torch/lib/libgomp-a3.so.1"], "/env/torch/", 0),
    ],
)
def test_pick_openmp_runtime(paths, torch_dir, expected):
    assert _build.pick_openmp_runtime(paths, torch_dir) == paths[expected]


@pytest.mark.parametrize("paths", [[], ["/a/libgomp.so.1", "/b/libgomp.so.1"], ["/env/torchvision/libgomp.so.1", "/x"]])
def test_pick_openmp_runtime_refuses_to_guess(paths):
    with pytest.raises(_build.NativeBuildError, match="cannot tell torch's GNU OpenMP runtime"):
        _build.pick_openmp_runtime(paths, "/env/torch")


@pytest.mark.parametrize(("value", "on"), [("1", True), ("", True), ("0", False), ("off", False), (" False ", False)])
def test_env_switch(value, on, monkeypatch):
    monkeypatch.setenv(_native.ENV_VAR, value)
    assert _native.enabled() is on


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_JDT_CACHE_DIR", str(tmp_path / "c"))
    assert _build.cache_dir() == tmp_path / "c" / "kernels"
    monkeypatch.delenv("MONAI_JDT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert _build.cache_dir() == tmp_path / "x" / "monai_jdt" / "kernels"
