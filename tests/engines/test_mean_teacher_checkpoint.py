"""MeanTeacherTrainer checkpoints: the EMA teacher is saved and restored; a resumed run equals an uninterrupted one."""

from __future__ import annotations

import copy

import torch
from ignite.engine import Events
from monai.handlers import CheckpointLoader, CheckpointSaver
from monai.networks.nets import UNet

from monai_jdt.engines import MeanTeacherTrainer, load_checkpoint_state
from monai_jdt.losses import DiceSemimetricCELoss


def tiny_unet() -> torch.nn.Module:
    return UNet(2, 1, 3, channels=(4, 8), strides=(2,), num_res_units=0, norm="batch")


def build(net: torch.nn.Module, labelled, unlabelled, max_epochs: int) -> tuple[MeanTeacherTrainer, dict]:
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    trainer = MeanTeacherTrainer("cpu", max_epochs, labelled, net, opt, DiceSemimetricCELoss(to_onehot_y=True),
                                 unlabelled, ema_decay=0.8, rampup_epochs=2.0)  # fmt: skip
    objects = {"network": net, "teacher": trainer.teacher, "optimizer": opt, "trainer": trainer}
    return trainer, objects


def test_resume_restores_the_teacher_exactly(tmp_path) -> None:
    labelled = [{"image": torch.randn(2, 1, 16, 16), "label": torch.randint(0, 3, (2, 1, 16, 16))} for _ in range(2)]
    unlabelled = [{"image": torch.randn(2, 1, 16, 16), "image_strong": torch.randn(2, 1, 16, 16)} for _ in range(2)]
    init = tiny_unet().state_dict()

    def fresh() -> torch.nn.Module:
        net = tiny_unet()
        net.load_state_dict(init)
        return net

    straight, _ = build(fresh(), labelled, unlabelled, max_epochs=2)  # the uninterrupted reference
    straight.run()

    first, objects = build(fresh(), labelled, unlabelled, max_epochs=1)
    CheckpointSaver(str(tmp_path), objects, save_final=True, final_filename="ckpt.pt").attach(first)
    first.run()
    saved_teacher = copy.deepcopy(first.teacher.state_dict())
    file_teacher = load_checkpoint_state(tmp_path / "ckpt.pt", key="teacher")
    for name, value in saved_teacher.items():
        assert torch.equal(file_teacher[name], value), name
    assert any(not torch.equal(saved_teacher[k], v) for k, v in init.items())  # the teacher moved in epoch 1

    resumed, objects = build(tiny_unet(), labelled, unlabelled, max_epochs=2)  # other random weights
    assert any(not torch.equal(resumed.teacher.state_dict()[k], v) for k, v in saved_teacher.items())
    CheckpointLoader(str(tmp_path / "ckpt.pt"), objects).attach(resumed)
    at_start = {}
    resumed.add_event_handler(Events.STARTED, lambda e: at_start.update(copy.deepcopy(e.teacher.state_dict())))
    resumed.run()

    assert resumed.state.iteration == 4 and resumed.state.epoch == 2
    for name, value in saved_teacher.items():
        assert torch.equal(at_start[name], value), name
    for name, value in straight.teacher.state_dict().items():  # resumed == uninterrupted, teacher and student
        torch.testing.assert_close(resumed.teacher.state_dict()[name], value, rtol=1e-6, atol=1e-7)
    for name, value in straight.network.state_dict().items():
        torch.testing.assert_close(resumed.network.state_dict()[name], value, rtol=1e-6, atol=1e-7)
