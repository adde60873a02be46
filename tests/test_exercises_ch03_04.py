"""The checks of chapters 3 and 4's coding exercises: the book's solution passes, typical
mistakes fail with a helpful message, and an unsolved stub reads "not solved yet"."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_edu.exercises import check


# ---------------------------------------------------------------- ch03-block-output-stds
def block_output_stds(model, x):                              # the book's solution
    stds = []

    def record(module, inputs, output):
        stds.append(output.std().item())

    blocks = [block for stage in (model.layer1, model.layer2, model.layer3) for block in stage]
    handles = [block.register_forward_hook(record) for block in blocks]
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return stds


def _hooked(model, x, *, of_input=False, train=True, remove=True, modules=None):
    stds = []
    targets = modules(model) if modules else [b for s in (model.layer1, model.layer2,
                                                          model.layer3) for b in s]
    handles = [m.register_forward_hook(
        lambda m, i, o: stds.append((i[0] if of_input else o).std().item())) for m in targets]
    if train:
        model.train()
    with torch.no_grad():
        model(x)
    if remove:
        for h in handles:
            h.remove()
    return stds


def input_stds(model, x):
    return _hooked(model, x, of_input=True)


def keeps_the_mode(model, x):             # forgets model.train(): eval-mode statistics
    return _hooked(model, x, train=False)


def leaves_hooks(model, x):
    return _hooked(model, x, remove=False)


def every_layer(model, x):                # hooks every conv as well
    return _hooked(model, x, modules=lambda m: [c for c in m.modules()
                                                if isinstance(c, nn.Conv2d)])


def population_std(model, x):             # std without Bessel's correction: also right
    stds = []
    handles = [b.register_forward_hook(lambda m, i, o: stds.append(o.std(unbiased=False)))
               for s in (model.layer1, model.layer2, model.layer3) for b in s]
    model.train()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return torch.stack(stds)               # a tensor of values is accepted as well


def stds_stub(model, x):
    raise NotImplementedError("write block_output_stds")


def test_block_output_stds_solution_passes(book_solution):
    ours = book_solution("03_degradation.ipynb", "block_output_stds")
    feedback = check("ch03-block-output-stds", ours)
    assert feedback.passed, feedback.message


def test_block_output_stds_accepts_population_std_as_a_tensor():
    feedback = check("ch03-block-output-stds", population_std)
    assert feedback.passed, feedback.message


@pytest.mark.parametrize("wrong, words", [
    (input_stds, "input"),
    (keeps_the_mode, "model.train()"),
    (leaves_hooks, "handle.remove()"),
    (every_layer, "one per block"),
])
def test_block_output_stds_mistakes_are_explained(wrong, words):
    feedback = check("ch03-block-output-stds", wrong)
    assert not feedback.passed and feedback.solved, wrong.__name__
    assert words in feedback.message, (wrong.__name__, feedback.message)


def test_block_output_stds_stub_is_not_solved_yet():
    feedback = check("ch03-block-output-stds", stds_stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message


def test_block_output_stds_check_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check("ch03-block-output-stds", block_output_stds)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- ch04-preact-block
class PreActResidualBlock(nn.Module):                       # the book's solution
    def __init__(self, channels):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        return x + out


class FinalRelu(PreActResidualBlock):
    def forward(self, x):
        return torch.relu(super().forward(x))


class PostActivationOrder(PreActResidualBlock):
    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out)) + x


class SkipFromPreactivated(PreActResidualBlock):
    def forward(self, x):
        pre = torch.relu(self.bn1(x))
        return self.conv2(torch.relu(self.bn2(self.conv1(pre)))) + pre


class MissingSecondRelu(PreActResidualBlock):
    def forward(self, x):
        return self.conv2(self.bn2(self.conv1(torch.relu(self.bn1(x))))) + x


class NoSkip(PreActResidualBlock):
    def forward(self, x):
        return self.conv2(torch.relu(self.bn2(self.conv1(torch.relu(self.bn1(x))))))


class OriginalPostBug(PreActResidualBlock):  # every layer applied to x, as in the post
    def forward(self, x):
        out = self.bn1(x)
        out = torch.relu(x)
        out = self.conv1(x)
        out = self.bn2(x)
        out = self.conv2(x)
        return out + x


class WithBias(PreActResidualBlock):
    def __init__(self, channels):
        super().__init__(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)


class OtherNames(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.branch = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False))

    def forward(self, x):
        return x + self.branch(x)


class SharedBatchNorm(PreActResidualBlock):   # bn1 used twice (same channel count fits)
    def forward(self, x):
        out = self.conv1(torch.relu(self.bn1(x)))
        return x + self.conv2(torch.relu(self.bn1(out)))


class BlockStub(nn.Module):
    def __init__(self, channels):
        raise NotImplementedError("write PreActResidualBlock")


def test_preact_block_solution_passes(book_solution):
    ours = book_solution("04_residual_block.ipynb", "PreActResidualBlock")
    feedback = check("ch04-preact-block", ours)
    assert feedback.passed, feedback.message


def test_preact_block_accepts_the_package_block():
    from resnet_edu.blocks import PreActBlock

    feedback = check("ch04-preact-block", lambda c: PreActBlock(c, c))
    assert feedback.passed, feedback.message


def test_preact_block_rejects_the_post_activation_basic_block():
    from resnet_edu.blocks import BasicBlock

    feedback = check("ch04-preact-block", lambda c: BasicBlock(c, c))
    assert not feedback.passed and "post-activation block (BasicBlock)" in feedback.message


@pytest.mark.parametrize("wrong, words", [
    (FinalRelu, "ReLU after the addition"),
    (PostActivationOrder, "post-activation"),
    (SkipFromPreactivated, "carries relu(bn1(x))"),
    (MissingSecondRelu, "between bn2 and conv2"),
    (NoSkip, "skip connection"),
    (OriginalPostBug, "gradient"),
    (WithBias, "bias=False"),
    (OtherNames, "bn1, conv1, bn2, conv2"),
    (SharedBatchNorm, "bn1"),
])
def test_preact_block_mistakes_are_explained(wrong, words):
    feedback = check("ch04-preact-block", wrong)
    assert not feedback.passed and feedback.solved, wrong.__name__
    assert words in feedback.message, (wrong.__name__, feedback.message)


def test_preact_block_stub_is_not_solved_yet():
    feedback = check("ch04-preact-block", BlockStub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message


def test_preact_block_not_a_module():
    feedback = check("ch04-preact-block", lambda c: (lambda x: x))
    assert not feedback.passed and "nn.Module" in feedback.message


def test_preact_block_check_leaves_the_global_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check("ch04-preact-block", PreActResidualBlock)
    assert torch.equal(torch.rand(3), expected)
