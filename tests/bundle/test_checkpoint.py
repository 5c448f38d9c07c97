"""Atomic checkpoint files, resume of trainer/optimizer/scheduler state, best-model tracking."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events
from monai.optimizers import WarmupCosineSchedule

from monai_jdt.bundle import BestModelSaver, CheckpointResume, atomic_torch_save


def test_atomic_save_survives_a_kill_during_the_write(tmp_path: Path) -> None:
    """A process killed in the middle of torch.save leaves the previous file complete and loadable."""
    path = tmp_path / "latest.pt"
    atomic_torch_save({"epoch": 1, "w": torch.arange(4.0)}, path)
    script = textwrap.dedent(
        f"""
        import os, torch
        from monai_jdt.bundle import atomic_torch_save

        def killed_save(obj, handle, *args, **kwargs):
            handle.write(b"half a checkpoint")
            handle.flush()
            os._exit(9)  # as a SIGKILL: no cleanup, no exception handling

        torch.save = killed_save
        atomic_torch_save({{"epoch": 2, "w": torch.zeros(4)}}, {str(path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    loaded = torch.load(path, weights_only=True)
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.arange(4.0))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "latest.pt"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-latest.pt.")  # what a hard kill leaves
    # the handlers remove such leftovers when they start
    CheckpointResume(tmp_path, {"w": torch.nn.Linear(1, 1)}).attach(Engine(lambda e, b: None))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


def test_atomic_save_exception_keeps_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    atomic_torch_save({"a": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_torch_save({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def _trainer(net: torch.nn.Module, opt: torch.optim.Optimizer) -> Engine:
    def step(engine: Engine, batch: torch.Tensor) -> float:
        opt.zero_grad()
        loss = (net(batch) ** 2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    return Engine(step)


def _setup(tmp_path: Path, epochs: int) -> tuple:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    sched = WarmupCosineSchedule(opt, warmup_steps=1, t_total=epochs, warmup_multiplier=0.1)
    trainer = _trainer(net, opt)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: sched.step())
    handler = CheckpointResume(tmp_path, {"model": net, "optimizer": opt, "lr_scheduler": sched})
    handler.attach(trainer)
    return net, opt, sched, trainer, handler


def test_resume_restores_epoch_optimizer_and_schedule_progress(tmp_path: Path) -> None:
    data = [torch.randn(2, 3) for _ in range(3)]  # 3 iterations per epoch
    net1, opt1, _, trainer1, _ = _setup(tmp_path, epochs=4)
    trainer1.run(data, max_epochs=1)  # "killed" after epoch 1
    saved_weight = net1.weight.detach().clone()
    saved_exp_avg = opt1.state[net1.weight]["exp_avg"].clone()

    net2, opt2, sched2, trainer2, handler2 = _setup(tmp_path, epochs=4)  # fresh objects, other init
    started: dict = {}

    @trainer2.on(Events.EPOCH_STARTED)
    def _record_first_epoch(engine: Engine) -> None:
        if not started:
            started.update(
                epoch=engine.state.epoch,
                weight=net2.weight.detach().clone(),
                exp_avg=opt2.state[net2.weight]["exp_avg"].clone(),
                step=float(opt2.state[net2.weight]["step"]),
                lr=opt2.param_groups[0]["lr"],
            )

    trainer2.run(data, max_epochs=4)
    assert handler2.resumed_from == 1
    assert started["epoch"] == 2  # the first epoch run after the resume is epoch 2
    assert torch.equal(started["weight"], saved_weight)
    assert torch.equal(started["exp_avg"], saved_exp_avg)
    assert started["step"] == 3.0
    # the learning rate of epoch 2 is the one an uninterrupted run uses: cosine after 1 warm-up step of 4
    _, opt_ref, sched_ref, trainer_ref, _ = _setup(tmp_path / "ref", epochs=4)
    lrs = []
    trainer_ref.add_event_handler(Events.EPOCH_STARTED, lambda e: lrs.append(opt_ref.param_groups[0]["lr"]))
    trainer_ref.run(data, max_epochs=4)
    assert started["lr"] == pytest.approx(lrs[1])
    assert trainer2.state.epoch == 4 and trainer2.state.iteration == 12


def test_resume_keeps_the_schedule_settings_of_the_new_command(tmp_path: Path) -> None:
    data = [torch.randn(2, 3)]
    *_, trainer1, _ = _setup(tmp_path, epochs=2)
    trainer1.run(data, max_epochs=2)
    _, _, sched2, trainer2, handler2 = _setup(tmp_path, epochs=10)  # a longer schedule
    trainer2.run(data, max_epochs=10)
    assert handler2.resumed_from == 2
    assert sched2.t_total == 10  # not the 2 of the checkpoint
    assert sched2.last_epoch == 10


def test_finished_run_is_not_repeated(tmp_path: Path) -> None:
    data = [torch.randn(2, 3)]
    *_, trainer1, _ = _setup(tmp_path, epochs=2)
    trainer1.run(data, max_epochs=2)
    calls = []
    *_, trainer2, handler2 = _setup(tmp_path, epochs=2)
    trainer2.add_event_handler(Events.ITERATION_COMPLETED, lambda e: calls.append(1))
    trainer2.run(data, max_epochs=2)
    assert handler2.resumed_from == 2 and calls == []


def test_no_resume_starts_over(tmp_path: Path) -> None:
    data = [torch.randn(2, 3)]
    *_, trainer1, _ = _setup(tmp_path, epochs=2)
    trainer1.run(data, max_epochs=2)
    net = torch.nn.Linear(3, 1)
    handler = CheckpointResume(tmp_path, {"model": net}, resume=False)
    trainer = _trainer(net, torch.optim.SGD(net.parameters(), 0.1))
    handler.attach(trainer)
    trainer.run(data, max_epochs=1)
    assert handler.resumed_from is None
    assert torch.load(tmp_path / "latest.pt", weights_only=True)["trainer"]["iteration"] == 1


def test_best_model_saver_only_saves_improvements(tmp_path: Path) -> None:
    net = torch.nn.Linear(2, 1)
    saver = BestModelSaver(tmp_path, net, metric_name="dice")
    evaluator = Engine(lambda e, b: None)
    saver.attach(evaluator)
    for epoch, value in enumerate([0.5, 0.4, 0.7], start=1):
        with torch.no_grad():
            net.weight.fill_(epoch)
        evaluator.state.epoch = epoch
        evaluator.state.metrics = {"dice": value}
        saver(evaluator)
        if epoch == 2:  # 0.4 < 0.5: the file still holds epoch 1's weights
            assert torch.load(tmp_path / "model.pt", weights_only=True)["weight"].flatten().tolist() == [1.0, 1.0]
    assert (saver.best, saver.best_epoch) == (0.7, 3)
    assert torch.load(tmp_path / "model.pt", weights_only=True)["weight"].flatten().tolist() == [3.0, 3.0]
    restored = BestModelSaver(tmp_path, net, metric_name="dice")
    restored.load_state_dict(saver.state_dict())
    evaluator.state.metrics = {"dice": 0.6}
    restored(evaluator)  # worse than the restored best: nothing written
    assert restored.best == 0.7


def test_best_model_saver_lower_is_better_and_missing_metric(tmp_path: Path) -> None:
    saver = BestModelSaver(tmp_path, torch.nn.Linear(2, 1), metric_name="ece", greater_is_better=False)
    engine = Engine(lambda e, b: None)
    engine.state.metrics = {"ece": 0.2}
    saver(engine)
    engine.state.metrics = {"ece": 0.1}
    saver(engine)
    assert saver.best == 0.1
    engine.state.metrics = {"dice": 1.0}
    with pytest.raises(ValueError, match="'ece' not found"):
        saver(engine)
