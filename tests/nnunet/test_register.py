"""Trainer registration: the shim module, its removal, and nnU-Net's own lookup finding our trainers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monai_jdt.cli import main
from monai_jdt.nnunet import nnunet_available
from monai_jdt.nnunet.register import (
    SHIM_NAME,
    TRAINER_NAMES,
    external_trainer_dir,
    is_registered,
    register_trainers,
    shim_source,
    unregister_trainers,
)

needs_nnunet = pytest.mark.skipif(
    not nnunet_available(), reason="nnU-Net v2 >= 2.8 is not installed (bash scripts/install_nnunet_cpu.sh)"
)


def test_register_and_unregister_in_a_folder(tmp_path: Path):
    assert not is_registered(tmp_path)
    path = register_trainers(tmp_path)
    assert path == tmp_path / SHIM_NAME and is_registered(tmp_path)
    assert register_trainers(tmp_path) == path  # idempotent
    assert [p.name for p in tmp_path.iterdir()] == [SHIM_NAME]  # no temporary file left
    assert unregister_trainers(tmp_path) is True
    assert not path.exists() and unregister_trainers(tmp_path) is False


def test_foreign_file_is_left_alone(tmp_path: Path):
    (tmp_path / SHIM_NAME).write_text("class Mine: pass\n")
    with pytest.raises(FileExistsError, match="not written by monai_jdt"):
        register_trainers(tmp_path)
    with pytest.raises(FileExistsError, match="not removing"):
        unregister_trainers(tmp_path)
    assert (tmp_path / SHIM_NAME).read_text() == "class Mine: pass\n"
    with pytest.raises(FileNotFoundError, match="trainer_dir"):
        register_trainers(tmp_path / "absent")


def test_shim_sorts_after_nnunets_default_trainer_and_before_subpackages():
    # pkgutil lists a folder's modules sorted by file name, before its sub-packages (primus/, variants/)
    assert sorted(["nnUNetTrainer.py", SHIM_NAME]) == ["nnUNetTrainer.py", SHIM_NAME]


def test_external_folder_module_is_the_shim():
    module = external_trainer_dir() / "monai_jdt_trainers.py"
    assert module.read_text() == shim_source()
    compile(shim_source(), SHIM_NAME, "exec")


def test_shim_survives_a_missing_monai_jdt(tmp_path: Path):
    """If monai_jdt is uninstalled, the shim must not break nnU-Net's lookup of its own trainers."""
    register_trainers(tmp_path)
    code = (
        "import sys; sys.modules['monai_jdt'] = None; sys.path.insert(0, sys.argv[1]); "
        "import nnUNetTrainer_monai_jdt"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "UserWarning: monai_jdt's nnU-Net trainers are unavailable" in done.stderr


@needs_nnunet
@pytest.mark.parametrize("name", TRAINER_NAMES)
def test_nnunet_lookup_finds_trainers_in_the_external_folder(name: str):
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    import monai_jdt.nnunet as pkg

    folder = str(external_trainer_dir())
    found = recursive_find_python_class(folder, name, None, base_folder=folder, cleanup_imports_from_base_folder=True)
    assert found is getattr(pkg, name)
    assert issubclass(found, nnUNetTrainer)


def test_cli_print_ext_path_and_folder_registration(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["nnunet-register", "--print-ext-path"]) == 0
    assert Path(capsys.readouterr().out.strip()) == external_trainer_dir()
    folder = ["--trainer-dir", str(tmp_path)]
    assert main(["nnunet-register", *folder]) == 0
    assert "registered nnUNetTrainerDMLCE" in capsys.readouterr().out and is_registered(tmp_path)
    assert main(["nnunet-register", "--status", *folder]) == 0
    assert capsys.readouterr().out.strip() == "monai_jdt trainers: registered"
    assert main(["nnunet-register", "--unregister", *folder]) == 0
    assert not is_registered(tmp_path)
    assert main(["nnunet-register", "--unregister", *folder]) == 0
    assert "nothing to remove" in capsys.readouterr().out
