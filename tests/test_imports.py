"""Import hygiene: the lazy package, console scripts that parse before importing frameworks,
and one line of stderr for a failing console script (TensorFlow's start-up logs hidden)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPTS = ["crf", "demo", "evaluate", "export", "lite-predict", "predict", "presets", "train",
           "visualize"]
BIN = Path(sys.executable).parent

BLOCKER = textwrap.dedent("""
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("keras", "tensorflow", "jax"):
                raise ImportError(f"blocked in this test: {name}")
    sys.meta_path.insert(0, Block())
""")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def test_lite_runtime_and_helpers_import_without_keras_or_tensorflow():
    done = run_python("""
        import deconvnet_tf, deconvnet_tf.lite, deconvnet_tf.io, deconvnet_tf.render
        from deconvnet_tf.lite import LiteSegmenter, read_metadata
        try:
            deconvnet_tf.build_model
        except ImportError as err:
            assert "needs Keras" in str(err), err
        else:
            raise AssertionError("build_model without Keras")
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_console_script_parses_help_without_importing_frameworks(script):
    module = script.replace("-", "_")
    done = run_python(f"""
        import sys
        from deconvnet_tf.cli import {module} as cli
        try:
            cli.main(["--help"])
        except SystemExit as exit_:
            assert exit_.code in (0, None), exit_.code
        loaded = [m for m in ("keras", "tensorflow", "jax") if m in sys.modules]
        assert not loaded, loaded
    """)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "--help" in done.stdout
    assert "``" not in done.stdout  # plain text help (no RST markup)


@pytest.mark.skipif(shutil.which("deconvnet-predict", path=str(BIN)) is None,
                    reason="console scripts not installed in this environment")
def test_a_failing_console_script_prints_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    model = Path(__file__).resolve().parents[1] / "saved_models" / "horse_compact.keras"
    done = subprocess.run([str(BIN / "deconvnet-predict"), "--model", str(model), "--input",
                           str(tmp_path / "missing.jpg"), "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"deconvnet-predict: error: Input not found: '{tmp_path / 'missing.jpg'}' does not exist"]
