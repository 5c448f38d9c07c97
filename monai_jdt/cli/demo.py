"""``python -m monai_jdt demo``: the main job (synthetic QUBIQ set -> train -> evaluate -> Dice/ECE table)."""

from __future__ import annotations

import argparse
import time

NAME = "demo"
HELP = "train the QUBIQ bundle briefly on a synthetic QUBIQ set (CPU, a few minutes) and print Dice and ECE"
DESCRIPTION = """\
Write a small synthetic QUBIQ kidney set (3 disagreeing raters per image), train the QUBIQ bundle
(bundles/qubiq_multirater_segmentation) on it for each label mode (default: the majority vote, i.e. hard
labels, and the mean of the raters, i.e. soft labels), evaluate the best checkpoint on the validation fold and
print the Dice / calibration table. Every file (data, checkpoints, CSV, reliability diagrams) goes under --out.

The bundles ship with the source repository: run this from a clone set up with `bash scripts/setup.sh`.
On real data, run the bundle itself (see bundles/qubiq_multirater_segmentation/docs/README.md):
  python -m monai.bundle run --config_file configs/train.json --dataset_dir /data/qubiq --task kidney
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_output", help="output folder (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=200, help="training epochs per label mode (default: %(default)s)")
    parser.add_argument(
        "--label-modes",
        default="majority,mean",
        help="comma-separated QUBIQ label modes: majority, mean, weighted, random, staple (default: %(default)s)",
    )
    parser.add_argument("--loss", default="dml_ce", help="dml_ce, jml_ce, ctl_ce, ce or sdl_ce (default: %(default)s)")
    parser.add_argument(
        "--cases", type=int, default=24, help="synthetic cases, a quarter validate (default: %(default)s)"
    )
    parser.add_argument("--size", type=int, default=64, help="image size in pixels (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the training (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="show the bundle's full log")


def run(args: argparse.Namespace) -> int:
    from monai_jdt.bundle.demo import format_table, run_demo

    start = time.perf_counter()
    modes = [m.strip() for m in args.label_modes.split(",") if m.strip()]
    results = run_demo(
        args.out,
        epochs=args.epochs,
        label_modes=modes,
        loss_name=args.loss,
        cases=args.cases,
        size=args.size,
        seed=args.seed,
        verbose=args.verbose,
    )
    print()
    print(f"Validation fold ({next(iter(results.values()))['n_cases']} cases), loss {args.loss}:")
    print(format_table(results))
    print()
    for mode, summary in results.items():
        print(f"{mode}: reliability diagram {summary['reliability_png']}, per-case metrics {summary['output_dir']}")
    print(f"total time {time.perf_counter() - start:.0f} s")
    return 0
