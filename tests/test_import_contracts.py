"""The import contracts of .importlinter hold: layers point down, no cycles, the LiteRT runtime
never imports TensorFlow/Keras/JAX, nothing imports the console scripts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
    for name in ("layers point down", "no import cycles", "never imports TensorFlow"):
        assert name in done.stdout
