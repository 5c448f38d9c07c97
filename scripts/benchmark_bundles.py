"""Training speed of the three bundles on CPU (or a GPU): seconds per iteration at the shipped and a small size.

"small" is the demo's setting for the QUBIQ bundle (``monai_jdt.bundle.demo.demo_overrides``: UNet 16..128,
64 x 64 patches, batch 6) and, for LiTS/KiTS, a CPU-sized 3D setting (UNet 16..128, 48^3 patches, 2 x 2 patches
per batch).

Runs ``configs/train.json`` of each bundle in-process (MONAI ``ConfigWorkflow``) on a small synthetic copy of its
data set, without validation, for ``--epochs`` epochs, and prints per configuration the median over epochs
(after the first, which includes the warm-up) of the seconds per training iteration and per epoch of the
synthetic set, plus an estimate of one epoch on the real data set (iterations of the real training fold times the
median iteration time; data loading is cached in the bundles, so it is mostly the forward/backward pass).

    python scripts/benchmark_bundles.py                      # all bundles, shipped and demo sizes
    python scripts/benchmark_bundles.py --bundles qubiq_multirater_segmentation --sizes small --threads 1
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from monai_jdt.bundle import bundle_dir
from monai_jdt.bundle.demo import demo_overrides
from monai_jdt.data.synthetic import write_synthetic_kits, write_synthetic_lits, write_synthetic_qubiq

QUBIQ, LITS, KITS = "qubiq_multirater_segmentation", "lits_ct_segmentation", "kits_ct_segmentation"

#: training cases of fold 0 of 5 of the real data sets.
REAL_TRAIN_CASES = {QUBIQ: ("QUBIQ 2020 kidney", 19), LITS: ("LiTS", 105), KITS: ("KiTS23", 391)}

_SMALL_3D = {
    "patch_size": [48, 48, 48],
    "net_channels": [16, 32, 64, 128],
    "net_strides": [2, 2, 2],
    "net_res_units": 1,
    "batch_size": 2,
    "num_samples": 2,
}


def _data(bundle: str, root: Path) -> Path:
    if bundle == QUBIQ:
        return write_synthetic_qubiq(root / "qubiq", tasks="kidney", cases=32, progress_bar=False)
    if bundle == LITS:
        return write_synthetic_lits(root / "lits", cases=4, progress_bar=False)
    return write_synthetic_kits(root / "kits", cases=4, progress_bar=False)


def _overrides(bundle: str, size: str, data: Path, out: Path, epochs: int) -> dict:
    common = {
        "dataset_dir": str(data),
        "bundle_root": str(out),
        "epochs": epochs,
        "val_interval": 10**6,
        "num_workers": 0,
        "num_folds": 2,
        "resume": False,
    }
    if size == "shipped":
        return common
    if bundle == QUBIQ:
        demo = demo_overrides(data, out, epochs=epochs, label_mode="mean", loss_name="dml_ce")
        return {**demo, **common}
    return {**common, **_SMALL_3D}


def measure(bundle: str, size: str, data: Path, out: Path, epochs: int) -> tuple[float, float, int, int]:
    """``(median seconds per iteration, median seconds per epoch, iterations per epoch, batch size)``."""
    configs = bundle_dir(bundle) / "configs"
    wf = ConfigWorkflow(
        config_file=str(configs / "train.json"),
        meta_file=str(configs / "metadata.json"),
        logging_file=False,
        workflow_type="train",
        **_overrides(bundle, size, data, out, epochs),
    )
    wf.initialize()
    trainer = wf.parser.get_parsed_content("train#trainer")
    epoch_times: list[float] = []
    starts: list[float] = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: starts.append(time.perf_counter()))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: epoch_times.append(time.perf_counter() - starts[-1]))
    wf.run()
    wf.finalize()
    per_epoch = statistics.median(epoch_times[1:] if len(epoch_times) > 1 else epoch_times)
    iterations = trainer.state.epoch_length
    return per_epoch / iterations, per_epoch, iterations, int(trainer.data_loader.batch_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", default=[QUBIQ, LITS, KITS])
    parser.add_argument("--sizes", nargs="+", default=["shipped", "small"], choices=["shipped", "small"])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per configuration (the first is not counted)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for bundle in args.bundles:
            data = _data(bundle, Path(tmp) / "data")
            for size in args.sizes:
                per_it, per_epoch, its, batch = measure(bundle, size, data, Path(tmp) / bundle / size, args.epochs)
                real_name, real_cases = REAL_TRAIN_CASES[bundle]
                real_its = math.ceil(real_cases / batch)
                rows.append(
                    (
                        bundle,
                        size,
                        str(batch),
                        f"{per_it:.3f}",
                        f"{per_epoch:.2f} ({its} it)",
                        f"{per_it * real_its:.1f} ({real_name}: {real_cases} cases, {real_its} it)",
                    )
                )
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = ("bundle", "size", "batch", "s / iteration", "s / epoch, synthetic", "s / epoch, real data (estimate)")
    print(f"device: {device}, torch {torch.__version__}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
