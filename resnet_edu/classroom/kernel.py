"""The process that answers: it runs a student's answer and reports what the answer does.

:func:`serve` runs in a process forked from a fork server that has imported torch and
the checks (``session.py``). It reads requests from a pipe (written by the grader with
``torch.save``; the grader is trusted) and answers each with ``torch.save`` of plain data
only (tensors, numbers, strings, lists, dicts), which the grader reads back with
``torch.load(weights_only=True)``: nothing this process sends can carry code. It never
sends a verdict the grader trusts alone: the "check" request of an exercise that must run
next to the answer writes the feedback, and the grader's own test of the class
(``probe.py``) must agree (see book/teachers.md).

Requests (one record each in ``protocol.py``, a plain dict on the wire, and one reply
record each): ``load`` (run the kept answer code after a fixed prelude), ``call`` (call one
of the answer's names with the grader's arguments, behind the exercise's tripwires),
``vjp`` (the gradient of the latest call's result with respect to its arguments that
require grad, for a grader that differentiates through a call), ``check`` (run a whole
check here, for exercises that are not ``observe``-able), and for those exercises' classes
``build`` (construct the class, report its state_dict) and ``run`` (construct it afresh,
load the grader's weights, run forward and backward on the grader's input, report what
came out: ``exercises._modules.run_module``).
"""
from __future__ import annotations

import io
import os
import traceback
from dataclasses import replace
from typing import Any, Callable, Dict, Union

from ..compat import forward_hook_count
from .protocol import (
    Build,
    Call,
    CallReply,
    CheckReply,
    Load,
    ModuleReply,
    Reply,
    Run,
    RunCheck,
    Vjp,
    VjpReply,
    from_wire,
    to_wire,
)

PRELUDE = ("import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
           "from torch import nn\n")


def describe(exc: BaseException) -> dict:
    """An exception as plain data: its type, message and where in the answer it rose."""
    try:
        message = str(exc)[:500]
    except Exception:  # noqa: BLE001 - a student's exception whose str() fails
        message = ""
    from .sandbox import describe_denial

    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith("<answer")]
    where = f"in {frames[-1].name}, line {frames[-1].lineno}" if frames else ""
    return {"type": type(exc).__name__, "message": message, "where": where,
            "sandbox": describe_denial(exc),
            "builtin": type(exc).__module__ == "builtins",
            "not_implemented": isinstance(exc, NotImplementedError)
            or isinstance(exc.__cause__, NotImplementedError)}


def plain(value, depth: int = 0):
    """``value`` as plain data the grader can read with ``weights_only=True``."""
    import torch

    if depth > 20:
        return {"__unreadable__": "nesting"}
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, torch.Tensor):
        return value.detach().as_subclass(torch.Tensor).cpu().clone()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):      # torch.Size included
        items = [plain(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict) and all(type(k) is str for k in value):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if hasattr(value, "item") and hasattr(value, "dtype"):    # a NumPy scalar
        return plain(value.item(), depth + 1)
    return {"__unreadable__": type(value).__name__}


def _after(arg):
    """What a call left in an argument: a tensor's values, a module's state and hooks."""
    import torch

    if isinstance(arg, torch.Tensor):
        return plain(arg)
    if isinstance(arg, torch.nn.Module):
        return {"state": {k: plain(v) for k, v in arg.state_dict().items()},
                "training": {n: bool(m.training) for n, m in arg.named_modules()},
                "hooks": [n for n, m in arg.named_modules()
                          if forward_hook_count(m)]}
    return None


def _load(request: Load, spaces) -> Reply:
    namespace = spaces.setdefault(request.space, {"__name__": "__answer__"})
    exec(compile(PRELUDE, "<prelude>", "exec"), namespace)
    try:
        exec(compile(request.code, "<answer>", "exec"), namespace)
    except Exception as exc:  # noqa: BLE001 - the student's definitions failed
        return Reply(error=describe(exc))
    return Reply()


def _call(request: Call, spaces) -> CallReply:
    import torch

    from .tripwires import tripwires

    namespace = spaces.get(request.space, {})
    if request.name not in namespace:
        return CallReply(missing=request.name)
    with tripwires(request.forbidden, request.no_modules) as tripped:
        try:
            value = namespace[request.name](*request.args, **request.kwargs)
        except Exception as exc:  # noqa: BLE001 - the student's code failed: report it
            value, error = None, describe(exc)
        else:
            error = None
    inputs = _grad_inputs(request.args)
    differentiable = isinstance(value, torch.Tensor) and value.requires_grad and bool(inputs)
    if differentiable:
        _GRAPHS[request.space] = (request.nonce, value, inputs)
    return CallReply(value=plain(value), error=error, tripped=sorted(tripped),
                     after=[_after(a) for a in request.args], differentiable=differentiable)


_GRAPHS: dict = {}   # space -> (nonce, result, inputs) of its latest differentiable call


def _grad_inputs(args) -> list:
    import torch

    return [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]


def _vjp(request: Vjp, spaces) -> VjpReply:
    import torch

    from .tripwires import tripwires

    nonce, value, inputs = _GRAPHS.get(request.space, (None, None, []))
    if nonce != request.call:
        return VjpReply(error=describe(RuntimeError("the grader can only differentiate the "
                                                    "result of the latest call")), grads=[])
    with tripwires(request.forbidden, request.no_modules) as tripped:
        try:
            grads = torch.autograd.grad(value, inputs, request.grad, allow_unused=True)
        except Exception as exc:  # noqa: BLE001 - the student's backward failed: report it
            grads, error = [None] * len(inputs), describe(exc)
        else:
            error = None
    return VjpReply(grads=[plain(g) for g in grads], error=error, tripped=sorted(tripped))


def _construct(request: Union[Build, Run], spaces) -> ModuleReply:
    import torch

    from ..exercises._modules import run_module
    from .tripwires import tripwires

    namespace = spaces.get(request.space, {})
    if request.name not in namespace:
        return ModuleReply(missing=request.name)
    stage = ["building the class"]
    with tripwires(request.forbidden, request.no_modules) as tripped:
        try:
            module = namespace[request.name](*request.args, **request.kwargs)
            if not isinstance(module, torch.nn.Module):
                reply = ModuleReply(not_module=type(module).__name__)
            elif isinstance(request, Run):
                reply = ModuleReply(seen=plain(run_module(
                    module, request.state, request.training, request.x, request.grad_output,
                    stage)))
            else:
                reply = ModuleReply(state=plain(dict(module.state_dict())))
        except Exception as exc:  # noqa: BLE001 - the student's class failed: report it
            reply = ModuleReply(error=describe(exc), stage=stage[0])
    return replace(reply, tripped=sorted(tripped))


def _check(request: RunCheck, spaces) -> CheckReply:
    from resnet_edu.exercises import check

    namespace = spaces.get(request.space, {})
    missing = [n for n in request.names if n not in namespace]
    if missing:
        return CheckReply(missing=missing[0])
    feedback = check(request.exercise, *[namespace[n] for n in request.names],
                     seed=request.seed)
    return CheckReply(passed=bool(feedback.passed), score=float(feedback.score),
                      solved=bool(feedback.solved), message=str(feedback.message))


# protocol.REQUESTS' op -> handler(request record, namespaces) -> reply record
HANDLERS: Dict[str, Callable[[Any, dict], Reply]] = {
    "load": _load, "call": _call, "vjp": _vjp, "check": _check, "build": _construct,
    "run": _construct}


def _enter(cwd: str, confinement, keep_fd: int) -> str:
    """Its own session, its own folder, no terminal output, no descriptor but its pipe
    (``keep_fd``; what multiprocessing left open leads to unconfined processes), a minimal
    environment, then the sandbox (before any other thread exists and before any
    request). Returns why confinement failed, or ""."""
    import tempfile

    from .sandbox import SandboxError, confine, minimal_environment

    os.setsid()                     # a session of its own: killpg reaches all it starts
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, 1 << 16)
    os.chdir(cwd)
    if confinement.enabled:
        kept = minimal_environment(os.environ)
        os.environ.clear()
        os.environ.update(kept, HOME=cwd)
    os.environ["TMPDIR"] = tempfile.tempdir = cwd
    if not confinement.enabled:
        return ""
    try:
        confine(cwd, confinement.limits)
    except (SandboxError, OSError) as exc:
        return str(exc) or type(exc).__name__
    return ""


def serve(conn, cwd: str, threads: int, confinement) -> None:
    """The answering process's life: confined (``sandbox.confine``), then requests
    answered until the grader closes the connection. If confinement failed, no request
    runs any code: each is answered with the reason."""
    import torch

    refused = _enter(cwd, confinement, conn.fileno())
    torch.set_num_threads(max(1, threads))
    spaces = {}     # one namespace per exercise: one answer cannot lend another a helper
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        request = from_wire(torch.load(io.BytesIO(data), weights_only=False))  # trusted
        reply = Reply(unconfined=refused) if refused else \
            HANDLERS[request.OP](request, spaces)
        buffer = io.BytesIO()
        torch.save({**(reply if isinstance(reply, dict) else to_wire(reply)),   # (a patched
                    "nonce": request.nonce}, buffer)                           # handler's dict)
        conn.send_bytes(buffer.getvalue())
