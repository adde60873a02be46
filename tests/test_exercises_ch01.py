"""The check of chapter 1's coding exercise (ch01-conv2d-by-hand).

The book's own solution (read from the notebook's `solution` cells, so the test sees exactly
what readers see) passes; realistic mistakes fail with a message that names the mistake; an
unsolved stub reads "not solved yet".
"""
from __future__ import annotations

import pytest
import torch.nn.functional as F

from resnet_edu.exercises import check


# ------------------------------------------------------------------- ch01-conv2d-by-hand
def conv_reference(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)


def conv_flipped(x, weight, bias=None, stride=1, padding=0):     # textbook convolution
    return F.conv2d(x, weight.flip(-1, -2), bias, stride=stride, padding=padding)


def conv_forgets_bias(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, None, stride=stride, padding=padding)


def conv_ignores_padding(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride)


def conv_ignores_stride(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, padding=padding)


def conv_per_input_channel(x, weight, bias=None, stride=1, padding=0):
    # forgets to sum over input channels: one output per (filter, input channel) pair
    n, c_in = x.shape[:2]
    out = F.conv2d(x.reshape(n * c_in, 1, *x.shape[2:]),
                   weight.reshape(-1, 1, *weight.shape[2:]), stride=stride, padding=padding)
    return out.reshape(n, -1, *out.shape[2:])


def conv_window_off_by_one(x, weight, bias=None, stride=1, padding=0):
    # pads only on the top/left, so every window is shifted by one pixel
    x = F.pad(x, (2 * padding, 0, 2 * padding, 0))
    return F.conv2d(x, weight, bias, stride=stride)


def conv_in_place(x, weight, bias=None, stride=1, padding=0):
    out = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    x.mul_(1.0)
    x.add_(1.0)
    return out


def conv_returns_numpy(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding).numpy()


def conv_float32(x, weight, bias=None, stride=1, padding=0):   # fine: a float32 accumulator
    return F.conv2d(x.float(), weight.float(), None if bias is None else bias.float(),
                    stride=stride, padding=padding)


def test_ch01_book_solution_passes(book_solution):
    feedback = check("ch01-conv2d-by-hand", book_solution("01_convolution.ipynb",
                                                          "conv2d_by_hand"))
    assert feedback.passed, feedback.message
    assert feedback.score == 1.0


@pytest.mark.parametrize("solution", [conv_reference, conv_float32])
def test_ch01_correct_variants_pass(solution):
    feedback = check("ch01-conv2d-by-hand", solution)
    assert feedback.passed, feedback.message


@pytest.mark.parametrize("wrong,expected_words", [
    (conv_flipped, ["flipped", "cross-correlation"]),
    (conv_forgets_bias, ["bias is missing"]),
    (conv_ignores_padding, ["output shape", "padding"]),
    (conv_ignores_stride, ["output shape", "stride"]),
    (conv_per_input_channel, ["output shape", "sum over the input channels"]),
    (conv_window_off_by_one, ["values differ", "window"]),
    (conv_in_place, ["in place", "`x`"]),
    (conv_returns_numpy, ["torch.Tensor", "ndarray"]),
])
def test_ch01_mistakes_fail_with_a_helpful_message(assert_fails, wrong, expected_words):
    assert_fails(check("ch01-conv2d-by-hand", wrong), *expected_words,
                 "On x of shape")                   # names the failing case


def test_ch01_stub_reads_not_solved_yet(stub):
    feedback = check("ch01-conv2d-by-hand", stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in str(feedback)


def test_ch01_crash_becomes_feedback():
    def crashes(x, weight, bias=None, stride=1, padding=0):
        return x @ weight                           # shapes do not fit
    feedback = check("ch01-conv2d-by-hand", crashes)
    assert not feedback.passed and feedback.solved
    assert "raised RuntimeError" in feedback.message
