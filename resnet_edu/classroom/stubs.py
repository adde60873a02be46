"""A solution cell becomes a stub: imports, signatures and docstrings stay, bodies raise.

One transformation (nbgrader's ``clearsolutions`` for our convention): each top-level
``def``/``class`` keeps its header (decorators, signature) and docstring and every body
becomes ``raise NotImplementedError("Exercise chNN-...: ...")``; other statements are dropped
and reported.
"""
from __future__ import annotations

import ast
import io
import json
import tokenize
from typing import List, Optional, Tuple

STUB_MESSAGE = "Exercise {id}: write your solution here (see the exercise above)"


def _line_offsets(text: str) -> List[int]:
    offsets, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        offsets.append(pos)
    return offsets


def _header(text: str, offsets: List[int], node: ast.AST) -> Tuple[str, int]:
    """The source of ``node``'s decorators and ``def``/``class`` line(s) up to the colon,
    and the (1-based) line on which that colon stands."""
    if node.decorator_list:
        first = node.decorator_list[0]
        line_start = offsets[first.lineno - 1]
        start = text.rindex("@", line_start, line_start + first.col_offset)
        start_line = first.lineno
    else:
        start = offsets[node.lineno - 1] + node.col_offset
        start_line = node.lineno
    depth, seen_keyword = 0, False
    for tok in tokenize.generate_tokens(io.StringIO(text[start:]).readline):
        if tok.type == tokenize.NAME and tok.string in ("def", "class") and depth == 0:
            seen_keyword = True
        elif tok.type == tokenize.OP:
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
            elif tok.string == ":" and depth == 0 and seen_keyword:
                local = _line_offsets(text[start:])
                end = start + local[tok.end[0] - 1] + tok.end[1]
                return text[start:end], start_line + tok.end[0] - 1
    raise ValueError(f"could not find the end of the header of {node.name!r}")


def docstring_source(text: str, node: ast.AST) -> Optional[ast.Expr]:
    body = node.body
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return body[0]
    return None


def _stub_definition(text: str, offsets: List[int], node: ast.AST, exercise_id: str) -> str:
    """A def/class with its header and docstring, every body replaced by a raise."""
    indent = " " * node.col_offset
    header, header_last_line = _header(text, offsets, node)
    body_indent = " " * (node.col_offset + 4)
    first_stmt = node.body[0]
    if first_stmt.lineno > header_last_line:
        body_indent = " " * first_stmt.col_offset
    parts = [indent + header]
    doc = docstring_source(text, node)
    if doc is not None:
        segment = ast.get_source_segment(text, doc)
        parts.append(body_indent + segment)
    if isinstance(node, ast.ClassDef):
        members = [n for n in node.body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        if not members and doc is None:
            parts.append(body_indent + "pass")
        for member in members:
            if member.lineno <= header_last_line:   # `class A: def f(self): ...` one-liner
                raise ValueError(f"put the body of class {node.name!r} on its own lines")
            if len(parts) > 1:              # a blank line after a docstring or method
                parts.append("")
            parts.append(_stub_definition(text, offsets, member, exercise_id))
    else:
        message = STUB_MESSAGE.format(id=exercise_id)
        parts.append(f"{body_indent}raise NotImplementedError({json.dumps(message)})")
    return "\n".join(parts)


def parse_cell(source: str) -> Tuple[str, ast.Module]:
    """Parse a code cell; IPython syntax (magics, ``!cmd``) is translated first."""
    try:
        return source, ast.parse(source)
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        translated = TransformerManager().transform_cell(source)
        return translated, ast.parse(translated)
    except Exception as exc:  # noqa: BLE001 - reported below with the cell's text
        raise ValueError(f"cannot parse the solution cell:\n{source}\n({exc})") from None


def stub_source(source: str, exercise_id: str) -> Tuple[str, List[str]]:
    """The student version of a ``solution`` cell, and the statements it dropped.

    Imports stay; each top-level ``def``/``class`` keeps its header and docstring and its
    body (each method's body, for a class) becomes ``raise NotImplementedError(...)``.
    Every other top-level statement is dropped and listed in the second return value
    (the convention allows only imports and definitions in a solution cell).
    """
    text, tree = parse_cell(source)
    offsets = _line_offsets(text)
    parts = [f"# Exercise {exercise_id}: replace each `raise NotImplementedError(...)` below "
             "with your code."]
    dropped = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            parts.append(ast.get_source_segment(text, node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if len(parts) > 1:
                parts += ["", ""]
            parts.append(_stub_definition(text, offsets, node, exercise_id))
        else:
            dropped.append(ast.get_source_segment(text, node) or type(node).__name__)
    stub = "\n".join(parts).strip("\n")
    ast.parse(stub)   # the stub must be valid Python
    return stub, dropped

