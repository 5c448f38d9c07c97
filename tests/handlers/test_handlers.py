from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine
from monai.engines import SupervisedEvaluator
from monai.handlers import from_engine
from monai.transforms import Activationsd

from monai_jdt.handlers import CalibrationHandler, FineGrainedOverlapHandler, ThresholdedSoftDiceHandler
from monai_jdt.metrics import calibration_errors, fine_grained_overlap, thresholded_soft_dice


def _batches(n_batches=3, b=2, c=3, shape=(6, 5, 4)):
    logits = [torch.randn(b, c, *shape) * 2 for _ in range(n_batches)]
    labels = [torch.randint(0, c, (b, 1, *shape)) for _ in range(n_batches)]
    return logits, labels


def _engine(handlers: dict) -> Engine:
    engine = Engine(lambda e, batch: batch)
    for name, handler in handlers.items():
        handler.attach(engine, name)
    return engine


def test_handlers_in_a_plain_ignite_engine() -> None:
    logits, labels = _batches()
    probs = [x.softmax(1) for x in logits]
    handlers = {
        "dice_class": FineGrainedOverlapHandler(figure="class"),
        "iou_worst": FineGrainedOverlapHandler(kind="iou", figure="class_worst", q=50),
        "dice_c2": FineGrainedOverlapHandler(figure="dataset", class_id=2),
        "ece": CalibrationHandler(),
        "bece": CalibrationHandler(figure="bece", boundary_kernel_size=3, level="image"),
        "qubiq": ThresholdedSoftDiceHandler(include_background=False),
    }
    state = _engine(handlers).run(list(zip(probs, labels)))
    all_p, all_y = torch.cat(probs), torch.cat(labels)
    fg = fine_grained_overlap(all_p, all_y)
    assert state.metrics["dice_class"] == pytest.approx(fg["class"])
    assert state.metrics["iou_worst"] == pytest.approx(
        fine_grained_overlap(all_p, all_y, kind="iou", q=50)["class_worst"]
    )
    assert state.metrics["dice_c2"] == pytest.approx(fg["per_class"][2]["dataset"])
    assert state.metrics["ece"] == pytest.approx(calibration_errors(all_p, all_y)["ece"])
    bece = calibration_errors(all_p, all_y, boundary_kernel_size=3, level="image")["bece"]
    assert state.metrics["bece"] == pytest.approx(bece)
    soft = thresholded_soft_dice(all_p, all_y, include_background=False)
    assert state.metrics["qubiq"] == pytest.approx(float(soft.mean()), rel=1e-6)
    assert state.metric_details["qubiq"].shape == (6, 2)  # per case and sub-task, as MONAI's handlers
    assert handlers["ece"].last_result["sce"] == pytest.approx(calibration_errors(all_p, all_y)["sce"])


def test_handlers_in_a_monai_supervised_evaluator() -> None:
    logits, labels = _batches(n_batches=2)
    loader = [{"image": x, "label": y} for x, y in zip(logits, labels)]
    transform = from_engine(["pred", "label"])
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=torch.nn.Identity(),
        postprocessing=Activationsd(keys="pred", softmax=True),
        key_val_metric={"val_dice": FineGrainedOverlapHandler(figure="image", output_transform=transform)},
        additional_metrics={
            "val_ece": CalibrationHandler(figure="ece", output_transform=transform),
            "val_nll": CalibrationHandler(figure="nll", level="image", output_transform=transform),
        },
    )
    evaluator.run()
    probs, refs = torch.cat(logits).softmax(1), torch.cat(labels)
    metrics = evaluator.state.metrics
    assert metrics["val_dice"] == pytest.approx(fine_grained_overlap(probs, refs)["image"], rel=1e-6)
    assert metrics["val_ece"] == pytest.approx(calibration_errors(probs, refs)["ece"], rel=1e-5)
    assert metrics["val_nll"] == pytest.approx(calibration_errors(probs, refs, level="image")["nll"], rel=1e-5)
    assert evaluator.state.best_metric == metrics["val_dice"]


def test_figure_with_nothing_to_average_raises_or_reports_empty_value() -> None:
    probs = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]])
    batch = [(probs, torch.zeros(1, 1, 1, 2, dtype=torch.long))]
    with pytest.raises(ValueError, match="nothing to average"):
        _engine({"d": FineGrainedOverlapHandler(include_background=False)}).run(batch)
    state = _engine({"d": FineGrainedOverlapHandler(include_background=False, empty_value=0.0)}).run(batch)
    assert state.metrics["d"] == 0.0


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (lambda: FineGrainedOverlapHandler(figure="mean"), ValueError, "figure must be one of"),
        (lambda: FineGrainedOverlapHandler(figure="image", class_id=1), ValueError, "figure must be one of"),
        (lambda: FineGrainedOverlapHandler(class_id="1"), TypeError, "class_id must be an int"),
        (lambda: CalibrationHandler(figure="bece"), ValueError, "needs a boundary band"),
        (lambda: CalibrationHandler(figure="ace"), ValueError, "figure must be one of"),
        (lambda: CalibrationHandler(empty_value="x"), TypeError, "empty_value must be a real number"),
        (lambda: ThresholdedSoftDiceHandler(thresholds=(1.5,)), ValueError, "thresholds"),
    ],
)
def test_option_errors(factory, error, match) -> None:
    with pytest.raises(error, match=match):
        factory()


def test_unknown_class_id_is_reported() -> None:
    batch = [(torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]]), torch.tensor([[[[0, 1]]]]))]
    with pytest.raises(ValueError, match="class_id must be one of the evaluated classes"):
        _engine({"d": FineGrainedOverlapHandler(figure="class", class_id=5)}).run(batch)
