"""Write a datalist as a portable decathlon-style JSON file, and load it back with paths resolved."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_jdt.utils.atomic import atomic_write_text

__all__ = ["DATALIST_SECTIONS", "load_datalist", "write_datalist"]

#: the list sections a datalist JSON may hold (as in the Medical Segmentation Decathlon's ``dataset.json``).
DATALIST_SECTIONS = ("training", "validation", "test")


def _is_path_value(value: Any) -> bool:
    if isinstance(value, str):
        return os.path.isabs(value)
    return isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) and os.path.isabs(v) for v in value)


def _relative(value: str, base: Path) -> str:
    try:
        return Path(os.path.relpath(value, base)).as_posix()
    except ValueError:  # another drive on Windows: keep it absolute
        return Path(value).as_posix()


def _portable_entry(entry: Mapping[str, Any], base: Path, path_keys: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if _is_path_value(value):
            path_keys.add(key)
            out[key] = _relative(value, base) if isinstance(value, str) else [_relative(v, base) for v in value]
        elif isinstance(value, os.PathLike):
            raise TypeError(f"datalist entry key {key!r} must hold an absolute path string, got {value!r}")
        else:
            out[key] = value
    return out


def _collisions(entries: Sequence[Mapping[str, Any]], base: Path, path_keys: set[str]) -> list[str]:
    """Non-path string values that ``monai.data.load_decathlon_datalist`` would silently turn into paths."""
    found = []
    for entry in entries:
        for key, value in entry.items():
            if key not in path_keys and isinstance(value, str) and value and (base / value).exists():
                found.append(f"{key}={value!r}")
    return sorted(set(found))


def _read_json(path: Path) -> Any:
    """The parsed content of the datalist JSON file ``path`` (any JSON value; callers check its type).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file is not valid JSON.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "d.json").write_text('{"training": []}')
        >>> _read_json(folder / "d.json")
        {'training': []}
        >>> _read_json(folder / "none.json")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: datalist file ... does not exist
    """
    if not path.is_file():
        raise FileNotFoundError(f"datalist file {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"datalist file {path} is not valid JSON: {err}") from None


def write_datalist(
    path: str | os.PathLike,
    training: Sequence[Mapping[str, Any]],
    *,
    validation: Sequence[Mapping[str, Any]] | None = None,
    test: Sequence[Mapping[str, Any]] | None = None,
    base_dir: str | os.PathLike | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a datalist JSON that ``monai.data.load_decathlon_datalist`` and :func:`load_datalist` read.

    The file holds the ``metadata`` items, ``"training"`` (and ``"validation"``/``"test"`` when given),
    ``numTraining``/``numTest`` and ``"path_keys"``: the entry keys whose values are file paths. Every absolute path
    (a string or a list of strings) is written relative to ``base_dir`` (default: the JSON's folder) with ``/``
    separators, so the dataset and its JSON can move together. MONAI's loader resolves them against the JSON's
    folder by default.

    ``load_decathlon_datalist`` also turns any other string value into a path when such a path exists next to the
    JSON (for example ``"case_id": "case_00000"`` when the JSON sits in the KiTS data folder); a warning names those
    values. :func:`load_datalist` resolves only the ``path_keys`` and is not affected.

    Args:
        path: the JSON file to write (its folder is created).
        training: the labelled entries (dicts of absolute paths and plain values, e.g. from :func:`qubiq_datalist`).
        validation: optional second labelled list.
        test: optional unlabelled list.
        base_dir: folder the paths are made relative to; default the JSON's folder.
        metadata: extra top-level items (``name``, ``description``, ``licence``, ``labels``, ...).

    Returns:
        The path of the written file.

    Raises:
        TypeError: an entry holds a ``pathlib.Path`` (convert paths to absolute strings).
        ValueError: a metadata key clashes with a datalist section or a key the writer sets.
    """
    path = Path(path)
    base = Path(base_dir) if base_dir is not None else path.parent
    base = base.resolve()
    reserved = {*DATALIST_SECTIONS, "numTraining", "numTest", "path_keys"}
    clash = sorted(reserved & set(metadata or {}))
    if clash:
        raise ValueError(f"metadata must not set the keys {clash}, they are written by write_datalist")
    sections = {"training": training, "validation": validation, "test": test}
    path_keys: set[str] = set()
    content: dict[str, Any] = dict(metadata or {})
    written: dict[str, list[dict[str, Any]]] = {}
    for name, entries in sections.items():
        if entries is not None:
            written[name] = [_portable_entry(e, base, path_keys) for e in entries]
    content["numTraining"] = len(training)
    content["numTest"] = len(test or [])
    content["path_keys"] = sorted(path_keys)
    content.update(written)
    clashing = _collisions([e for entries in written.values() for e in entries], base, path_keys)
    if clashing:
        warnings.warn(
            f"{path}: monai.data.load_decathlon_datalist would read these values as paths because they exist in "
            f"{base}: {', '.join(clashing[:5])}{' ...' if len(clashing) > 5 else ''}; load the file with "
            "monai_jdt.data.load_datalist or write the JSON outside the dataset folder",
            stacklevel=2,
        )
    return atomic_write_text(path, json.dumps(content, indent=2) + "\n")


def load_datalist(
    path: str | os.PathLike, data_list_key: str = "training", base_dir: str | os.PathLike | None = None
) -> list[dict[str, Any]]:
    """Load one section of a datalist JSON written by :func:`write_datalist`, with absolute paths.

    Only the keys listed in the file's ``"path_keys"`` are resolved against ``base_dir`` (default: the JSON's
    folder), so plain values such as ``case_id`` stay as written. For a JSON without ``"path_keys"`` this falls back
    to :func:`monai.data.load_decathlon_datalist`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a JSON object or has no list under ``data_list_key``.

    Example:
        >>> import json, tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = write_datalist(folder / "d.json", [{"image": str(folder / "img.nii.gz"), "case_id": "c1", "fold": 0}])
        >>> json.loads((folder / "d.json").read_text())["training"][0]["image"]
        'img.nii.gz'
        >>> load_datalist(folder / "d.json")[0]["image"] == str(folder / "img.nii.gz")
        True
    """
    path = Path(path)
    content = _read_json(path)
    if not isinstance(content, dict) or not isinstance(content.get(data_list_key), list):
        lists = content.items() if isinstance(content, dict) else []
        found = sorted(k for k, v in lists if isinstance(v, list) and k != "path_keys")
        raise ValueError(f"data_list_key must name a list in {path} (one of {found}), got {data_list_key!r}")
    if "path_keys" not in content:
        from monai.data import load_decathlon_datalist

        return load_decathlon_datalist(path, True, data_list_key, base_dir)
    base = Path(base_dir) if base_dir is not None else path.parent
    keys = set(content["path_keys"])
    out = []
    for entry in content[data_list_key]:
        item = dict(entry)
        for key in keys & set(item):
            value = item[key]
            if isinstance(value, str):
                item[key] = os.path.normpath(base / value)
            else:
                item[key] = [os.path.normpath(base / v) for v in value]
        out.append(item)
    return out
