"""Modules moved by the structure issue: the old paths (training.metrics, training.evaluate,
inference.compare, models.segmenter) still work as deprecated aliases that warn and hand out
the new modules' objects; the new evaluation package imports nothing heavy."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ALIASES = {
    "deconvnet_tf.training.metrics": "deconvnet_tf.evaluation.metrics",
    "deconvnet_tf.training.evaluate": "deconvnet_tf.evaluation.evaluate",
    "deconvnet_tf.inference.compare": "deconvnet_tf.evaluation.compare",
    "deconvnet_tf.models.segmenter": "deconvnet_tf.inference.segmenter",
}


def _fresh_import(monkeypatch, name: str):
    """Imports ``name`` anew (its module-level warning runs again); sys.modules and the parent
    package's attribute are restored afterwards."""
    parent, _, child = name.rpartition(".")
    package = importlib.import_module(parent)
    monkeypatch.delitem(sys.modules, name, raising=False)
    if hasattr(package, child):
        monkeypatch.setattr(package, child, getattr(package, child))
    return importlib.import_module(name)


@pytest.mark.parametrize("old, new", sorted(ALIASES.items()))
def test_old_module_path_warns_and_re_exports_the_new_module(old, new, monkeypatch):
    target = importlib.import_module(new)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated.*{new}") as caught:
        alias = _fresh_import(monkeypatch, old)
    assert caught[0].filename == __file__  # attributed to the importing line
    assert alias.__all__ == target.__all__
    for name in alias.__all__:
        assert getattr(alias, name) is getattr(target, name), name
    namespace: dict = {}
    exec(f"from {old} import *", namespace)
    assert {n: namespace[n] for n in alias.__all__} == {n: getattr(target, n)
                                                       for n in alias.__all__}
    with pytest.raises(AttributeError):
        getattr(alias, "no_such_name")


def test_the_segmenter_has_one_home():
    import deconvnet_tf
    import deconvnet_tf.models as models
    from deconvnet_tf.inference import segmenter

    with pytest.warns(DeprecationWarning, match="deconvnet_tf.models.Segmenter is deprecated"):
        assert deconvnet_tf.Segmenter is segmenter.Segmenter is models.Segmenter
    with pytest.warns(DeprecationWarning, match="load_segmenter is deprecated"):
        assert models.load_segmenter is segmenter.load_segmenter
    assert "Segmenter" in dir(models)


def test_the_public_load_model_registers_the_segmenter_for_keras_loading():
    # a fresh process: deconvnet_tf.load_model (and the package, once Keras is loaded) register
    # the Segmenter; deconvnet_tf.models alone (a lower layer) does not import it
    code = textwrap.dedent("""
        import sys
        import deconvnet_tf.models
        import keras
        assert "deconvnet_tf.inference.segmenter" not in sys.modules
        assert keras.saving.get_registered_object("deconvnet_tf>Segmenter") is None
        from deconvnet_tf import load_model
        cls = keras.saving.get_registered_object("deconvnet_tf>Segmenter")
        assert cls is not None and cls.__module__ == "deconvnet_tf.inference.segmenter", cls
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_evaluation_package_is_lazy():
    code = textwrap.dedent("""
        import sys
        import deconvnet_tf.evaluation as evaluation
        assert "keras" not in sys.modules and "tensorflow" not in sys.modules
        assert set(evaluation.__all__) <= set(dir(evaluation))
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_evaluation_names_resolve_lazily():
    import deconvnet_tf.evaluation as evaluation
    from deconvnet_tf.evaluation import compare, evaluate, metrics

    assert evaluation.SegmentationReport is metrics.SegmentationReport
    assert evaluation.report_from_confusion is metrics.report_from_confusion
    assert evaluation.save_report is evaluate.save_report
    assert evaluation.compare_methods is compare.compare_methods
    with pytest.raises(AttributeError):
        getattr(evaluation, "no_such_name")


def test_models_load_model_names_the_public_loader_for_segmenter_files(tmp_path):
    # a fresh process without the Segmenter imported: a clear error, not Keras' "unknown class"
    import shutil

    path = tmp_path / "camvid.keras"
    shutil.copy(Path(__file__).resolve().parents[1] / "saved_models" / "camvid_compact.keras", path)
    code = textwrap.dedent(f"""
        from deconvnet_tf.models.io import load_model
        try:
            load_model({str(path)!r})
        except ValueError as err:
            assert "deconvnet_tf.load_model" in str(err), err
            print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
