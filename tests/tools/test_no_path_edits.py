"""tools/ and the tests import without editing ``sys.path``: a script run as
``python tools/<name>.py`` has ``tools/`` as its ``sys.path[0]`` (so ``import bench_train`` and
``from peers import deconvnet_torch`` resolve), and pytest has it on its ``pythonpath``
(pyproject.toml)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
MUTATORS = {"insert", "append", "extend", "remove", "pop", "clear"}


def _is_sys_path(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "path"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def path_edits(source: str, filename: str = "<text>") -> list[str]:
    """``line: code`` of each statement that changes ``sys.path``: a call of one of its list
    methods, an assignment to it or to a slice of it, ``+=``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS and _is_sys_path(node.func.value)):
            found.append(node)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if _is_sys_path(target) or (isinstance(target, ast.Subscript)
                                            and _is_sys_path(target.value)):
                    found.append(node)
    return [f"{n.lineno}: {ast.get_source_segment(source, n)}"
            for n in sorted(found, key=lambda n: (n.lineno, n.col_offset))]


def test_the_scan_sees_every_kind_of_edit():
    source = ("import sys\nsys.path.insert(0, 'a')\nsys.path.append('b')\nsys.path += ['c']\n"
              "sys.path[:0] = ['d']\nsys.path = ['e']\nprint(sys.path, 'sys.path.insert')\n")
    assert [line.split(":")[0] for line in path_edits(source)] == ["2", "3", "4", "5", "6"]


def test_no_file_in_tools_or_tests_edits_sys_path():
    files = sorted([*TOOLS.rglob("*.py"), *(ROOT / "tests").rglob("*.py")])
    assert TOOLS / "benchmark.py" in files and Path(__file__) in files
    edits = [f"{path.relative_to(ROOT)}:{edit}" for path in files
             for edit in path_edits(path.read_text(), str(path))]
    assert edits == [], "sys.path edited (import siblings by plain name instead):\n" + "\n".join(
        edits)


def test_tools_and_peers_are_packages_on_the_test_path():
    assert (TOOLS / "__init__.py").is_file() and (TOOLS / "peers" / "__init__.py").is_file()
    for name, path in [("benchmark", "benchmark.py"), ("peers.deconvnet_torch",
                                                        "peers/deconvnet_torch.py")]:
        spec = importlib.util.find_spec(name)  # finds without importing (torch may be missing)
        assert spec is not None and Path(spec.origin) == TOOLS / path, (name, spec)


def _env(first: Path | None = None) -> dict:
    """This environment with ``first`` put first on ``PYTHONPATH`` and no entry into tools/
    (the scripts must find their siblings by themselves)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
             if p and not Path(p).resolve().is_relative_to(TOOLS)]
    env["PYTHONPATH"] = os.pathsep.join([str(first)] * (first is not None) + paths)
    return env


@pytest.mark.parametrize("tool", ["benchmark.py", "bench_peers.py", "bench_export.py",
                                  "paper_table.py"])
def test_the_documented_script_form_imports_its_siblings(tool):
    """``python tools/<name>.py --help`` from the repository root, as README.md and docs/ run
    them (benchmark.py and bench_peers.py import their siblings at the top)."""
    result = subprocess.run([sys.executable, f"tools/{tool}", "--help"], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:")


@pytest.fixture
def stand_in_torch(tmp_path) -> Path:
    """A folder with a ``torch`` that has what the workers touch before their peer import and
    no ``nn``: put first on PYTHONPATH (the same with or without PyTorch installed), it stops
    tools/peers/deconvnet_torch.py at its ``from torch import nn``, a line reached only if
    ``peers.deconvnet_torch`` was found."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        '"""A stand-in torch without nn."""\nimport types\n\n\ndef set_num_threads(n):\n'
        '    pass\n\n\n_dynamo = types.SimpleNamespace(config=types.SimpleNamespace(), '
        'reset=lambda: None)\n')
    return tmp_path


def _reached_the_peer(result: subprocess.CompletedProcess) -> None:
    """The worker answered (stdout) that the peer module stopped at ``from torch import nn``."""
    assert result.returncode == 0, result.stderr[-2000:]
    assert "No module named 'peers'" not in result.stdout + result.stderr
    assert "cannot import name 'nn' from 'torch'" in result.stdout, result.stdout[-2000:]
    assert str(Path("tools") / "peers" / "deconvnet_torch.py") in result.stderr


def test_the_gpu_torch_worker_script_imports_the_peer_package(stand_in_torch):
    """bench_gpu.py's PyTorch worker, run as a script as the benchmark starts it."""
    result = subprocess.run([sys.executable, "tools/bench_gpu.py", "--worker", "torch", "{}"],
                            cwd=ROOT, env=_env(first=stand_in_torch), capture_output=True,
                            text=True, timeout=120)
    _reached_the_peer(result)


def test_the_cpu_torch_worker_script_imports_the_peer_package(stand_in_torch):
    """bench_peers.py's PyTorch worker process (its line protocol on stdin/stdout)."""
    setup = {"cmd": "setup", "preset": "deconvnet_tiny", "size": 32, "task": "train",
             "batch": 2, "settings": ["eager_fp32"], "num_classes": 5}
    result = subprocess.run([sys.executable, "tools/bench_peers.py", "--worker", "torch"],
                            input=json.dumps(setup) + '\n{"cmd": "exit"}\n', cwd=ROOT,
                            env=_env(first=stand_in_torch), capture_output=True, text=True,
                            timeout=120)
    _reached_the_peer(result)
