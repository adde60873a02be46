"""The checks of chapters 1 and 2's coding exercises.

The book's own solution (read from the notebook's `solution` cells, so the test sees exactly
what readers see) passes; realistic mistakes fail with a message that names the mistake; an
unsolved stub reads "not solved yet".
"""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from resnet_edu.exercises import check





def stub(*args, **kwargs):
    raise NotImplementedError("write your solution here")


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
def test_ch01_mistakes_fail_with_a_helpful_message(wrong, expected_words):
    feedback = check("ch01-conv2d-by-hand", wrong)
    assert not feedback.passed
    assert feedback.solved
    for word in expected_words:
        assert word in feedback.message, feedback.message
    assert "On x of shape" in feedback.message      # names the failing case


def test_ch01_stub_reads_not_solved_yet():
    feedback = check("ch01-conv2d-by-hand", stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in str(feedback)


def test_ch01_crash_becomes_feedback():
    def crashes(x, weight, bias=None, stride=1, padding=0):
        return x @ weight                           # shapes do not fit
    feedback = check("ch01-conv2d-by-hand", crashes)
    assert not feedback.passed and feedback.solved
    assert "raised RuntimeError" in feedback.message


# ----------------------------------------------------------------- ch02-batchnorm-by-hand
def bn_reference(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1,
                 eps=1e-5):
    running_mean, running_var = running_mean.clone(), running_var.clone()
    y = F.batch_norm(x, running_mean, running_var, gamma, beta, training=training,
                     momentum=momentum, eps=eps)
    return y, running_mean, running_var


def bn_in_place_buffers(x, gamma, beta, running_mean, running_var, training=True,
                        momentum=0.1, eps=1e-5):              # fine: updates and returns them
    y = F.batch_norm(x, running_mean, running_var, gamma, beta, training=training,
                     momentum=momentum, eps=eps)
    return y, running_mean, running_var


def _bn(x, gamma, beta, mean, var, eps):
    return (gamma.reshape(1, -1, 1, 1) * (x - mean.reshape(1, -1, 1, 1))
            / torch.sqrt(var.reshape(1, -1, 1, 1) + eps) + beta.reshape(1, -1, 1, 1))


def make_bn(normalise_var="biased", running_var_kind="unbiased", reverse_momentum=False,
            eval_uses_batch=False, train_uses_running=False, eps_outside=False,
            dims=(0, 2, 3), affine=True, update_in_eval=False, update_running=True,
            stats_shape_4d=False):
    """A BatchNorm with one chosen mistake."""
    def bn(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
        batch_mean = x.mean(dim=(0, 2, 3))
        batch_var = x.var(dim=(0, 2, 3), unbiased=False)
        batch_var_unbiased = x.var(dim=(0, 2, 3), unbiased=True)
        new_mean, new_var = running_mean, running_var
        if training or update_in_eval:
            w_new, w_old = (1 - momentum, momentum) if reverse_momentum else (momentum,
                                                                              1 - momentum)
            if update_running:
                new_mean = w_old * running_mean + w_new * batch_mean
                new_var = w_old * running_var + w_new * (
                    batch_var_unbiased if running_var_kind == "unbiased" else batch_var)
        if training and not train_uses_running or (not training and eval_uses_batch):
            mean = x.mean(dim=dims, keepdim=True)
            var = x.var(dim=dims, unbiased=(normalise_var == "unbiased"), keepdim=True)
        else:
            mean = running_mean.reshape(1, -1, 1, 1)
            var = running_var.reshape(1, -1, 1, 1)
        if eps_outside:
            x_hat = (x - mean) / (torch.sqrt(var) + eps)
        else:
            x_hat = (x - mean) / torch.sqrt(var + eps)
        y = (gamma.reshape(1, -1, 1, 1) * x_hat + beta.reshape(1, -1, 1, 1)) if affine else x_hat
        if stats_shape_4d:
            new_mean, new_var = new_mean.reshape(1, -1, 1, 1), new_var.reshape(1, -1, 1, 1, 1)
        return y, new_mean, new_var
    return bn


def test_ch02_book_solution_passes(book_solution):
    feedback = check("ch02-batchnorm-by-hand", book_solution("02_conv_bn_relu.ipynb",
                                                             "batchnorm_by_hand"))
    assert feedback.passed, feedback.message


@pytest.mark.parametrize("solution", [bn_reference, bn_in_place_buffers, make_bn()])
def test_ch02_correct_variants_pass(solution):
    feedback = check("ch02-batchnorm-by-hand", solution)
    assert feedback.passed, feedback.message


@pytest.mark.parametrize("wrong,expected_words", [
    (make_bn(normalise_var="unbiased"), ["unbiased variance", "biased batch variance"]),
    (make_bn(running_var_kind="biased"), ["running_var", "biased batch variance", "n - 1"]),
    (make_bn(reverse_momentum=True), ["other way", "NEW batch"]),
    (make_bn(eval_uses_batch=True), ["evaluation mode", "running_mean and running_var"]),
    (make_bn(train_uses_running=True), ["training mode", "running statistics"]),
    (make_bn(eps_outside=True), ["eps", "inside"]),
    (make_bn(dims=(2, 3)), ["InstanceNorm"]),
    (make_bn(dims=(0, 1, 2, 3)), ["whole tensor"]),
    (make_bn(affine=False), ["gamma and beta are not applied"]),
    (make_bn(update_in_eval=True), ["changed in evaluation mode"]),
    (make_bn(update_running=False), ["not updated"]),
    (make_bn(stats_shape_4d=True), ["shape", "one value per channel"]),
])
def test_ch02_mistakes_fail_with_a_helpful_message(wrong, expected_words):
    feedback = check("ch02-batchnorm-by-hand", wrong)
    assert not feedback.passed and feedback.solved
    for word in expected_words:
        assert word in feedback.message, feedback.message
    assert "On x of shape" in feedback.message


def test_ch02_wrong_return_type_and_in_place_input():
    def returns_only_y(x, gamma, beta, running_mean, running_var, training=True,
                       momentum=0.1, eps=1e-5):
        return bn_reference(x, gamma, beta, running_mean, running_var, training, momentum,
                            eps)[0]

    def scales_gamma_in_place(x, gamma, beta, running_mean, running_var, training=True,
                              momentum=0.1, eps=1e-5):
        result = bn_reference(x, gamma, beta, running_mean, running_var, training, momentum,
                              eps)
        gamma.mul_(2)
        return result

    feedback = check("ch02-batchnorm-by-hand", returns_only_y)
    assert not feedback.passed and "expected a tuple (y, running_mean, running_var)" in \
        feedback.message
    feedback = check("ch02-batchnorm-by-hand", scales_gamma_in_place)
    assert not feedback.passed and "changed `gamma` in place" in feedback.message


def test_ch02_stub_reads_not_solved_yet():
    feedback = check("ch02-batchnorm-by-hand", stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in str(feedback)
