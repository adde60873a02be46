"""The check of chapter 2's coding exercise (ch02-batchnorm-by-hand).

The book's own solution (read from the notebook's `solution` cells, so the test sees exactly
what readers see) passes; realistic mistakes fail with a message that names the mistake; an
unsolved stub reads "not solved yet".
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resnet_edu.exercises import check


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
        if (training and not train_uses_running) or (not training and eval_uses_batch):
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
def test_ch02_mistakes_fail_with_a_helpful_message(assert_fails, wrong, expected_words):
    assert_fails(check("ch02-batchnorm-by-hand", wrong), *expected_words, "On x of shape")


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


def test_ch02_stub_reads_not_solved_yet(stub):
    feedback = check("ch02-batchnorm-by-hand", stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in str(feedback)
