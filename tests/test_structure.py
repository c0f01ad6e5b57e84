"""Structure rules of the package that review would otherwise check by hand."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deconvnet_tf"
MAX_FUNCTION_LINES = 80


def test_no_function_in_the_package_is_over_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                f"{node.name} ({lines} lines)")
    assert not long, "split these functions into steps: " + "; ".join(long)


def test_deprecated_aliases_hold_no_code_of_their_own():
    """An old module path is one alias_module call: no logic to keep in sync."""
    aliases = [p for p in PACKAGE.rglob("*.py")
               if p.name != "_deprecated.py" and "alias_module(globals()" in p.read_text()]
    assert len(aliases) == 4, aliases
    for path in aliases:
        body = [n for n in ast.parse(path.read_text()).body
                if not isinstance(n, (ast.Expr, ast.ImportFrom, ast.Assign))]
        assert not body, f"{path} defines more than an alias"
