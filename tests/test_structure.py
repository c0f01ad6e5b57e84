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


def _is_internal(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "deconvnet_tf"
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "deconvnet_tf" for alias in node.names)
    return False


def test_internal_imports_inside_functions_say_why():
    """Imports of the package's own modules belong at module top; one kept inside a function
    (TF/Keras-only code out of a light module, an optional dependency, a cycle, a listed
    upward import) carries a comment saying why, on its line or the line above. The console
    scripts (cli/) import late on purpose: ``--help`` parses before any framework loads."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "cli":
            continue
        source = path.read_text()
        lines = source.splitlines()
        seen = set()
        for function in ast.walk(ast.parse(source, str(path))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not _is_internal(node) or node.lineno in seen:
                    continue
                seen.add(node.lineno)
                here = lines[node.lineno - 1]
                above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                if "#" not in here and not above.startswith("#"):
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                                     f"{here.strip()}")
    assert not offenders, ("move these imports to module top, or say why they stay in the "
                           "function (a comment on the line or the line above): "
                           + "; ".join(offenders))
