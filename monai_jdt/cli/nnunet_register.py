"""``python -m monai_jdt nnunet-register [--unregister | --print-ext-path]``: make our trainers visible to nnU-Net."""

from __future__ import annotations

import argparse

__all__ = ["DESCRIPTION", "HELP", "NAME", "add_arguments", "run"]

NAME = "nnunet-register"
HELP = "make monai_jdt's trainers findable by `nnUNetv2_train -tr` (or undo it, or print the nnUNet_extTrainer path)"
DESCRIPTION = """\
nnU-Net finds trainers by class name inside its own package, then in the folders of the nnUNet_extTrainer
environment variable. Two ways:

  1. no files written (needs nnU-Net's full install incl. timm, e.g. pip install "monai_jdt[nnunet]"):
       export nnUNet_extTrainer=$(python -m monai_jdt nnunet-register --print-ext-path)
  2. works with every install, incl. scripts/install_nnunet_cpu.sh (no timm):
       python -m monai_jdt nnunet-register          # writes nnunetv2/training/nnUNetTrainer/nnUNetTrainer_monai_jdt.py
       python -m monai_jdt nnunet-register --unregister

then: nnUNetv2_train DATASET 3d_fullres FOLD -tr nnUNetTrainerDMLCE
(also nnUNetTrainerJMLCE, nnUNetTrainerDMLCE_BLS, nnUNetTrainerDMLCE_ClassAgnostic)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--unregister", action="store_true", help="remove the registration module")
    mode.add_argument("--print-ext-path", action="store_true",
                      help="print the folder to use as nnUNet_extTrainer and exit (writes nothing)")
    mode.add_argument("--status", action="store_true", help="say whether the registration module is installed")
    parser.add_argument("--trainer-dir", default=None, metavar="DIR",
                        help="nnU-Net's training/nnUNetTrainer folder (default: that of the installed nnunetv2)")


def run(args: argparse.Namespace) -> int:
    from monai_jdt.nnunet import register

    if args.print_ext_path:
        print(register.external_trainer_dir())
        return 0
    try:
        if args.status:
            state = "registered" if register.is_registered(args.trainer_dir) else "not registered"
            print(f"monai_jdt trainers: {state}")
            return 0
        if args.unregister:
            removed = register.unregister_trainers(args.trainer_dir)
            print("removed the monai_jdt trainer registration" if removed else "nothing to remove: not registered")
            return 0
        path = register.register_trainers(args.trainer_dir)
    except (ImportError, FileExistsError) as err:
        raise ValueError(str(err)) from None
    print(f"registered {', '.join(register.TRAINER_NAMES)} in {path}")
    return 0
