"""Documentation is tested: every shell command and Python snippet in README.md and docs/*.md runs.

Collection. Every fenced block of README.md and docs/*.md in ``bash``, ``sh``, ``console`` (lines
after a ``$ `` prompt) or ``python`` is one test case, named ``<file>:<line of the opening
fence>``, e.g. ``test_block[README.md:15-tensorflow]``. Fences in ``text`` (or without a
language) that start with a console script or ``python tools/...`` are usage synopses: they are
not run, but every ``--flag`` in them must be one the program's ``--help`` lists
(``test_synopsis``; ``make``, ``pip`` and ``pytest`` lines there are checked as the allowlisted
ones below). Commands may not hide in indented (unfenced) code blocks
(``test_commands_are_fenced``). Kotlin, Swift and JSON blocks (docs/mobile.md) are not run.

How a case runs. In a fresh temporary folder that has ``tools/`` (a link to the repository's),
``saved_models/`` (copies of the shipped files the block names, with their JSON sidecars, except
the ones a ``tools/ship_model.py --name X`` in the block writes; ``--update-settings --name X``
gets all of X's shipped files), an empty ``docs/`` and the
inputs below. A shell block runs with ``bash -e -o pipefail`` and ``.venv/bin`` first on
``PATH``; a Python block runs as a script in a new ``.venv`` Python process, so ``KERAS_BACKEND``
is the case's. Both have ``JAX_PLATFORMS=cpu``. A case passes when the block exits with 0.

Backends. A block runs under ``KERAS_BACKEND=tensorflow`` and ``jax`` unless it is
TensorFlow-only (``TF_ONLY``: export, SavedModel, tf.data, the argmax layers, ``--tfds``, the
demo, the benchmark), JAX-only (``JAX_ONLY``: ``keras.distribution``), sets its backend itself
(``--backend X`` or ``KERAS_BACKEND=X``: run once as written, id ``-pinned``) or does not use
Keras (not ``USES_KERAS``: run once, id ``-nokeras``).

Tiers. A block that uses Keras runs in a fresh process that imports TensorFlow or JAX and
builds, trains or loads a model (10-80 s on 2 cores): it is marked ``slow`` (``make test-slow``,
which CI runs after ``make test``); the blocks of ``SLOW`` take minutes and are marked ``long``
too (``make test-docs-slow``, before a release). ``-nokeras`` blocks, the synopses and the
collection checks run in ``make test``.

Substitutions (``SUBSTITUTIONS``, ``APPENDS``, ``provide_inputs``), applied to the block's text
before it runs, so that every command finishes in seconds on 2 CPU cores without the real data:

==========================================================  =======================================
in the docs                                                 when tested
==========================================================  =======================================
dataset paths ``/path/to/{camvid_360x480,camvid_180x240,    ``$DATA``: a generated dataset in the
weizmann_horse,dataset}``, ``camvid_360x480``,              folder layout, 8 train + 4 val scenes
``camvid/...``, ``--data VOCdevkit``                        of 48x64, 5 classes
                                                            (``deconvnet_tf.data.synthetic``)
presets ``deconvnet_vgg16``, ``deconvnet_vgg16_slim``,      ``deconvnet_vgg16_compact`` (VGG16
``deconvnet_vgg16_b4_compact``/``_b5_compact``/             layers, loads the ``hed`` weights)
``_compact_k7`` (its 49-pixel minimum is above the crops);
``deconvnet_small``/``deconvnet_mobile``;                   ``deconvnet_tiny``; ``fcn8s_tiny``
``fcn8s_vgg16``/``fcn32s_vgg16``/``fcn8s_small``
image sizes ``360, 480``/``360x480``; ``224`` (``224x224``, ``48, 64``; ``32``; ``48x64``
``(224, 224)``, ``input_size=224``, ``--input-size 224``);
``180x240``
Python ``epochs=N``, ``steps_per_epoch=N``,                 ``1``, ``2``, ``2``, ``3``
``batch_size=N``, ``top_k=N``
``--top-k N``, ``--limit N``, ``--calibration-count N``,    ``3``, ``2``, ``4``, ``0 1``
``--indices I J``
``--largest-component horse``                               ``--largest-component disc``
``deconvnet-train ...``                                     appended (the last value wins):
                                                            ``--epochs 1 --batch-size 2 --set
                                                            crop_size=[32,32] --set window_size=40
                                                            --set stage1_epochs=1 --set
                                                            synthetic_train=8 --set synthetic_val=4
                                                            --set synthetic_size=[48,64]``
``deconvnet-demo ...``                                      ``--epochs 1 --num-train 8`` appended
``python tools/paper_table.py ...``                         ``--limit 2 --top-k 3`` appended
``deconvnet-predict ...``                                   ``--top-k 3`` appended
``nice -n -10``                                             dropped (needs root)
``/tmp/X``                                                  ``tmp/X`` in the case's folder
``runs/<name>`` read by a block that does not write it      a run folder of ``deconvnet_tiny``
(no ``--output runs/<name>`` in the block)                  (``fcn8s_tiny`` when the name has
                                                            ``fcn``) trained 1 epoch on the
                                                            generated scenes (once per session;
                                                            its data in ``runs/<name>/synthetic_data``)
``photo.png``, ``photos/``                                  generated 48x64 scenes
``train[0001TP]``, ``train[-0001TP]`` (CamVid's sequence;   ``train[train_00000]``,
``0006R0``, ``0016E5`` likewise; frame prefixes             ``train[-train_00000]``
``0001TP_0076``, as in fold T)                              (``train_00001`` for ``0006R0``,
                                                            ``train_00003`` for ``0016E5``,
                                                            ``train_00002`` for ``0001TP_NNNN``)
``saved_models/*``                                          the shipped files (copies)
==========================================================  =======================================

Commands that cannot run here are in ``ALLOWLIST`` with the reason; they are checked statically
instead (a ``make`` target exists in the Makefile, ``pip install -e ".[x]"`` names extras of
pyproject.toml, a pytest path exists, every ``--flag`` of a console script or tool is in its
``--help``). ``make demo`` itself is not run here: it is ``make install`` plus
``deconvnet-demo --output demo_output``; the console script runs here at tiny settings
(docs/visualize.md) and ``run_demo`` end to end in tests/cli/test_demo.py.

The quick tier of this file alone: ``pytest tests/test_docs.py -m "not slow"`` (the checks
that start no Keras); ``-m "slow and not long"`` adds every block but the long ones.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs  # tiers: see "Tiers" above

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
RUN_LANGS = SHELL_LANGS | {"python"}
SYNOPSIS_LANGS = {"", "text"}
TIMEOUT_S = 600

# Programs whose command lines the docs show; the first word of a command (after VAR=value and
# `nice -n N`) that is one of these, or `python[3] tools/X.py`, is a documented command.
CONSOLE_SCRIPTS = ("deconvnet-demo", "deconvnet-presets", "deconvnet-train", "deconvnet-evaluate",
                   "deconvnet-predict", "deconvnet-crf", "deconvnet-export",
                   "deconvnet-lite-predict", "deconvnet-visualize")

DATA_TOKEN = "@DATA@"  # replaced by the generated dataset's path when a case runs

# (pattern, replacement) applied in order to every runnable block (shell and Python).
SUBSTITUTIONS: list[tuple[str, str]] = [
    # datasets -> the generated one
    (r"(?:/path/to/|\.\./shared/data/)(?:camvid_360x480|camvid_180x240|weizmann_horse|dataset)\b",
     DATA_TOKEN),
    (r"(?<![\w/.-])camvid_360x480\b", DATA_TOKEN),
    (r"(?<![\w/.-])camvid/", DATA_TOKEN + "/"),
    (r"--data VOCdevkit\b", "--data " + DATA_TOKEN),
    # CamVid's held-out sequences in a split selector -> a generated training scene
    (r"\[(-?)0001TP\]", r"[\1train_00000]"),
    (r"\[(-?)0006R0\]", r"[\1train_00001]"),
    (r"\[(-?)0016E5\]", r"[\1train_00003]"),  # fold E (docs/results.md)
    # fold T's selectors: 0006R0 and frame prefixes of 0001TP (docs/training.md)
    (r"\[(-?)0006R0,", r"[\1train_00001,"),
    (r"\b0001TP_\d+", "train_00002"),
    # Weizmann Horse's object class -> a generated scene's class
    (r"--largest-component horse\b", "--largest-component disc"),
    # big presets -> small ones
    (r"\bdeconvnet_vgg16(?:_slim|_b4_compact|_b5_compact|_compact_k7)?\b",
     "deconvnet_vgg16_compact"),
    (r"\bdeconvnet_(?:small|mobile)\b", "deconvnet_tiny"),
    (r"\b(?:fcn8s_vgg16|fcn32s_vgg16|fcn8s_small)\b", "fcn8s_tiny"),
    # image sizes
    (r"\b360(,\s*|x)480\b", r"48\g<1>64"),
    (r"\b224(,\s*|x)224\b", r"32\g<1>32"),
    (r"\b180x240\b", "48x64"),
    (r"\binput_size=224\b", "input_size=32"),
    (r"--input-size 224\b", "--input-size 32"),
    # lengths and counts
    (r"\bepochs=\d+", "epochs=1"),
    (r"\bsteps_per_epoch=\d+", "steps_per_epoch=2"),
    (r"\bbatch_size=\d+", "batch_size=2"),
    (r"\btop_k(=|\": )\d+", r"top_k\g<1>3"),
    (r"--top-k \d+", "--top-k 3"),
    (r"--limit \d+", "--limit 2"),
    (r"--calibration-count \d+", "--calibration-count 4"),
    (r"--indices( \d+)+", "--indices 0 1"),
    # the machine
    (r"\bnice -n -?\d+ ", ""),
    (r"(?<![\w./-])/tmp/", "tmp/"),
]

TRAIN_TINY = ("--epochs 1 --batch-size 2 --set crop_size=[32,32] --set window_size=40 "
              "--set stage1_epochs=1 --set synthetic_train=8 --set synthetic_val=4 "
              "--set synthetic_size=[48,64]")
# program -> flags appended to each of its command lines (argparse: the last value wins).
APPENDS = {
    "deconvnet-train": TRAIN_TINY,
    "deconvnet-demo": "--epochs 1 --num-train 8",
    "tools/paper_table.py": "--limit 2 --top-k 3",
    "deconvnet-predict": "--top-k 3",
}

# Commands that are not run, with the reason; checked statically (see check_static).
ALLOWLIST: list[tuple[str, str]] = [
    (r"^make\b",
     "make targets install the venv and run the whole demo (40 epochs), the suite or mutation "
     "testing; checked: the target exists. The demo's code runs in tests/cli/test_demo.py and "
     "deconvnet-demo at tiny settings in docs/visualize.md's first block"),
    (r"^(python3? -m )?pip install\b",
     "installs packages (network, GPU wheels); checked: the extras exist in pyproject.toml"),
    (r"^(\.venv/bin/python -m |python3? -m )?pytest\b",
     "runs tests of the suite (the suite runs them itself; -m gpu needs a GPU)"),
    (r"^python3? tools/(benchmark|bench_\w+)\.py\b(?!.*--estimate-only)",
     "benchmark: a timing run (tests/tools/test_benchmark.py and tests/gpu/test_bench_gpu.py "
     "smoke-test the tools); checked: its flags exist"),
]

# Blocks that need TensorFlow (matched against the block's text), with the reason.
TF_ONLY: list[tuple[str, str]] = [
    (r"deconvnet-export|deconvnet_tf\.export|saved_model\b", "export needs TensorFlow"),
    (r"MaxPoolingWithArgmax2D|MaxUnpooling2D", "the argmax pooling pair is TensorFlow-only"),
    (r"\btf\.|import tensorflow|--tfds", "TensorFlow / tf.data / TFDS"),
    (r"deconvnet-demo", "the demo trains on tf.data and exports"),
    (r"tools/ship_model\.py", "ship_model exports LiteRT files"),
    (r"tools/benchmark\.py", "the benchmark measures a tf.matmul peak (JAX rows run in their own "
     "processes)"),
]
# Blocks that need JAX, with the reason.
JAX_ONLY: list[tuple[str, str]] = [
    (r"\bdata_parallel\(|JaxDataParallel", "keras.distribution.DataParallel is JAX-only"),
]
# Blocks that use Keras (the others never import it: run once).
USES_KERAS = (r"deconvnet-(?:train|evaluate|predict|visualize|presets|demo|export)\b|"
              r"tools/(?!plot_curves)\w+\.py|"
              r"\bimport keras\b|\bimport deconvnet_tf\b|deconvnet_tf\.(?!lite\b)\w+|"
              r"from deconvnet_tf import")
# Blocks that take minutes even at tiny settings: (pattern, backends or None for all, reason).
SLOW: list[tuple[str, tuple[str, ...] | None, str]] = [
    (r"deconvnet-demo", None, "the demo at 1 epoch: preset table of every preset, export, grid"),
    (r"tools/ship_model\.py", None, "two XLA trainings, a table, two exports and figures"),
    (r"--two-stage", None, "two trainings on object crops"),
    (r"--mixed-precision|--jit-compile", None, "XLA/bf16 train steps compile for a minute"),
    (r"tools/paper_table\.py|--mode instance", None,
     "instance-wise inference: HED edges, EdgeBoxes and a batch of crops per image"),
    (r"deconvnet-export", None, "each SavedModel/TFLite conversion takes 10-20 s"),
    (r"deconvnet-train[^\n]*--recipe", None,
     "a bundled recipe: a VGG16-sized training with HED weights and XLA"),
    (r"deconvnet-train[^\n]*--encoder-weights hed", None,
     "a VGG16-sized (deconvnet_vgg16_compact) training with HED weights: ~40 s"),
    (r"deconvnet-train|\.fit\(|predict_instances|predict_edeconvnet|deconvnet_tf\.visualize|"
     r"deconvnet-visualize|tools/visualize_\w+\.py|encoder_weights=\"hed\"|from_preset\(",
     ("jax",), "JAX compiles the train/predict steps of VGG16-sized networks, at every image "
     "size, or every layer of a projection (about a minute)"),
]


@dataclasses.dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """Fenced code blocks of a Markdown file (top-level ``` fences)."""
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^```\s*([\w+-]*)\s*$", line)
        if lang is None and fence:
            lang, start, body = fence.group(1).lower(), number, []
        elif lang is not None and line.startswith("```"):
            blocks.append(Block(path, start, lang, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{path.name}:{start}: unclosed code fence"
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in DOC_FILES for block in parse_blocks(path)]


def logical_lines(text: str) -> list[str]:
    """Shell text as commands: continuation lines joined, comment-only and empty lines dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1].rstrip() + " "
            continue
        lines.append((current + raw.strip()).strip())
        current = ""
    if current:
        lines.append(current.strip())
    return lines


def split_comment(command: str) -> tuple[str, str]:
    """``(command, comment)``: a `` #`` outside quotes starts the comment."""
    quote = None
    for i, ch in enumerate(command):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].rstrip(), command[i:]
    return command, ""


def shell_commands(block: Block) -> list[str]:
    text = block.text
    if block.lang == "console":
        text = "\n".join(line[2:] for line in text.splitlines() if line.startswith("$ "))
    return [split_comment(line)[0] for line in logical_lines(text)]


def program(command: str) -> str | None:
    """The documented program of a command: a console script or ``tools/X.py``."""
    words = command.split()
    while words and (re.match(r"^\w+=", words[0]) or words[0] == "nice"):
        words = words[3:] if words[0] == "nice" else words[1:]
    if not words:
        return None
    if words[0] in CONSOLE_SCRIPTS:
        return words[0]
    if re.match(r"^python3?$", words[0]) and len(words) > 1 and words[1].startswith("tools/"):
        return words[1]
    return None


def allowlisted(command: str) -> str | None:
    bare = re.sub(r"^(\w+=\S+ )+", "", command)
    for pattern, reason in ALLOWLIST:
        if re.search(pattern, bare):
            return reason
    return None


def substitute(text: str, shell: bool) -> str:
    """The block's text with SUBSTITUTIONS applied (and APPENDS for shell commands)."""
    if not shell:
        for pattern, replacement in SUBSTITUTIONS:
            text = re.sub(pattern, replacement, text)
        return text
    out = []
    for command in shell_commands(Block(ROOT, 0, "bash", text)):
        for pattern, replacement in SUBSTITUTIONS:
            command = re.sub(pattern, replacement, command)
        parts = []
        for piece in re.split(r"(\s*(?:&&|\|\||;|\|)\s*)", command):
            prog = program(piece)
            if prog in APPENDS:
                piece = f"{piece} {APPENDS[prog]}"
            parts.append(piece)
        out.append("".join(parts))
    return "\n".join(out) + "\n"


def backends(block: Block) -> list[str]:
    """Backends a block runs under (see the module docstring)."""
    if re.search(r"(?:--backend |KERAS_BACKEND=)(tensorflow|jax)", block.text):
        return ["pinned"]
    if any(re.search(p, block.text) for p, _ in TF_ONLY):
        return ["tensorflow"]
    if any(re.search(p, block.text) for p, _ in JAX_ONLY):
        return ["jax"]
    if not re.search(USES_KERAS, block.text):
        return ["nokeras"]
    return ["tensorflow", "jax"]


def runnable_text(block: Block) -> str:
    """What of a block runs: shell commands that are not allowlisted, or the Python text."""
    if block.lang == "python":
        return block.text
    return "\n".join(c for c in shell_commands(block) if not allowlisted(c))


def _tier_marks(backend: str, long: bool) -> list:
    """A block that starts Keras is ``slow`` (a fresh process imports TensorFlow or JAX and
    builds, trains or loads a model: ~10-80 s each; ``make test-slow``, run by CI); one in
    ``SLOW`` is ``long`` too (minutes; ``make test-docs-slow``). The rest (``-nokeras``) run in
    ``make test``."""
    if long:
        return [pytest.mark.slow, pytest.mark.long]
    return [] if backend == "nokeras" else [pytest.mark.slow]


def cases() -> list:
    params = []
    for block in all_blocks():
        if block.lang not in RUN_LANGS:
            continue
        text = runnable_text(block)
        if not text.strip():
            continue  # every command allowlisted: test_allowlisted checks them
        for backend in backends(Block(block.path, block.line, block.lang, text)):
            long = any(re.search(p, text) and (only is None or backend in only)
                       for p, only, _ in SLOW)
            params.append(pytest.param(block, backend, id=f"{block.id}-{backend}",
                                       marks=_tier_marks(backend, long)))
    return params


# ---------------------------------------------------------------------------------------------
# Inputs the blocks read


def _run(args, cwd, env=None, timeout=TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def base_env(backend: str) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("DECONVNET_TF_BACKEND_REEXEC", None)
    if backend in ("tensorflow", "jax"):
        env["KERAS_BACKEND"] = backend
    else:
        env.pop("KERAS_BACKEND", None)
    return env


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> Path:
    """``dn/`` (deconvnet_tiny) and ``fcn/`` (fcn8s_tiny): run folders trained 1 epoch on 12
    generated 48x64 scenes (``dn/synthetic_data``), the stand-ins for ``runs/<name>``."""
    root = tmp_path_factory.mktemp("docs_runs")
    script = textwrap.dedent(f"""
        from deconvnet_tf.cli import train
        tiny = {TRAIN_TINY.split()!r}
        assert train.main(["--preset", "deconvnet_tiny", "--output", "dn", "--quiet", *tiny]) == 0
        assert train.main(["--data", "dn/synthetic_data", "--preset", "fcn8s_tiny",
                           "--output", "fcn", "--quiet", *tiny]) == 0
    """)
    result = _run([PYTHON, "-c", script], cwd=root, env=base_env("tensorflow"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root


@pytest.fixture(scope="session")
def docs_data(trained_runs) -> Path:
    """The generated dataset that stands in for every dataset path."""
    return trained_runs / "dn" / "synthetic_data"


def provide_inputs(workdir: Path, text: str, runs: Path | None) -> None:
    """Makes what a block reads but does not write (see the module docstring)."""
    (workdir / "tools").symlink_to(ROOT / "tools")
    (workdir / "docs").mkdir()
    shipped = workdir / "saved_models"
    shipped.mkdir()
    joined = text.replace("\\\n", " ")
    # ship_model --name X writes saved_models/X*; with --update-settings it changes them
    updating = re.findall(r"tools/ship_model\.py [^\n]*--update-settings[^\n]*--name (\w+)",
                          joined)
    shipping = [n for n in re.findall(r"tools/ship_model\.py [^\n]*--name (\w+)", joined)
                if n not in updating]
    for name in updating:
        for path in (ROOT / "saved_models").glob(f"{name}*"):
            if re.fullmatch(rf"{name}(_int8)?\.(keras|tflite|json|md)", path.name):
                shutil.copy(path, shipped / path.name)
    for name in set(re.findall(r"saved_models/([\w.-]+)", text)):
        stem = Path(name).stem
        if any(stem.startswith(n) for n in shipping):
            continue
        for path in (ROOT / "saved_models" / name, ROOT / "saved_models" / f"{stem}.json"):
            if path.is_file():
                shutil.copy(path, shipped / path.name)
    written = set(re.findall(r"--output\s+runs/([\w.-]+)", text))
    for name in sorted(set(re.findall(r"(?<![\w/])runs/([\w.-]+)", text)) - written):
        source = runs / ("fcn" if "fcn" in name else "dn")
        shutil.copytree(source, workdir / "runs" / name, symlinks=True)
    if re.search(r"(?<![\w/])photos?\b", text):
        from deconvnet_tf.data.synthetic import make_scene
        from deconvnet_tf.render import save_png

        (workdir / "photos").mkdir()
        for seed in range(2):
            save_png(workdir / "photos" / f"scene{seed}.png", make_scene(seed, 48, 64)[0])
        shutil.copy(workdir / "photos" / "scene0.png", workdir / "photo.png")


# ---------------------------------------------------------------------------------------------
# The tests


@pytest.mark.parametrize("block,backend", cases())
def test_block(block: Block, backend: str, tmp_path, request):
    """Runs one documented block (with the substitutions) and expects exit status 0."""
    shell = block.lang != "python"
    text = substitute(runnable_text(block), shell)
    # The trained runs and their dataset only for the blocks that read them (a training).
    runs = None
    if DATA_TOKEN in text or re.search(r"(?<![\w/])runs/[\w.-]+", text):
        runs = request.getfixturevalue("trained_runs")
        text = text.replace(DATA_TOKEN, str(request.getfixturevalue("docs_data")))
    provide_inputs(tmp_path, text, runs)
    if shell:
        script = tmp_path / "block.sh"
        script.write_text("set -e -o pipefail\n" + text)
        args = ["bash", str(script)]
    else:
        script = tmp_path / "block.py"
        script.write_text(text)
        args = [PYTHON, str(script)]
    result = _run(args, cwd=tmp_path, env=base_env(backend))
    output = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, (
        f"{block.id} failed under {backend} (status {result.returncode}).\n"
        f"--- ran ---\n{text}\n--- output (end) ---\n{output}")


@functools.lru_cache(maxsize=None)
def _help(prog: str) -> str:
    """``prog --help`` (a console script or ``tools/X.py``), once per session."""
    if prog.startswith("tools/"):
        args = [PYTHON, str(ROOT / prog), "--help"]
    else:
        args = [str(VENV_BIN / prog), "--help"]
    result = _run(args, cwd=ROOT, env=base_env("tensorflow"), timeout=300)
    assert result.returncode == 0, f"{prog} --help failed: {result.stderr[-2000:]}"
    return result.stdout


def flag_problems(command: str) -> list[str]:
    """``--flags`` of a documented program that its ``--help`` does not list."""
    prog = program(command)
    if prog is None:
        return []
    if prog.startswith("tools/") and not (ROOT / prog).is_file():
        return [f"{prog} does not exist"]
    text = _help(prog)
    return [f"{prog} has no {flag}"
            for flag in sorted(set(re.findall(r"(?<![\w-])--[a-z][\w-]*", command)))
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]


def check_static(command: str) -> list[str]:
    """What can be checked of an allowlisted command without running it."""
    problems = flag_problems(command)
    bare = re.sub(r"^(\w+=\S+ )+", "", command)
    if make := re.match(r"^make ([\w-]+)", bare):
        if not re.search(rf"^{make.group(1)}:", (ROOT / "Makefile").read_text(), re.M):
            problems.append(f"Makefile has no target {make.group(1)}")
    for extras in re.findall(r"pip install[^&;]*?-e \"?\.\[([\w,]+)\]", bare):
        pyproject = (ROOT / "pyproject.toml").read_text()
        problems += [f"pyproject.toml has no extra {name!r}" for name in extras.split(",")
                     if not re.search(rf"^{name} = \[", pyproject, re.M)]
    if re.search(r"\bpytest\b", bare):
        for word in shlex.split(bare):
            if word.startswith("tests") and not (ROOT / word).exists():
                problems.append(f"{word} does not exist")
        pyproject = (ROOT / "pyproject.toml").read_text()
        problems += [f"marker {m!r} is not declared" for m in re.findall(r"-m (\w+)", bare)
                     if m != "pytest" and not re.search(rf'"{m}:', pyproject)]
    return problems


def allowlisted_commands() -> list:
    return [pytest.param(c, id=f"{b.id}:{c[:40]}") for b in all_blocks() if b.lang in SHELL_LANGS
            for c in shell_commands(b) if allowlisted(c)]


@pytest.mark.parametrize("command", allowlisted_commands())
def test_allowlisted(command: str):
    """Allowlisted commands are not run: their targets, extras, paths and flags must exist."""
    assert check_static(command) == []


def synopses() -> list:
    params = []
    for block in all_blocks():
        if block.lang in SYNOPSIS_LANGS:
            commands = [split_comment(c)[0] for c in logical_lines(block.text)]
            commands = [c for c in commands if program(c) or allowlisted(c)]
            if commands:
                params.append(pytest.param(commands, id=block.id))
    return params


@pytest.mark.parametrize("commands", synopses())
def test_synopsis(commands: list[str]):
    """Usage synopses (``text`` fences) name programs, make targets and flags that exist."""
    problems = [p for command in commands for p in check_static(command)]
    assert problems == []


def test_commands_are_fenced():
    """Commands are in fenced blocks (which this module runs), not in indented ones."""
    strays = []
    for path in DOC_FILES:
        in_fence = False
        previous = ""
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("```"):
                in_fence = not in_fence
            elif (not in_fence and line.startswith("    ") and not previous.strip()
                  and (program(line.strip()) or re.match(r"\s+(pip|make|python)\b", line))):
                strays.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:60]}")
            previous = line if not in_fence else ""
    assert strays == [], "indented commands are not tested; put them in a ```bash fence"


def test_collection_covers_every_block():
    """Every bash/python block is run, allowlisted or a synopsis; the allowlist is all used."""
    blocks = all_blocks()
    runnable = [b for b in blocks if b.lang in RUN_LANGS]
    assert len(runnable) >= 20
    commands = [c for b in blocks if b.lang in SHELL_LANGS for c in shell_commands(b)]
    unused = [p for p, _ in ALLOWLIST if not any(re.search(p, c) or re.search(p, re.sub(
        r"^(\w+=\S+ )+", "", c)) for c in commands)]
    assert unused == [], "allowlist entries that match no documented command"
    unknown = sorted({b.lang for b in blocks} - RUN_LANGS - SYNOPSIS_LANGS
                     - {"json", "kotlin", "swift"})
    assert unknown == [], "code fences in a language this module neither runs nor skips"


def test_substitutions_make_tiny_commands():
    """The substitution table does what the docstring says (on the README's own commands)."""
    text = ("deconvnet-train --data /path/to/camvid_360x480 --preset deconvnet_vgg16 \\\n"
            "    --epochs 20 --set crop_size=[224,224]   # a comment\n"
            "nice -n -10 python tools/paper_table.py --deconvnet a.keras --data x --top-k 20\n")
    out = substitute(text, shell=True).splitlines()
    assert out[0] == (f"deconvnet-train --data {DATA_TOKEN} --preset deconvnet_vgg16_compact "
                      f"--epochs 20 --set crop_size=[32,32] {TRAIN_TINY}")
    assert out[1] == ("python tools/paper_table.py --deconvnet a.keras --data x --top-k 3 "
                      "--limit 2 --top-k 3")
    python = substitute('m = build_model("deconvnet_vgg16_slim")\nm.fit(t, epochs=40)\n'
                        'x = np.zeros((1, 360, 480, 3))\n', shell=False)
    assert python == ('m = build_model("deconvnet_vgg16_compact")\nm.fit(t, epochs=1)\n'
                      'x = np.zeros((1, 48, 64, 3))\n')
    # the 7x7-fc6 lever runs as the compact preset (its minimum input is above the tiny crops)
    lever = substitute('build_model("deconvnet_vgg16_compact_k7"); "deconvnet_vgg16_compact"',
                       shell=False)
    assert lever == 'build_model("deconvnet_vgg16_compact"); "deconvnet_vgg16_compact"'
