"""``python -m monai_jdt nnunet-export --out nnUNet_raw ...``: write a data set in nnU-Net v2's raw format."""

from __future__ import annotations

import argparse

__all__ = ["DESCRIPTION", "HELP", "NAME", "add_arguments", "run"]

NAME = "nnunet-export"
HELP = "write a synthetic (or datalist) data set in nnU-Net v2's raw format: DatasetXXX_Name/{dataset.json, ...}"
DESCRIPTION = """\
Write nnUNet_raw/DatasetXXX_Name/{dataset.json, imagesTr/CASE_0000.nii.gz, labelsTr/CASE.nii.gz}, ready for
nnUNetv2_plan_and_preprocess. By default the cases are synthetic CT volumes (LiTS-like: liver and tumour, or
KiTS-like: kidney, tumour and cyst); with --datalist they are the "training" entries of a datalist JSON written
by `python -m monai_jdt datalist` (keys "image", "label", "case_id"). Does not need nnU-Net installed.

examples:
  python -m monai_jdt nnunet-export --out $nnUNet_raw --dataset-id 501 --cases 6
  python -m monai_jdt nnunet-export --out $nnUNet_raw --like kits --regions --dataset-id 502
  python -m monai_jdt nnunet-export --out $nnUNet_raw --ignore-label --dataset-id 503 --size 48 48 24
  python -m monai_jdt nnunet-export --out $nnUNet_raw --datalist lits.json --like lits --dataset-id 29 --name LiTS
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="the nnUNet_raw folder (created)")
    parser.add_argument("--dataset-id", type=int, default=501, metavar="ID", help="three-digit id 1-999 (default 501)")
    parser.add_argument("--name", default=None, help="data set name (default SynthLiTS / SynthKiTS + suffixes)")
    parser.add_argument("--like", choices=("lits", "kits"), default="lits",
                        help="label set: lits = background/liver/tumor, kits = background/kidney/tumor/cyst")
    parser.add_argument("--cases", type=int, default=6, metavar="N", help="synthetic training cases (default 6)")
    parser.add_argument("--size", type=int, nargs="+", default=[48, 48, 24], metavar="N",
                        help="synthetic voxels: N or x y z (default 48 48 24)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the synthetic cases (default 0)")
    parser.add_argument("--regions", action="store_true",
                        help="declare nnU-Net regions (sigmoid training): lits liver={1,2}, tumor={2}; kits HECs")
    parser.add_argument("--ignore-label", action="store_true",
                        help="synthetic only: add an 'ignore' label on every other slice (sparse annotation)")
    parser.add_argument("--datalist", default=None, metavar="JSON",
                        help="export the 'training' entries of this datalist JSON instead of synthetic cases")
    parser.add_argument("--channel-name", default="CT",
                        help="name of the input channel; 'CT' selects nnU-Net's CT normalisation (default CT)")


def _export_datalist(args: argparse.Namespace):
    from monai_jdt.data import load_datalist
    from monai_jdt.nnunet.export import SYNTHETIC_LABELS, write_nnunet_dataset

    if args.ignore_label:
        raise ValueError("--ignore-label applies to synthetic cases only, got it with --datalist")
    spec = SYNTHETIC_LABELS[args.like]
    labels = spec["regions"] if args.regions else spec["labels"]
    entries = load_datalist(args.datalist)
    name = args.name or {"lits": "LiTS", "kits": "KiTS"}[args.like]
    order = spec["regions_class_order"] if args.regions else None
    return write_nnunet_dataset(entries, args.out, args.dataset_id, name, labels, (args.channel_name,), order)


def run(args: argparse.Namespace) -> int:
    from monai_jdt.nnunet.export import write_synthetic_nnunet_dataset

    if args.datalist is not None:
        folder = _export_datalist(args)
    else:
        if args.channel_name != "CT":
            raise ValueError(
                f"--channel-name applies to --datalist only (synthetic cases are CT), got {args.channel_name!r}"
            )
        size = args.size[0] if len(args.size) == 1 else tuple(args.size)
        folder = write_synthetic_nnunet_dataset(
            args.out, like=args.like, dataset_id=args.dataset_id, name=args.name, cases=args.cases, size=size,
            seed=args.seed, regions=args.regions, ignore_label=args.ignore_label,
        )
    cases = len(list((folder / "labelsTr").glob("*.nii.gz")))
    print(f"wrote {folder} ({cases} training cases)")
    print(f"next: nnUNetv2_plan_and_preprocess -d {args.dataset_id} -c 3d_fullres --verify_dataset_integrity")
    return 0
