"""Build (once per machine) and load the native CPU kernel of the overlap losses.

The kernel is plain C (``overlap_kernel.c``), compiled on first use with the system C compiler, like the C++ code
that ``torch.compile`` generates on CPU. It is linked against the OpenMP runtime that torch itself loaded (found in
``/proc/self/maps``), so its parallel regions run on torch's own OpenMP threads: no second thread pool competes
with torch's for the cores. It is compiled for the host CPU (``-march=native``), so the cache key includes the
CPU's model and flags as well as the sources, the compiler, the flags and the OpenMP runtime's path.

Cache: ``$MONAI_JDT_CACHE_DIR``, else ``$XDG_CACHE_HOME/monai_jdt``, else ``~/.cache/monai_jdt``; the library is
compiled in a private temporary folder and copied into the cache with :func:`monai_jdt.utils.atomic.atomic_write`
(fsync, one atomic rename), so concurrent processes and a killed build never leave a half-written library behind.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from monai_jdt.utils.atomic import atomic_write

__all__ = ["FLAGS", "NativeBuildError", "build_library", "cache_dir", "openmp_runtime", "pick_openmp_runtime"]

FLAGS = ("-O3", "-march=native", "-fno-trapping-math", "-fPIC", "-fopenmp", "-std=c11")
SOURCES = ("overlap_kernel.c", "overlap_kernel_impl.h")
_COMPILE_TIMEOUT_S = 120


class NativeBuildError(RuntimeError):
    """The native kernel cannot be built or loaded here (the message says why)."""


def cache_dir() -> Path:
    """Where built kernels are kept (see the module docstring)."""
    if os.environ.get("MONAI_JDT_CACHE_DIR"):
        return Path(os.environ["MONAI_JDT_CACHE_DIR"]) / "kernels"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "monai_jdt" / "kernels"


def pick_openmp_runtime(paths: list[str], torch_dir: str) -> str:
    """Torch's GNU OpenMP runtime among the ``paths`` loaded: the one under ``torch_dir``, else the only one.

    Other packages may load their own copy (scikit-learn does).

    Example:
        >>> pick_openmp_runtime(["/sk/libgomp-1.so", "/t/lib/libgomp.so.1"], "/t")
        '/t/lib/libgomp.so.1'
    """
    own = [path for path in paths if path.startswith(torch_dir.rstrip(os.sep) + os.sep)]
    if len(own) == 1 or len(paths) == 1:
        return (own or paths)[0]
    raise NativeBuildError(f"cannot tell torch's GNU OpenMP runtime (libgomp) among {sorted(paths)}")


def openmp_runtime() -> str:
    """The path of the GNU OpenMP runtime that torch uses in this process, or raise :class:`NativeBuildError`."""
    import torch

    if not sys.platform.startswith("linux"):
        raise NativeBuildError(f"the native kernel is built on Linux only, not on {sys.platform}")
    with open("/proc/self/maps") as maps:
        paths = sorted({os.path.realpath(line.split()[-1]) for line in maps if "/libgomp" in line})
    return pick_openmp_runtime(paths, os.path.dirname(os.path.realpath(torch.__file__)))


def _compiler() -> list[str]:
    compiler = shlex.split(os.environ.get("CC", "")) or [shutil.which("cc") or shutil.which("gcc") or ""]
    if not compiler[0] or shutil.which(compiler[0]) is None:
        raise NativeBuildError(f"no C compiler found (set CC, or install gcc), got {compiler[0]!r}")
    return compiler


def _cpu_signature() -> str:
    """The host CPU's model and feature flags (``-march=native`` code must not run on another CPU)."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.startswith(("model name", "flags", "Features"))]
    except OSError:
        lines = []
    return platform.machine() + "".join(sorted(set(lines)))


def _key(compiler: list[str], gomp: str, sources: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in (*sources, *compiler, *FLAGS, gomp, _cpu_signature(), sys.platform):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def _compile(compiler: list[str], gomp: str, source_dir: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="monai_jdt-build-") as tmp:
        obj, lib = Path(tmp) / "overlap_kernel.o", Path(tmp) / target.name
        steps = (
            [*compiler, *FLAGS, "-c", str(source_dir / SOURCES[0]), "-o", str(obj)],
            # linking torch's libgomp by path records its soname, which the loader resolves to the loaded copy
            [*compiler, "-shared", str(obj), gomp, f"-Wl,-rpath,{os.path.dirname(gomp)}", "-o", str(lib)],
        )
        for cmd in steps:
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as err:
                raise NativeBuildError(f"{shlex.join(cmd)} failed: {err}") from err
            if done.returncode != 0:
                raise NativeBuildError(
                    f"{shlex.join(cmd)} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}"
                )
        atomic_write(target, lambda handle: handle.write(lib.read_bytes()), binary=True)


def build_library() -> ctypes.CDLL:
    """Compile the kernel if this machine's cache lacks it, and load it."""
    source_dir = Path(__file__).parent
    sources = [(source_dir / name).read_bytes() for name in SOURCES]
    compiler, gomp = _compiler(), openmp_runtime()
    target = cache_dir() / f"overlap_kernel-{_key(compiler, gomp, sources)}.so"
    if not target.exists():
        try:
            _compile(compiler, gomp, source_dir, target)
        except OSError as err:
            raise NativeBuildError(f"cannot write the kernel to {target.parent}: {err}") from err
    try:
        return ctypes.CDLL(str(target))
    except OSError as err:
        raise NativeBuildError(f"cannot load {target}: {err}") from err
