"""DistillationTrainer: two iterations on synthetic data with tiny UNets; frozen teacher, events, outputs, errors."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.handlers import CheckpointSaver, StatsHandler, from_engine
from monai.networks.nets import UNet

from monai_jdt.engines import DistillationTrainer, load_teacher
from monai_jdt.losses import DistillationLoss


def tiny_unet() -> torch.nn.Module:
    return UNet(spatial_dims=2, in_channels=1, out_channels=3, channels=(4, 8), strides=(2,), num_res_units=0)


def batches(n: int = 2, with_teacher: bool = False) -> list[dict[str, torch.Tensor]]:
    out = []
    for _ in range(n):
        item = {"image": torch.randn(2, 1, 16, 16), "label": torch.randint(0, 3, (2, 1, 16, 16))}
        if with_teacher:
            item["teacher"] = torch.softmax(torch.randn(2, 3, 16, 16), 1)
        out.append(item)
    return out


class Recorder:
    """Forward hook on the teacher: mode, grad mode and whether its output requires grad, in firing order."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.order: list[str] = []

    def hook(self, module, args, output) -> None:
        self.order.append("teacher_forward")
        self.calls.append({"training": module.training, "grad_enabled": torch.is_grad_enabled(),
                           "requires_grad": output.requires_grad})  # fmt: skip


def test_two_iterations_teacher_frozen_and_without_grad() -> None:
    student, teacher = tiny_unet(), tiny_unet()
    teacher.train()  # the trainer must switch it to eval mode
    teacher_before = copy.deepcopy(teacher.state_dict())
    student_before = copy.deepcopy(student.state_dict())
    recorder = Recorder()
    teacher.register_forward_hook(recorder.hook)
    loss_fn = DistillationLoss(to_onehot_y=True, temperature=2.0)
    trainer = DistillationTrainer("cpu", 1, batches(), student, torch.optim.Adam(student.parameters(), 1e-2),
                                  loss_fn, teacher_network=teacher)  # fmt: skip
    for event in (IterationEvents.FORWARD_COMPLETED, IterationEvents.LOSS_COMPLETED,
                  IterationEvents.BACKWARD_COMPLETED, IterationEvents.MODEL_COMPLETED):  # fmt: skip
        trainer.add_event_handler(event, lambda engine, name=event.value: recorder.order.append(name))
    trainer.run()

    assert trainer.state.iteration == 2
    assert recorder.calls == [{"training": False, "grad_enabled": False, "requires_grad": False}] * 2
    one_iteration = ["teacher_forward", "forward_completed", "loss_completed", "backward_completed", "model_completed"]
    assert recorder.order == one_iteration * 2
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(value, teacher_before[name], rtol=0, atol=0)
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert any(not torch.equal(v, student_before[k]) for k, v in student.state_dict().items())
    out = trainer.state.output[0]  # decollated: one dict per image
    assert out["teacher"].shape == (3, 16, 16) and not out["teacher"].requires_grad
    parts = {k: float(v) for k, v in out.items() if str(k).startswith("loss_")}
    assert sorted(parts) == ["loss_label_ce", "loss_label_overlap", "loss_teacher_kl", "loss_teacher_overlap"]
    expected = 0.5 * (0.25 * parts["loss_label_ce"] + 0.75 * parts["loss_label_overlap"]) + 0.5 * (
        0.25 * parts["loss_teacher_kl"] + 0.75 * parts["loss_teacher_overlap"]
    )
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-5)


def test_monai_handlers_and_checkpoint_round_trip_to_load_teacher(tmp_path) -> None:
    student, teacher = tiny_unet(), tiny_unet()
    optimizer = torch.optim.SGD(student.parameters(), 0.1)
    logged: list[float] = []
    handlers = [
        StatsHandler(iteration_log=lambda engine, output: logged.append(output), tag_name="kl",
                     output_transform=from_engine(["loss_teacher_kl"], first=True)),  # fmt: skip
        CheckpointSaver(str(tmp_path), {"model": student, "optimizer": optimizer}, save_final=True),
    ]
    trainer = DistillationTrainer("cpu", 1, batches(), student, optimizer, DistillationLoss(to_onehot_y=True),
                                  teacher_network=teacher, train_handlers=handlers)  # fmt: skip
    trainer.run()
    assert len(logged) == 2 and all(v > 0 for v in logged)
    (checkpoint,) = tmp_path.glob("*.pt")
    reloaded = load_teacher(tiny_unet(), checkpoint)  # the CheckpointSaver dict: its "model" entry
    for name, value in reloaded.state_dict().items():
        torch.testing.assert_close(value, student.state_dict()[name])


def test_offline_teacher_maps_from_the_batch() -> None:
    student = tiny_unet()
    data = batches(with_teacher=True)
    loss_fn = DistillationLoss(to_onehot_y=True, teacher_is_logits=False)
    seen = []
    loss_fn.register_forward_pre_hook(lambda module, args: seen.append(args[2]))
    trainer = DistillationTrainer("cpu", 1, data, student, torch.optim.SGD(student.parameters(), 0.1), loss_fn,
                                  teacher_key="teacher")  # fmt: skip
    trainer.run()
    for given, used in zip(data, seen):
        torch.testing.assert_close(used, given["teacher"])


def test_gradient_accumulation_steps_once() -> None:
    if "accumulation_steps" not in inspect.signature(SupervisedTrainer.__init__).parameters:
        pytest.skip("this MONAI version has no accumulation_steps")
    student = tiny_unet()
    optimizer = torch.optim.SGD(student.parameters(), 0.1)
    steps = []
    optimizer.register_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    trainer = DistillationTrainer("cpu", 1, batches(4), student, optimizer, DistillationLoss(to_onehot_y=True),
                                  teacher_network=tiny_unet(), accumulation_steps=2)  # fmt: skip
    trainer.run()
    assert len(steps) == 2


def test_errors() -> None:
    student, teacher = tiny_unet(), tiny_unet()
    opt = torch.optim.SGD(student.parameters(), 0.1)
    loss_fn = DistillationLoss(to_onehot_y=True)
    with pytest.raises(ValueError, match="exactly one of teacher_network"):
        DistillationTrainer("cpu", 1, batches(), student, opt, loss_fn)
    with pytest.raises(ValueError, match="exactly one of teacher_network"):
        DistillationTrainer("cpu", 1, batches(), student, opt, loss_fn, teacher, teacher_key="teacher")
    with pytest.raises(ValueError, match="must not be the student"):
        DistillationTrainer("cpu", 1, batches(), student, opt, loss_fn, student)
    with pytest.raises(TypeError, match="teacher_network must be a torch.nn.Module"):
        DistillationTrainer("cpu", 1, batches(), student, opt, loss_fn, "teacher.pt")
    with pytest.raises(ValueError, match="iteration_update"):
        DistillationTrainer("cpu", 1, batches(), student, opt, loss_fn, teacher, iteration_update=lambda e, b: None)
    trainer = DistillationTrainer("cpu", 1, batches(), student, opt, loss_fn, teacher_key="soft")
    with pytest.raises(ValueError, match=r"teacher_key 'soft' is not in the batch \(keys: \['image', 'label'\]\)"):
        trainer.run()


@pytest.mark.filterwarnings("ignore:.*CUDA is not available.*:UserWarning")
def test_amp_flag_runs_the_scaler_path_on_cpu() -> None:
    """amp=True: the teacher runs inside autocast (a no-op on CPU) and the GradScaler branch is taken."""
    student, teacher = tiny_unet(), tiny_unet()
    recorder = Recorder()
    teacher.register_forward_hook(recorder.hook)
    trainer = DistillationTrainer("cpu", 1, batches(), student, torch.optim.SGD(student.parameters(), 0.1),
                                  DistillationLoss(to_onehot_y=True), teacher_network=teacher, amp=True)  # fmt: skip
    trainer.run()
    assert trainer.scaler is not None and trainer.state.iteration == 2
    assert all(not call["requires_grad"] for call in recorder.calls)
