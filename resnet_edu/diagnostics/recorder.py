"""Record every module call of one forward pass: who was called, on what, with what result.

Global forward hooks (public: ``torch.nn.modules.module.register_module_forward_hook``)
see every module, also one created inside ``forward()`` or kept in a plain list, so a
crash can be located and the data flow judged afterwards from the record alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ..compat import tensor_version
from .words import ordinal


def tensors_in(obj) -> List[torch.Tensor]:
    """The tensors inside a module's input or output (tensor, tuple, list, dict)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in tensors_in(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in tensors_in(item)]
    return []


def has_params(module: nn.Module, recurse: bool = True) -> bool:
    return any(True for _ in module.parameters(recurse=recurse))


@dataclass(frozen=True, eq=False)
class Call:
    """One call of one module during a recorded forward pass."""

    module: nn.Module
    name: str                  # "conv1", or "a Conv2d created in forward()"
    registered: bool           # a submodule of the block (not created in forward)
    index: int                 # 1 for the module's first call, 2 for its second, ...
    total: int                 # how many times the module was called in the pass
    parent: Optional[Call]   # the call this one happened inside (None: the block itself)
    inputs: Tuple[torch.Tensor, ...]
    input_versions: Tuple[int, ...]
    receives_x: bool           # the block's input tensor itself was passed in
    changed_x: bool            # x's in-place version went up during this call
    outputs: Optional[Tuple[torch.Tensor, ...]]   # None: the call did not finish
    output_versions: Tuple[int, ...]

    @property
    def label(self) -> str:
        if self.total > 1:
            return f"{self.name} ({ordinal(self.index)} of its {self.total} calls)"
        return self.name


@dataclass(eq=False)
class _Open:  # a call being recorded; frozen into a Call when the pass is over
    module: nn.Module
    name: str
    registered: bool
    index: int
    parent: Optional[_Open]
    inputs: List[torch.Tensor]
    input_versions: List[int]
    x_version_before: int
    x_version_after: Optional[int] = None
    outputs: Optional[List[torch.Tensor]] = None
    output_versions: List[int] = field(default_factory=list)


class Recorder:
    """``with Recorder(block, x) as rec: block(x)``; then ``rec.calls`` (every call,
    the block's own first) and ``rec.inner`` (the calls below the block)."""

    def __init__(self, root: nn.Module, x_in: torch.Tensor):
        self.root, self.x_in = root, x_in
        self.names = {id(m): name for name, m in root.named_modules()}
        self._open: List[_Open] = []
        self._stack: List[_Open] = []
        self._counts: Dict[int, int] = {}
        self._handles = []
        self.calls: Tuple[Call, ...] = ()

    def __enter__(self) -> Recorder:
        hooks = torch.nn.modules.module
        self._handles = [hooks.register_module_forward_pre_hook(self._pre),
                         hooks.register_module_forward_hook(self._post)]
        return self

    def __exit__(self, *exc) -> bool:
        for handle in self._handles:
            handle.remove()
        self.calls = self._freeze()
        return False

    @property
    def inner(self) -> Tuple[Call, ...]:
        return tuple(c for c in self.calls if c.module is not self.root)

    def _pre(self, module, args):
        registered = id(module) in self.names
        name = (self.names[id(module)] if registered
                else f"a {type(module).__name__} created in forward()")
        self._counts[id(module)] = self._counts.get(id(module), 0) + 1
        inputs = tensors_in(args)
        call = _Open(module=module, name=name, registered=registered,
                     index=self._counts[id(module)],
                     parent=self._stack[-1] if self._stack else None,
                     inputs=inputs, input_versions=[tensor_version(t) for t in inputs],
                     x_version_before=tensor_version(self.x_in))
        self._open.append(call)
        self._stack.append(call)

    def _post(self, module, args, output):
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i].module is module:
                call = self._stack.pop(i)
                call.outputs = tensors_in(output)
                call.output_versions = [tensor_version(t) for t in call.outputs]
                call.x_version_after = tensor_version(self.x_in)
                break

    def _freeze(self) -> Tuple[Call, ...]:
        frozen: Dict[int, Call] = {}
        for c in self._open:  # parents start before their children: freeze in order
            frozen[id(c)] = Call(
                module=c.module, name=c.name, registered=c.registered, index=c.index,
                total=self._counts[id(c.module)],
                parent=frozen[id(c.parent)] if c.parent is not None else None,
                inputs=tuple(c.inputs),
                input_versions=tuple(c.input_versions),
                receives_x=any(t is self.x_in for t in c.inputs),
                changed_x=(c.x_version_after is not None
                           and c.x_version_after > c.x_version_before),
                outputs=None if c.outputs is None else tuple(c.outputs),
                output_versions=tuple(c.output_versions))
        return tuple(frozen.values())
