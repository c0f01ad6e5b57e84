"""tools/prior_correction.py: the corrected class is the argmax of the log-scores minus tau
times the log-prior (logits and probabilities alike), tau 0 is tools/multiscale_table.py's
row, and the command line's errors are one line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.data.sources import open_source
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from tests.conftest import requires_tf

import multiscale_table  # tools/ (pytest's pythonpath has tools/)
import prior_correction


@pytest.mark.jax
def test_corrected_classes_match_a_per_pixel_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4))
    prior = np.array([0.6, 0.3, 0.09, 0.01])
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    for tau in (-0.3, 0.0, 0.2, 1.0, 5.0):
        want = [int(np.argmax([row[c] - tau * np.log(prior[c]) for c in range(4)]))
                for row in logits]
        got = prior_correction.corrected_classes(logits, prior, tau, logits=True)
        assert got.tolist() == want
        # probabilities: the same classes (log-softmax differs from the logits by a constant)
        assert prior_correction.corrected_classes(probs, prior, tau, logits=False).tolist() == want
    assert (prior_correction.corrected_classes(logits, prior, 0.0, logits=True)
            == logits.argmax(-1)).all()
    assert (prior_correction.corrected_classes(logits, prior, 100.0, logits=True) == 3).all()


@pytest.mark.jax
def test_extra_outputs_beyond_the_prior_are_ignored_and_an_absent_class_is_not_favoured():
    scores = np.array([[0.0, 1.0, 9.0]])  # a third output the dataset does not have
    assert prior_correction.corrected_classes(scores, np.array([0.5, 0.5]), 0.0,
                                              logits=True).tolist() == [1]
    # class 2 never in the prior: no correction, however large tau (classes 0, 1 are favoured)
    scores = np.array([[0.0, 0.0, 3.0]])
    prior = np.array([0.9, 0.1, 0.0])
    assert prior_correction.corrected_classes(scores, prior, 0.0, logits=True).tolist() == [2]
    assert prior_correction.corrected_classes(scores, prior, 2.0, logits=True).tolist() == [1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("prior")
    return write_synthetic_dataset(root / "ds", num_train=6, num_val=2, height=40, width=48)


@pytest.mark.jax
def test_class_prior_is_the_share_of_labelled_pixels(data):
    source = open_source(data)
    prior = prior_correction.class_prior(source, "train")
    labels = np.concatenate([label.ravel() for _, label in source.numpy_examples("train")])
    known = source.info.num_classes
    counts = np.bincount(labels[labels < known], minlength=known)
    np.testing.assert_allclose(prior, counts / counts.sum())


@requires_tf
def test_tau_zero_is_the_multiscale_row_and_tau_changes_the_classes(data):
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    source = open_source(data)
    prior = prior_correction.class_prior(source, "train")
    reports = prior_correction.prior_correction(model, source, "val", prior=prior,
                                                taus=[0.0, 3.0], size=(32, 40), flip=True,
                                                color_target=None)
    rows = multiscale_table.score_subsets(model, source, "val", [(32, 40)], color_target=None)
    np.testing.assert_array_equal(reports[0.0].confusion, rows["32x40 flip"].confusion)
    assert (prior > 0).all()
    rarest = int(np.argmin(prior))
    predicted = [r.confusion[:, rarest].sum() for r in (reports[0.0], reports[3.0])]
    assert predicted[1] > predicted[0]


@requires_tf
def test_cli_prints_rows_and_writes_a_new_json(data, tmp_path, capsys):
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    path = tmp_path / "m.keras"
    model.save(path)
    out = tmp_path / "rows.json"
    assert prior_correction.main(["--model", str(path), "--data", str(data), "--split", "val",
                                  "--prior", "train", "--size", "32x40", "--taus", "0", "0.5",
                                  "--color-target", "off", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = open_source(data).info.class_names
    assert lines[0] == "| tau | mean IoU | " + " | ".join(names) + " |"
    assert [line.split(" | ")[0] for line in lines[2:4]] == ["| 0", "| 0.5"]
    saved = json.loads(out.read_text())
    assert list(saved["rows"]) == ["0", "0.5"] and saved["prior"] == "train"
    before = out.read_bytes()
    with pytest.raises(SystemExit):
        prior_correction.main(["--model", str(path), "--data", str(data), "--prior", "train",
                               "--size", "32x40", "--output", str(out)])
    assert "exists; name a new file" in capsys.readouterr().err
    assert out.read_bytes() == before  # the user's file is untouched
    with pytest.raises(SystemExit):  # refused before any scoring
        prior_correction.main(["--model", str(tmp_path / "absent.keras"), "--data", str(data),
                               "--prior", "train", "--size", "32x40",
                               "--output", str(out / "rows.json")])
    assert "is a file, not a folder" in capsys.readouterr().err
    assert out.read_bytes() == before


@pytest.mark.jax
@pytest.mark.parametrize("args, message", [
    (["--taus", "nan"], r"expected a finite number, got 'nan'"),
    (["--taus", "inf"], r"expected a finite number, got 'inf'"),
    (["--size", "32"], r"--size"),
])
def test_bad_arguments(data, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        prior_correction.main(["--model", "m.keras", "--data", str(data), "--prior", "train",
                               "--size", "32x40", *args])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@requires_tf
def test_missing_model_or_split_is_one_clear_line(data, tmp_path, capsys):
    assert prior_correction.main(["--model", str(tmp_path / "none.keras"), "--data", str(data),
                                  "--prior", "train", "--size", "32x40"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prior_correction: error: ") and len(err.strip().splitlines()) == 1
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    model.save(tmp_path / "m.keras")
    assert prior_correction.main(["--model", str(tmp_path / "m.keras"), "--data", str(data),
                                  "--prior", "nope", "--size", "32x40"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prior_correction: error: ") and len(err.strip().splitlines()) == 1
