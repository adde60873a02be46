"""check_block: accepts every correct block, names every defect, leaves blocks untouched."""
import copy
import re
import threading

import pytest
import torch
from torch import nn

from block_zoo import CORRECT, FAULTY, FixedListing, StochasticDepthBlock
from resnet_edu import blocks, compat
from resnet_edu.diagnostics import (
    DEBUG_VARIABLE,
    PROBLEM_KINDS,
    BlockReport,
    Problem,
    ProblemKind,
    check_block,
    rules,
)
from resnet_edu.original import ResidualBlockListing1, ResidualBlockListing2


def ids(cases):
    return [c.id for c in cases]


# ----------------------------------------------------------------------------- correct blocks
@pytest.mark.parametrize("case", CORRECT, ids=ids(CORRECT))
def test_correct_blocks_pass(case):
    torch.manual_seed(0)
    report = check_block(case.make(), case.input_shape)
    assert report.ok, str(report)
    assert report.problems == []
    assert bool(report.notes) == case.has_note, str(report)


@pytest.mark.parametrize("seed", range(4))
def test_stochastic_depth_never_flagged_whatever_the_seed(seed):
    """Dropping the whole branch at random in training mode is not a defect."""
    torch.manual_seed(seed)
    assert check_block(StochasticDepthBlock(8, p=0.9), (2, 8, 6, 6), seed=seed).ok


@pytest.mark.parametrize("block_cls", [blocks.BasicBlock, blocks.PreActBlock])
@pytest.mark.parametrize("shortcut", ["A", "B", "C"])
@pytest.mark.parametrize("stride", [1, 2])
def test_every_resnet_edu_basic_configuration_passes_zero_init_or_not(block_cls, shortcut,
                                                                      stride):
    torch.manual_seed(0)
    block = block_cls(4, 8, stride, shortcut=shortcut)
    assert check_block(block, (2, 4, 4, 4)).ok
    block.zero_init_residual_()
    assert check_block(block, (2, 4, 4, 4)).ok


def test_zero_init_really_makes_upstream_gradients_zero():
    """The case check_block must not confuse with a disconnected branch: with the last
    BN's gamma at zero, conv1's gradient is exactly zero (but not None)."""
    block = blocks.BasicBlock(4, 4).zero_init_residual_()
    out = block(torch.randn(2, 4, 5, 5))
    out.sum().backward()
    assert block.conv1.weight.grad is not None
    assert torch.count_nonzero(block.conv1.weight.grad) == 0
    assert check_block(blocks.BasicBlock(4, 4).zero_init_residual_(), (2, 4, 5, 5)).ok


# ----------------------------------------------------------------------------- faulty blocks
@pytest.mark.parametrize("case", FAULTY, ids=ids(FAULTY))
def test_faulty_blocks_are_caught_with_the_right_diagnosis(case):
    torch.manual_seed(0)
    report = check_block(case.make(), case.input_shape)
    assert not report.ok
    assert set(report.kinds) == set(case.kinds), str(report)
    # every problem is one plain sentence that names what it is about
    for problem in report.problems:
        text = str(problem)
        assert isinstance(problem, Problem) and problem.kind in PROBLEM_KINDS
        assert "\n" not in text and text.endswith((".", "?")), text
        assert "Traceback" not in text and "0x" not in text
        # named parameters/layers really appear in the sentence (or are summarised)
        for name in problem.names[:7]:
            assert name in text, (name, text)


def test_listing1_report_names_the_parameters_and_the_cause():
    report = check_block(ResidualBlockListing1(8, 8), (2, 8, 6, 6))
    by_kind = {p.kind: str(p) for p in report.problems}
    no_grad = by_kind["no_gradient"]
    for name in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"):
        assert name in no_grad
    assert "overwritten" in no_grad and "x" in no_grad
    assert "relu(x)" in by_kind["ignores_branch"]


def test_listing2_report_names_the_batchnorms_that_update_statistics():
    report = check_block(ResidualBlockListing2(8, 8), (2, 8, 6, 6))
    problem = next(p for p in report.problems if p.kind == "discarded_bn_update")
    assert set(problem.names) == {"bn1", "bn2"}
    assert "running" in str(problem)


@pytest.mark.parametrize("number,layer", [(1, "conv2"), (2, "bn1")])
def test_channel_crash_is_explained(number, layer):
    cls = ResidualBlockListing1 if number == 1 else ResidualBlockListing2
    report = check_block(cls(3, 16), (2, 3, 8, 8))
    (problem,) = report.problems
    text = str(problem)
    assert problem.kind == "crash"
    assert f"in {layer}" in text and "16" in text and "got 3" in text
    assert "input x" in text  # the cause: the layer reads x


def test_wrong_input_channels_point_at_input_shape():
    report = check_block(blocks.BasicBlock(16, 16), (2, 3, 8, 8))
    assert report.kinds == ["crash"]
    assert "input_shape" in str(report.problems[0])


def test_stride_mismatch_names_both_shapes():
    import torchvision.models.resnet as tv

    text = str(check_block(tv.BasicBlock(8, 16, stride=2), (2, 8, 6, 6)).problems[0])
    assert "(2, 16, 3, 3)" in text and "(2, 8, 6, 6)" in text and "shortcut" in text


def test_batch_of_one_in_training_mode_is_explained():
    report = check_block(blocks.BasicBlock(4, 4), (1, 4, 1, 1))
    assert report.kinds == ["crash"] and "at least 2" in str(report.problems[0])


class Exploding(nn.Module):
    def __init__(self, error=KeyError("oops")):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.error = error

    def forward(self, x):
        raise self.error


def test_block_raising_anything_never_escapes():
    report = check_block(Exploding(), (2, 2, 3, 3))
    assert report.kinds == ["crash"] and "KeyError" in str(report.problems[0])


def test_redundant_bias_is_a_note_not_a_problem():
    report = check_block(FixedListing(4, 4), (2, 4, 5, 5))
    assert report.ok and not report.notes
    block = FixedListing(4, 4)
    block.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=True)
    report = check_block(block, (2, 4, 5, 5))
    assert report.ok and len(report.notes) == 1
    assert "conv1.bias" in report.notes[0] and "bn1" in report.notes[0]


# ----------------------------------------------------------------------------- leaving no trace
def snapshot(block):
    return {
        "state": {k: v.clone() for k, v in block.state_dict().items()},
        "dtypes": {k: v.dtype for k, v in block.state_dict().items()},
        "params": [id(p) for p in block.parameters()],
        "requires_grad": [p.requires_grad for p in block.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in block.parameters()],
        "modes": [m.training for m in block.modules()],
        "hooks": sum(compat.forward_hook_count(m) for m in block.modules()),
    }


def assert_same(before, after):
    assert before["state"].keys() == after["state"].keys()
    for k in before["state"]:
        assert torch.equal(before["state"][k], after["state"][k]), k
    assert before["dtypes"] == after["dtypes"]
    for key in ("params", "requires_grad", "modes", "hooks"):
        assert before[key] == after[key], key
    for a, b in zip(before["grads"], after["grads"]):
        assert (a is None and b is None) or torch.equal(a, b)


STATE_CASES = [c for c in CORRECT + FAULTY
               if c.id in {"resnet_edu-basic-B-stride2", "torchvision-bottleneck-zero-init",
                           "rezero", "post-listing2", "post-listing2-3-to-16",
                           "inplace-add-into-input", "shared-bn", "no-skip", "dropout"}]


@pytest.mark.parametrize("case", STATE_CASES, ids=ids(STATE_CASES))
def test_checking_leaves_the_block_exactly_as_it_was(case):
    torch.manual_seed(0)
    block = case.make()
    # an unusual but legal state: mixed modes, a frozen parameter, a stale gradient,
    # BN statistics that are not the defaults
    block.train()
    modules = [m for m in block.modules() if m is not block]
    if modules:
        modules[0].eval()
    params = list(block.parameters())
    params[0].requires_grad_(False)
    params[-1].grad = torch.full_like(params[-1], 0.5)
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.fill_(0.25)
            m.num_batches_tracked.fill_(7)
    before = snapshot(block)
    check_block(block, case.input_shape)
    assert_same(before, snapshot(block))


def test_blocks_that_cannot_be_deep_copied_are_restored_too():
    class Locked(FixedListing):
        def __init__(self):
            super().__init__(4, 4)
            self.lock = threading.Lock()  # deepcopy fails on this

    block = Locked()
    with pytest.raises(TypeError):
        copy.deepcopy(block)
    block.bn1.running_var.fill_(2.0)
    before = snapshot(block)
    report = check_block(block, (2, 4, 5, 5))
    assert report.ok, str(report)
    assert_same(before, snapshot(block))

    class LockedListing(ResidualBlockListing2):
        def __init__(self):
            super().__init__(4, 4)
            self.lock = threading.Lock()

    block = LockedListing()
    before = snapshot(block)
    assert "discarded_bn_update" in check_block(block, (2, 4, 5, 5)).kinds
    assert_same(before, snapshot(block))


def test_lazy_blocks_are_checked_without_being_initialised():
    from block_zoo import LazyBlock

    block = LazyBlock(8)
    assert check_block(block, (2, 8, 6, 6)).ok
    assert isinstance(block.conv1.weight, nn.parameter.UninitializedParameter)
    assert isinstance(block.bn1.running_mean, nn.parameter.UninitializedBuffer)


def test_global_rng_is_untouched_and_reports_are_deterministic():
    torch.manual_seed(123)
    listing, dropout = ResidualBlockListing2(8, 8), nn.Sequential(nn.Dropout(0.5))
    state = torch.get_rng_state()
    first = str(check_block(listing, (2, 8, 6, 6)))
    second = str(check_block(listing, (2, 8, 6, 6)))
    check_block(dropout, (2, 3))
    assert torch.equal(state, torch.get_rng_state())
    assert first == second


def test_input_modification_check_sees_inplace_relu_on_x():
    class PreActInplace(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(4)
            self.relu = nn.ReLU(inplace=True)
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            out = self.conv(self.relu(x))  # the bug: the in-place ReLU overwrites x
            return out + self.bn(x)

    report = check_block(PreActInplace(), (2, 4, 5, 5))
    problem = next(p for p in report.problems if p.kind == "modifies_input")
    assert problem.names == ("relu",) and "inplace=True" in str(problem)


def test_check_block_prints_nothing(capsys):
    class Chatty(FixedListing):
        def forward(self, x):
            print("shape:", x.shape)
            import warnings
            warnings.warn("hello", stacklevel=1)
            return super().forward(x)

    report = check_block(Chatty(4, 4), (2, 4, 5, 5))
    assert report.ok
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ----------------------------------------------------------------------------- the report object
def test_report_text_for_a_good_and_a_bad_block():
    good = check_block(blocks.BasicBlock(4, 8, 2), (2, 4, 6, 6))
    assert isinstance(good, BlockReport) and good.ok
    assert str(good) == ("✓ BasicBlock on input (2, 4, 6, 6) -> output (2, 8, 3, 3): "
                         "no problems found.")
    bad = check_block(ResidualBlockListing1(4, 4), (2, 4, 6, 6))
    lines = str(bad).splitlines()
    assert lines[0].startswith("✗ Residual_Blcok on input (2, 4, 6, 6)")
    assert lines[0].endswith(f"{len(bad.problems)} problems")
    numbered = [re.match(r"  (\d+)\. ", line) for line in lines[1:]]
    assert [m.group(1) for m in numbered if m] == [str(i) for i in range(1, len(bad.problems) + 1)]
    assert all(line.startswith("     ") for line, m in zip(lines[1:], numbered) if not m)
    assert max(len(line) for line in lines) <= BlockReport.WIDTH
    # the wrapped text is the problems' sentences, word for word
    body = " ".join(line.strip() for line in lines[1:])
    for i, problem in enumerate(bad.problems, 1):
        assert f"{i}. {problem}" in body
    assert "ok=False" in repr(bad)


def test_report_pretty_prints_as_text_in_notebooks():
    from IPython.lib.pretty import pretty

    report = check_block(ResidualBlockListing2(4, 4), (2, 4, 6, 6))
    assert pretty(report) == str(report)


def test_problem_kinds_are_listed_in_report_order():
    report = check_block(ResidualBlockListing2(4, 4), (2, 4, 6, 6))
    order = [PROBLEM_KINDS.index(k) for k in report.kinds]
    assert order == sorted(order)


# ----------------------------------------------------------------------------- argument errors
def test_passing_the_class_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"instance such as BasicBlock\(16, 16\)"):
        check_block(blocks.BasicBlock, (2, 16, 8, 8))
    with pytest.raises(TypeError, match=r"nn.Module"):
        check_block("BasicBlock", (2, 16, 8, 8))


@pytest.mark.parametrize("shape", [(16,), (2, 0, 4, 4), (2, 3.5, 4, 4), "2,3,4,4", None])
def test_bad_input_shapes_are_clear_value_errors(shape):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        check_block(blocks.BasicBlock(3, 3), shape)


def test_three_numbers_for_a_conv2d_block_is_a_shape_error_not_a_crash():
    """(2, 16, 8) would run as an unbatched image and be blamed on the block."""
    with pytest.raises(ValueError, match=r"has 3 numbers .* \(N, C, H, W\)"):
        check_block(blocks.BasicBlock(16, 16), (2, 16, 8))
    with pytest.raises(ValueError, match=r"\(N, C, L\)"):
        check_block(nn.Sequential(nn.Conv1d(4, 4, 3, padding=1)), (2, 4, 5, 5))
    # blocks without spatial layers take any layout (the MLP block of the zoo: N, C)
    assert check_block(nn.Sequential(nn.Linear(4, 4)), (2, 3, 4)).kinds == ["no_skip"]


# ----------------------------------------------------------------------------- the design
def test_every_problem_kind_has_a_rule_and_a_zoo_case():
    """Adding a rule = one function + one faulty block in the zoo that shows it."""
    assert set(rules.RULES) == set(ProblemKind)
    shown = {kind for case in FAULTY for kind in case.kinds}
    assert shown == set(PROBLEM_KINDS), set(PROBLEM_KINDS) - shown
    assert tuple(kind.value for kind in ProblemKind) == PROBLEM_KINDS


def test_problem_kinds_compare_equal_to_their_plain_strings():
    report = check_block(ResidualBlockListing2(4, 4), (2, 4, 6, 6))
    assert "discarded_bn_update" in report.kinds
    assert all(isinstance(k, ProblemKind) and str(k) == k.value for k in report.kinds)
    assert Problem("crash", "x.").kind is ProblemKind.CRASH


def _broken_rule(obs):
    raise ZeroDivisionError("a bug in a rule")
    yield  # pragma: no cover (a generator, like the real rules)


def test_a_rule_that_raises_is_reported_as_could_not_finish(monkeypatch):
    """A bug in the checker must never read as "no problems found"."""
    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)
    monkeypatch.setitem(rules.RULES, ProblemKind.NO_SKIP, _broken_rule)
    report = check_block(blocks.BasicBlock(4, 4), (2, 4, 5, 5))
    assert not report.ok and report.kinds == ["crash"]
    assert str(report.problems[0]).startswith(
        "check_block could not finish (ZeroDivisionError: a bug in a rule)")


def test_the_debug_variable_lets_a_checker_bug_raise(monkeypatch):
    monkeypatch.setitem(rules.RULES, ProblemKind.NO_SKIP, _broken_rule)
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    with pytest.raises(ZeroDivisionError, match="a bug in a rule"):
        check_block(blocks.BasicBlock(4, 4), (2, 4, 5, 5))
    monkeypatch.setenv(DEBUG_VARIABLE, "0")
    assert check_block(blocks.BasicBlock(4, 4), (2, 4, 5, 5)).kinds == ["crash"]


def test_only_the_blocks_own_exceptions_become_findings(monkeypatch):
    """The block raising is a finding about the block even with the debug variable set:
    debugging re-raises the checker's bugs, not the student's."""
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    report = check_block(Exploding(ZeroDivisionError("student's bug")), (2, 2, 3, 3))
    assert report.kinds == ["crash"]
    assert "ZeroDivisionError: student's bug" in str(report.problems[0])
    assert "could not finish" not in str(report)
