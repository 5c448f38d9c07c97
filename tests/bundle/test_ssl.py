"""ssl_split (labelled/unlabelled cases) and the bundles' mean-teacher trainer factory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.networks.nets import UNet

from monai_jdt.bundle import make_trainer, ssl_split
from monai_jdt.engines import MeanTeacherTrainer
from monai_jdt.losses import DiceSemimetricCELoss


def cases(n: int) -> list[dict]:
    return [{"image": f"im{i}.nii.gz", "label": f"lb{i}.nii.gz", "case_id": f"case{i}", "fold": i % 5}
            for i in range(n)]  # fmt: skip


@pytest.mark.parametrize(
    "n, fraction, expected", [(104, 0.1, 10), (105, 0.1, 11), (10, 0.25, 3), (3, 0.1, 1), (2, 0.9, 1)]
)
def test_split_sizes(n: int, fraction: float, expected: int) -> None:
    parts = ssl_split(cases(n), "ssl", fraction)
    assert len(parts["labeled"]) == expected and len(parts["unlabeled"]) == n - expected


def test_split_is_a_seeded_choice_that_keeps_the_order_and_drops_labels() -> None:
    entries = cases(40)
    parts = ssl_split(entries, "ssl", 0.25, seed=3)
    chosen = sorted(np.random.default_rng(3).permutation(40)[:10].tolist())  # the documented choice
    assert [e["case_id"] for e in parts["labeled"]] == [f"case{i}" for i in chosen]
    assert parts["labeled"][0] == entries[chosen[0]] and parts["labeled"][0] is not entries[chosen[0]]
    rest = [i for i in range(40) if i not in chosen]
    assert parts["unlabeled"] == [{"image": f"im{i}.nii.gz", "case_id": f"case{i}"} for i in rest]
    assert ssl_split(entries, "ssl", 0.25, seed=3) == parts  # deterministic
    assert ssl_split(entries, "ssl", 0.25, seed=4)["labeled"] != parts["labeled"]  # the seed matters
    assert entries == cases(40)  # the input is not modified


def test_other_label_modes_keep_every_case() -> None:
    for mode in ("hard", "bls", "kd"):
        parts = ssl_split(cases(5), mode, 0.1)
        assert parts == {"labeled": cases(5), "unlabeled": []}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, float("nan")])
def test_bad_fraction_is_one_line(fraction: float) -> None:
    with pytest.raises(SystemExit, match="error: labeled_fraction must be"):
        ssl_split(cases(10), "ssl", fraction)


def test_too_few_cases() -> None:
    with pytest.raises(SystemExit, match="label_mode ssl needs at least 2 training cases .*, got 1"):
        ssl_split(cases(1), "ssl", 0.5)


def test_make_trainer_ssl_branch_and_epoch_length() -> None:
    net = UNet(2, 1, 3, channels=(4, 8), strides=(2,), num_res_units=0)
    labelled = [{"image": torch.randn(1, 1, 8, 8), "label": torch.randint(0, 3, (1, 1, 8, 8))}] * 2
    unlabelled = [{"image": torch.randn(1, 1, 8, 8), "image_strong": torch.randn(1, 1, 8, 8)}] * 5
    opt, loss = torch.optim.SGD(net.parameters(), 0.1), DiceSemimetricCELoss(to_onehot_y=True)
    common = dict(device="cpu", max_epochs=1, train_data_loader=labelled, network=net, optimizer=opt,
                  loss_function=loss)
    trainer = make_trainer("ssl", ssl_options={"unlabeled_data_loader": unlabelled, "ema_decay": 0.5}, **common)
    assert isinstance(trainer, MeanTeacherTrainer) and trainer.ema_decay == 0.5
    trainer.run()
    assert trainer.state.iteration == 5  # one epoch = one pass over the larger (unlabelled) loader
    assert type(make_trainer("hard", ssl_options={"ema_decay": 0.5}, **common)).__name__ == "SupervisedTrainer"
    with pytest.raises(SystemExit, match="label_mode ssl needs unlabelled cases"):
        make_trainer("ssl", **common)
