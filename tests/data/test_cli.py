"""``python -m monai_jdt synth`` and ``python -m monai_jdt datalist``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monai_jdt.cli import main
from monai_jdt.data import load_datalist, select_fold


def _help(capsys: pytest.CaptureFixture[str], command: str) -> str:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_synth_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "synth")
    for option in (
        "--out",
        "--cases",
        "--size",
        "--seed",
        "--task",
        "--release",
        "--validation-cases",
        "--edition",
        "--annotations",
        "--test-cases",
        "--no-batch-folders",
        "--compress",
        "--no-compress",
        "--no-progress",
        "{qubiq,lits,kits}",
        "training_data_v2",
        "Training Batch",
    ):
        assert option in text


def test_datalist_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "datalist")
    for option in (
        "ROOT",
        "--out",
        "--folds",
        "--shuffle-seed",
        "--task",
        "--subtask",
        "--incomplete-raters",
        "--edition",
        "--label-file",
        "--no-instances",
        "--no-check-headers",
        "--no-check-affine",
        "load_decathlon_datalist",
    ):
        assert option in text


def test_entry_point_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monai_jdt", "synth", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "--edition" in result.stdout


def test_round_trip_lits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "lits"
    assert (
        main(["synth", "lits", "--out", str(data), "--cases", "3", "--size", "24", "24", "12", "--test-cases", "1"])
        == 0
    )
    assert main(["datalist", "lits", str(data), "--out", str(tmp_path / "lits.json"), "--folds", "3"]) == 0
    out = capsys.readouterr()
    assert "wrote 3 training, 1 test entries" in out.out
    assert "%|" not in out.err  # no progress bar when stderr is not a terminal
    training = load_datalist(tmp_path / "lits.json")
    assert [d["case_id"] for d in training] == ["volume-0", "volume-1", "volume-2"]
    assert all(Path(d["image"]).is_file() and Path(d["label"]).is_file() for d in training)
    train, val = select_fold(training, 2)
    assert [d["case_id"] for d in val] == ["volume-2"] and len(train) == 2
    content = json.loads((tmp_path / "lits.json").read_text())
    assert content["numTest"] == 1 and content["labels"] == {"0": "background", "1": "liver", "2": "tumor"}


def test_round_trip_qubiq_and_kits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "synth",
                "qubiq",
                "--out",
                str(tmp_path / "q"),
                "--task",
                "prostate",
                "--cases",
                "3",
                "--validation-cases",
                "1",
                "--size",
                "20",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "datalist",
                "qubiq",
                str(tmp_path / "q"),
                "--task",
                "prostate",
                "--subtask",
                "2",
                "--folds",
                "0",
                "--incomplete-raters",
                "drop",
                "--out",
                str(tmp_path / "q.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "warning: QUBIQ prostate task02: 1 case(s) have fewer than 6 raters: case03 (5); dropped" in out.err
    assert "wrote 2 training, 1 validation entries" in out.out
    training = load_datalist(tmp_path / "q.json")
    assert all("fold" not in d and Path(d["raters"][0]).name.startswith("task02") for d in training)
    assert load_datalist(tmp_path / "q.json", "validation")[0]["case_id"] == "case04"
    assert (
        main(
            [
                "synth",
                "kits",
                "--out",
                str(tmp_path / "k"),
                "--edition",
                "kits21",
                "--cases",
                "2",
                "--size",
                "20",
                "--annotations",
                "2",
                "--no-compress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "datalist",
                "kits",
                str(tmp_path / "k"),
                "--edition",
                "21",
                "--folds",
                "2",
                "--shuffle-seed",
                "1",
                "--out",
                str(tmp_path / "k.json"),
            ]
        )
        == 0
    )
    kits = load_datalist(tmp_path / "k.json")
    assert kits[0]["label"].endswith("aggregated_MAJ_seg.nii") and kits[0]["n_annotators"] == 2
    assert json.loads((tmp_path / "k.json").read_text())["fold_split"] == "shuffled (seed 1)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["datalist", "qubiq", "{tmp}", "--out", "{tmp}/x.json"], "error: --task is required for qubiq"),
        (["datalist", "lits", "{tmp}", "--task", "kidney", "--out", "x.json"], "error: --task applies to qubiq only"),
        (["datalist", "kits", "{tmp}", "--edition", "kits22", "--out", "x.json"], "error: edition must be one of"),
        (["datalist", "lits", "{tmp}/missing", "--out", "x.json"], "error: root must be an existing folder"),
        (["datalist", "lits", "{tmp}", "--out", "x.json"], "error: no LiTS volume-N.nii[.gz]"),
        (["synth", "lits", "--out", "{tmp}/l", "--edition", "kits19"], "error: --edition applies to kits only"),
        (["synth", "qubiq", "--out", "{tmp}/q", "--task", "liver"], "error: tasks must be one of"),
        (["synth", "kits", "--out", "{tmp}/k", "--size", "8"], "error: size must be at least"),
    ],
)
def test_bad_input_gives_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([a.format(tmp=tmp_path) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_progress_bar_when_enabled(capsys: pytest.CaptureFixture[str]) -> None:
    from monai_jdt.data._progress import progress

    assert list(progress(range(3), total=3, desc="writing", enabled=True)) == [0, 1, 2]
    assert "writing" in capsys.readouterr().err
    assert list(progress(range(3), total=3, desc="quiet", enabled=False)) == [0, 1, 2]
    assert "quiet" not in capsys.readouterr().err
