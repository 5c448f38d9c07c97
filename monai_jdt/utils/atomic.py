"""Atomic file writes: a temporary file in the target's folder, flushed to disk, then renamed over the target."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["TMP_PREFIX", "atomic_write", "atomic_write_text"]

#: default start of the temporary files' names (leftovers of a hard kill: ``folder.glob(f"{TMP_PREFIX}{name}.*")``).
TMP_PREFIX = ".tmp-"


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[Any]], None], *, binary: bool, prefix: str = TMP_PREFIX
) -> Path:
    """Call ``write(handle)`` on a temporary file in ``path``'s folder, fsync it and ``os.replace`` it to ``path``.

    The temporary file is named ``f"{prefix}{path.name}."`` plus a random suffix (``tempfile.mkstemp``), so the
    leftovers of a hard kill can be found with ``folder.glob(f"{prefix}{name}.*")``. The written file gets mode
    ``0o644``; ``path``'s folder is created. If ``write`` (or anything before the rename) raises, even a
    ``KeyboardInterrupt``, the temporary file is removed and ``path`` keeps its previous content.

    Args:
        path: the file to (over)write.
        write: writes the content to the open handle it is given (it need not flush or close it).
        binary: open the temporary file in ``"wb"`` mode; else ``"w"`` with ``newline=""`` (no newline
            translation) and the locale's encoding.
        prefix: start of the temporary file's name.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> folder = Path(tempfile.mkdtemp())
        >>> atomic_write(folder / "a.txt", lambda f: f.write("a\\nb"), binary=False, prefix=".tmp-").read_bytes()
        b'a\\nb'
        >>> atomic_write(folder / "a.txt", lambda f: f.write(b"c"), binary=True, prefix=".tmp-").read_bytes()
        b'c'
        >>> def fail(handle):
        ...     raise RuntimeError("no")
        >>> atomic_write(folder / "a.txt", fail, binary=True, prefix=".tmp-")
        Traceback (most recent call last):
        ...
        RuntimeError: no
        >>> sorted(p.name for p in folder.iterdir()), (folder / "a.txt").read_bytes()
        (['a.txt'], b'c')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", newline=None if binary else "") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, fsync and ``os.replace``.

    Example:
        >>> atomic_write_text(Path(tempfile.mkdtemp()) / "a.csv", "metric,value").read_text()
        'metric,value'
    """
    return atomic_write(path, lambda handle: handle.write(text), binary=False)
