from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.metrics import ConfusionMatrixMetric, DiceMetric, MeanIoU

from monai_jdt.metrics import FineGrainedOverlapMetric, fine_grained_overlap
from monai_jdt.metrics.functional import fine_grained_from_counts, overlap_counts
from monai_jdt.utils import ShapeError


def _onehot(labels: torch.Tensor, c: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.long(), c).movedim(-1, 1).float()


def _numpy_reference(pred_lab: np.ndarray, ref_lab: np.ndarray, c: int, kind: str, q: float) -> dict:
    """Literal per-image, per-class loops over hard labels (N, *spatial), absent classes excluded."""

    def score(tp, fp, fn):
        return 2 * tp / (2 * tp + fp + fn) if kind == "dice" else tp / (tp + fp + fn)

    n = pred_lab.shape[0]
    s = np.zeros((n, c))
    present = np.zeros((n, c), dtype=bool)
    pooled = np.zeros((c, 3))
    for i in range(n):
        for k in range(c):
            p, r = pred_lab[i] == k, ref_lab[i] == k
            tp, fp, fn = np.sum(p & r), np.sum(p & ~r), np.sum(~p & r)
            pooled[k] += (tp, fp, fn)
            present[i, k] = r.any()
            if present[i, k]:
                s[i, k] = score(tp, fp, fn)
    dataset = np.mean([score(*pooled[k]) for k in range(c) if pooled[k].sum() > 0])
    img = [np.mean(s[i, present[i]]) for i in range(n) if present[i].any()]
    cls, worst = [], []
    for k in range(c):
        vals = np.sort(s[present[:, k], k])
        if len(vals):
            cls.append(vals.mean())
            worst.append(vals[: max(1, int(math.floor(q * len(vals) / 100)))].mean())
    img_sorted = np.sort(img)
    return {
        "dataset": dataset,
        "image": np.mean(img),
        "class": np.mean(cls),
        "class_worst": np.mean(worst),
        "image_worst": img_sorted[: max(1, int(math.floor(q * len(img) / 100)))].mean(),
    }


def test_hand_computed_two_images() -> None:
    # image 1: pred 0 1 0 | ref 0 1 1 ; image 2: pred 0 1 0 | ref 0 0 0 (class 1 absent, predicted once)
    pred = _onehot(torch.tensor([[[0, 1, 0]], [[0, 1, 0]]]), 2)
    ref = torch.tensor([[[[0, 1, 1]]], [[[0, 0, 0]]]])
    r = fine_grained_overlap(pred, ref, q=50)
    # dice: img1 c0 2/3, c1 2/3 ; img2 c0 0.8 ; pooled c0 tp 3 fp 1 fn 1 -> 0.75, c1 tp 1 fp 1 fn 1 -> 0.5
    assert r["dataset"] == pytest.approx((0.75 + 0.5) / 2)
    assert r["image"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert r["class"] == pytest.approx(((2 / 3 + 0.8) / 2 + 2 / 3) / 2)
    assert r["class_worst"] == pytest.approx((2 / 3 + 2 / 3) / 2)  # q=50 of 2 images -> 1 worst; class 1: 1 image
    assert r["image_worst"] == pytest.approx(2 / 3)
    assert r["n_images"] == 2
    assert r["per_class"][1] == {
        "dataset": pytest.approx(0.5),
        "class": pytest.approx(2 / 3),
        "class_worst": pytest.approx(2 / 3),
        "n_images": 1,
    }
    iou = fine_grained_overlap(pred, ref, kind="iou")
    assert iou["dataset"] == pytest.approx((3 / 5 + 1 / 3) / 2)
    assert iou["image"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_presence_either_scores_false_positive_classes() -> None:
    pred = _onehot(torch.tensor([[[0, 1, 0]], [[0, 1, 0]]]), 2)
    ref = torch.tensor([[[[0, 1, 1]]], [[[0, 0, 0]]]])
    r = fine_grained_overlap(pred, ref, presence="either")
    # image 2 now also has class 1 active (predicted, not in reference): score 0
    assert r["image"] == pytest.approx(((2 / 3 + 2 / 3) / 2 + (0.8 + 0.0) / 2) / 2)
    assert r["per_class"][1]["class"] == pytest.approx(1 / 3)
    assert r["per_class"][1]["n_images"] == 2


@pytest.mark.parametrize("kind", ["dice", "iou"])
@pytest.mark.parametrize("q", [5.0, 30.0, 100.0])
def test_matches_numpy_reference_on_random_data(kind: str, q: float) -> None:
    c, n = 4, 12
    logits = torch.randn(n, c, 6, 7, 5) * 2
    ref = torch.randint(0, c, (n, 1, 6, 7, 5))
    ref[:3][ref[:3] == 3] = 0  # class 3 absent from a few images
    ref[5] = 1  # one image with a single class
    probs = logits.softmax(1)
    r = fine_grained_overlap(probs, ref, kind=kind, q=q)
    expected = _numpy_reference(probs.argmax(1).numpy(), ref[:, 0].numpy(), c, kind, q)
    for key, value in expected.items():
        assert r[key] == pytest.approx(value, rel=1e-12), key


def test_image_level_equals_monai_dice_and_iou_when_all_classes_present() -> None:
    n, c = 5, 3
    ref = torch.randint(0, c, (n, 1, 8, 8))
    ref[:, 0, 0, :c] = torch.arange(c)  # every class present in every image
    probs = (torch.randn(n, c, 8, 8) * 2).softmax(1)
    hard = _onehot(probs.argmax(1), c)
    dm = DiceMetric(include_background=True, reduction="mean")
    dm(hard, _onehot(ref[:, 0], c))
    mi = MeanIoU(include_background=True, reduction="mean")
    mi(hard, _onehot(ref[:, 0], c))
    assert fine_grained_overlap(probs, ref)["image"] == pytest.approx(float(dm.aggregate()), rel=1e-6)
    assert fine_grained_overlap(probs, ref, kind="iou")["image"] == pytest.approx(float(mi.aggregate()), rel=1e-6)
    # class level = MONAI's per-class mean over images ("mean_batch") averaged over classes
    dm_b = DiceMetric(include_background=True, reduction="mean_batch")
    dm_b(hard, _onehot(ref[:, 0], c))
    r = fine_grained_overlap(probs, ref)
    assert [r["per_class"][k]["class"] for k in range(c)] == pytest.approx(dm_b.aggregate().tolist(), rel=1e-6)


def test_image_level_with_absent_classes_equals_monai_nan_excluding_mean() -> None:
    # MONAI's DiceMetric(ignore_empty=True) gives NaN for empty references and averages the non-NaN values per
    # image ("mean_channel"); our image level is the mean of those per-image means.
    ref = torch.tensor([[[[0, 0, 1, 1]]], [[[0, 0, 0, 0]]], [[[2, 2, 1, 0]]]])
    probs = _onehot(torch.tensor([[[0, 1, 1, 2]], [[0, 0, 2, 0]], [[2, 1, 1, 0]]]), 3)
    dm = DiceMetric(include_background=True, reduction="mean_channel")
    dm(probs, _onehot(ref[:, 0], 3))
    assert fine_grained_overlap(probs, ref)["image"] == pytest.approx(float(dm.aggregate().mean()), rel=1e-6)


def test_dataset_level_equals_monai_confusion_matrix_pooled() -> None:
    n, c = 4, 3
    ref = torch.randint(0, c, (n, 1, 6, 6, 4))
    probs = (torch.randn(n, c, 6, 6, 4) * 2).softmax(1)
    hard = _onehot(probs.argmax(1), c)
    cm = ConfusionMatrixMetric(metric_name=["f1 score", "threat score"], compute_sample=False, reduction="mean_batch")
    cm(hard, _onehot(ref[:, 0], c))
    f1, ts = cm.aggregate()
    assert fine_grained_overlap(probs, ref)["dataset"] == pytest.approx(float(f1.mean()), rel=1e-6)
    assert fine_grained_overlap(probs, ref, kind="iou")["dataset"] == pytest.approx(float(ts.mean()), rel=1e-6)


def test_batchwise_accumulation_equals_one_shot() -> None:
    c = 3
    probs = (torch.randn(7, c, 5, 6, 4) * 2).softmax(1)
    ref = torch.randint(0, c, (7, 1, 5, 6, 4))
    ref[2][ref[2] == 2] = 1
    metric = FineGrainedOverlapMetric(kind="iou", q=20, include_background=False)
    for chunk in (slice(0, 3), slice(3, 4), slice(4, 7)):
        metric(probs[chunk], ref[chunk])
    assert metric.aggregate() == fine_grained_overlap(probs, ref, kind="iou", q=20, include_background=False)
    # decollated lists (what MONAI engines pass) give the same result
    listed = FineGrainedOverlapMetric(kind="iou", q=20, include_background=False)
    listed(list(probs), list(ref))
    assert listed.aggregate() == metric.aggregate()
    metric.reset()
    with pytest.raises(ValueError, match="no data"):
        metric.aggregate()


def test_include_background_drops_class_zero_after_argmax() -> None:
    probs = torch.tensor([[[[0.5, 0.1]], [[0.3, 0.2]], [[0.2, 0.7]]]])  # argmax 0, 2 (class 1 never predicted)
    ref = torch.tensor([[[[1, 2]]]])
    r = fine_grained_overlap(probs, ref, include_background=False)
    assert sorted(r["per_class"]) == [1, 2]
    assert r["per_class"][1]["class"] == 0.0 and r["per_class"][2]["class"] == 1.0
    assert r["image"] == 0.5


def test_ignore_index_and_mask_exclude_voxels() -> None:
    probs = _onehot(torch.tensor([[[0, 1, 1, 0]]]), 2)
    ref = torch.tensor([[[[0, 1, 255, 255]]]])
    r = fine_grained_overlap(probs, ref, ignore_index=255)
    assert r["dataset"] == 1.0 and r["image"] == 1.0
    mask = torch.tensor([[[[True, True, False, False]]]])
    assert fine_grained_overlap(probs, torch.tensor([[[[0, 1, 0, 1]]]]), mask=mask)["image"] == 1.0


def test_nothing_to_average_gives_none_never_nan() -> None:
    probs = _onehot(torch.tensor([[[0, 0]]]), 2)
    ref = torch.tensor([[[[0, 0]]]])
    r = fine_grained_overlap(probs, ref, include_background=False)  # class 1 nowhere
    assert r["dataset"] is None and r["image"] is None and r["class"] is None
    assert r["class_worst"] is None and r["image_worst"] is None and r["n_images"] == 0
    assert r["per_class"][1] == {"dataset": None, "class": None, "class_worst": None, "n_images": 0}
    everything_ignored = fine_grained_overlap(probs, torch.full((1, 1, 1, 2), 9), ignore_index=9)
    assert everything_ignored["image"] is None and everything_ignored["dataset"] is None


def test_single_channel_foreground_threshold_rule() -> None:
    p = torch.tensor([[[[0.2, 0.5, 0.7, 0.4]]]])
    ref = torch.tensor([[[[0.0, 1.0, 1.0, 1.0]]]])
    r = fine_grained_overlap(p, ref)  # foreground = p >= 0.5: 0 1 1 0 -> tp 2, fp 0, fn 1
    assert list(r["per_class"]) == [1]
    assert r["dataset"] == pytest.approx(0.8)
    assert fine_grained_overlap(p, ref, threshold=0.3)["dataset"] == pytest.approx(1.0)
    # empty reference: excluded at image level, but the false positives count at dataset level
    empty = fine_grained_overlap(p, torch.zeros_like(p))
    assert empty["image"] is None and empty["dataset"] == 0.0
    assert fine_grained_overlap(p, torch.zeros_like(p), presence="either")["image"] == 0.0


def test_soft_reference_follows_monai_dice_convention() -> None:
    probs = _onehot(torch.tensor([[[1, 1, 0, 0]]]), 2)
    soft = torch.tensor([[[[0.2, 0.4, 0.6, 1.0]], [[0.8, 0.6, 0.4, 0.0]]]])
    r = fine_grained_overlap(probs, soft)
    # class 1: tp = 0.8 + 0.6, pred 2, ref 1.8 ; class 0: tp = 1.6, pred 2, ref 2.2
    assert r["per_class"][1]["class"] == pytest.approx(2 * 1.4 / 3.8)
    assert r["per_class"][0]["class"] == pytest.approx(2 * 1.6 / 4.2)
    dm = DiceMetric(include_background=True, reduction="none")
    assert dm(probs, soft)[0].tolist() == pytest.approx([2 * 1.6 / 4.2, 2 * 1.4 / 3.8], rel=1e-6)
    # a class whose reference never reaches presence_threshold is absent
    weak = torch.tensor([[[[0.7, 0.9, 0.6, 1.0]], [[0.3, 0.1, 0.4, 0.0]]]])
    assert fine_grained_overlap(probs, weak)["per_class"][1]["n_images"] == 0
    assert fine_grained_overlap(probs, weak, presence_threshold=0.25)["per_class"][1]["n_images"] == 1


def test_index_map_prediction_with_num_classes() -> None:
    labels = torch.tensor([[[[0, 2, 1, 1]]]])
    ref = torch.tensor([[[[0, 2, 2, 1]]]])
    a = fine_grained_overlap(labels.float(), ref, num_classes=3)
    b = fine_grained_overlap(_onehot(labels[:, 0], 3), ref)
    assert a == b
    with pytest.raises(ValueError, match="index map"):
        fine_grained_overlap(torch.tensor([[[[0.0, 3.0]]]]), torch.tensor([[[[0, 1]]]]), num_classes=3)


def test_counts_layout() -> None:
    counts = overlap_counts(_onehot(torch.tensor([[[0, 1, 1]]]), 2), torch.tensor([[[[0, 0, 1]]]]))
    assert counts.shape == (1, 5, 2) and counts.dtype == torch.float64
    assert counts[0].tolist() == [[1, 1], [1, 2], [2, 1], [1, 1], [1, 1]]


@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "error", "match"),
    [
        (torch.rand(2, 3, 4, 4), torch.randint(0, 3, (2, 1, 4, 4)), {}, ValueError, "sum to 1"),
        (torch.full((1, 1, 4), 1.5), torch.zeros(1, 1, 4), {}, ValueError, r"in \[0, 1\]"),
        (torch.full((1, 2, 4), float("nan")), torch.zeros(1, 1, 4), {}, ValueError, "NaN"),
        (torch.rand(2, 3), torch.zeros(2, 3), {}, ShapeError, "at least one spatial dim"),
        (torch.full((2, 2, 4, 4), 0.5), torch.randint(0, 2, (2, 1, 4, 5)), {}, ShapeError, "index map"),
        (torch.full((2, 2, 4, 4), 0.5), torch.rand(2, 3, 4, 4), {}, ShapeError, "input's shape"),
        (torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 4), {"kind": "f1"}, ValueError, "kind must be one of"),
        (torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 4), {"q": 0}, ValueError, r"q must be in \(0, 100\]"),
        (torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 4), {"presence": "any"}, ValueError, "presence must be"),
        (torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 4), {"num_classes": 3}, ShapeError, "num_classes=3"),
        ([[0.5]], torch.zeros(1, 1, 4), {}, TypeError, "pred must be a torch.Tensor"),
    ],
)
def test_errors(pred, target, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        fine_grained_overlap(pred, target, **kwargs)


def test_from_counts_errors_and_metric_class_consistency() -> None:
    with pytest.raises(ShapeError, match=r"\(N, 5, K\)"):
        fine_grained_from_counts(torch.zeros(3, 4, 2))
    with pytest.raises(ShapeError, match="class_ids"):
        fine_grained_from_counts(torch.zeros(1, 5, 2), [0])
    metric = FineGrainedOverlapMetric()
    metric(torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 4))
    with pytest.raises(ShapeError, match="same classes"):
        metric(torch.full((1, 3, 4), 1 / 3), torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="needs a target"):
        metric(torch.full((1, 2, 4), 0.5))


def test_metatensor_inputs_give_plain_tensors_and_same_values() -> None:
    from monai.data import MetaTensor

    probs = (torch.randn(2, 3, 6, 6) * 2).softmax(1)
    ref = torch.randint(0, 3, (2, 1, 6, 6))
    counts = overlap_counts(MetaTensor(probs), MetaTensor(ref))
    assert type(counts) is torch.Tensor
    assert torch.equal(counts, overlap_counts(probs, ref))
