"""deconvnet-presets prints the table; README documents every preset."""

from __future__ import annotations

from pathlib import Path

import pytest

from deconvnet_tf.cli import presets as presets_cli
from deconvnet_tf.models import list_presets

README = Path(__file__).resolve().parents[2] / "README.md"


def test_presets_cli_prints_rows(capsys):
    assert presets_cli.main(["deconvnet_tiny", "fcn8s_tiny", "--size", "64x64", "--num-classes", "5"]) == 0
    out = capsys.readouterr().out
    assert "GFLOP (64x64)" in out
    assert "| `deconvnet_tiny` | deconvnet |" in out and "| `fcn8s_tiny` | fcn8s |" in out


@pytest.mark.parametrize(
    "argv,message",
    [(["nope"], "unknown preset"), (["--size", "big"], "--size must look like 224x224")],
)
def test_presets_cli_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        presets_cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_readme_lists_every_preset():
    text = README.read_text()
    for name in list_presets():
        assert f"| `{name}` |" in text, f"README preset table lacks {name}"


@pytest.mark.slow
def test_backend_flag_reexecutes_the_console_script():
    """Importing deconvnet_tf loads Keras, so --backend re-executes the script with
    KERAS_BACKEND set (the same mechanism serves deconvnet-train/-evaluate/-predict)."""
    import os
    import subprocess
    import sys

    script = Path(sys.executable).parent / "deconvnet-presets"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", JAX_PLATFORMS="cpu")
    proc = subprocess.run([str(script), "deconvnet_tiny", "--size", "32x32", "--backend", "jax"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Keras backend: jax" in proc.stdout and "| `deconvnet_tiny` |" in proc.stdout


def test_backend_flag_in_process_explains_keras_is_loaded(capsys):
    import keras

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    with pytest.raises(SystemExit) as exit_info:
        presets_cli.main(["deconvnet_tiny", "--backend", other])
    assert f"set KERAS_BACKEND={other}" in str(exit_info.value)
