from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from monai.data import load_decathlon_datalist

from monai_jdt.data import load_datalist, write_datalist


def _entries(root: Path) -> list[dict]:
    for name in ("a/img0.nii.gz", "a/m0.nii.gz", "a/m1.nii.gz", "b/img1.nii.gz"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return [
        {
            "image": str(root / "a/img0.nii.gz"),
            "raters": [str(root / "a/m0.nii.gz"), str(root / "a/m1.nii.gz")],
            "case_id": "c0",
            "n_raters": 2,
            "fold": 0,
        },
        {
            "image": str(root / "b/img1.nii.gz"),
            "raters": [str(root / "a/m0.nii.gz")],
            "case_id": "c1",
            "n_raters": 1,
            "fold": 1,
        },
    ]


def test_json_is_relative_and_monai_loads_it(tmp_path: Path) -> None:
    entries = _entries(tmp_path / "data")
    path = write_datalist(
        tmp_path / "lists" / "d.json",
        entries,
        test=[{"image": entries[1]["image"]}],
        metadata={"name": "x", "licence": "y"},
    )
    content = json.loads(path.read_text())
    assert content["training"][0]["image"] == "../data/a/img0.nii.gz"
    assert content["training"][0]["raters"] == ["../data/a/m0.nii.gz", "../data/a/m1.nii.gz"]
    assert content["path_keys"] == ["image", "raters"]
    assert (content["numTraining"], content["numTest"], content["name"]) == (2, 1, "x")
    for loaded in (load_decathlon_datalist(path), load_datalist(path)):
        assert [d["image"] for d in loaded] == [os.path.normpath(e["image"]) for e in entries]
        assert loaded[0]["raters"] == [os.path.normpath(r) for r in entries[0]["raters"]]
        assert [(d["case_id"], d["n_raters"], d["fold"]) for d in loaded] == [("c0", 2, 0), ("c1", 1, 1)]
    assert load_datalist(path, "test")[0]["image"] == os.path.normpath(entries[1]["image"])


def test_json_is_portable(tmp_path: Path) -> None:
    entries = _entries(tmp_path / "old" / "data")
    write_datalist(tmp_path / "old" / "d.json", entries)
    shutil.move(tmp_path / "old", tmp_path / "new")
    loaded = load_datalist(tmp_path / "new" / "d.json")
    assert loaded[0]["image"] == os.path.normpath(tmp_path / "new" / "data" / "a" / "img0.nii.gz")
    assert Path(loaded[0]["image"]).is_file()


def test_values_that_name_existing_paths_warn_and_stay_plain_in_our_loader(tmp_path: Path) -> None:
    (tmp_path / "case_00000").mkdir()
    (tmp_path / "case_00000" / "imaging.nii.gz").write_bytes(b"")
    entry = {"image": str(tmp_path / "case_00000" / "imaging.nii.gz"), "case_id": "case_00000"}
    with pytest.warns(UserWarning, match=r"would read these values as paths .*case_id='case_00000'"):
        path = write_datalist(tmp_path / "d.json", [entry])
    assert load_datalist(path)[0]["case_id"] == "case_00000"
    # the behaviour the warning is about: MONAI's loader rewrites the value into a path
    assert load_decathlon_datalist(path)[0]["case_id"] == os.path.normpath(tmp_path / "case_00000")


def test_loader_falls_back_to_monai_without_path_keys(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"training": [{"image": "x.nii.gz", "label": "y.nii.gz"}]}))
    assert load_datalist(path) == [
        {"image": os.path.normpath(tmp_path / "x.nii.gz"), "label": os.path.normpath(tmp_path / "y.nii.gz")}
    ]


def test_base_dir(tmp_path: Path) -> None:
    entries = _entries(tmp_path / "data")
    path = write_datalist(tmp_path / "d.json", entries, base_dir=tmp_path / "data")
    assert json.loads(path.read_text())["training"][0]["image"] == "a/img0.nii.gz"
    assert load_datalist(path, base_dir=tmp_path / "data")[0]["image"] == os.path.normpath(entries[0]["image"])


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"datalist file .*missing.json does not exist"):
        load_datalist(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_datalist(bad)
    entries = _entries(tmp_path / "data")
    path = write_datalist(tmp_path / "d.json", entries)
    with pytest.raises(ValueError, match=r"data_list_key must name a list in .* \(one of \['training'\]\), got 'test'"):
        load_datalist(path, "test")
    with pytest.raises(ValueError, match=r"metadata must not set the keys \['numTraining', 'training'\]"):
        write_datalist(tmp_path / "e.json", entries, metadata={"training": [], "numTraining": 3})
    with pytest.raises(TypeError, match="datalist entry key 'image' must hold an absolute path string"):
        write_datalist(tmp_path / "e.json", [{"image": tmp_path / "a.nii.gz"}])
