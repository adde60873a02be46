"""Tests of resnet_edu.train: schedules, fit/evaluate, determinism, resume, errors.

The command line is tested in test_train_cli.py, the speed options in test_train_options.py.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_edu.checkpoint import load_checkpoint
from resnet_edu.data import digits_loaders
from resnet_edu.models import cifar_resnet
from resnet_edu.train import (
    History,
    NonFiniteLossError,
    TrainConfig,
    evaluate,
    fit,
    learning_rate,
    paper_cifar10_config,
    predict,
    select_device,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def loaders():
    return digits_loaders(batch_size=128, seed=0)


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def small_resnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return cifar_resnet(8, in_channels=1)


def _reference_lrs(scheduler_cls, total, config, **kwargs):
    """The learning rate of every step according to torch.optim.lr_scheduler."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=config.lr)
    sched = scheduler_cls(opt, **kwargs)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


# ---------------------------------------------------------------- schedules
def test_step_schedule_matches_multisteplr():
    config = TrainConfig(schedule="step", lr=0.1, milestones=(0.5, 0.75))
    total = 400
    ref = _reference_lrs(torch.optim.lr_scheduler.MultiStepLR, total, config,
                         milestones=[200, 300], gamma=0.1)
    ours = [learning_rate(config, s, total) for s in range(total)]
    assert ours == pytest.approx(ref, rel=1e-12)


def test_cosine_schedule_matches_cosineannealinglr():
    config = TrainConfig(schedule="cosine", lr=0.05)
    total = 250
    ref = _reference_lrs(torch.optim.lr_scheduler.CosineAnnealingLR, total, config,
                         T_max=total, eta_min=0.0)
    ours = [learning_rate(config, s, total) for s in range(total)]
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_warmup_and_constant():
    config = TrainConfig(schedule="constant", lr=0.1, warmup_steps=3)
    assert [learning_rate(config, s, 10) for s in range(5)] == \
        pytest.approx([0.01, 0.01, 0.01, 0.1, 0.1])


def test_paper_recipe():
    # He et al. 2015, sec. 4.2: 45k/5k split, batch 128 -> 352 steps per epoch
    steps = math.ceil(45_000 / 128)
    config = paper_cifar10_config(steps)
    assert (config.lr, config.momentum, config.weight_decay, config.batch_size) == \
        (0.1, 0.9, 1e-4, 128)
    total = config.num_epochs * steps
    assert config.num_epochs == 182 and 64_000 <= total < 64_000 + steps
    lrs = {s: learning_rate(config, s, total) for s in (0, 31_999, 32_100, 47_999, 48_100,
                                                        total - 1)}
    assert lrs[0] == lrs[31_999] == 0.1
    assert lrs[32_100] == pytest.approx(0.01) and lrs[47_999] == pytest.approx(0.01)
    assert lrs[48_100] == pytest.approx(0.001) and lrs[total - 1] == pytest.approx(0.001)


@pytest.mark.parametrize("kwargs, words", [
    ({"num_epochs": 0}, "num_epochs"),
    ({"lr": -0.1}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"momentum": 1.0}, "momentum"),
    ({"weight_decay": -1.0}, "weight_decay"),
    ({"schedule": "linear"}, "'cosine', 'step', 'constant'"),
    ({"milestones": (0.5, 1.5)}, "milestones"),
    ({"warmup_steps": -1}, "warmup_steps"),
    ({"device": "tpu"}, "'auto', 'cpu', 'cuda'"),
])
def test_bad_config_values_are_clear(kwargs, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**kwargs)


# ---------------------------------------------------------------- devices
def test_device_selection(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(RuntimeError, match=r"no CUDA GPU.*device='cpu'"):
        select_device("cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        fit(linear_model(), digits_loaders(), TrainConfig(num_epochs=1, device="cuda"),
            progress=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")


# ---------------------------------------------------------------- fit and evaluate
def test_evaluate_matches_a_direct_computation(loaders):
    model = small_resnet().eval()
    x = torch.cat([xb for xb, _ in loaders.test])
    y = torch.cat([yb for _, yb in loaders.test])
    with torch.no_grad():
        logits = model(x)
    loss, acc = evaluate(model.train(), loaders.test)
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert model.training                        # evaluate restores the mode
    preds, labels = predict(model, loaders.test)
    assert torch.equal(preds, logits.argmax(1)) and torch.equal(labels, y)


def test_fit_learns_and_records_history(loaders):
    model = linear_model()
    _, acc_before = evaluate(model, loaders.val)
    config = TrainConfig(num_epochs=4, lr=0.1, batch_size=128)
    history = fit(model, loaders, config, progress=False)
    assert isinstance(history, History) and len(history) == 4
    assert history.epoch == [1, 2, 3, 4]
    for name in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"):
        assert len(getattr(history, name)) == 4
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_acc[-1] > 0.7 > acc_before + 0.4      # chance is 0.1
    assert history.val_loss[-1] == pytest.approx(evaluate(model, loaders.val)[0])
    assert history.lr == pytest.approx([learning_rate(config, (e + 1) * len(loaders.train) - 1,
                                                      4 * len(loaders.train))
                                        for e in range(4)])
    assert all(0 <= a <= 1 for a in history.train_acc + history.val_acc)


def test_fit_without_validation_loader(loaders):
    history = fit(linear_model(), (loaders.train, None), TrainConfig(num_epochs=1),
                  progress=False)
    assert math.isnan(history.val_acc[0]) and history.train_acc[0] > 0.1


def test_fit_is_deterministic(loaders):
    states = []
    for _ in range(2):
        model = small_resnet(seed=1)
        fit(model, digits_loaders(batch_size=128, seed=0), TrainConfig(num_epochs=1),
            progress=False)
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_resume_continues_exactly(tmp_path):
    config = TrainConfig(num_epochs=3, lr=0.1, schedule="step", milestones=(0.5,))
    straight = small_resnet(seed=2)
    h_straight = fit(straight, digits_loaders(batch_size=128), config, progress=False)

    ckpt = tmp_path / "run.pt"
    interrupted = small_resnet(seed=2)
    _fit_epochs(interrupted, config, ckpt, stop_after=2)      # stops after 2 of 3 epochs
    resumed = small_resnet(seed=99)          # another init: everything must come from the file
    h_resumed = fit(resumed, digits_loaders(batch_size=128), config, progress=False,
                    resume_from=ckpt, checkpoint_path=ckpt)
    assert h_resumed.epoch == [1, 2, 3]
    assert h_resumed.train_loss == h_straight.train_loss
    assert h_resumed.val_acc == h_straight.val_acc
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    state = torch.load(ckpt, weights_only=True)      # plain data only
    assert state["metadata"]["epoch"] == 3 and state["metadata"]["config"]["num_epochs"] == 3


class _Interrupt(Exception):
    pass


def _fit_epochs(model, config, ckpt, stop_after):
    """Run fit with checkpoints and interrupt it (like Ctrl-C) after ``stop_after`` epochs."""
    loaders = digits_loaders(batch_size=128)
    steps = len(loaders.train)

    class Stopping:
        def __init__(self, loader):
            self.loader, self.epoch = loader, 0

        def set_epoch(self, epoch):
            self.epoch = epoch
            self.loader.set_epoch(epoch)

        def __len__(self):
            return steps

        def __iter__(self):
            if self.epoch == stop_after:
                raise _Interrupt
            return iter(self.loader)

    with pytest.raises(_Interrupt):
        fit(model, (Stopping(loaders.train), loaders.val), config, progress=False,
            checkpoint_path=ckpt)
    assert load_checkpoint(ckpt)["metadata"]["epoch"] == stop_after


def test_diverging_loss_raises_a_clear_error(loaders):
    model = linear_model()
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step \d+ .*lower learning rate") \
            as info:
        fit(model, loaders, TrainConfig(num_epochs=2, lr=1e30, schedule="constant"),
            progress=False)
    assert isinstance(info.value, ValueError)


def test_progress_bar_can_be_switched_off(loaders, capsys):
    fit(linear_model(), loaders, TrainConfig(num_epochs=1), progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "val_acc" in err
    fit(linear_model(), loaders, TrainConfig(num_epochs=1), progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_bar_in_a_notebook_is_one_line_updated_in_place():
    """In a kernel without ipywidgets the bar is one display, not one output per redraw."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import importlib.util, torch\n"
        "from torch import nn\n"
        "from resnet_edu.data import digits_loaders\n"
        "from resnet_edu.train import TrainConfig, fit\n"
        "torch.manual_seed(0)\n"
        "model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n"
        "history = fit(model, digits_loaders(batch_size=16), TrainConfig(num_epochs=2))\n"
        "print(importlib.util.find_spec('ipywidgets') is not None)")])
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    NotebookClient(nb, timeout=600, kernel_name="python3",   # generous: CI machines are shared
                   resources={"metadata": {"path": str(REPO)}}).execute(env=env)
    outputs = nb.cells[0].outputs
    has_widgets = outputs[-1].text.strip() == "True"
    bars = [o for o in outputs if o.output_type == "display_data"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert len(bars) == 1
    if not has_widgets:                      # the text line shows the final state
        final = bars[0].data["text/plain"]
        assert final.startswith("epoch 2/2: 100%") and "val_acc=" in final
