"""The grader's own test of a class exercise: the verdict does not rest on the check alone.

A class exercise's check (``check_block``'s hooks, the zero-weight identity, ...) needs the
student's module in its own process, so it runs next to the answer, where a student who
patches ``torch.allclose`` or the check could make it say anything. The exercise's
:class:`~resnet_edu.exercises._kit.ModuleProbe` adds a test that the grader runs itself:

1. ``build``: the answering process constructs ``cls(*args)`` and reports its state_dict;
   the grader checks its keys and shapes against the reference's (a module built here);
2. the grader draws weights, BatchNorm statistics, an input and an output gradient from
   the seed of this grading run, and loads them into the reference;
3. ``run``, in training and in evaluation mode: the answering process constructs the class
   afresh, loads those weights (strictly), runs the input forward and the gradient
   backward, and reports the output, the gradient of the input, every parameter's gradient
   and the state_dict afterwards (:func:`~resnet_edu.classroom.kernel.run_module`, which
   the grader runs on its reference too);
4. the grader compares everything with its own ``torch.allclose``.

Only plain tensors come back; a student who patches the comparisons in the answering
process changes nothing here, and to pass has to produce the reference's numbers for
weights and inputs drawn when the grading runs.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, Iterator, Tuple

import torch

from ..exercises._kit import ModuleProbe, generator, isolated_random_state, randomise_, salt_of
from .kernel import run_module
from .protocol import Build, ModuleReply, Run
from .remote import raise_for

Ask = Callable[..., ModuleReply]   # ask(Build or Run, **fields) -> the process's reply
MODES = ((True, "training"), (False, "evaluation"))
HINTS = {
    "output": "Check the order of the layers in forward: the block must compute the "
              "exercise's function for any weights, in both modes",
    "input": "Compute the output from x with differentiable operations only (no .detach(), "
             "no torch.no_grad(), no in-place change of x)",
    "grad": "Every layer must take part in the output as it does in the reference",
    "state": "Create each BatchNorm with the default momentum and eps, and apply each one "
             "exactly once per forward pass",
}


def call_text(name: str, args: tuple, kwargs: dict) -> str:
    """``FixedResidualBlock(8, 16, stride=2)``."""
    return f"{name}({', '.join([*map(repr, args), *(f'{k}={v!r}' for k, v in kwargs.items())])})"


def probe_class(spec: ModuleProbe, ask: Ask, name: str, seed: int) -> str:
    """"" when the student's class ``name`` agrees with the reference on every case of
    ``spec``; otherwise the sentence that says where it differs. The student's process is
    reached only through ``ask``; ``MissingName`` and ``RuleBroken`` propagate."""
    with isolated_random_state():
        g = generator(4242, salt_of(seed))
        for args, kwargs, shape in spec.calls():
            problem = _case(spec, ask, name, (args, kwargs, shape), g)
            if problem:
                return problem
    return ""


def _case(spec: ModuleProbe, ask: Ask, name: str, case, g: torch.Generator) -> str:
    args, kwargs, shape = case
    call = call_text(name, args, kwargs)
    reference = spec.reference(*args, **kwargs)
    built = ask(Build, args=list(args), kwargs=kwargs)
    problem = _failure(built, name, f"The grader built {call} itself")
    if problem:
        return problem
    mapping, problem = key_map(built.state, reference.state_dict(), spec)
    if problem:
        return f"The grader built {call} itself: {problem}"
    randomise_(reference, g)
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    x = torch.randn(shape, generator=g)
    with torch.no_grad():
        grad_output = torch.randn(copy.deepcopy(reference).eval()(x).shape, generator=g)
    lead = (f"The grader ran {call} itself (weights, BatchNorm statistics and an input of "
            f"shape {tuple(shape)} drawn at grading time) next to {spec.reference_name} loaded "
            f"with the same weights")
    for training, mode in MODES:
        want = run_module(spec.reference(*args, **kwargs), state, training, x, grad_output, [])
        seen = ask(Run, args=list(args), kwargs=kwargs, training=training, x=x,
                   grad_output=grad_output, state={mapping[k]: v for k, v in state.items()})
        problem = (_failure(seen, name, f"{lead}, in {mode} mode") or
                   _difference(seen.seen, want, mapping, spec, f"{lead}: in {mode} mode"))
        if problem:
            return problem
    return ""


def _failure(reply: ModuleReply, name: str, lead: str) -> str:
    """What a ``build`` or ``run`` reply says went wrong in the student's code, or ""."""
    raise_for(reply, name)
    if reply.not_module is not None:
        return f"{lead}, and got a {reply.not_module}, not an nn.Module."
    error = reply.error
    if error:
        where = f" ({error['where']})" if error.get("where") else ""
        return (f"{lead}, and {reply.stage} failed with "
                f"{error.get('type')}: {error.get('message')}{where}. It must work for any "
                f"weights the grader loads with load_state_dict(strict=True).")
    return ""


def key_map(got, want: Dict[str, torch.Tensor], spec: ModuleProbe
            ) -> Tuple[Dict[str, str], str]:
    """(reference key -> the student's key, "") or ({}, why the state_dicts differ). Keys
    under ``spec.renamable`` match a student key of the same last name and shape."""
    if not isinstance(got, dict) or not all(isinstance(v, torch.Tensor) for v in got.values()):
        return {}, "its state_dict does not hold only tensors."
    prefix = f"{spec.renamable}." if spec.renamable else None
    mapping = {k: k for k in want if not (prefix and k.startswith(prefix))}
    spare = [k for k in got if k not in mapping]
    for key in [k for k in want if k not in mapping]:
        same = [k for k in spare if k.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1]
                and got[k].shape == want[key].shape]
        if len(same) == 1:
            mapping[key] = same[0]
            spare.remove(same[0])
    missing = [k for k in want if mapping.get(k) not in got]
    unexpected = sorted(set(got) - set(mapping.values()))
    if missing or unexpected:
        layers = sorted({k.split(".")[0] for k in want})
        free = (f" (only the layers that {spec.reference_name} calls `{spec.renamable}` may "
                f"have names of their own)" if spec.renamable else "")
        return {}, (f"its parameters and buffers are not those of {spec.reference_name} "
                    f"(missing: {', '.join(missing[:4]) or '-'}; unexpected: "
                    f"{', '.join(unexpected[:4]) or '-'}). Build exactly the layers the "
                    f"exercise asks for ({', '.join(layers)}){free}, convolutions without "
                    f"bias.")
    for key, value in want.items():
        if got[mapping[key]].shape != value.shape:
            return {}, (f"{mapping[key]} has shape {tuple(got[mapping[key]].shape)}, expected "
                        f"{tuple(value.shape)} (as in {spec.reference_name}).")
    return mapping, ""


def _compared(seen: dict, want: dict, mapping: Dict[str, str]) -> Iterator[tuple]:
    """(what, kind, the student's tensor, the reference's) for everything compared."""
    grads, state = (seen.get(k) if isinstance(seen.get(k), dict) else {}
                    for k in ("grads", "state"))
    yield "the output", "output", seen.get("output"), want["output"]
    yield "the gradient that reaches the input", "input", seen.get("input_grad"), \
        want["input_grad"]
    for key, grad in want["grads"].items():
        yield f"the gradient of {mapping[key]}", "grad", grads.get(mapping[key]), grad
    for key, value in want["state"].items():
        yield f"{mapping[key]} after the forward pass", "state", state.get(mapping[key]), value


def _differs(got, want: torch.Tensor, spec: ModuleProbe) -> str:
    """How ``got`` differs from ``want`` (a phrase), or ""."""
    if not isinstance(got, torch.Tensor):
        return "is missing (None)" if got is None else f"is a {type(got).__name__}, not a tensor"
    if got.shape != want.shape:
        return f"has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    got = got.to(want.dtype)
    if not want.is_floating_point():
        return "" if torch.equal(got, want) else f"is {got.tolist()}, expected {want.tolist()}"
    # atol in units of the tensor's largest entry: a weight's gradient sums over the batch,
    # and its rounding depends on how many threads each process uses
    scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
    if torch.allclose(got, want, rtol=spec.rtol, atol=spec.atol * scale):
        return ""
    return f"differs (largest difference {float((got - want).abs().nan_to_num(1e9).max()):.3g})"


def _difference(seen, want: dict, mapping: Dict[str, str], spec: ModuleProbe,
                lead: str) -> str:
    if not isinstance(seen, dict):
        return f"{lead} your block's results could not be read."
    for what, kind, got, expected in _compared(seen, want, mapping):
        if expected is None:          # the reference has no such gradient: nothing to compare
            continue
        problem = _differs(got, expected.detach(), spec)
        if problem:
            return f"{lead} {what} {problem}. {HINTS[kind]}."
    return ""
