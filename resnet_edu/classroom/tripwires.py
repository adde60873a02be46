"""Run-time rules, inside the process that answers: record forbidden calls while the
student's function runs.

A static rule (``rules.py``) sees ``F.conv2d`` in the source; a tripwire sees a call
that the source hid. ``forbidden`` functions are wrapped for the duration of the call;
with ``no_modules``, building any ``nn.Module`` or touching the meta device is recorded
(a :class:`torch.overrides.TorchFunctionMode` sees every tensor function and its
``device``). The library's own blocks are watched too: when the rules forbid a package
(``resnet_edu.blocks``, ``torchvision``), the constructor and ``forward`` of every
``nn.Module`` class it defines are wrapped, so a block reached by a route no static rule
sees (``sys.modules``, say) is recorded when it is built or run. The records go back to
the grader as observations; the grader decides.
"""
from __future__ import annotations

import contextlib
import importlib
import sys
from typing import Iterator, List, Set, Tuple


def _owner(path: str):
    """The module or object at a dotted path, or None."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    return None


def _targets(forbidden) -> List[Tuple[object, str, str]]:
    """(owner, attribute, dotted name) of every plain function a prefix names."""
    found = []
    for prefix in forbidden:
        owner_path, _, stem = prefix.rpartition(".")
        owner = _owner(owner_path) if owner_path else None
        if owner is None:
            continue
        for attr in dir(owner):
            value = getattr(owner, attr, None)
            if attr.startswith(stem) and callable(value) and not isinstance(value, type):
                found.append((owner, attr, f"{owner_path}.{attr}"))
    return found


def _blocks(forbidden) -> List[Tuple[object, str, str]]:
    """(class, "__init__" or "forward", name) of every module class that a forbidden
    package defines (among the modules loaded), for the run-time watch."""
    import torch

    packages = [p for p in forbidden if p.split(".")[0] in ("resnet_edu", "torchvision")]
    found = []
    for module_name, module in list(sys.modules.items()):
        if module is None or not any(module_name == p or module_name.startswith(p + ".")
                                     for p in packages):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and issubclass(value, torch.nn.Module) and \
                    value.__module__ == module_name:
                found += [(value, attr, f"{module_name}.{value.__name__}")
                          for attr in ("__init__", "forward") if attr in vars(value)]
    return list({(id(c), a): (c, a, n) for c, a, n in found}.values())


def _wrap(function, name: str, tripped: Set[str]):
    def wrapper(*args, **kwargs):
        tripped.add(f"used `{name}`" if function.__name__ in ("__init__", "forward")
                    else f"called `{name}`")
        return function(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def tripwires(forbidden=(), no_modules: bool = False) -> Iterator[Set[str]]:
    """Yield the set that collects what the call did against the rules."""
    import torch
    from torch.overrides import TorchFunctionMode

    tripped: Set[str] = set()
    patched = [(owner, attr, getattr(owner, attr), name)
               for owner, attr, name in _targets(forbidden) + _blocks(forbidden)]
    for owner, attr, original, name in patched:
        setattr(owner, attr, _wrap(original, name, tripped))
    init = torch.nn.Module.__init__

    def counting_init(self, *args, **kwargs):
        tripped.add("built an nn.Module")
        return init(self, *args, **kwargs)

    class MetaWatch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if str(kwargs.get("device", "")) == "meta" or any(
                    isinstance(a, torch.Tensor) and a.is_meta for a in args):
                tripped.add("used the meta device")
            return func(*args, **kwargs)

    mode = MetaWatch() if no_modules else contextlib.nullcontext()
    if no_modules:
        torch.nn.Module.__init__ = counting_init
    try:
        with mode:
            yield tripped
    finally:
        torch.nn.Module.__init__ = init
        for owner, attr, original, _ in patched:
            setattr(owner, attr, original)
