"""MeanTeacherTrainer: iterations on synthetic data, EMA after each step, views, ramp-up, supervised equivalence."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedTrainer
from monai.networks.nets import UNet
from monai.transforms import RandFlipd, RandGaussianNoised, RandScaleIntensityd, RandSpatialCropd

from monai_jdt.engines import MeanTeacherTrainer, sigmoid_rampup
from monai_jdt.losses import DiceSemimetricCELoss
from monai_jdt.transforms import weak_strong_views


def tiny_unet(out_channels: int = 3, dropout: float = 0.0, norm: str = "batch") -> torch.nn.Module:
    return UNet(2, 1, out_channels, channels=(4, 8), strides=(2,), num_res_units=0, dropout=dropout, norm=norm)


def labelled(n: int = 2, size: int = 16, batch: int = 2) -> list[dict[str, torch.Tensor]]:
    return [{"image": torch.randn(batch, 1, size, size), "label": torch.randint(0, 3, (batch, 1, size, size))}
            for _ in range(n)]  # fmt: skip


def unlabelled(n: int = 2, size: int = 16, batch: int = 3) -> list[dict[str, torch.Tensor]]:
    return [{"image": torch.randn(batch, 1, size, size), "image_strong": torch.randn(batch, 1, size, size)}
            for _ in range(n)]  # fmt: skip


class Recording:
    """An iterable over batches that records what it yields (and how often it was restarted)."""

    def __init__(self, batches) -> None:
        self.batches, self.yielded, self.passes = batches, [], 0

    def __iter__(self):
        self.passes += 1
        for batch in self.batches:
            self.yielded.append(batch)
            yield batch


class NeverIterated:
    def __iter__(self):
        raise AssertionError("the unlabelled loader must not be iterated with unsup_weight=0")


class RecordingLoss(torch.nn.Module):
    def __init__(self, loss: torch.nn.Module) -> None:
        super().__init__()
        self.loss, self.calls = loss, []

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.calls.append((pred.detach().clone(), target.detach().clone(), target.requires_grad))
        out = self.loss(pred, target)
        self.last_parts = self.loss.last_parts
        return out


def make_trainer(student, labelled_batches, unlabelled_loader, **kwargs) -> MeanTeacherTrainer:
    sup = DiceSemimetricCELoss(to_onehot_y=True)
    opt = torch.optim.Adam(student.parameters(), 1e-2)
    return MeanTeacherTrainer("cpu", kwargs.pop("max_epochs", 1), labelled_batches, student, opt, sup,
                              unlabelled_loader, **kwargs)  # fmt: skip


def record_states(trainer: MeanTeacherTrainer) -> list[tuple[dict, dict]]:
    states: list[tuple[dict, dict]] = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: states.append(
        (copy.deepcopy(e.student.state_dict()), copy.deepcopy(e.teacher.state_dict()))))  # fmt: skip
    return states


def test_two_iterations_teacher_on_weak_student_on_strong_ema_after_each_step() -> None:
    student = tiny_unet()
    teacher_start = copy.deepcopy(student.state_dict())
    loader = Recording(unlabelled())
    unsup = RecordingLoss(DiceSemimetricCELoss(active_classes="present"))
    trainer = make_trainer(student, labelled(), loader, unsup_loss_function=unsup, ema_decay=0.9, rampup_epochs=2.0)
    teacher_calls, student_inputs = [], []
    trainer.teacher.register_forward_hook(lambda m, a, out: teacher_calls.append(
        {"training": m.training, "grad": torch.is_grad_enabled(), "out": out, "input": a[0]}))  # fmt: skip
    student.register_forward_hook(lambda m, a, out: student_inputs.append(a[0]))
    outputs, states = [], record_states(trainer)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(e.state.output[0]))
    trainer.run()

    assert trainer.state.iteration == 2 and len(loader.yielded) == 2
    assert [(c["training"], c["grad"], c["out"].requires_grad) for c in teacher_calls] == [(False, False, False)] * 2
    assert all(not p.requires_grad and p.grad is None for p in trainer.teacher.parameters())
    for i, batch in enumerate(loader.yielded):
        assert torch.equal(teacher_calls[i]["input"], batch["image"])  # the teacher sees the weak view
        assert torch.equal(student_inputs[2 * i + 1], batch["image_strong"])  # the student the strong one
        pred, target, target_grad = unsup.calls[i]
        assert not target_grad
        torch.testing.assert_close(target, teacher_calls[i]["out"].float().softmax(1))  # soft pseudo-labels
    for i, out in enumerate(outputs):
        w = sigmoid_rampup(i / 2, 2.0)  # epochs done before iteration i + 1 (epoch_length 2)
        assert out["unsup_weight"] == pytest.approx(w, rel=1e-6)
        assert out["loss"] == pytest.approx(out["loss_sup"] + w * out["loss_unsup"], rel=1e-5)
        assert out["loss_unsup"] == pytest.approx(0.25 * out["loss_unsup_ce"] + 0.75 * out["loss_unsup_overlap"])
        assert out["loss_sup"] == pytest.approx(0.25 * out["loss_sup_ce"] + 0.75 * out["loss_sup_overlap"])
    previous = teacher_start
    for student_state, teacher_state in states:  # theta_t <- 0.9 theta_t + 0.1 theta_s after each step
        for name, value in teacher_state.items():
            if value.is_floating_point():
                expected = 0.9 * previous[name] + 0.1 * student_state[name]
                torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7)
            else:
                assert torch.equal(value, student_state[name])
        previous = teacher_state
    assert not torch.equal(states[-1][1]["model.0.conv.weight"], teacher_start["model.0.conv.weight"])


def test_views_pipeline_through_a_dataloader() -> None:
    views = weak_strong_views(
        spatial=[RandSpatialCropd("image", (16, 16), random_size=False), RandFlipd("image", prob=0.5)],
        weak=[RandScaleIntensityd("image", factors=0.1, prob=1.0)],
        strong=[RandGaussianNoised("image_strong", prob=1.0, std=0.3)],
    )
    data = [{"image": torch.randn(1, 20, 20)} for _ in range(4)]
    loader = DataLoader(Dataset(data, transform=views), batch_size=2, num_workers=0)
    trainer = make_trainer(tiny_unet(), labelled(), loader, rampup_epochs=0.0, unsup_weight=0.5)
    trainer.run()
    out = trainer.state.output[0]
    assert out["unsup_weight"] == 0.5
    assert math.isfinite(out["loss_unsup"]) and out["loss_unsup"] > 0
    assert out["loss"] == pytest.approx(out["loss_sup"] + 0.5 * out["loss_unsup"], rel=1e-5)


def run_and_record(trainer: SupervisedTrainer) -> list[dict]:
    states: list[dict] = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: states.append(copy.deepcopy(e.network.state_dict())))  # fmt: skip
    trainer.run()
    return states


def test_zero_weight_equals_supervised_training_step_for_step() -> None:
    net = tiny_unet(dropout=0.3)  # dropout: the random streams must match too
    data = labelled(n=3)
    runs = []
    for semi in (False, True):
        student = copy.deepcopy(net)
        opt = torch.optim.Adam(student.parameters(), 1e-2)
        loss = DiceSemimetricCELoss(to_onehot_y=True)
        torch.manual_seed(7)
        if semi:
            trainer = MeanTeacherTrainer("cpu", 2, data, student, opt, loss, NeverIterated(), unsup_weight=0.0)
        else:
            trainer = SupervisedTrainer("cpu", 2, data, student, opt, loss)
        runs.append(run_and_record(trainer))
    assert len(runs[0]) == len(runs[1]) == 6
    for step, (plain, semi) in enumerate(zip(*runs)):
        for name, value in plain.items():
            torch.testing.assert_close(semi[name], value, rtol=0, atol=0, msg=f"step {step + 1}, {name}")
    assert any(not torch.equal(runs[0][-1][k], v) for k, v in net.state_dict().items())  # it did train


@pytest.mark.parametrize("rampup, length", [("sigmoid", 3.0), ("linear", 3.0), ("sigmoid", 0.0)])
def test_rampup_weights_at_chosen_epochs(rampup: str, length: float) -> None:
    trainer = make_trainer(tiny_unet(norm="instance"), labelled(n=2, size=8, batch=1), unlabelled(n=1, size=8),
                           max_epochs=5, unsup_weight=2.0, rampup=rampup, rampup_epochs=length)  # fmt: skip
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(
        (e.state.epoch, e.state.output[0]["unsup_weight"], "loss_unsup" in e.state.output[0])))  # fmt: skip
    trainer.run()
    assert len(seen) == 10
    for iteration, (epoch, weight, ran) in enumerate(seen):
        t = iteration / 2  # epochs done before this iteration (2 iterations per epoch)
        assert epoch == iteration // 2 + 1
        if length == 0:
            expected = 2.0
        elif rampup == "sigmoid":
            expected = 2.0 * math.exp(-5.0 * (1.0 - min(t / length, 1.0)) ** 2)
        else:
            expected = 2.0 * min(t / length, 1.0)
        assert weight == pytest.approx(expected, rel=1e-6), (iteration, t)
        assert ran == (expected > 0)  # a zero weight (linear ramp at t = 0) skips the unlabelled branch


def test_unlabelled_loader_is_cycled_with_its_own_iterator() -> None:
    batches = unlabelled(n=2, size=8, batch=1)
    loader = Recording(batches)
    trainer = make_trainer(tiny_unet(norm="instance"), labelled(n=3, size=8, batch=1), loader, max_epochs=2,
                           rampup_epochs=0.0)  # fmt: skip
    trainer.run()
    assert [[b is x for x in batches].index(True) for b in loader.yielded] == [0, 1, 0, 1, 0, 1]
    assert loader.passes == 3


def test_distributed_sampler_gets_a_new_epoch_per_pass() -> None:
    data = [{"image": torch.randn(1, 8, 8), "image_strong": torch.randn(1, 8, 8)} for _ in range(4)]
    dataset = Dataset(data)
    sampler = torch.utils.data.distributed.DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=1)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler)
    trainer = make_trainer(tiny_unet(norm="instance"), labelled(n=5, size=8, batch=1), loader, rampup_epochs=0.0)
    trainer.run()  # 5 unlabelled batches: passes 0, 1, 2 (2 batches each)
    assert sampler.epoch == 2


def test_accumulation_updates_the_teacher_on_optimizer_steps_only() -> None:
    trainer = make_trainer(tiny_unet(), labelled(n=4), unlabelled(), accumulation_steps=2, rampup_epochs=0.0)
    start = copy.deepcopy(trainer.teacher.state_dict())
    states = record_states(trainer)
    trainer.run()
    key = "model.0.conv.weight"
    assert torch.equal(states[0][1][key], start[key]) and torch.equal(states[2][1][key], states[1][1][key])
    assert not torch.equal(states[1][1][key], start[key]) and not torch.equal(states[3][1][key], states[2][1][key])


def test_sigmoid_teacher_and_same_view_without_strong_key() -> None:
    student = tiny_unet(out_channels=1)
    data = [{"image": torch.randn(2, 1, 16, 16), "label": torch.randint(0, 2, (2, 1, 16, 16)).float()}]
    only_weak = [{"image": torch.randn(2, 1, 16, 16)}]
    opt = torch.optim.SGD(student.parameters(), 0.1)
    trainer = MeanTeacherTrainer("cpu", 1, data, student, opt, DiceSemimetricCELoss(sigmoid=True), only_weak,
                                 teacher_activation="sigmoid", strong_key=None, rampup_epochs=0.0)  # fmt: skip
    assert trainer.unsup_loss_function.sigmoid is True
    teacher_out, student_inputs = [], []
    trainer.teacher.register_forward_hook(lambda m, a, out: teacher_out.append(out))
    student.register_forward_hook(lambda m, a, out: student_inputs.append(a[0]))
    trainer.run()
    assert torch.equal(student_inputs[1], only_weak[0]["image"])
    probs = trainer.teacher_probabilities(only_weak[0]["image"])
    assert probs.shape == (2, 1, 16, 16) and float(probs.min()) >= 0 and float(probs.max()) <= 1
    assert math.isfinite(trainer.state.output[0]["loss_unsup"])
    assert len(teacher_out) == 2


def test_custom_unlabeled_prepare_batch_and_given_teacher() -> None:
    student, teacher = tiny_unet(), tiny_unet()
    tuples = [(torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16))]
    seen = []

    def prepare(batch, device, non_blocking, **kwargs):
        seen.append(device)
        return batch[0].to(device), batch[1].to(device)

    teacher_before = copy.deepcopy(teacher.state_dict())
    trainer = make_trainer(student, labelled(n=1), tuples, teacher=teacher, unlabeled_prepare_batch=prepare,
                           rampup_epochs=0.0, ema_decay=1.0)  # fmt: skip
    assert trainer.teacher is teacher and not teacher.training
    trainer.run()
    assert seen == [torch.device("cpu")]
    for name, value in teacher.state_dict().items():  # decay 1: the given teacher keeps its own weights
        if value.is_floating_point():
            assert torch.equal(value, teacher_before[name])


def test_errors() -> None:
    net, data, unl = tiny_unet(), labelled(n=1), unlabelled(n=1)
    for kwargs, error, match in [
        ({"ema_decay": 1.2}, ValueError, r"ema_decay must be in \[0, 1\], got 1.2"),
        ({"ema_decay": -0.5}, ValueError, r"ema_decay must be in \[0, 1\], got -0.5"),
        ({"unsup_weight": -1.0}, ValueError, "unsup_weight must be >= 0, got -1"),
        ({"rampup_epochs": -2}, ValueError, "rampup_epochs must be >= 0, got -2"),
        ({"rampup": "cosine"}, ValueError, "rampup must be one of 'sigmoid', 'linear', got 'cosine'"),
        ({"teacher_activation": "relu"}, ValueError, "teacher_activation must be one of 'softmax', 'sigmoid'"),
        ({"ema_buffers": "skip"}, ValueError, "ema_buffers must be one of 'ema', 'copy', got 'skip'"),
        ({"teacher": net}, ValueError, "teacher must be a separate copy of the student"),
        ({"teacher": tiny_unet(out_channels=2)}, ValueError, "must have the student's shape"),
        ({"teacher": "teacher.pt"}, TypeError, "teacher must be a torch.nn.Module, got str"),
        ({"strong_key": 3}, TypeError, "strong_key must be a str or None, got int"),
        ({"iteration_update": lambda e, b: None}, ValueError, "iteration_update would replace"),
    ]:
        with pytest.raises(error, match=match):
            make_trainer(net, data, unl, **kwargs)
    with pytest.raises(ValueError, match="unlabeled_data_loader must yield at least one batch, got an empty loader"):
        make_trainer(net, data, [])
    with pytest.raises(ValueError, match="unlabeled_data_loader must be given when unsup_weight > 0, got None"):
        make_trainer(net, data, None)
    make_trainer(net, data, None, unsup_weight=0.0).run()  # supervised only: no loader needed


@pytest.mark.parametrize(
    "loader, error, match",
    [
        (Recording([]), ValueError, "unlabeled_data_loader must yield at least one batch, got an empty pass"),
        ([{"image": torch.randn(2, 1, 8, 8)}], ValueError, r"lacks the key\(s\) \['image_strong'\].*keys \['image'\]"),
        ([torch.randn(2, 1, 16, 16)], TypeError, "an unlabelled batch must be a dict with 'image', got Tensor"),
    ],
)  # fmt: skip
def test_bad_unlabelled_batches(loader, error, match) -> None:
    trainer = make_trainer(tiny_unet(), labelled(n=1), loader, rampup_epochs=0.0)
    with pytest.raises(error, match=match):
        trainer.run()


@pytest.mark.slow
def test_compiled_student_updates_the_teacher() -> None:
    student = tiny_unet()
    start = copy.deepcopy(student.state_dict())
    trainer = make_trainer(student, labelled(n=1), unlabelled(n=1), compile=True, ema_decay=0.5, rampup_epochs=0.0)
    assert type(trainer.network).__name__ == "OptimizedModule" and trainer.student is student
    trainer.run()
    for name, value in trainer.teacher.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.5 * start[name] + 0.5 * student.state_dict()[name])
