"""Static rules on an answer's source: what the grader runs, and what the answer may use.

1. :func:`kept_code` keeps only the imports, functions and classes of the answer cells
   (the convention of a solution cell); anything else at top level, scratch code or an
   attack, is never run by the grader.
2. :func:`policy_problems` applies the house policy to every answer: no dunder or private
   attribute (``f.__code__``, ``_SNAPSHOT``), no ``exec``/``eval``/``getattr``/``open``/...,
   imports only from an allow-list (no ``sys``, ``os``, ``resnet_edu.exercises``, ...).
   The grader does not need it to stay right (it judges from observations), but it shuts
   the easy doors to the process that answers.
   Every dotted name that starts at a module is also followed through the real modules
   (:mod:`.reach`): ``torch.os`` is the module ``os``, and is refused like ``import os``.
3. :func:`rule_problems` applies the exercise's own :class:`~resnet_edu.exercises._kit.Rules`
   (forbidden calls, imports, base classes, the meta device, how a name is defined),
   quoting the rule.
"""
from __future__ import annotations

import ast
import functools
import re
from typing import Dict, FrozenSet, Iterator, List, Optional, Tuple

from . import reach
from .protocol import Status, Verdict

ALLOWED_IMPORTS = ("torch", "math", "numpy", "collections", "itertools", "functools",
                   "typing", "dataclasses", "copy", "statistics", "random", "__future__",
                   "resnet_edu")
DENIED_IMPORTS = ("resnet_edu.exercises", "resnet_edu.classroom", "resnet_edu.cli",
                  "resnet_edu.compat", "resnet_edu.notebook", "resnet_edu.conventions",
                  "torch.utils.cpp_extension", "torch.hub", "torch.multiprocessing",
                  "torch.distributed", "torch.package", "torch.library", "torch.ops",
                  "numpy.ctypeslib", "torch.load", "torch.jit", "numpy.load", "torch.overrides",
                  "torch.fx", "torch.compile", "torch.export", "torch.utils.hooks",
                  "torch.nn.modules.module.register_module", "torch.autograd.graph",
                  "torch.save", "torch.set_default", "numpy.save",
                  # functions that evaluate strings, load pickles or run programs
                  "typing.get_type_hints", "typing.ForwardRef", "functools.singledispatch",
                  "numpy.lib.format", "numpy.f2py", "numpy.fromfile", "numpy.memmap",
                  "torch.from_file", "torch.utils.collect_env", "dataclasses.make_dataclass")
# frames and code objects: the ways from a running function to its caller's globals
DENIED_ATTRS = {"gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "f_back",
                "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame", "tb_next",
                "co_code", "mro"}
DENIED_NAMES = {"exec", "eval", "compile", "globals", "locals", "vars", "getattr",
                "setattr", "delattr", "open", "breakpoint", "input", "type", "memoryview",
                "help", "exit", "quit", "get_ipython"}
ALLOWED_DUNDERS = {"__init__", "__repr__", "__str__", "__len__", "__getitem__", "__iter__",
                   "__future__"}
PRELUDE_ALIASES = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional",
                   "np": "numpy", "math": "math"}


def _parse(source: str) -> ast.Module:
    return ast.parse(source)


def kept_code(source: str) -> Tuple[str, List[str]]:
    """The imports and definitions of the answer cells, as source; and a problem if the
    cells are not Python (IPython magics included: an answer cell holds Python)."""
    try:
        tree = _parse(source)
    except SyntaxError as exc:
        return "", [f"your answer cell is not valid Python: {exc.msg} (line {exc.lineno})"]
    kept = [n for n in tree.body
            if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                              ast.AsyncFunctionDef, ast.ClassDef))]
    return "\n\n".join(ast.get_source_segment(source, n) for n in kept), []


def _aliases(tree: ast.Module) -> Dict[str, str]:
    """Local name -> dotted name of what it was imported as (the prelude's names too)."""
    aliases = dict(PRELUDE_ALIASES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else \
                    a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _dotted(node: ast.AST, aliases: Dict[str, str]) -> str:
    """``F.conv2d`` -> ``torch.nn.functional.conv2d`` ("" if not a plain name chain)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    head = aliases.get(node.id, node.id)
    return ".".join([head] + parts[::-1])


def _imported(tree: ast.Module) -> List[Tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            found += [(f"{module}.{a.name}", node.lineno) for a in node.names] + \
                [(module, node.lineno)]
    return found


def _under(name: str, prefixes) -> bool:
    """``name`` is a prefix, lies inside one (``torch.nn`` holds ``torch.nn.Conv2d``), or
    extends a dotted stem (``torch.nn.functional.conv`` holds ``...conv2d``)."""
    return any(name == p or name.startswith(p + ".") or
               ("." in p and name.startswith(p) and "." not in name[len(p):])
               for p in prefixes)


def _module_aliases(tree: ast.Module) -> Dict[str, str]:
    """The names that stand for a module (``torch``, ``nn``, ``F``, ``np``, ...)."""
    import importlib.util

    names = {k: v for k, v in _aliases(tree).items()}
    modules = {}
    for local, dotted in names.items():
        try:
            is_module = importlib.util.find_spec(dotted) is not None
        except (ImportError, ValueError, AttributeError):
            is_module = False
        if is_module:
            modules[local] = dotted
    return modules


def _library_problems(tree: ast.Module) -> List[str]:
    """A library is used, never changed: no assignment to a module's attributes, no module
    passed around as a value (``t = torch; t.allclose = ...``), no denied function."""
    modules = _module_aliases(tree)
    aliases = _aliases(tree)
    parents = {id(child): parent for parent in ast.walk(tree)
               for child in ast.iter_child_nodes(parent)}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and isinstance(node.ctx, ast.Load):
            dotted = _dotted(node, aliases)
            if dotted and _under(dotted, DENIED_IMPORTS):
                problems.append(f"line {node.lineno}: `{dotted}` is not allowed in an answer")
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in modules:
                problems.append(f"line {node.lineno}: your answer changes the library "
                                f"(`{ast.unparse(node)}`); an answer may use libraries, "
                                "not change them")
        elif isinstance(node, ast.Name) and node.id in modules and \
                isinstance(node.ctx, ast.Load):
            parent = parents.get(id(node))
            if not isinstance(parent, ast.Attribute):
                problems.append(f"line {node.lineno}: use the module `{node.id}` only as "
                                f"`{node.id}.name`")
    return problems


def policy_problems(code: str) -> List[str]:
    """The house policy on the code the grader will run (see the module's docstring)."""
    tree = _parse(code)
    problems = []
    for name, line in _imported(tree):
        if name.startswith(".") or not _under(name, ALLOWED_IMPORTS) or \
                _under(name, DENIED_IMPORTS):
            problems.append(f"line {line}: `import {name}` is not allowed in an answer "
                            "(use torch, math, numpy and the chapter's own modules)")
    problems += _library_problems(tree) + _hidden_code_problems(tree)
    for dotted, line in _chains(tree):
        problems += [f"line {line}: {p}" for p in reach.reach_problems(
            dotted, ALLOWED_IMPORTS, DENIED_IMPORTS, _denied_objects())]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and ((node.attr.startswith("_") and node.attr
                                                 not in ALLOWED_DUNDERS)
                                                or node.attr in DENIED_ATTRS):
            problems.append(f"line {node.lineno}: the attribute `{node.attr}` is not "
                            "allowed in an answer (no private or dunder attributes, frames "
                            "or code objects)")
        elif isinstance(node, ast.Name) and (node.id in DENIED_NAMES or (
                node.id.startswith("__") and node.id not in ALLOWED_DUNDERS)):
            problems.append(f"line {node.lineno}: `{node.id}` is not allowed in an answer")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                node.name.startswith("__") and node.name not in ALLOWED_DUNDERS:
            problems.append(f"line {node.lineno}: defining `{node.name}` is not allowed in "
                            "an answer")
    return list(dict.fromkeys(problems))


def _chains(tree: ast.Module) -> Iterator[Tuple[str, int]]:
    """Every imported name and every name chain read from a module alias, as dotted names
    of what they stand for (``F.conv2d`` -> ``torch.nn.functional.conv2d``)."""
    aliases = _aliases(tree)
    yield from _imported(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            dotted = _dotted(node, aliases)
            if dotted:
                yield dotted, node.lineno


def _objects(prefixes) -> FrozenSet[int]:
    """The ids of what dotted names (or stems: ``torch.nn.functional.conv``) stand for,
    among the modules already imported."""
    found = set()
    everything = ALLOWED_IMPORTS + ("torchvision",)
    for prefix in prefixes:
        owner_path, _, stem = prefix.rpartition(".")
        steps = list(reach.walk(prefix, everything, load=False))
        if steps and steps[-1][0] == prefix:
            found.add(id(steps[-1][1]))
        owner = list(reach.walk(owner_path, everything, load=False))
        if owner and owner[-1][0] == owner_path:
            found |= {id(getattr(owner[-1][1], a)) for a in dir(owner[-1][1])
                      if a.startswith(stem) and callable(getattr(owner[-1][1], a, None))}
    return frozenset(found)


@functools.lru_cache(maxsize=1)
def _denied_objects() -> FrozenSet[int]:
    return _objects(DENIED_IMPORTS)


def _reach_rule_problems(tree: ast.Module, rules, why: str) -> List[str]:
    """A chain that reaches an object the exercise forbids, under whatever name."""
    forbidden = _objects(rules.forbidden)
    homes = tuple(rules.forbidden) + tuple(rules.forbidden_imports)

    def hit(prefix: str, obj) -> str:
        home = reach.home(obj)
        if id(obj) in forbidden or (home and _under(home, homes)):
            name = getattr(obj, "__name__", "") or prefix
            return f"{home}.{name}" if home and not home.endswith(name) else name
        return ""

    problems = []
    for dotted, line in _chains(tree):
        for name in reach.forbidden_hits(dotted, ALLOWED_IMPORTS, hit):
            problems.append(f"line {line}: `{dotted}` is `{name}`, which your answer may not "
                            f"use.{why}")
    return problems


def _hidden_code_problems(tree: ast.Module) -> List[str]:
    """Strings that Python may run or resolve: annotations written as strings (evaluated
    by ``typing.get_type_hints`` and friends) and ``str.format`` fields that reach
    attributes (``"{0.__class__}".format(x)``)."""
    problems = []
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        if any(isinstance(n, ast.Constant) and isinstance(n.value, str)
               for a in annotations for n in ast.walk(a)):
            problems.append(f"line {node.lineno}: annotations written as strings are not "
                            "allowed in an answer (write the type itself, or none)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("format", "format_map"):
            template = node.func.value
            plain = isinstance(template, ast.Constant) and isinstance(template.value, str) \
                and not re.search(r"\{[^}:!]*[.\[]", template.value)
            if node.func.attr == "format_map" or not plain:
                problems.append(f"line {node.lineno}: use an f-string instead of "
                                f"`.{node.func.attr}(...)` in an answer")
    return problems


def _definition_problems(tree, names, kinds) -> List[str]:
    top: Dict[str, List[ast.AST]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            top.setdefault(node.name, []).append(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                top.setdefault(a.asname or a.name.split(".")[0], []).append(node)
    problems = []
    for name, kind in zip(names, kinds):
        nodes = top.get(name, [])
        want = ast.ClassDef if kind == "class" else (ast.FunctionDef, ast.AsyncFunctionDef)
        if len(nodes) > 1:
            problems.append(f"`{name}` is defined more than once: define it once")
        elif nodes and not isinstance(nodes[0], want):
            problems.append(f"`{name}` must be written with a `{kind}` statement of your own "
                            "(not imported, not assigned)")
    return problems


def rule_problems(code: str, rules, names, kinds) -> List[str]:
    """The exercise's own rules on the code the grader will run, each quoting the rule."""
    tree = _parse(code)
    aliases = _aliases(tree)
    why = f" Rule of this exercise: {rules.why}" if rules.why else ""
    problems = _definition_problems(tree, names, kinds)
    for name, line in _imported(tree):
        if _under(name, rules.forbidden_imports):
            problems.append(f"line {line}: `import {name}` breaks the exercise's rules.{why}")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and isinstance(node.ctx, ast.Load):
            dotted = _dotted(node, aliases)
            if dotted and _under(dotted, rules.forbidden):
                problems.append(f"line {node.lineno}: your answer uses `{dotted}`.{why}")
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                dotted = _dotted(base, aliases)
                if not dotted or _under(dotted, rules.forbidden_bases) or \
                        (rules.forbidden_bases and dotted != "torch.nn.Module"):
                    shown = dotted or ast.unparse(base)
                    problems.append(f"line {node.lineno}: `{node.name}` derives from "
                                    f"`{shown}`; derive it from `nn.Module` only.{why}")
        elif rules.no_modules and isinstance(node, ast.Constant) and node.value == "meta":
            problems.append(f"line {node.lineno}: your answer uses the meta device.{why}")
    if not problems:
        problems = _reach_rule_problems(tree, rules, why)
    return list(dict.fromkeys(problems))


def screen(source: str, registered, exercise) -> Tuple[str, Optional[Verdict]]:
    """Stage 3, the static rules: the code of the answer that will run (its imports and
    definitions), or the verdict that none will (not Python, the house policy, the
    exercise's rules)."""
    code, problems = kept_code(source)
    if problems:
        return "", Verdict.zero(Status.ERROR, "; ".join(problems) + ".")
    problems = policy_problems(code) + rule_problems(code, registered.rules, exercise.names,
                                                     exercise.kinds)
    return code, Verdict.zero(Status.RULE, "; ".join(problems) + ".") if problems else None
