"""Native CPU kernel of the fused overlap statistics: one OpenMP pass for the forward, one for the backward.

It computes exactly what :class:`monai_jdt.losses.functional._overlap_fused.FusedCardinalities` computes with torch
operations (formulas in ``overlap_kernel.c``), for contiguous float32/float64 CPU tensors with at most
:data:`MAX_CLASSES` channels and a dense or uint8 index target. It is built on first use (:mod:`._build`); where it
cannot be built (no C compiler, not Linux, torch without GNU OpenMP) a ``RuntimeWarning`` says why, once, and the
losses use the torch operations instead. ``MONAI_JDT_NATIVE=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import threading
import warnings

import torch

from monai_jdt.losses.functional._native._build import NativeBuildError, build_library

__all__ = ["ENV_VAR", "MAX_CLASSES", "backward", "enabled", "forward", "library", "supports"]

ENV_VAR = "MONAI_JDT_NATIVE"
MAX_CLASSES = 64  # the kernel keeps a few (classes x 64)-value tiles per thread on the stack
_PARALLEL_MIN = 1 << 16  # fewer values than this run on one thread

_lock = threading.Lock()
_cache: dict[str, ctypes.CDLL | None] = {}
_P, _I64, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
_SIGNATURES = {
    "jdt_overlap_forward": [_P] * 5 + [_I64] * 3 + [_INT, _INT] + [_P] * 3,
    "jdt_overlap_backward": [_P] * 5 + [_I64] * 3 + [_INT, _INT] + [_P] * 2,
}
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def enabled() -> bool:
    """Whether the native kernel may be used (``MONAI_JDT_NATIVE`` is not ``0``, ``false``, ``no`` or ``off``)."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in {"0", "false", "no", "off"}


def library() -> ctypes.CDLL | None:
    """The loaded kernel, built on the first call; ``None`` (after one ``RuntimeWarning``) if it cannot be built."""
    with _lock:
        if "lib" not in _cache:
            try:
                lib = build_library()
                for name, argtypes in _SIGNATURES.items():
                    for suffix in _SUFFIX.values():
                        fn = getattr(lib, f"{name}_{suffix}")
                        fn.argtypes, fn.restype = argtypes, None
                _cache["lib"] = lib
            except NativeBuildError as err:
                warnings.warn(
                    f"monai_jdt: the native CPU kernel of the overlap losses is unavailable ({err}); they use torch "
                    f"operations instead (slower). Set {ENV_VAR}=0 to skip the build.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                _cache["lib"] = None
        return _cache["lib"]


def supports(probs: torch.Tensor, label: torch.Tensor | None) -> bool:
    """Whether the kernel handles these tensors (and is enabled and built)."""
    return (
        enabled()
        and probs.device.type == "cpu"
        and probs.dtype in _SUFFIX
        and probs.shape[1] <= MAX_CLASSES
        and (label is None or label.dtype == torch.uint8)
        and library() is not None
    )


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads(t: torch.Tensor) -> int:
    return torch.get_num_threads() if t.numel() >= _PARALLEL_MIN else 1


def forward(
    logits: torch.Tensor,
    dense: torch.Tensor | None,
    label: torch.Tensor | None,
    mask: torch.Tensor | None,
    softmax: bool,
    want_max: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Activation and per-(image, class) sums; all tensors contiguous, shapes as in ``overlap_kernel.c``.

    Returns:
        ``probs`` (like ``logits``), ``sums`` (``3, B, C`` float64: P, G, D), ``maxima`` (``2, B, C``: target and
        prediction maxima; zeros unless ``want_max``) and the target's ``(min, max, NaN count)``.
    """
    batch, num_classes, n = logits.shape
    threads = _threads(logits)
    probs = torch.empty_like(logits)
    sums = torch.zeros(threads, batch, num_classes, 3, dtype=torch.float64)
    maxima = torch.zeros(threads if want_max else 1, batch, 2, num_classes, dtype=logits.dtype)
    extrema = torch.tensor([[float("inf"), -float("inf"), 0.0]] * threads, dtype=logits.dtype)
    fn = getattr(library(), f"jdt_overlap_forward_{_SUFFIX[logits.dtype]}")
    fn(*map(_ptr, (logits, probs, dense, label, mask)), batch, num_classes, n, int(softmax), threads,
       _ptr(sums), _ptr(maxima) if want_max else None, _ptr(extrema))  # fmt: skip
    extrema = torch.stack((extrema[:, 0].min(), extrema[:, 1].max(), extrema[:, 2].sum()))
    return probs, sums.sum(0).permute(2, 0, 1), maxima.amax(0).transpose(0, 1), extrema


def backward(
    probs: torch.Tensor,
    grad: torch.Tensor,
    dense: torch.Tensor | None,
    label: torch.Tensor | None,
    mask: torch.Tensor | None,
    softmax: bool,
    g_p: torch.Tensor,
    g_d: torch.Tensor,
) -> None:
    """Write dL/dlogits into ``grad`` (which may be ``probs``) from ``g_p = dL/dP`` and ``g_d = dL/dD`` (``B, C``)."""
    batch, num_classes, n = probs.shape
    g_p, g_d = (g.to(probs.dtype).contiguous() for g in (g_p, g_d))
    fn = getattr(library(), f"jdt_overlap_backward_{_SUFFIX[probs.dtype]}")
    fn(*map(_ptr, (probs, grad, dense, label, mask)), batch, num_classes, n, int(softmax), _threads(probs),
       _ptr(g_p), _ptr(g_d))  # fmt: skip
