"""``python -m monai_jdt datalist {qubiq,lits,kits} ROOT --out datalist.json``: index a data set copy."""

from __future__ import annotations

import argparse
from typing import Any

from monai_jdt.cli._common import check_applicable, run_with_one_line_warnings

__all__ = ["DESCRIPTION", "HELP", "NAME", "add_arguments", "run"]

NAME = "datalist"
HELP = "write the datalist JSON of a QUBIQ, LiTS or KiTS copy (real or synthetic)"
DESCRIPTION = """\
Index a data set folder and write a decathlon-style datalist JSON: "training" entries with a "fold" key
(contiguous blocks of cases in numeric order by default, as in the DML paper), plus "validation" (QUBIQ
Validation folder, when present) or "test" (LiTS test-volume-N, KiTS cases without ground truth, when present).
Paths are written relative to the JSON's folder; load the file with monai_jdt.data.load_datalist or
monai.data.load_decathlon_datalist. Every missing or mismatched file (shape/affine against its image, read from
the NIfTI headers only) is reported in one error.

examples:
  python -m monai_jdt datalist qubiq /data/qubiq --task prostate --subtask 1 --out prostate.json
  python -m monai_jdt datalist lits "/data/LiTS" --out lits.json --folds 5
  python -m monai_jdt datalist kits /data/kits23/dataset --edition kits23 --out kits23.json --shuffle-seed 0
"""

_ONLY = {
    "task": ("qubiq",),
    "subtask": ("qubiq",),
    "incomplete_raters": ("qubiq",),
    "edition": ("kits",),
    "label_file": ("kits",),
    "no_instances": ("kits",),
}

_LICENCES = {
    "qubiq": "QUBIQ challenge data terms (see qubiq.grand-challenge.org; licence not verified by monai_jdt)",
    "lits": "LiTS challenge data terms (see the LiTS Codalab page; licence not verified by monai_jdt)",
    "kits": "CC BY-NC-SA 4.0 (KiTS data)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=("qubiq", "lits", "kits"), help="which data set layout to read")
    parser.add_argument(
        "root",
        metavar="ROOT",
        help="data set folder: QUBIQ download or release folder, LiTS folder (searched recursively), "
        "KiTS folder of the case_XXXXX folders (or the cloned repository)",
    )
    parser.add_argument("--out", required=True, metavar="JSON", help="datalist file to write")
    parser.add_argument(
        "--folds",
        type=int,
        default=5,
        metavar="K",
        help="cross-validation folds stored in each training entry's 'fold' (default 5; 0: none)",
    )
    parser.add_argument(
        "--shuffle-seed",
        type=int,
        default=None,
        metavar="S",
        help="permute the cases with this seed before cutting the folds (default: numeric order)",
    )
    parser.add_argument(
        "--task",
        default=None,
        metavar="TASK",
        help="qubiq only (required): brain-growth, brain-tumor, kidney, prostate, pancreas or pancreatic-lesion",
    )
    parser.add_argument(
        "--subtask",
        type=int,
        default=None,
        metavar="N",
        help="qubiq only: sub-task whose rater masks fill 'raters' (default 1)",
    )
    parser.add_argument(
        "--incomplete-raters",
        choices=("keep", "drop", "error"),
        default=None,
        help="qubiq only: cases with fewer raters than the others (default keep, with a warning)",
    )
    parser.add_argument(
        "--edition", default=None, metavar="EDITION", help="kits only: kits19, kits21 or kits23 (default kits23)"
    )
    parser.add_argument(
        "--label-file",
        default=None,
        metavar="STEM",
        help="kits only: ground-truth file stem instead of the edition's (e.g. aggregated_AND_seg)",
    )
    parser.add_argument(
        "--no-instances",
        action="store_true",
        help="kits only: do not collect the per-annotator instance files (kits21/23)",
    )
    parser.add_argument(
        "--no-check-headers",
        action="store_true",
        help="do not compare the masks' NIfTI headers (shape, affine) with their image's",
    )
    parser.add_argument(
        "--no-check-affine",
        action="store_true",
        help="compare shapes but not affines (for copies whose masks carry a different affine)",
    )


def _check_applicable(args: argparse.Namespace) -> None:
    check_applicable(args, _ONLY)
    if args.dataset == "qubiq" and args.task is None:
        raise ValueError(
            "--task is required for qubiq (brain-growth, brain-tumor, kidney, prostate, pancreas, pancreatic-lesion)"
        )


def _optional(read: Any, **kwargs: Any) -> list[dict[str, Any]] | None:
    """The entries of an optional section; ``None`` when the data set has none."""
    try:
        return read(**kwargs)
    except FileNotFoundError:
        return None


def _sections(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    from monai_jdt.data import (
        KITS_LABELS,
        LITS_LABELS,
        QUBIQ_TASKS,
        kits_datalist,
        kits_edition,
        lits_datalist,
        qubiq_datalist,
    )

    folds = args.folds if args.folds != 0 else None
    checks = {"check_headers": not args.no_check_headers, "check_affine": not args.no_check_affine}
    if args.dataset == "qubiq":
        options = {
            "task": args.task,
            "subtask": args.subtask or 1,
            "incomplete_raters": args.incomplete_raters or "keep",
            **checks,
        }
        training = qubiq_datalist(args.root, folds=folds, shuffle_seed=args.shuffle_seed, **options)
        validation = _optional(qubiq_datalist, root=args.root, split="validation", folds=None, **options)
        labels = {"0": "background", "1": f"{args.task} task{options['subtask']:02d}"}
        info = QUBIQ_TASKS[training[0]["task"]]
        meta = {
            "name": f"QUBIQ {args.task} task{options['subtask']:02d}",
            "labels": labels,
            "modality": {str(c): info.modality for c in range(info.channels)},
            "tensorImageSize": f"{info.spatial_dims}D",
        }
        return {"training": training, "validation": validation}, meta
    if args.dataset == "lits":
        training = lits_datalist(args.root, folds=folds, shuffle_seed=args.shuffle_seed, **checks)
        test = _optional(lits_datalist, root=args.root, split="test")
        meta = {
            "name": "LiTS",
            "modality": {"0": "CT"},
            "labels": {str(k): v for k, v in LITS_LABELS.items()},
            "tensorImageSize": "3D",
        }
        return {"training": training, "test": test}, meta
    edition = kits_edition(args.edition or "kits23")
    options = {"edition": edition, "label_file": args.label_file, "instances": not args.no_instances, **checks}
    training = kits_datalist(args.root, folds=folds, shuffle_seed=args.shuffle_seed, **options)
    test = _optional(kits_datalist, root=args.root, split="test", **options)
    labels = {str(k): v for k, v in KITS_LABELS.items() if edition != "kits19" or k < 3}
    meta = {"name": edition.upper(), "modality": {"0": "CT"}, "labels": labels, "tensorImageSize": "3D"}
    return {"training": training, "test": test}, meta


def run(args: argparse.Namespace) -> int:
    return run_with_one_line_warnings(_run, args)


def _run(args: argparse.Namespace) -> int:
    from monai_jdt.data import write_datalist

    _check_applicable(args)
    sections, meta = _sections(args)
    meta.update(
        licence=_LICENCES[args.dataset],
        dataset=args.dataset,
        description="written by python -m monai_jdt datalist",
        num_folds=args.folds if args.folds != 0 else 0,
        fold_split="contiguous" if args.shuffle_seed is None else f"shuffled (seed {args.shuffle_seed})",
    )
    path = write_datalist(
        args.out, sections["training"], validation=sections.get("validation"), test=sections.get("test"), metadata=meta
    )
    counts = ", ".join(f"{len(v)} {k}" for k, v in sections.items() if v is not None)
    print(f"wrote {counts} entries to {path}")
    return 0
