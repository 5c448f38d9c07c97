"""The transforms of each label mode give the expected training target (checked on small arrays)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Randomizable

from monai_jdt.bundle import CT_LABEL_MODES, QUBIQ_LABEL_MODES, ct_targets, qubiq_targets

RATERS = torch.tensor(
    [
        [[1, 1, 0, 0], [1, 1, 1, 0]],
        [[1, 0, 0, 0], [1, 1, 0, 0]],
        [[1, 1, 1, 0], [1, 1, 0, 0]],
    ],
    dtype=torch.float32,
)  # 3 raters of a 2 x 4 slice


def _qubiq_target(mode: str) -> torch.Tensor:
    t = qubiq_targets(mode)
    d = {"raters": MetaTensor(RATERS.clone()), "image": torch.zeros(1, 2, 4)}
    d = t.native(d)
    d = t.resampled(d)
    d = t.random(d)
    assert "raters" not in d  # removed, so cases with different rater counts can be batched
    return torch.as_tensor(d["label"])


def test_qubiq_mean_and_majority_match_hand_computation() -> None:
    votes = RATERS.sum(0)  # [[3, 2, 1, 0], [3, 3, 1, 0]]
    mean = _qubiq_target("mean")
    assert torch.allclose(mean[1], votes / 3) and torch.allclose(mean[0], 1 - votes / 3)
    majority = _qubiq_target("majority")
    assert torch.equal(majority[1], (votes >= 2).float()) and torch.equal(majority[0], (votes < 2).float())


@pytest.mark.parametrize("mode", QUBIQ_LABEL_MODES)
def test_every_qubiq_mode_gives_a_two_channel_probability_map(mode: str) -> None:
    target = _qubiq_target(mode)
    assert target.shape == (2, 2, 4)
    assert torch.allclose(target.sum(0), torch.ones(2, 4), atol=1e-6)
    assert bool((target >= 0).all() and (target <= 1).all())


def test_qubiq_random_mode_is_random_and_not_cached() -> None:
    t = qubiq_targets("random")
    assert len(t.native.transforms) == 0 and isinstance(t.random.transforms[0], Randomizable)
    picks = set()
    for seed in range(20):
        t.random.set_random_state(seed)
        out = t.random({"raters": MetaTensor(RATERS.clone())})["label"][1]
        picks.add(tuple(out.flatten().tolist()))
    assert picks == {tuple(r.flatten().tolist()) for r in RATERS}  # each target is exactly one rater


def _label() -> MetaTensor:
    label = torch.zeros(1, 9, 9, 5)
    label[:, 2:7, 2:7, 1:4] = 1
    label[:, 4:6, 4:6, 2:3] = 2
    return MetaTensor(label, affine=torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0], dtype=torch.float64)))


def _apply(t, d: dict) -> dict:
    return t.resampled(t.native(d))


def test_ct_hard_keeps_the_index_map() -> None:
    t = ct_targets("hard", 3)
    label = _label()
    out = _apply(t, {"label": label})
    assert not t.soft and torch.equal(out["label"], label) and torch.equal(out["seg"], label)


def test_ct_label_smoothing_matches_the_formula() -> None:
    t = ct_targets("ls", 3, epsilon=0.3)
    label = _label()
    out = _apply(t, {"label": label})
    onehot = torch.nn.functional.one_hot(label[0].long(), 3).permute(3, 0, 1, 2).float()
    assert t.soft and torch.allclose(torch.as_tensor(out["label"]), 0.7 * onehot + 0.1)
    assert torch.equal(out["seg"], label)


def test_ct_boundary_smoothing_uses_the_radius_in_mm() -> None:
    label = _label()
    onehot = torch.nn.functional.one_hot(label[0].long(), 3).permute(3, 0, 1, 2).float()
    # 1.5 mm on (1, 1, 3) mm voxels: half-widths (1, 1, 0), i.e. a 3 x 3 x 1 window
    out = _apply(ct_targets("bls", 3, bls_radius_mm=1.5), {"label": label})["label"]
    lab = label[0].numpy()
    from scipy.ndimage import maximum_filter, minimum_filter

    boundary = maximum_filter(lab, size=(3, 3, 1), mode="nearest") != minimum_filter(
        lab, size=(3, 3, 1), mode="nearest"
    )
    expected = torch.where(torch.from_numpy(boundary)[None], 0.5 * onehot + 0.5 / 3, onehot)
    assert torch.allclose(torch.as_tensor(out), expected)
    assert not bool(boundary[:, :, 0].any())  # no smoothing across slices with a 1-voxel-deep z window


def test_ct_raters_mean_keys_and_kd_variants() -> None:
    t = ct_targets("raters_mean", 4)
    assert t.soft and t.extra_keys == ("instances",)
    names = [type(x).__name__ for x in [*t.native.transforms, *t.resampled.transforms]]
    assert names == ["LoadKiTSAnnotatorsd", "DeleteItemsd", "FuseRatersd", "DeleteItemsd", "SelectTargetd"]
    fuse = t.resampled.transforms[0]
    annotators = MetaTensor(torch.tensor([[[0, 1, 2]], [[0, 1, 1]], [[0, 2, 3]]], dtype=torch.uint8))
    out = t.resampled({"label": torch.zeros(1, 1, 3), "annotators": annotators})
    assert fuse.fuser.method == "mean" and torch.allclose(
        torch.as_tensor(out["label"])[:, 0, 2], torch.tensor([0.0, 1 / 3, 1 / 3, 1 / 3])
    )
    online = ct_targets("kd", 4)
    assert not online.soft and online.teacher_key is None and online.extra_keys == ()
    offline = ct_targets("kd", 4, teacher_key="teacher")
    assert offline.teacher_key == "teacher" and offline.extra_keys == ("teacher",)


@pytest.mark.parametrize("bad", [{"label_mode": "soft"}, {"num_classes": 1}, {"epsilon": 1.0}])
def test_ct_target_errors(bad: dict) -> None:
    args = {"label_mode": "ls", "num_classes": 3, **bad}
    with pytest.raises(ValueError, match=next(iter(bad))):
        ct_targets(args.pop("label_mode"), args.pop("num_classes"), **args)


def test_mode_lists() -> None:
    assert QUBIQ_LABEL_MODES == ("mean", "weighted", "majority", "random", "staple")
    assert CT_LABEL_MODES == ("hard", "ls", "bls", "raters_mean", "kd", "ssl")
    with pytest.raises(ValueError, match="label_mode must be one of"):
        qubiq_targets("hard")
    assert np.isclose(_qubiq_target("weighted").sum(0), 1).all()
