"""Block exercises, declared: one :class:`ModuleCheck` and one runner, :func:`run_module_check`.

A block exercise asks for a class; its :class:`ModuleCheck` names the reference module, the
constructor calls and input shapes, the layers that may be renamed, the tolerances, the
known mistakes (:class:`OutputMistake`, outputs computed from the reference with the same
weights) and the exact properties (:class:`Identity`: "with conv2 at zero the block is the
identity"). :func:`run_module_check` is the one runner. It reaches the student's class only
through ``ask("build" | "run", **fields)``:

1. ``build``: construct ``cls(*args, **kwargs)`` and report its state_dict; the runner
   matches its keys and shapes with the reference's (:func:`key_map`);
2. the runner draws weights and BatchNorm statistics (:func:`~._kit.randomise_`), an input
   and an output gradient from the check's salt;
3. ``run``, in training and in evaluation mode: construct the class afresh, load those
   weights strictly, run the input forward and the gradient backward, report the output,
   the input's gradient, every parameter's gradient and the state_dict after
   (:func:`run_module`, which the runner applies to the reference too); the runner
   compares them all, and names the first known mistake the output matches;
4. ``run`` again for each property, on weights the property changes.

In the notebook ``ask`` is :func:`local_ask` (the class is built in this process). The
grader passes its own ``ask`` (``resnet_edu.classroom.probe``), which sends the requests to
the answering process: the same runner computes the verdict in the grader's process, on
weights and inputs drawn at grading time. ``explain`` (e.g. ``check_block``'s findings)
only writes the notebook's feedback once the runner has failed; it is never the verdict.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch
from torch import nn

from ._kit import generator, isolated_random_state, randomise_

Ask = Callable[..., Any]   # ask("build" or "run", **fields) -> a reply (see LocalReply)
_WHEN = {"The grader": "at grading time"}
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


@dataclass(frozen=True)
class OutputMistake:
    """A known wrong block: ``expected(reference, x)`` computes its output from the reference's
    layers (weights loaded, in the mode under test); ``hint`` explains the mistake."""

    expected: Callable[[Any, torch.Tensor], torch.Tensor]   # (reference, x) -> output
    hint: str


@dataclass(frozen=True)
class Identity:
    """A property: with the weights ``change(state)`` edits (in place), in ``training`` mode
    or not, the block returns its input exactly; ``hint`` says what to fix when it does not."""

    change: Callable[[Dict[str, torch.Tensor]], None]
    claim: str
    hint: str
    training: bool = True


@dataclass(frozen=True)
class ModuleCheck:
    """A block exercise, declared. ``reference(*args, **kwargs)`` builds the module that the
    student's ``cls(*args, **kwargs)`` must equal; ``cases`` lists ``(args, input_shape)`` or
    ``(args, input_shape, kwargs)``. The state_dicts must have the same keys and shapes,
    except that keys under ``renamable`` (a layer the exercise does not name) may sit under
    another name. Tensors are compared with ``torch.allclose(rtol, atol)``, ``atol`` in units
    of the tensor's largest entry when that exceeds 1 (weight gradients sum over the batch).
    ``explain(cls)``: a finding for the notebook's feedback when the runner fails, or "".
    ``requires(cls)``: what the class lacks beyond its numbers (a method of the block
    protocol, say), or "": tested in process, so in the grader's answering process."""

    reference: Callable[..., nn.Module]
    cases: Tuple[tuple, ...]
    reference_name: str
    renamable: str = ""
    rtol: float = 1e-4
    atol: float = 1e-5
    mistakes: Tuple[OutputMistake, ...] = ()
    properties: Tuple[Identity, ...] = ()
    explain: Optional[Callable[[Any], str]] = None
    requires: Optional[Callable[[Any], str]] = None
    success: str = ""
    seed: int = 4242

    def __post_init__(self):
        if not self.cases or any(len(c) not in (2, 3) for c in self.cases):
            raise ValueError("ModuleCheck cases are (args, input_shape) or (args, input_shape, "
                             f"kwargs) tuples, at least one; got {self.cases!r}")

    def calls(self) -> Iterator[Tuple[tuple, dict, Tuple[int, ...]]]:
        """``(args, kwargs, input_shape)`` of every case."""
        for case in self.cases:
            yield tuple(case[0]), dict(case[2]) if len(case) == 3 else {}, tuple(case[1])


def run_module(module, state: dict, training: bool, x, grad_output, stage: list) -> dict:
    """Load ``state`` (strictly), set the mode, run ``x`` forward (as a non-leaf tensor,
    as inside a network) and ``grad_output`` backward; return the output, the gradient of
    the input, each parameter's gradient and the state_dict afterwards (the running
    statistics). ``stage`` names the step under way, for the error message. The runner
    applies it to the reference, the answering process and :func:`local_ask` to the
    student's class."""
    stage[:] = ["loading the grader's weights with load_state_dict(strict=True)"]
    module.load_state_dict(state, strict=True)
    module.train(training)
    stage[:] = ["the forward pass"]
    leaf = x.detach().clone().requires_grad_(True)
    out = module(leaf.clone())
    stage[:] = ["the backward pass"]
    if isinstance(out, torch.Tensor) and out.requires_grad and out.shape == grad_output.shape:
        out.backward(grad_output)
    return {"output": out, "input_grad": leaf.grad,
            "grads": {n: p.grad for n, p in module.named_parameters()},
            "state": module.state_dict()}


@dataclass
class LocalReply:
    """What :func:`local_ask` answers (the fields of the grader's ``ModuleReply`` it reads)."""

    state: Optional[dict] = None
    seen: Optional[dict] = None
    error: Optional[dict] = None
    stage: str = ""
    not_module: Optional[str] = None
    extra: dict = field(default_factory=dict)


def local_ask(cls) -> Ask:
    """``ask`` for a class in this process (the notebook's check). An unsolved stub's
    ``NotImplementedError`` propagates, so that ``check`` says "not solved yet"."""
    def ask(kind: str, args=(), kwargs=None, training=True, x=None, grad_output=None,
            state=None) -> LocalReply:
        stage = ["building the class"]
        try:
            module = cls(*args, **(kwargs or {}))
            if not isinstance(module, nn.Module):
                return LocalReply(not_module=type(module).__name__)
            if kind == "build":
                return LocalReply(state=dict(module.state_dict()))
            return LocalReply(seen=run_module(module, state, training, x, grad_output, stage))
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - the student's class failed: feedback
            return LocalReply(error={"type": type(exc).__name__, "message": str(exc)},
                              stage=stage[0])
    return ask


def call_text(name: str, args: tuple, kwargs: dict) -> str:
    """``FixedResidualBlock(8, 16, stride=2)``."""
    return f"{name}({', '.join([*map(repr, args), *(f'{k}={v!r}' for k, v in kwargs.items())])})"


def run_module_check(spec: ModuleCheck, ask: Ask, name: str, salt: int = 0,
                     who: str = "The check") -> str:
    """"" when the student's class ``name`` agrees with the reference on every case and
    property of ``spec``; otherwise the sentence that says where it differs. ``who`` starts
    the sentence ("The grader" when the grader runs it)."""
    with isolated_random_state():
        g = generator(spec.seed, salt)
        for args, kwargs, shape in spec.calls():
            problem = _case(spec, ask, (name, who), (args, kwargs, shape), g)
            if problem:
                return problem
    return ""


def _case(spec: ModuleCheck, ask: Ask, names: tuple, case, g: torch.Generator) -> str:
    (name, who), (args, kwargs, shape) = names, case
    call = call_text(name, args, kwargs)
    reference = spec.reference(*args, **kwargs)
    itself = " itself" if who == "The grader" else ""    # the grader's, not the answer's
    built = ask("build", args=list(args), kwargs=kwargs)
    problem = _failure(built, f"{who} built {call}{itself}")
    if problem:
        return problem
    mapping, problem = key_map(built.state, reference.state_dict(), spec)
    if problem:
        return f"{who} built {call}{itself}: {problem}"
    randomise_(reference, g)
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    x = torch.randn(shape, generator=g)
    with torch.no_grad():
        grad_output = torch.randn(copy.deepcopy(reference).eval()(x).shape, generator=g)
    lead = (f"{who} ran {call}{itself} (weights, BatchNorm statistics and an input of "
            f"shape {tuple(shape)} drawn {_WHEN.get(who, 'at random')}) "
            f"next to {spec.reference_name} loaded with the same weights")
    for training, mode in MODES:
        want = run_module(spec.reference(*args, **kwargs), state, training, x, grad_output, [])
        seen = ask("run", args=list(args), kwargs=kwargs, training=training, x=x,
                   grad_output=grad_output, state={mapping[k]: v for k, v in state.items()})
        problem = (_failure(seen, f"{lead}, in {mode} mode") or
                   _difference(seen.seen, want, mapping, spec, f"{lead}: in {mode} mode",
                               _mistaken(spec, reference, state, training, x)))
        if problem:
            return problem
    return _properties(spec, ask, (f"{who} ran {call}{itself}", args, kwargs),
                       (state, mapping, x, grad_output))


def _mistaken(spec: ModuleCheck, reference: nn.Module, state: dict, training: bool,
              x: torch.Tensor) -> Callable[[torch.Tensor], str]:
    """The hint of the first known mistake whose output ``got`` matches, or ""."""
    def hint(got: torch.Tensor) -> str:
        for mistake in spec.mistakes:
            ref = copy.deepcopy(reference)
            ref.load_state_dict(state)
            ref.train(training)
            try:
                with torch.no_grad():
                    expected = mistake.expected(ref, x.clone())
            except (ValueError, RuntimeError, TypeError):   # a mistake that does not apply
                continue
            if expected.shape == got.shape and torch.allclose(got.detach().to(expected.dtype),
                                                              expected, rtol=spec.rtol,
                                                              atol=spec.atol):
                return mistake.hint
        return ""
    return hint


def _properties(spec: ModuleCheck, ask: Ask, call_case: tuple, drawn: tuple) -> str:
    (ran, args, kwargs), (state, mapping, x, grad_output) = call_case, drawn
    for prop in spec.properties:
        changed = {k: v.clone() for k, v in state.items()}
        prop.change(changed)
        seen = ask("run", args=list(args), kwargs=kwargs, training=prop.training, x=x,
                   grad_output=grad_output, state={mapping[k]: v for k, v in changed.items()})
        lead = f"{ran} {prop.claim}"
        problem = _failure(seen, lead)
        if problem:
            return problem
        out = seen.seen.get("output") if isinstance(seen.seen, dict) else None
        if not (isinstance(out, torch.Tensor) and out.shape == x.shape
                and torch.equal(out.detach(), x)):
            return f"{lead}: the block should return x exactly, but it does not. {prop.hint}"
    return ""


def _failure(reply, lead: str) -> str:
    """What a ``build`` or ``run`` reply says went wrong in the student's code, or ""."""
    if reply.not_module is not None:
        return f"{lead}, and got a {reply.not_module}, not an nn.Module."
    error = reply.error
    if error:
        where = f" ({error['where']})" if error.get("where") else ""
        return (f"{lead}, and {reply.stage} failed with "
                f"{error.get('type')}: {error.get('message')}{where}. It must work for any "
                f"weights the grader loads with load_state_dict(strict=True).")
    return ""


def key_map(got, want: Dict[str, torch.Tensor], spec: ModuleCheck
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
        layers = list(dict.fromkeys(k.split(".")[0] for k in want))
        free = (f" (only the layers that {spec.reference_name} calls `{spec.renamable}` may "
                f"have names of their own)" if spec.renamable else "")
        return {}, (f"its parameters and buffers are not those of {spec.reference_name} "
                    f"(missing: {', '.join(missing[:4]) or '-'}; unexpected: "
                    f"{', '.join(unexpected[:4]) or '-'}). Build exactly the layers the "
                    f"exercise asks for ({', '.join(layers)}){free}, convolutions without "
                    f"bias (bias=False).")
    for key, value in want.items():
        if got[mapping[key]].shape != value.shape:
            return {}, (f"{mapping[key]} has shape {tuple(got[mapping[key]].shape)}, expected "
                        f"{tuple(value.shape)} (as in {spec.reference_name}).")
    return mapping, ""


def _compared(seen: dict, want: dict, mapping: Dict[str, str]) -> Iterator[tuple]:
    """(what, kind, the student's tensor, the reference's) for everything compared."""
    grads: dict = seen["grads"] if isinstance(seen.get("grads"), dict) else {}
    state: dict = seen["state"] if isinstance(seen.get("state"), dict) else {}
    yield "the output", "output", seen.get("output"), want["output"]
    yield "the gradient that reaches the input", "input", seen.get("input_grad"), \
        want["input_grad"]
    for key, grad in want["grads"].items():
        yield f"the gradient of {mapping[key]}", "grad", grads.get(mapping[key]), grad
    for key, value in want["state"].items():
        yield f"{mapping[key]} after the forward pass", "state", state.get(mapping[key]), value


def _differs(got, want: torch.Tensor, spec: ModuleCheck) -> str:
    """How ``got`` differs from ``want`` (a phrase), or ""."""
    if not isinstance(got, torch.Tensor):
        return "is missing (None)" if got is None else f"is a {type(got).__name__}, not a tensor"
    if got.shape != want.shape:
        return f"has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    got = got.detach().to(want.dtype)
    if not want.is_floating_point():
        return "" if torch.equal(got, want) else f"is {got.tolist()}, expected {want.tolist()}"
    # atol in units of the tensor's largest entry: a weight's gradient sums over the batch,
    # and its rounding depends on how many threads each process uses
    scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
    if torch.allclose(got, want, rtol=spec.rtol, atol=spec.atol * scale):
        return ""
    return f"differs (largest difference {float((got - want).abs().nan_to_num(1e9).max()):.3g})"


def _difference(seen, want: dict, mapping: Dict[str, str], spec: ModuleCheck, lead: str,
                mistaken: Callable[[torch.Tensor], str]) -> str:
    if not isinstance(seen, dict):
        return f"{lead} your block's results could not be read."
    for what, kind, got, expected in _compared(seen, want, mapping):
        if expected is None:          # the reference has no such gradient: nothing to compare
            continue
        problem = _differs(got, expected.detach(), spec)
        if problem:
            hint = (mistaken(got) if kind == "output" and isinstance(got, torch.Tensor)
                    else "") or HINTS[kind]
            hint = hint[:1].upper() + hint[1:]
            return f"{lead} {what} {problem}. {hint}."
    return ""


def check_module(spec: ModuleCheck, name: str, cls, salt: int = 0) -> Tuple[bool, str]:
    """The notebook's check of a block exercise (``name``: the class the exercise asks for):
    the runner on the class built here; when it fails, ``spec.explain``'s finding (if any)
    is the feedback, else the runner's sentence."""
    problem = run_module_check(spec, local_ask(cls), name, salt)
    if not problem:
        lacks = spec.requires(cls) if spec.requires else ""
        return (False, lacks) if lacks else (True, spec.success)
    finding = spec.explain(cls) if spec.explain else ""
    return False, finding or problem
