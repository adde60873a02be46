"""Stand-ins for the student's functions inside the grader: calling one asks the
answering process to call the real one, and brings back only what it observed.

A check of an ``observe=True`` exercise runs unchanged in the grader's own process with
these stand-ins in place of the student's objects: the check draws the inputs (from the
seed chosen at grading time), computes the references, and decides. The student's
function receives copies of the inputs; what it returns (or raises), and what it did to
its arguments (tensors changed in place, a module's state, training flags and leftover
hooks), are copied back as plain data. A result that depends on arguments that require
grad comes back differentiable: its backward asks the answering process for the gradient
(``vjp``), so a check may call ``backward()`` on it as on the student's own result.
"""
from __future__ import annotations

import builtins
import contextlib
import re
from typing import List, Optional

from ..compat import forward_hook_count
from .protocol import Call, Reply, Vjp
from .session import Worker


class MissingName(BaseException):
    """The answer does not define the name (not the student's exception: it must not
    become "your code raised ...")."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class RuleBroken(BaseException):
    """A tripwire fired while the student's function ran."""

    def __init__(self, what: List[str]):
        super().__init__(", ".join(what))
        self.what = what


def rebuild_exception(error: dict) -> Exception:
    """The student's exception, re-raised in the grader as the same builtin type (so a
    check that expects an ``AssertionError`` sees one), or as a look-alike class."""
    name = error.get("type") or "Exception"
    if error.get("not_implemented"):
        cls = NotImplementedError
    else:
        cls = getattr(builtins, name, None) if error.get("builtin") else None
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            safe = re.sub(r"\W", "", name) or "Exception"
            cls = type(safe, (Exception,), {})
    sandbox = f" ({error['sandbox']})" if error.get("sandbox") else ""
    exc = cls(str(error.get("message", ""))[:300] + sandbox)
    exc.student_where = error.get("where", "")
    return exc


def _unreadable(value) -> Optional[str]:
    if isinstance(value, dict):
        if "__unreadable__" in value and len(value) == 1:
            return str(value["__unreadable__"])
        return next(filter(None, map(_unreadable, value.values())), None)
    if isinstance(value, (list, tuple)):
        return next(filter(None, map(_unreadable, value)), None)
    return None


def _copy_back(arg, after) -> None:
    import torch

    if isinstance(arg, torch.Tensor) and isinstance(after, torch.Tensor):
        if after.shape == arg.shape and after.dtype == arg.dtype:
            with torch.no_grad():
                arg.copy_(after)
    elif isinstance(arg, torch.nn.Module) and isinstance(after, dict):
        with contextlib.suppress(RuntimeError, TypeError):   # the student changed shapes:
            arg.load_state_dict(after.get("state", {}), strict=False)   # the check sees it
        modules = dict(arg.named_modules())
        for name, training in after.get("training", {}).items():
            if name in modules:
                modules[name].training = bool(training)
        for name in after.get("hooks", []):
            if name in modules and forward_hook_count(modules[name]) == 0:
                modules[name].register_forward_hook(lambda *a: None)


def raise_for(reply: Reply, name: str) -> None:
    """Raise what a reply of the answering process says beyond the student's own
    exception: the name is missing, or a tripwire fired."""
    if reply.missing is not None:
        raise MissingName(name)
    if reply.tripped:
        raise RuleBroken(list(reply.tripped))


def _wire(arg):
    """A tensor argument as sent: detached, a leaf that requires grad as the original."""
    import torch

    if isinstance(arg, torch.Tensor):
        return arg.detach().requires_grad_(arg.requires_grad)
    return arg


def _differentiable(stand_in: RemoteFunction, call: str, value, args):
    """``value`` attached to the tensors of ``args`` that require grad: its backward asks
    the answering process for their gradients (the result of call ``call``)."""
    import torch

    class RemoteResult(torch.autograd.Function):
        @staticmethod
        def forward(ctx, result, *inputs):
            return result.clone()

        @staticmethod
        def backward(ctx, grad):
            return (None, *stand_in.vjp(call, grad, inputs))

    inputs = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    return RemoteResult.apply(value, *inputs)


class RemoteFunction:
    """Calls ``name`` in the answering process (see the module's docstring)."""

    def __init__(self, worker: Worker, space: str, name: str, rules, deadline):
        self.worker, self.space, self.name = worker, space, name
        self.rules, self.deadline = rules, deadline

    def _ask(self, kind, **fields):
        request = kind(space=self.space, name=self.name, forbidden=tuple(self.rules.forbidden),
                       no_modules=bool(self.rules.no_modules), **fields)
        reply = self.worker.request(request, self.deadline.left())
        raise_for(reply, self.name)
        return reply

    def vjp(self, call: str, grad, inputs) -> list:
        """The gradients of ``inputs`` (the call's arguments that require grad) given the
        gradient ``grad`` of its result, computed where the student's code runs."""
        import torch

        reply = self._ask(Vjp, call=call, grad=grad.detach())
        if reply.error:
            raise rebuild_exception(reply.error)
        grads = list(reply.grads or [])
        return [g if isinstance(g, torch.Tensor) and g.shape == x.shape and g.dtype == x.dtype
                else None for g, x in zip(grads + [None] * len(inputs), inputs)]

    def __call__(self, *args, **kwargs):
        import torch

        reply = self._ask(Call, args=[_wire(a) for a in args], kwargs=kwargs)
        for arg, after in zip(args, reply.after or []):
            _copy_back(arg, after)
        if reply.error:
            raise rebuild_exception(reply.error)
        value = reply.value
        what = _unreadable(value)
        if what:
            exc = TypeError(f"your function returned a {what}, which the grader cannot "
                            "read: return tensors, numbers, strings or lists of them")
            exc.student_where = ""
            raise exc
        if reply.differentiable and isinstance(value, torch.Tensor):
            return _differentiable(self, reply.nonce, value, args)
        return value
