"""``python -m monai_jdt synth {qubiq,lits,kits} --out DIR``: write a synthetic data set in the real layout."""

from __future__ import annotations

import argparse

from monai_jdt.cli._common import check_applicable, run_with_one_line_warnings

__all__ = ["DESCRIPTION", "HELP", "NAME", "add_arguments", "run"]

NAME = "synth"
HELP = "write a small synthetic QUBIQ, LiTS or KiTS copy in the real folder layout"
DESCRIPTION = """\
Write a synthetic stand-in of a data set, in exactly the folder layout and file names of the real download, so
that `python -m monai_jdt datalist` and the bundles can run on it. Deterministic by --seed, small by default
(a CPU demo trains on it in minutes), scalable with --cases and --size.

  qubiq  <out>/training_data_v2/<task>/Training/caseNN/{image,taskNN_segRR}.nii.gz  (2021: training_data_v3_QC)
         MR-like slices (CT for kidney; 3D CT for pancreas), several raters that disagree near the boundaries.
  lits   <out>/Training Batch {1,2}/{volume,segmentation}-N.nii and <out>/test-volume-N.nii; CT in HU.
  kits   <out>/case_XXXXX/imaging.nii.gz + segmentation.nii.gz (kits19, kits23) or aggregated_*_seg.nii.gz
         (kits21), with per-annotator instance files in segmentations/ (kits21) or instances/ (kits23).

examples:
  python -m monai_jdt synth qubiq --out data/qubiq --task prostate --cases 12
  python -m monai_jdt synth lits --out data/lits --cases 6 --size 64 64 32
  python -m monai_jdt synth kits --out data/kits23 --edition kits23 --seed 1
"""

_ONLY = {
    "task": ("qubiq",),
    "release": ("qubiq",),
    "validation_cases": ("qubiq",),
    "edition": ("kits",),
    "annotations": ("kits",),
    "test_cases": ("lits", "kits"),
    "no_batch_folders": ("lits",),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=("qubiq", "lits", "kits"), help="which data set layout to write")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created; files are overwritten)")
    parser.add_argument(
        "--cases",
        type=int,
        default=None,
        metavar="N",
        help="training cases (per task for qubiq); default qubiq 12, lits 6, kits 6",
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="voxels: one value N (qubiq 2D: N x N; 3D: N x N x N/2) or one per axis "
        "(x y [z]); default 64 (3D: 64 64 32)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument(
        "--task",
        nargs="+",
        default=None,
        metavar="TASK",
        help="qubiq only: brain-growth, brain-tumor, kidney, prostate, pancreas, pancreatic-lesion "
        "or all (default: the four 2D tasks)",
    )
    parser.add_argument(
        "--release",
        choices=("2020", "2021"),
        default=None,
        help="qubiq only: folder names of this release (default 2021 if a pancreas task is asked)",
    )
    parser.add_argument(
        "--validation-cases",
        type=int,
        default=None,
        metavar="N",
        help="qubiq only: cases per task in the validation folder (default 0)",
    )
    parser.add_argument(
        "--edition", default=None, metavar="EDITION", help="kits only: kits19, kits21 or kits23 (default kits23)"
    )
    parser.add_argument(
        "--annotations",
        type=int,
        default=None,
        metavar="N",
        help="kits only: annotations per kidney/tumour/cyst instance (default 3)",
    )
    parser.add_argument(
        "--test-cases",
        type=int,
        default=None,
        metavar="N",
        help="lits/kits only: unlabelled test cases (default lits 1, kits 0)",
    )
    parser.add_argument(
        "--no-batch-folders",
        action="store_true",
        help="lits only: write all cases into --out instead of the two 'Training Batch' folders",
    )
    compress = parser.add_mutually_exclusive_group()
    compress.add_argument(
        "--compress",
        dest="compress",
        action="store_true",
        default=None,
        help="write .nii.gz (default for qubiq and kits)",
    )
    compress.add_argument(
        "--no-compress", dest="compress", action="store_false", help="write .nii (default for lits, as distributed)"
    )
    parser.add_argument("--no-progress", action="store_true", help="never show the progress bar")


def _size(values: list[int] | None) -> int | tuple[int, ...] | None:
    if values is None:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def run(args: argparse.Namespace) -> int:
    return run_with_one_line_warnings(_run, args)


def _run(args: argparse.Namespace) -> int:
    from monai_jdt.data.synthetic import write_synthetic_kits, write_synthetic_lits, write_synthetic_qubiq

    check_applicable(args, _ONLY)
    common = {"size": _size(args.size), "seed": args.seed, "progress_bar": False if args.no_progress else None}
    if args.cases is not None:
        common["cases"] = args.cases
    if args.compress is not None:
        common["compress"] = args.compress
    if args.dataset == "qubiq":
        tasks = args.task or None
        extra = {"tasks": "all" if tasks == ["all"] else tasks} if tasks else {}
        if args.validation_cases is not None:
            extra["validation_cases"] = args.validation_cases
        root = write_synthetic_qubiq(args.out, release=args.release, **extra, **common)
    elif args.dataset == "lits":
        extra = {"test_cases": args.test_cases} if args.test_cases is not None else {}
        root = write_synthetic_lits(args.out, batch_folders=not args.no_batch_folders, **extra, **common)
    else:
        extra = {k: v for k, v in (("test_cases", args.test_cases), ("annotations", args.annotations)) if v is not None}
        root = write_synthetic_kits(args.out, edition=args.edition or "kits23", **extra, **common)
    print(f"wrote synthetic {args.dataset} data to {root}")
    return 0
