"""tools/mutation.py: its groups point at real files, and its table is computed right."""

from __future__ import annotations

from pathlib import Path

import mutation  # tools/mutation.py (pytest's pythonpath has tools/)

ROOT = Path(__file__).resolve().parents[2]


def test_groups_name_existing_modules_and_tests():
    for name, (modules, tests) in mutation.GROUPS.items():
        assert modules and tests, name
        for path in (*modules, *tests):
            assert (ROOT / path).is_file(), f"{name}: {path} does not exist"


def test_results_are_parsed_into_scores_per_module():
    text = "\n".join([
        "    deconvnet_tf.inference.ensemble.x_combine__mutmut_1: killed",
        "    deconvnet_tf.inference.ensemble.x_combine__mutmut_2: survived",
        "    deconvnet_tf.inference.ensemble.x_combine__mutmut_3: timeout",
        "    deconvnet_tf.inference.ensemble.x_combine__mutmut_4: no tests",
        "    deconvnet_tf.data.augment.x_flip__mutmut_9: killed",
        "    deconvnet_tf.data.augment.x_flip__mutmut_10: skipped",
        "some other line",
    ])
    table = mutation.parse_results(text)
    ensemble = table["deconvnet_tf/inference/ensemble.py"]
    assert len(ensemble["killed"]) == 2 and len(ensemble["survived"]) == 2
    assert ensemble["timeout"] == ["deconvnet_tf.inference.ensemble.x_combine__mutmut_3"]
    assert mutation.score(ensemble) == 0.5
    assert mutation.score(table["deconvnet_tf/data/augment.py"]) == 1.0
    report = mutation.report(table, ["ensemble", "augmentation"])
    assert "| ensemble | `deconvnet_tf/inference/ensemble.py` | 4 | 2 (1) | 2 | 50% |" in report
    assert "| all | | 5 | 3 | 2 | 60% |" in report
    assert "- `deconvnet_tf.inference.ensemble.x_combine__mutmut_4`" in report


def test_in_process_verdicts_replace_mutmuts():
    table = mutation.parse_results("\n".join([
        "    deconvnet_tf.inference.instance.x_crop_box__mutmut_1: killed",
        "    deconvnet_tf.inference.instance.x_crop_box__mutmut_2: timeout",
        "    deconvnet_tf.inference.instance.x_crop_box__mutmut_3: survived",
    ]))
    table = mutation.apply_rechecked(table, {
        "deconvnet_tf.inference.instance.x_crop_box__mutmut_1": "survived",  # a fork artefact
        "deconvnet_tf.inference.instance.x_crop_box__mutmut_2": "killed",
        "deconvnet_tf.inference.instance.x_crop_box__mutmut_3": "timeout",
    })
    row = table["deconvnet_tf/inference/instance.py"]
    assert row["killed"] == ["deconvnet_tf.inference.instance.x_crop_box__mutmut_2",
                             "deconvnet_tf.inference.instance.x_crop_box__mutmut_3"]
    assert row["survived"] == ["deconvnet_tf.inference.instance.x_crop_box__mutmut_1"]
    assert row["timeout"] == ["deconvnet_tf.inference.instance.x_crop_box__mutmut_3"]
    assert mutation.IN_PROCESS <= set(mutation.GROUPS)
