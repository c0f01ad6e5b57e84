#!/usr/bin/env python
"""Mutation testing of the modules where wrong code would go unnoticed, with mutmut.

    python tools/mutation.py                      # every module group below (~25 min, 2 cores)
    python tools/mutation.py --groups ensemble metrics
    python tools/mutation.py --list               # the groups, their modules and tests

mutmut changes one thing at a time in a module (an operator, a constant, a keyword argument,
a returned value...) and runs the tests that cover the changed function. A mutant that no test
notices ("survived") is a change of behaviour the suite cannot see. The score of a group is
killed / (killed + survived); timeouts count as killed, mutants no test covers as survived.

The run happens in a copy of the tracked files in a temporary folder (mutmut writes its
``mutants/`` folder and config there), so the working tree is never modified. The table is
printed at the end, with every surviving mutant's name; ``--show`` prints their diffs.
Not part of ``make test``: ``make mutation`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Group -> (modules to mutate, tests that cover them). Groups are data: add a line.
GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "augmentation": (
        ("deconvnet_tf/data/augment.py", "deconvnet_tf/data/augment_np.py",
         "deconvnet_tf/data/augment_spec.py"),
        ("tests/data/test_augment.py", "tests/data/test_augment_parity.py",
         "tests/data/test_folder_pipeline.py", "tests/data/test_pydataset.py",
         "tests/data/test_augment_survivors.py"),
    ),
    "ensemble": (
        ("deconvnet_tf/inference/ensemble.py",),
        ("tests/inference/test_inference_crf_ensemble.py", "tests/inference/test_edeconvnet.py",
         "tests/inference/test_ensemble_survivors.py"),
    ),
    "instance": (
        ("deconvnet_tf/inference/instance.py",),
        ("tests/inference/test_inference_instance.py",),
    ),
    "losses": (
        ("deconvnet_tf/training/losses.py",),
        ("tests/training/test_losses.py", "tests/training/test_losses_survivors.py"),
    ),
    "metrics": (
        ("deconvnet_tf/evaluation/metrics.py",),
        # NumPy-only tests: a Keras metric that ran an op in mutmut's parent deadlocks its forks.
        ("tests/training/test_metrics_report.py",),
    ),
    "checkpointing": (
        ("deconvnet_tf/training/checkpointing.py", "deconvnet_tf/training/schedules.py",
         "deconvnet_tf/training/atomic.py", "deconvnet_tf/training/runfolder.py"),
        ("tests/training/test_runfolder.py", "tests/training/test_callbacks.py",
         "tests/training/test_schedules.py", "tests/training/test_checkpointing.py"),
    ),
    "export_parity": (
        ("deconvnet_tf/export/_int8_pooling.py",),
        ("tests/export/test_int8_pooling.py", "tests/export/test_export_parity.py"),
    ),
    "size_rule": (
        ("deconvnet_tf/io.py",),
        ("tests/test_io.py", "tests/test_io_formats.py", "tests/test_size_rule.py",
         "tests/test_io_class_names.py", "tests/test_io_atomic.py",
         "tests/test_io_survivors.py"),
    ),
}

# Groups whose tests run TensorFlow/Keras ops: mutmut runs each mutant in a process forked from
# one that has already run them, and TensorFlow's thread pools do not survive a fork (the child
# hangs, or its tests fail at once whatever the mutant: both read as "killed"). Their mutants
# run without forking, in long-lived worker processes (:func:`recheck_in_process`). Only the
# NumPy-only groups (metrics, size_rule) and checkpointing (its tests save models but never
# run a training loop; measured without a hang) use mutmut's forks.
IN_PROCESS = {"augmentation", "ensemble", "instance", "losses", "export_parity"}

_RESULT = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>[\w ]+)$")
_KILLED = {"killed", "timeout", "segfault"}


def _copy_tree(target: Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file() and not name.startswith("saved_models/"):
            dst = target / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def _config(modules: list[str], tests: list[str]) -> str:
    def toml_list(items):
        return "[" + ", ".join(f'"{i}"' for i in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        f"source_paths = {toml_list(modules)}\n"
        'also_copy = ["tests", "deconvnet_tf", "tools"]\n'
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
    )


def module_of(mutant: str) -> str:
    """``deconvnet_tf.inference.ensemble.x_fn__mutmut_3`` -> ``deconvnet_tf/inference/ensemble.py``."""
    dotted = mutant.split("__mutmut_")[0].rsplit(".", 1)[0]
    return dotted.replace(".", "/") + ".py"


def parse_results(text: str) -> dict[str, dict[str, list[str]]]:
    """``mutmut results --all true`` output -> {module: {"killed": [...], "survived": [...]}}."""
    table: dict[str, dict[str, list[str]]] = {}
    for line in text.splitlines():
        match = _RESULT.match(line)
        if not match:
            continue
        status = match["status"].strip()
        if status in ("skipped", "not checked"):
            continue
        kind = "killed" if status in _KILLED else "survived"
        row = table.setdefault(module_of(match["name"]),
                               {"killed": [], "survived": [], "timeout": []})
        row[kind].append(match["name"])
        if status == "timeout":  # counted as killed; listed so a hang cannot pass unseen
            row["timeout"].append(match["name"])
    return table


def score(row: dict[str, list[str]]) -> float:
    total = len(row["killed"]) + len(row["survived"])
    return len(row["killed"]) / total if total else float("nan")


def run(groups: list[str], workdir: Path, children: int, show: bool) -> dict:
    modules = sorted({m for g in groups for m in GROUPS[g][0]})
    tests = sorted({t for g in groups for t in GROUPS[g][1] if (ROOT / t).exists()})
    missing = [m for m in modules if not (ROOT / m).exists()]
    if missing:
        raise SystemExit(f"mutation: modules not found: {', '.join(missing)}")
    _copy_tree(workdir)
    with open(workdir / "pyproject.toml", "a") as f:
        f.write(_config(modules, tests))
    mutmut = shutil.which("mutmut", path=os.path.dirname(sys.executable)) or "mutmut"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    in_process = sorted({m.replace("/", ".")[:-3] for g in groups if g in IN_PROCESS
                         for m in GROUPS[g][0]})
    patterns = []
    if in_process:  # mutmut generates every mutant but forks only for the other groups' ones
        patterns = [m.replace("/", ".")[:-3] + ".*" for m in modules
                    if m.replace("/", ".")[:-3] not in in_process]
        patterns += [m + ".*__mutmut_1" for m in in_process]  # one per function: the filter
    subprocess.run([mutmut, "run", "--max-children", str(children), *patterns], cwd=workdir,
                   env=env, stdout=subprocess.DEVNULL, check=False)
    out = subprocess.run([mutmut, "results", "--all", "true"], cwd=workdir, env=env,
                         capture_output=True, text=True).stdout
    table = parse_results(out)
    names = [m["name"] for m in map(_RESULT.match, out.splitlines()) if m
             and m["name"].split("__mutmut_")[0].rsplit(".", 1)[0] in in_process
             and m["status"].strip() != "skipped"]
    if names:
        table = apply_rechecked(table, recheck_in_process(workdir, sorted(set(names)), children,
                                                          env=env))
    if show:
        for row in table.values():
            for name in row["survived"]:
                print(subprocess.run([mutmut, "show", name], cwd=workdir, env=env,
                                     capture_output=True, text=True).stdout)
    return table


_WORKER = r"""
import json, os, signal, sys
import pytest

names, tests_of, out_path, timeout = json.loads(open(sys.argv[1]).read())


class _Timeout(BaseException):
    pass


def _alarm(*_):
    raise _Timeout()


signal.signal(signal.SIGALRM, _alarm)
args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-W", "ignore"]
devnull = open(os.devnull, "w")
results = {}
for name in [""] + names:  # "" first: the unmutated code must pass its tests
    os.environ["MUTANT_UNDER_TEST"] = name
    tests = tests_of.get(name.split("__mutmut_")[0], []) if name else sorted(
        {t for n in names for t in tests_of.get(n.split("__mutmut_")[0], [])})
    if not tests:
        results[name] = "no tests"
        continue
    for module in [m for m in sys.modules if m == "tests" or m.startswith("tests.")]:
        del sys.modules[module]  # module-level caches of the tests (trained models) start over
    signal.alarm(timeout)
    old = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = devnull
    try:
        code = pytest.main(args + tests)
        status = "survived" if code == 0 else "killed"
    except _Timeout:
        status = "timeout"
    finally:
        signal.alarm(0)
        sys.stdout, sys.stderr = old
    if not name and status != "survived":
        raise SystemExit("mutation: the tests fail on the unmutated code (in-process run)")
    results[name] = status
results.pop("")
open(out_path, "w").write(json.dumps(results))
"""


def recheck_in_process(workdir: Path, names: list[str], children: int, timeout: int = 300,
                       env: dict | None = None) -> dict[str, str]:
    """Runs each mutant's covering tests (mutmut's own map of tests per function) in worker
    processes that never fork: ``{mutant: "killed" | "survived" | "timeout" | "no tests"}``."""
    mutants = workdir / "mutants"
    stats = json.loads((mutants / "mutmut-stats.json").read_text())
    tests_of = {k: sorted(v) for k, v in stats["tests_by_mangled_function_name"].items()}
    chunks = [names[i::children] for i in range(children) if names[i::children]]
    procs = []
    for i, chunk in enumerate(chunks):
        job = workdir / f"in_process_{i}.json"
        job.write_text(json.dumps([chunk, tests_of, str(workdir / f"in_process_{i}.out"),
                                   timeout]))
        procs.append(subprocess.Popen([sys.executable, "-c", _WORKER, str(job)], cwd=mutants,
                                      env=env, stdout=subprocess.DEVNULL))
    results: dict[str, str] = {}
    for i, proc in enumerate(procs):
        if proc.wait() != 0:
            raise SystemExit(f"mutation: in-process worker {i} failed (exit {proc.returncode})")
        results.update(json.loads((workdir / f"in_process_{i}.out").read_text()))
    return results


def apply_rechecked(table: dict, rechecked: dict[str, str]) -> dict:
    """Replaces mutmut's verdicts with the in-process ones (same rules as :func:`parse_results`)."""
    for name, status in rechecked.items():
        row = table.setdefault(module_of(name), {"killed": [], "survived": [], "timeout": []})
        for kind in ("killed", "survived", "timeout"):
            if name in row.setdefault(kind, []):
                row[kind].remove(name)
        row["killed" if status in _KILLED else "survived"].append(name)
        if status == "timeout":
            row["timeout"].append(name)
    return table


def report(table: dict, groups: list[str]) -> str:
    lines = ["| group | module | mutants | killed (of them timeouts) | survived | score |",
             "|---|---|---:|---:|---:|---:|"]
    for group in groups:
        for module in GROUPS[group][0]:
            row = table.get(module, {"killed": [], "survived": []})
            k, s, t = len(row["killed"]), len(row["survived"]), len(row.get("timeout", []))
            lines.append(f"| {group} | `{module}` | {k + s} | {k} ({t}) | {s} | {score(row):.0%} |")
    killed = sum(len(r["killed"]) for r in table.values())
    total = killed + sum(len(r["survived"]) for r in table.values())
    lines.append(f"| all | | {total} | {killed} | {total - killed} | "
                 f"{killed / total if total else float('nan'):.0%} |")
    survivors = [n for r in table.values() for n in r["survived"]]
    if survivors:
        lines += ["", "Surviving mutants:"] + [f"- `{n}`" for n in sorted(survivors)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", nargs="+", choices=sorted(GROUPS), default=list(GROUPS),
                        help="module groups to mutate (default: all)")
    parser.add_argument("--children", type=int, default=2, help="parallel mutmut workers")
    parser.add_argument("--show", action="store_true", help="print surviving mutants' diffs")
    parser.add_argument("--keep", metavar="DIR", help="run in DIR (kept) instead of a temp dir")
    parser.add_argument("--list", action="store_true", help="print the groups and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, (modules, tests) in GROUPS.items():
            print(f"{name}: {', '.join(modules)}  <- {', '.join(tests)}")
        return 0
    if args.children < 1:
        parser.error("--children must be >= 1")
    if args.keep:
        workdir = Path(args.keep)
        if workdir.exists() and any(workdir.iterdir()):
            parser.error(f"--keep {workdir}: the folder exists and is not empty")
        workdir.mkdir(parents=True, exist_ok=True)
        table = run(args.groups, workdir, args.children, args.show)
    else:
        with tempfile.TemporaryDirectory(prefix="deconvnet_mutation_") as tmp:
            table = run(args.groups, Path(tmp), args.children, args.show)
    print(report(table, args.groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
