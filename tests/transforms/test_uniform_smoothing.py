"""Tests of the LabelSmoothing array/dict transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_jdt.transforms import LabelSmoothing, LabelSmoothingD, LabelSmoothingd, LabelSmoothingDict, label_smoothing


def test_index_map_hand_computed_and_meta_kept() -> None:
    lab = MetaTensor(torch.tensor([[[0, 1], [2, 1]]]), affine=torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0])))
    out = LabelSmoothing(num_classes=3, epsilon=0.3)(lab)
    expected = torch.tensor(
        [[[0.8, 0.1], [0.1, 0.1]], [[0.1, 0.8], [0.1, 0.8]], [[0.1, 0.1], [0.8, 0.1]]], dtype=torch.float32
    )
    assert isinstance(out, MetaTensor)
    torch.testing.assert_close(out.as_tensor(), expected)
    torch.testing.assert_close(out.affine, lab.affine)


def test_equals_functional_on_3d_and_sums_to_one() -> None:
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 4, (1, 5, 6, 7))
    out = LabelSmoothing(4, epsilon=0.1)(lab)
    torch.testing.assert_close(torch.as_tensor(out), label_smoothing(torch.from_numpy(lab)[None], 4, 0.1)[0])
    torch.testing.assert_close(torch.as_tensor(out).sum(0), torch.ones(5, 6, 7))
    onehot = (lab == np.arange(4).reshape(-1, 1, 1, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(out), onehot * 0.9 + 0.025, atol=1e-6)


def test_dict_with_ignore_and_mask() -> None:
    lab = torch.tensor([[[0, 1, 255]]])
    out = LabelSmoothingd("label", num_classes=2, epsilon=0.2, ignore_index=255, mask_key="mask")({"label": lab})
    torch.testing.assert_close(out["label"][:, 0].as_tensor(), torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]]))
    assert out["mask"].tolist() == [[[True, True, False]]]
    assert LabelSmoothingD is LabelSmoothingd and LabelSmoothingDict is LabelSmoothingd


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_classes": 0}, ValueError, "num_classes must be an integer >= 2, got 0"),
        ({"num_classes": 2, "epsilon": 2}, ValueError, r"epsilon must be in \[0, 1\], got 2"),
        ({"num_classes": 2, "ignore_index": 1.0}, TypeError, "ignore_index must be an int or None"),
    ],
)
def test_errors(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        LabelSmoothing(**kwargs)
    with pytest.raises(error, match=message):
        LabelSmoothingd("label", **kwargs)


def test_call_errors() -> None:
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\), got values \[2\]"):
        LabelSmoothing(2)(torch.tensor([[[0, 2]]]))
    with pytest.raises(ValueError, match="must sum to 1"):
        LabelSmoothing(2)(torch.full((2, 3, 3), 0.2))
