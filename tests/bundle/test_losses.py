"""The loss of each ``loss_name``, checked against assemblies of PyTorch / MONAI losses written here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss, TverskyLoss

from monai_jdt.bundle import LOSS_NAMES, make_loss
from monai_jdt.losses import DistillationLoss


@pytest.fixture()
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 6, 6, 4, generator=g)
    index = torch.randint(0, 3, (2, 1, 6, 6, 4), generator=g)
    soft = torch.softmax(torch.randn(2, 3, 6, 6, 4, generator=g), 1)
    return logits, index, soft


def test_dml_ce_on_soft_targets_equals_ce_plus_monai_soft_dice(batch) -> None:
    logits, _, soft = batch
    loss = make_loss("dml_ce", to_onehot_y=False, batch=True)
    dice = DiceLoss(softmax=True, soft_label=True, batch=True)(logits, soft)
    expected = 0.25 * F.cross_entropy(logits, soft) + 0.75 * dice
    assert torch.allclose(loss(logits, soft), expected, atol=1e-5)


def test_jml_ce_on_index_targets_equals_ce_plus_monai_jaccard(batch) -> None:
    logits, index, _ = batch
    loss = make_loss("jml_ce", to_onehot_y=True, batch=False, active_classes="all")
    jaccard = DiceLoss(softmax=True, to_onehot_y=True, jaccard=True, soft_label=True)(logits, index)
    expected = 0.25 * F.cross_entropy(logits, index[:, 0]) + 0.75 * jaccard
    assert torch.allclose(loss(logits, index), expected, atol=1e-5)


def test_ctl_ce_equals_ce_plus_monai_tversky(batch) -> None:
    logits, _, soft = batch
    loss = make_loss("ctl_ce", to_onehot_y=False, batch=True)
    tversky = TverskyLoss(softmax=True, alpha=0.3, beta=0.7, soft_label=True, batch=True)(logits, soft)
    expected = 0.25 * F.cross_entropy(logits, soft) + 0.75 * tversky
    assert torch.allclose(loss(logits, soft), expected, atol=1e-5)
    assert sorted(loss.last_parts) == ["ce", "overlap"]
    assert torch.allclose(loss.last_parts["overlap"], tversky, atol=1e-5)


def test_ce_and_sdl_ce(batch) -> None:
    logits, index, soft = batch
    assert torch.allclose(make_loss("ce", to_onehot_y=True)(logits, index), F.cross_entropy(logits, index[:, 0]))
    assert torch.allclose(make_loss("ce")(logits, soft), F.cross_entropy(logits, soft), atol=1e-6)
    sdl = make_loss("sdl_ce", to_onehot_y=True, batch=True)
    assert type(sdl) is DiceCELoss  # MONAI's class as is: the classic soft Dice baseline
    reference = DiceCELoss(to_onehot_y=True, softmax=True, batch=True, lambda_ce=0.25, lambda_dice=0.75)
    assert torch.allclose(sdl(logits, index), reference(logits, index))


def test_active_classes_auto_follows_the_target_kind() -> None:
    assert make_loss("dml_ce", to_onehot_y=True).overlap_options["active_classes"] == "present"
    assert make_loss("dml_ce", to_onehot_y=False).overlap_options["active_classes"] == "all"
    assert make_loss("dml_ce", active_classes="present").overlap_options["active_classes"] == "present"


def test_distillation_losses(batch) -> None:
    logits, index, soft = batch
    for name, overlap in (("dml_ce", "dml"), ("jml_ce", "jml"), ("ctl_ce", "ctl")):
        loss = make_loss(name, to_onehot_y=True, distillation=True, temperature=2.0)
        assert isinstance(loss, DistillationLoss) and loss.overlap == overlap
        assert loss.config.temperature == 2.0 and loss.config.teacher_is_logits
        assert torch.isfinite(loss(logits, index, torch.randn_like(logits)))
    offline = make_loss("dml_ce", to_onehot_y=True, distillation=True, teacher_is_logits=False)
    assert torch.isfinite(offline(logits, index, soft))
    with pytest.raises(ValueError, match="probabilit"):
        offline(logits, index, torch.randn_like(logits))  # logits given where maps are expected


@pytest.mark.parametrize("name", ["ce", "sdl_ce"])
def test_distillation_needs_an_overlap_loss(name: str) -> None:
    with pytest.raises(ValueError, match="with label_mode='kd'"):
        make_loss(name, distillation=True)


def test_bad_names_and_options() -> None:
    assert LOSS_NAMES == ("dml_ce", "jml_ce", "ctl_ce", "ce", "sdl_ce")
    with pytest.raises(ValueError, match="name must be one of"):
        make_loss("dice")
    with pytest.raises(ValueError, match="active_classes"):
        make_loss("dml_ce", active_classes="some")
    with pytest.raises(ValueError, match="lambda_ce"):
        make_loss("ctl_ce", lambda_ce=-1)
