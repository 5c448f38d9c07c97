from __future__ import annotations

import pytest
import torch

from monai_jdt.utils import ShapeError
from monai_jdt.utils.targets import prepare_target


def test_index_map_forms_are_equivalent_and_not_one_hot() -> None:
    x = torch.rand(2, 3, 5, 4)
    idx = torch.randint(0, 3, (2, 5, 4))
    a = prepare_target(x, idx[:, None], to_onehot_y=True)
    b = prepare_target(x, idx.to(torch.uint8), to_onehot_y=True)
    c = prepare_target(x, idx.float(), to_onehot_y=True)
    for t in (a, b, c):
        assert t.is_index and t.dense is None and t.mask is None
        assert torch.equal(t.index, idx)
    onehot = a.one_hot()
    assert torch.equal(onehot.argmax(1), idx) and torch.all(onehot.sum(1) == 1)


def test_ignore_index_masks_and_zeroes_index() -> None:
    x = torch.rand(1, 2, 3)
    t = prepare_target(x, torch.tensor([[0, 255, 1]]), to_onehot_y=True, ignore_index=255)
    assert t.mask.tolist() == [[True, False, True]]
    assert t.index.tolist() == [[0, 0, 1]]


def test_mask_combines_with_ignore_index() -> None:
    x = torch.rand(1, 2, 3)
    m = torch.tensor([[[True, True, False]]])
    t = prepare_target(x, torch.tensor([[0, 255, 1]]), to_onehot_y=True, ignore_index=255, mask=m)
    assert t.mask.tolist() == [[True, False, False]]


def test_dense_ignore_index_follows_monai_semantics() -> None:
    x = torch.rand(1, 3, 4)
    y = torch.tensor([[[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]])
    assert prepare_target(x, y, ignore_index=1).mask.tolist() == [[True, False, True, True]]
    assert prepare_target(x, y, ignore_index=-1).mask.tolist() == [[True, True, True, False]]


def test_integer_one_hot_is_cast_to_input_dtype() -> None:
    x = torch.rand(1, 2, 3, dtype=torch.float64)
    t = prepare_target(x, torch.tensor([[[1, 0, 1], [0, 1, 0]]], dtype=torch.uint8))
    assert t.dense.dtype == torch.float64


@pytest.mark.parametrize(
    ("target", "kwargs", "error", "match"),
    [
        (torch.randint(0, 3, (2, 1, 4, 4)), {}, ShapeError, "pass to_onehot_y=True"),
        (torch.randint(0, 3, (2, 4, 4)), {}, ShapeError, "has no channel dim"),
        (torch.rand(2, 3, 4, 5), {}, ShapeError, "must have the input's shape"),
        (torch.rand(2, 3, 4, 4) + 0.5, {}, ValueError, r"must be in \[0, 1\]"),
        (torch.full((2, 4, 4), 3), {"to_onehot_y": True}, ValueError, r"must be in \[0, 3\), got values \[3\]"),
        (torch.full((2, 4, 4), -1), {"to_onehot_y": True, "ignore_index": 9}, ValueError, "or equal to ignore_index=9"),
        (torch.full((2, 4, 4), 0.5), {"to_onehot_y": True}, ValueError, "non-integer value 0.5"),
        (torch.zeros(2, 2, 4, 4), {"to_onehot_y": True}, ShapeError, "must be an index map"),
        (torch.zeros(3, 4, 4), {"to_onehot_y": True}, ShapeError, "does not fit"),
    ],
)
def test_bad_targets(target: torch.Tensor, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        prepare_target(torch.rand(2, 3, 4, 4), target, **kwargs)


def test_bad_mask_and_input() -> None:
    x = torch.rand(2, 3, 4, 4)
    y = torch.randint(0, 3, (2, 4, 4))
    with pytest.raises(ShapeError, match=r"mask must have shape"):
        prepare_target(x, y, to_onehot_y=True, mask=torch.ones(2, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be bool or hold only 0 and 1, got value 2"):
        prepare_target(x, y, to_onehot_y=True, mask=torch.full((2, 4, 4), 2))
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        prepare_target(x.long(), y, to_onehot_y=True)
    with pytest.raises(ShapeError, match="at least one spatial dim"):
        prepare_target(torch.rand(2, 3), y, to_onehot_y=True)
    with pytest.raises(TypeError, match="ignore_index must be an int or None"):
        prepare_target(x, y, to_onehot_y=True, ignore_index=1.5)


def test_single_channel_to_onehot_warns_like_monai() -> None:
    with pytest.warns(UserWarning, match="single channel prediction"):
        t = prepare_target(torch.rand(2, 1, 4), torch.randint(0, 2, (2, 1, 4)).float(), to_onehot_y=True)
    assert not t.is_index
