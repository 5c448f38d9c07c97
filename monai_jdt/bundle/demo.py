"""The main job: train the QUBIQ bundle briefly on a synthetic QUBIQ set, evaluate it, report Dice and ECE.

:func:`run_demo` writes a small synthetic QUBIQ kidney set (:func:`monai_jdt.data.synthetic.write_synthetic_qubiq`),
runs ``configs/train.json`` and then ``configs/train.json + configs/evaluate.json`` of
``bundles/qubiq_multirater_segmentation`` in-process with MONAI's ``ConfigWorkflow`` (the same code path as
``python -m monai.bundle run``), once per label mode, with overrides that shrink the network and the patch to a
CPU budget, and returns the evaluation summaries. ``python -m monai_jdt demo`` prints them as a table.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from monai_jdt.bundle.paths import bundle_dir
from monai_jdt.utils.checks import check_option, check_positive_int

__all__ = ["DEMO_BUNDLE", "DEMO_COLUMNS", "demo_overrides", "format_table", "run_demo"]

#: the bundle the demo trains.
DEMO_BUNDLE = "qubiq_multirater_segmentation"

#: ``(summary key, column title)`` of the printed table.
DEMO_COLUMNS = (
    ("dice_image", "Dice (image)"),
    ("dice_image_worst", "Dice (worst 5%)"),
    ("qubiq_soft_dice", "QUBIQ soft Dice"),
    ("ece", "ECE"),
    ("bece", "BECE"),
    ("sce", "SCE"),
)


def demo_overrides(
    data_root: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    epochs: int,
    label_mode: str,
    loss_name: str,
    seed: int = 0,
) -> dict[str, Any]:
    """Overrides of the QUBIQ bundle for the CPU demo (a 4-level UNet of 16..128 channels on 64 x 64 patches).

    Example:
        >>> o = demo_overrides("data", "run", epochs=200, label_mode="mean", loss_name="dml_ce")
        >>> o["val_interval"], o["net_channels"], o["resume"]
        (50, [16, 32, 64, 128], False)
    """
    return {
        "bundle_root": str(run_dir),
        "dataset_dir": str(data_root),
        "task": "kidney",
        "num_folds": 4,
        "label_mode": label_mode,
        "loss_name": loss_name,
        "seed": seed,
        "epochs": epochs,
        "val_interval": max(1, epochs // 4),
        "warmup_epochs": max(1, epochs // 20),
        "batch_size": 6,
        "learning_rate": 0.003,
        "patch_size": [64, 64],
        "net_channels": [16, 32, 64, 128],
        "net_strides": [2, 2, 2],
        "net_res_units": 1,
        "num_workers": 0,
        "resume": False,
    }


_QUIET_LOGGING = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=WARNING
formatter=plain
args=(sys.stderr,)

[formatter_plain]
format=%(levelname)s %(name)s: %(message)s
"""


def _logging_file(run_dir: Path, verbose: bool) -> str:
    """The bundle's ``logging.conf`` (INFO) when verbose, else a WARNING-level one written to ``run_dir``."""
    if verbose:
        return str(bundle_dir(DEMO_BUNDLE) / "configs" / "logging.conf")
    path = run_dir / "logging_warnings_only.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_QUIET_LOGGING)
    return str(path)


def _workflow(config_files: Sequence[Path], overrides: dict[str, Any], verbose: bool) -> Any:
    from monai.bundle import ConfigWorkflow

    configs = bundle_dir(DEMO_BUNDLE) / "configs"
    _quiet(verbose)
    return ConfigWorkflow(
        config_file=[str(f) for f in config_files],
        meta_file=str(configs / "metadata.json"),
        logging_file=_logging_file(Path(overrides["bundle_root"]), verbose),
        workflow_type="train",
        **overrides,
    )


def _quiet(verbose: bool) -> None:
    """Without ``verbose``, raise MONAI's own stdout loggers to WARNING (``monai.apps.get_logger`` sets INFO
    on every call, so this runs after the handlers are built)."""
    if verbose:
        return
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("monai.", "ignite.")) or name == "monai":
            logging.getLogger(name).setLevel(logging.WARNING)


def _train(overrides: dict[str, Any], verbose: bool, echo: Callable[[str], None]) -> float:
    from ignite.engine import Events

    configs = bundle_dir(DEMO_BUNDLE) / "configs"
    workflow = _workflow([configs / "train.json"], overrides, verbose)
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    _quiet(verbose)
    start = time.perf_counter()

    every = max(1, int(overrides["epochs"]) // 10)

    @trainer.on(Events.EPOCH_COMPLETED)
    def _progress(engine: Any) -> None:
        if engine.state.epoch % every and engine.state.epoch != engine.state.max_epochs:
            return
        val = engine.state.metrics.get("train_dice")
        extra = f", train Dice {val:.3f}" if val is not None else ""
        echo(
            f"  epoch {engine.state.epoch}/{engine.state.max_epochs}: loss {engine.state.output[0]['loss']:.4f}"
            f"{extra} ({time.perf_counter() - start:.0f} s)"
        )

    workflow.run()
    workflow.finalize()
    return time.perf_counter() - start


def _evaluate(overrides: dict[str, Any], verbose: bool) -> dict[str, Any]:
    configs = bundle_dir(DEMO_BUNDLE) / "configs"
    workflow = _workflow([configs / "train.json", configs / "evaluate.json"], overrides, verbose)
    workflow.initialize()
    workflow.parser.get_parsed_content("validate#evaluator")
    _quiet(verbose)
    workflow.run()
    workflow.finalize()
    return json.loads((Path(overrides["bundle_root"]) / "eval" / "metrics_summary.json").read_text())


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """The summaries of :func:`run_demo` as a fixed-width text table, one row per label mode.

    Example:
        >>> print(format_table({"mean": {"dice_image": 0.9, "ece": 0.01}}))  # doctest: +NORMALIZE_WHITESPACE
        label mode  Dice (image)  Dice (worst 5%)  QUBIQ soft Dice  ECE     BECE  SCE
        mean        0.9000        -                -                0.0100  -     -
    """
    header = ["label mode", *[title for _, title in DEMO_COLUMNS]]
    rows = [[mode, *[_cell(summary.get(key)) for key, _ in DEMO_COLUMNS]] for mode, summary in results.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def run_demo(
    out: str | os.PathLike = "demo_output",
    *,
    epochs: int = 200,
    label_modes: Sequence[str] = ("majority", "mean"),
    loss_name: str = "dml_ce",
    cases: int = 24,
    size: int = 64,
    seed: int = 0,
    verbose: bool = False,
    threads: int | None = 1,
    echo: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Write the synthetic set under ``out/data``, train and evaluate once per label mode under ``out/<mode>``.

    Args:
        out: output folder (created).
        epochs: training epochs per label mode.
        label_modes: QUBIQ label modes to compare (``"majority"``: the hard-label baseline, ``"mean"``: the
            soft label of the papers).
        loss_name: the bundle's ``loss_name``.
        cases: synthetic cases (a quarter validate).
        size: image size in pixels.
        seed: seed of the data and of the training.
        verbose: show the bundle's log (otherwise one line per epoch).
        threads: torch intra-op threads during the run (restored afterwards); ``None`` keeps torch's setting.
            The default 1 is the fastest for the demo's small tensors: with 2 threads, a 2-core machine that
            runs anything else at the same time makes every operation wait for the busy core (measured: 10 to
            100 times slower per iteration under load).
        echo: where progress lines go.

    Returns:
        ``{label_mode: summary}`` with the keys of ``metrics_summary.json`` plus ``"train_seconds"``,
        ``"reliability_png"`` and ``"output_dir"``.

    Raises:
        FileNotFoundError: the bundles folder is not found (a non-editable install).
        ValueError: bad options.
    """
    from monai_jdt.bundle.label_modes import QUBIQ_LABEL_MODES
    from monai_jdt.bundle.losses import LOSS_NAMES
    from monai_jdt.data.synthetic import write_synthetic_qubiq

    epochs = check_positive_int("epochs", epochs)
    cases = check_positive_int("cases", cases, minimum=8)
    size = check_positive_int("size", size, minimum=32)
    modes = [check_option("label_modes", m, QUBIQ_LABEL_MODES) for m in label_modes]
    loss_name = check_option("loss_name", loss_name, LOSS_NAMES)
    bundle_dir(DEMO_BUNDLE)  # fail early, before writing data, when the bundles are not there
    out = Path(out).resolve()
    echo(f"writing a synthetic QUBIQ kidney set ({cases} cases of {size} x {size} pixels, 3 raters) to {out / 'data'}")
    data_root = write_synthetic_qubiq(
        out / "data", tasks="kidney", cases=cases, size=size, seed=seed, progress_bar=False
    )
    results: dict[str, dict[str, Any]] = {}
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_positive_int("threads", threads))
    try:
        for mode in modes:
            results[mode] = _run_mode(out, data_root, mode, loss_name, epochs, seed, verbose, echo)
    finally:
        torch.set_num_threads(previous_threads)
    return results


def _run_mode(
    out: Path,
    data_root: Path,
    mode: str,
    loss_name: str,
    epochs: int,
    seed: int,
    verbose: bool,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Train and evaluate one label mode under ``out/<mode>``; the evaluation summary plus timing and paths."""
    run_dir = out / mode
    overrides = demo_overrides(data_root, run_dir, epochs=epochs, label_mode=mode, loss_name=loss_name, seed=seed)
    echo(f"training the QUBIQ bundle with label_mode={mode}, loss_name={loss_name} for {epochs} epochs ...")
    seconds = _train(overrides, verbose, echo)
    echo(f"evaluating {run_dir / 'models' / 'model.pt'} on the validation fold ...")
    summary = _evaluate(overrides, verbose)
    summary.update(
        train_seconds=seconds,
        output_dir=str(run_dir / "eval"),
        reliability_png=str(run_dir / "eval" / "reliability.png"),
    )
    return summary
