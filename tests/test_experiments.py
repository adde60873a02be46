"""resnet_edu.experiments: the measurements behind chapters 3 and 4, checked against
independent computations (autograd by hand, the training loop's own evaluation)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_edu.data import digits_loaders
from resnet_edu.experiments import (
    SweepRun,
    degradation_config,
    evaluate_runs,
    final_train_loss,
    gradient_norms,
    pytorch_default_init_,
    train_depth_sweep,
    without_batchnorm,
)
from resnet_edu.models import cifar_resnet, plain_net
from resnet_edu.train import History, evaluate


@pytest.fixture(scope="module")
def loaders():
    return digits_loaders(batch_size=256, augment=False, seed=0)


def _batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


# ------------------------------------------------------------------ gradient_norms
@pytest.mark.parametrize("build", [lambda: plain_net(14, in_channels=1),
                                   lambda: cifar_resnet(14, in_channels=1)])
def test_gradient_norms_match_autograd_by_hand(build):
    torch.manual_seed(0)
    model = build()
    x, y = _batch()
    norms = gradient_norms(model, x, y)

    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert list(norms) == [n for n, _ in convs]            # every conv, input to output
    model.train()
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [m.weight for _, m in convs])
    for (name, _), grad in zip(convs, grads):
        assert math.isclose(norms[name], grad.norm().item(), rel_tol=1e-5), name


def test_gradient_norms_leave_the_model_as_it_was():
    torch.manual_seed(0)
    model = plain_net(8, in_channels=1).eval()
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    gradient_norms(model, *_batch())
    assert not model.training
    assert all(torch.equal(p.grad, torch.full_like(p, 3.0)) for p in model.parameters())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_gradient_norms_need_a_convolution():
    with pytest.raises(ValueError, match=r"no nn.Conv2d"):
        gradient_norms(nn.Linear(4, 2), torch.randn(3, 4), torch.tensor([0, 1, 0]))


# ------------------------------------------------------------------ without_batchnorm / init
def test_without_batchnorm_removes_every_batchnorm_and_keeps_the_rest():
    torch.manual_seed(0)
    model = plain_net(14, in_channels=1)
    bn_params = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d)
                    for p in m.parameters())
    before = sum(p.numel() for p in model.parameters())
    convs_before = [m.weight.clone() for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert without_batchnorm(model) is model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(p.numel() for p in model.parameters()) == before - bn_params
    convs_after = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(torch.equal(a, b) for a, b in zip(convs_before, convs_after))
    # the forward pass is conv -> relu -> conv ... computed by hand for the stem
    x, _ = _batch(4)
    assert torch.equal(model.relu(model.bn1(model.conv1(x))), torch.relu(model.conv1(x)))
    assert model(x).shape == (4, 10)


def test_pytorch_default_init_matches_a_fresh_layer():
    torch.manual_seed(0)
    model = pytorch_default_init_(plain_net(8, in_channels=1))
    conv = model.layer3[0].conv2                      # 64 -> 64, fan_in = 576
    fresh = nn.Conv2d(64, 64, 3, padding=1, bias=False)   # PyTorch's own default
    bound = 1 / math.sqrt(64 * 9)
    assert conv.weight.abs().max() <= bound + 1e-7
    assert fresh.weight.abs().max() <= bound + 1e-7
    # uniform(-b, b) has variance b^2 / 3 = 1 / (3 fan_in), a sixth of He's 2 / fan_in
    assert math.isclose(conv.weight.var().item(), bound ** 2 / 3, rel_tol=0.05)
    assert math.isclose(conv.weight.var().item(), fresh.weight.var().item(), rel_tol=0.05)


# ------------------------------------------------------------------ final_train_loss
def test_final_train_loss_averages_the_last_epochs():
    history = History()
    for epoch, loss in enumerate([2.0, 1.0, 0.5, 0.25], start=1):
        history.append(epoch=epoch, train_loss=loss, train_acc=0.0, val_loss=0.0,
                       val_acc=0.0, lr=0.1, seconds=0.0)
    assert final_train_loss(history) == 0.25
    assert final_train_loss(history, num_epochs=2) == (0.5 + 0.25) / 2
    with pytest.raises(ValueError):
        final_train_loss(history, num_epochs=5)
    with pytest.raises(ValueError, match="empty"):
        final_train_loss(History())


# ------------------------------------------------------------------ train_depth_sweep
def test_degradation_config_is_the_papers_optimiser_with_overrides():
    config = degradation_config()
    assert (config.lr, config.momentum, config.weight_decay, config.batch_size) == \
        (0.1, 0.9, 1e-4, 128)
    assert config.warmup_steps > 0 and config.schedule == "cosine"
    assert degradation_config(num_epochs=2, seed=3).num_epochs == 2
    with pytest.raises(ValueError):
        degradation_config(lr=-1.0)


def test_train_depth_sweep_is_seeded_and_reproducible(loaders):
    initial = {}

    def build(depth):
        model = plain_net(depth, in_channels=1)
        initial.setdefault(depth, []).append(
            {k: v.clone() for k, v in model.state_dict().items()})
        return model

    config = degradation_config(num_epochs=1, device="cpu")
    first = train_depth_sweep(build, (8, 14), loaders, config)
    second = train_depth_sweep(build, (8,), loaders, config)
    assert list(first) == [8, 14] and all(isinstance(r, SweepRun) for r in first.values())
    assert all(run.depth == depth and len(run.history) == 1 for depth, run in first.items())
    # a depth is initialised from the seeded stream, so a sweep repeated is the same run
    assert all(torch.equal(v, initial[8][1][k]) for k, v in initial[8][0].items())
    assert first[8].history.train_loss == second[8].history.train_loss
    assert first[8].final_train_loss == first[8].history.train_loss[-1]


def test_evaluate_runs_is_the_training_loops_evaluation(loaders):
    torch.manual_seed(0)
    model = cifar_resnet(8, in_channels=1)
    history = History()
    runs = {8: SweepRun(8, model, history)}
    (tr_loss, tr_acc, te_loss, te_acc), = evaluate_runs(runs, loaders).values()
    # the shuffled training loader sums in another order each pass: equal up to rounding
    expected_train, expected_test = evaluate(model, loaders.train), evaluate(model, loaders.test)
    assert math.isclose(tr_loss, expected_train[0], rel_tol=1e-6) and tr_acc == expected_train[1]
    assert (te_loss, te_acc) == expected_test
