"""Rules about the two paths of a residual block: the branch and the skip connection."""
from __future__ import annotations

from typing import Iterator, Optional

import torch

from ..observe import Observation
from ..report import Problem, ProblemKind
from ..words import join
from . import rule


def _completed(obs: Observation):
    """The gradient run, when its forward pass completed (else None)."""
    run = obs.gradients
    return run if run is not None and run.crash is None else None


@rule(ProblemKind.NO_INPUT_DEPENDENCE)
def no_input_dependence(obs: Observation) -> Iterator[Problem]:
    run = _completed(obs)
    if run is not None and run.x_grad is None:
        yield Problem(ProblemKind.NO_INPUT_DEPENDENCE,
                      "The block's output does not depend on its input x at all: x is "
                      "overwritten or discarded before it reaches the output (check which "
                      "variable the first layer and the skip connection receive).")


def _equals(run) -> Optional[str]:
    """'relu(x)' or 'x' when the output is exactly that, in training and in eval mode."""
    out, x = run.output, run.x
    tol = 1e-10 if run.dtype == torch.float64 else 1e-5
    scale = max(float(x.abs().max()) if x.numel() else 1.0, 1.0)

    def close(a, b) -> bool:
        return tuple(a.shape) == tuple(b.shape) and \
            bool(torch.allclose(a, b, rtol=0.0, atol=tol * scale))

    for name, fn in (("relu(x)", torch.relu), ("x", lambda t: t)):
        if close(out, fn(x)):
            # must hold in eval mode too (when the eval-mode experiment ran)
            if run.eval_output is None or close(run.eval_output, fn(run.eval_x)):
                return name
            return None
    return None


@rule(ProblemKind.IGNORES_BRANCH)
def ignores_branch(obs: Observation) -> Iterator[Problem]:
    """The output is relu(x) or x whatever the weights, or no weight is connected."""
    run = _completed(obs)
    if run is None or not run.grads:
        return
    equals = _equals(run)
    connected = any(g is not None for g in run.grads.values())
    eval_connected = any(g is not None for g in (run.eval_grads or {}).values())
    if run.x_grad is not None and not connected and not eval_connected:
        if equals == "relu(x)":
            message = ("The block ignores its residual branch: its output is exactly relu(x) "
                       "whatever its weights are, so the whole block is just a ReLU.")
        elif equals == "x":
            message = ("The block ignores its residual branch: its output is exactly its "
                       "input x whatever its weights are, so the block does nothing (does "
                       "forward() return the right variable?).")
        else:
            message = ("The block's residual branch cannot learn: no parameter of the block "
                       "receives a gradient from its output.")
        yield Problem(ProblemKind.IGNORES_BRANCH, message)
    elif connected and equals is not None:
        yield Problem(ProblemKind.IGNORES_BRANCH,
                      f"The block ignores its residual branch: even with all weights non-zero "
                      f"its output is exactly {equals}, so the branch's result is cancelled "
                      f"or multiplied by zero before the addition.")


@rule(ProblemKind.NO_SKIP)
def no_skip(obs: Observation) -> Iterator[Problem]:
    """Zeroing any one of the branch's first layers cuts x off from the output."""
    probe = obs.skip
    if probe is None or probe.bypassed is not None or not probe.tried:
        return
    tried = list(probe.tried)
    yield Problem(ProblemKind.NO_SKIP,
                  f"The block has no skip connection from its input: every path from x to "
                  f"the output runs through {join(tried)} (zero "
                  f"{'it' if len(tried) == 1 else 'any one of them'} and the output no "
                  f"longer depends on x); keep identity = x (or a projection of x) before "
                  f"the first layer and add it at the end: out = out + identity.", names=tried)


@rule(ProblemKind.DETACHED_SKIP)
def detached_skip(obs: Observation) -> Iterator[Problem]:
    """x reaches the output around the branch, but autograd does not see that path."""
    probe = obs.skip
    if probe is not None and probe.bypassed is not None and not probe.bypass_has_gradient:
        yield Problem(ProblemKind.DETACHED_SKIP,
                      "The skip connection carries x forward but not its gradient: the "
                      "shortcut is cut off from autograd (x.detach(), .data or "
                      "torch.no_grad()), so the gradient cannot flow back along it, which is "
                      "the point of a skip connection; add x itself: out = out + identity.")


@rule(ProblemKind.NO_PARAMETERS)
def no_parameters(obs: Observation) -> Iterator[Problem]:
    run = _completed(obs)
    if run is not None and not run.grads and all(c.registered for c in run.inner):
        yield Problem(ProblemKind.NO_PARAMETERS,
                      "The block has no trainable parameters, so there is no residual branch "
                      "to learn: were the layers assigned to self in __init__?")
