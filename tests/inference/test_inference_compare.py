"""The paper-table comparison: exact scores of every method row, (1) with fake models of
known outputs on a hand-made dataset, (2) with tiny random models on generated data, against a
NumPy confusion matrix of the same predictions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.data.base import DatasetError
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.inference import crf as crf_module
from deconvnet_tf.inference import instance as instance_module
from deconvnet_tf.evaluation.compare import METHODS, compare_methods
from deconvnet_tf.inference.crf import dense_crf
from deconvnet_tf.inference.ensemble import combine_probabilities
from deconvnet_tf.inference.instance import predict_instances
from deconvnet_tf.inference.pipeline import InferenceOptions
from deconvnet_tf.inference.predict import Predictor, predict_image
from deconvnet_tf.evaluation.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]
FAST = InferenceOptions(input_size=32, batch_size=4,
                        proposals=dict(edge="gradient", top_k=4, min_size=8))


def numpy_scores(labels, predictions, num_classes: int, ignore: int):
    """Independent reference: confusion (rows ground truth), per-class IoU (NaN for classes
    absent from both), mean IoU over the others, pixel accuracy; void pixels left out."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for label, pred in zip(labels, predictions):
        valid = label != ignore
        np.add.at(confusion, (label[valid].astype(int), pred[valid].astype(int)), 1)
    tp = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = np.array([t / u if u else np.nan for t, u in zip(tp, union)])
    return confusion, iou, float(np.nanmean(iou)), float(tp.sum() / confusion.sum())


def assert_report(report, labels, predictions, num_classes, ignore, method):
    confusion, iou, mean_iou, accuracy = numpy_scores(labels, predictions, num_classes, ignore)
    np.testing.assert_array_equal(report.confusion, confusion, err_msg=method)
    np.testing.assert_allclose(report.per_class_iou, iou, rtol=1e-12, err_msg=method)
    assert report.mean_iou == pytest.approx(mean_iou, rel=1e-12), method
    assert report.pixel_accuracy == pytest.approx(accuracy, rel=1e-12), method


# --- fake models with known outputs on a hand-made dataset --------------------------------------

CLASSES = ("background", "cat", "dog")
VOID = 255
SIZE = (4, 6)


def _probabilities(labels: np.ndarray, high: float, low: float) -> np.ndarray:
    """``high`` on each pixel's class, ``low`` on the two others (3 classes)."""
    return np.where(np.eye(3, dtype=bool)[labels], high, low).astype(np.float32)


def _strong(labels, mask=None):
    out = _probabilities(labels, 0.8, 0.1)
    return out if mask is None else np.where(mask[..., None], _probabilities(labels, 0.4, 0.3), out)


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    """Two 4x6 images (uniform grey 10 and 20: the fakes tell them apart by it), labels with
    void pixels, and per image the label maps each stage predicts:

    * ``whole``: the DeconvNet predictor (whole image), confident (0.8 / 0.1 / 0.1);
    * ``instance``: the fake instance-wise DeconvNet: confident, except on ``fcn_wins`` (0.4 /
      0.3 / 0.3);
    * ``fcn``: the FCN predictor: 0.9 / 0.05 / 0.05 on ``fcn_wins``, 0.4 / 0.3 / 0.3 elsewhere.

    So the ensemble (mean or product of the two maps) predicts the FCN's class on ``fcn_wins``
    and the instance-wise class elsewhere: ``edeconvnet`` = where(fcn_wins, fcn, instance).
    The fake CRF moves every pixel to the next class: ``x_crf`` = (x + 1) % 3."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("known")
    stems = ["a", "b"]
    for folder in ("images", "labels"):
        (root / "val" / folder).mkdir(parents=True)
    (root / "val.txt").write_text("\n".join(stems) + "\n")
    (root / "meta.json").write_text(json.dumps({"classes": list(CLASSES), "ignore_label": VOID}))
    labels, maps = [], {"whole": [], "instance": [], "fcn": [], "fcn_wins": []}
    for index, stem in enumerate(stems):
        label = rng.integers(0, 3, SIZE).astype(np.uint8)
        label[rng.random(SIZE) < 0.2] = VOID
        cv2.imwrite(str(root / "val" / "images" / f"{stem}.png"),
                    np.full(SIZE + (3,), 10 * (index + 1), np.uint8))
        cv2.imwrite(str(root / "val" / "labels" / f"{stem}.png"), label)
        labels.append(label)
        for key in ("whole", "instance", "fcn"):
            maps[key].append(rng.integers(0, 3, SIZE))
        maps["fcn_wins"].append(rng.random(SIZE) < 0.5)
    return root, labels, maps


def _fake_models(maps):
    def image_index(batch_image) -> int:
        return int(round(float(batch_image[0, 0, 0]))) // 10 - 1

    def whole_fn(batch):
        return np.stack([_strong(maps["whole"][image_index(im)]) for im in batch])

    def fcn_fn(batch):
        out = []
        for im in batch:
            k = image_index(im)
            wins = maps["fcn_wins"][k][..., None]
            out.append(np.where(wins, _probabilities(maps["fcn"][k], 0.9, 0.05),
                                _probabilities(maps["fcn"][k], 0.4, 0.3)))
        return np.stack(out)

    return (Predictor(whole_fn, outputs="probabilities", name="deconvnet"),
            Predictor(fcn_fn, outputs="probabilities", name="fcn"))


@pytest.mark.parametrize("ensemble", ["mean", "product"])
def test_compare_methods_exact_scores_of_known_predictions(known, monkeypatch, ensemble):
    """Every row is the IoU of exactly its method's predictions: the whole-image DeconvNet and
    FCN maps, the instance-wise map (computed from the whole-image one, with the options'
    settings), their ensemble, and the CRF of each (of the right input); void pixels left out."""
    root, labels, maps = known
    deconvnet, fcn = _fake_models(maps)
    options = InferenceOptions(input_size=16, batch_size=3, aggregate="mean",
                               ensemble_method=ensemble, crf_preset="deeplab",
                               proposals=dict(edge="gradient", top_k=2))
    instance_calls, crf_calls = [], []

    def fake_instances(model, image, boxes=None, **kwargs):
        k = int(image[0, 0, 0]) // 10 - 1
        instance_calls.append(k)
        assert model is deconvnet
        np.testing.assert_allclose(kwargs.pop("whole"), _strong(maps["whole"][k]), rtol=1e-6)
        assert kwargs == dict(input_size=16, batch_size=3, aggregate="mean",
                              proposals=dict(edge="gradient", top_k=2))
        return _strong(maps["instance"][k], maps["fcn_wins"][k])

    def fake_crf(image, probabilities, **kwargs):
        crf_calls.append(kwargs)
        assert image.shape == SIZE + (3,) and image.dtype == np.uint8
        return _strong((np.asarray(probabilities).argmax(-1) + 1) % 3)

    monkeypatch.setattr(instance_module, "predict_instances", fake_instances)
    monkeypatch.setattr(crf_module, "dense_crf", fake_crf)
    result = compare_methods(deconvnet, root, "val", fcn=fcn, options=options, progress=False)

    assert list(result.reports) == list(METHODS) and result.num_images == 2
    assert instance_calls == [0, 1]  # once per image, shared by the rows that need it
    assert crf_calls == [{"preset": "deeplab"}] * 10  # five CRF rows, two images
    expected = {
        "fcn8s": maps["fcn"],
        "deconvnet_whole": maps["whole"],
        "deconvnet": maps["instance"],
        "edeconvnet": [np.where(w, f, i) for w, f, i in
                       zip(maps["fcn_wins"], maps["fcn"], maps["instance"])],
        # the whole-image map is confident everywhere, like the instance map off fcn_wins
        "edeconvnet_whole": [np.where(w, f, i) for w, f, i in
                             zip(maps["fcn_wins"], maps["fcn"], maps["whole"])],
    }
    for key in ("fcn8s", "deconvnet_whole", "deconvnet", "edeconvnet", "edeconvnet_whole"):
        expected[key + "_crf"] = [(m + 1) % 3 for m in expected[key]]
    assert set(expected) == set(METHODS)
    rows = {}
    for key, predictions in expected.items():
        assert_report(result.reports[key], labels, predictions, 3, VOID, key)
        rows[key] = result.reports[key].mean_iou
    # The rows differ, so a row scored on another method's predictions would fail above.
    assert len(set(rows.values())) == len(rows), rows


def test_compare_methods_reads_split_selectors_and_limits(known):
    """The dev-split protocol's selectors (file-name prefix: one CamVid sequence) and ``limit``
    choose the images scored; an unknown split is a clear error."""
    root, labels, maps = known
    deconvnet, _ = _fake_models(maps)
    only_b = compare_methods(deconvnet, root, "val[b]", methods=["deconvnet_whole"],
                             progress=False)
    assert only_b.num_images == 1
    assert_report(only_b.reports["deconvnet_whole"], labels[1:], maps["whole"][1:], 3, VOID,
                  "val[b]")
    first = compare_methods(deconvnet, root, "val", methods=["deconvnet_whole"], limit=1,
                            progress=False)
    assert first.num_images == 1
    assert_report(first.reports["deconvnet_whole"], labels[:1], maps["whole"][:1], 3, VOID,
                  "limit=1")
    with pytest.raises(DatasetError, match=r"Split file .*test\.txt' not found \(splits: \['val'\]\)"):
        compare_methods(deconvnet, root, "test", methods=["deconvnet_whole"], progress=False)


def test_numpy_reference_by_hand():
    label = np.array([[0, 1, 1, VOID]], np.uint8)
    pred = np.array([[0, 1, 0, 2]])
    confusion, iou, mean_iou, accuracy = numpy_scores([label], [pred], 3, VOID)
    np.testing.assert_array_equal(confusion, [[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(iou, [0.5, 0.5, np.nan])  # dog: absent from both, left out
    assert mean_iou == 0.5 and accuracy == 2 / 3


# --- tiny random models on generated data -------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    data = write_synthetic_dataset(tmp / "data", num_train=1, num_val=2, height=48, width=64)
    keras.utils.set_random_seed(0)
    deconvnet = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    fcn = deconvnet_tf.build_model("fcn8s_tiny", num_classes=5)
    deconvnet.save(tmp / "deconvnet.keras")
    fcn.save(tmp / "fcn.keras")
    return tmp, data, deconvnet, fcn


def test_compare_methods_scores_every_method_like_evaluate(setup):
    tmp, data, deconvnet, fcn = setup
    result = compare_methods(deconvnet, data, "val", fcn=fcn, options=FAST, progress=False)
    assert list(result.reports) == list(METHODS) and result.num_images == 2
    # the whole-image rows are exactly what deconvnet-evaluate reports
    for key, model in (("deconvnet_whole", deconvnet), ("fcn8s", fcn)):
        expected = evaluate(model, data, "val", progress=False)
        np.testing.assert_array_equal(result.reports[key].confusion, expected.confusion)
    for report in result.reports.values():
        assert report.confusion.sum() == 2 * 48 * 64  # no void pixels in generated data
    # Every row: the scores of its method's predictions, made here stage by stage with the
    # same options and scored with NumPy.
    from deconvnet_tf.data.folder import list_examples, load_example

    labels, predictions = [], {key: [] for key in METHODS}
    for image_path, label_path in list_examples(data, "val"):
        image, label = load_example(image_path, label_path)
        labels.append(label)
        probs = {"deconvnet_whole": predict_image(deconvnet, image),
                 "fcn8s": predict_image(fcn, image)}
        probs["deconvnet"] = predict_instances(
            deconvnet, image, input_size=FAST.input_size, batch_size=FAST.batch_size,
            aggregate=FAST.aggregate, whole=probs["deconvnet_whole"], proposals=FAST.proposals)
        probs["edeconvnet"] = combine_probabilities([probs["deconvnet"], probs["fcn8s"]],
                                                    FAST.ensemble_method)
        probs["edeconvnet_whole"] = combine_probabilities(
            [probs["deconvnet_whole"], probs["fcn8s"]], FAST.ensemble_method)
        for key in ("fcn8s", "deconvnet_whole", "deconvnet", "edeconvnet", "edeconvnet_whole"):
            probs[key + "_crf"] = dense_crf(image, probs[key], preset=FAST.crf_preset)
        for key in METHODS:
            predictions[key].append(probs[key].argmax(-1))
    for key in METHODS:
        assert_report(result.reports[key], labels, predictions[key], 5, 255, key)
    table = result.table()
    assert table.splitlines()[0].startswith("| method | background |")
    assert len(table.splitlines()) == 2 + len(METHODS)
    assert "| EDeconvNet + CRF |" in table and "**mean IoU**" in table
    assert set(result.seconds) == {"deconvnet_whole", "deconvnet_instance", "fcn8s",
                                   "fcn8s_crf", "deconvnet_whole_crf", "deconvnet_crf",
                                   "edeconvnet_crf", "edeconvnet_whole_crf"}
    assert json.loads(json.dumps(result.to_dict()))["methods"]["edeconvnet"]["name"] == "EDeconvNet"


def test_compare_methods_without_fcn_and_bad_methods(setup):
    _, data, deconvnet, fcn = setup
    result = compare_methods(deconvnet, data, "val", options=FAST, limit=1, progress=False)
    assert list(result.reports) == ["deconvnet_whole", "deconvnet_whole_crf", "deconvnet",
                                    "deconvnet_crf"]
    crf_only = compare_methods(deconvnet, data, "val", methods=["deconvnet_whole_crf"],
                               limit=1, progress=False)
    np.testing.assert_array_equal(crf_only.reports["deconvnet_whole_crf"].confusion,
                                  result.reports["deconvnet_whole_crf"].confusion)
    assert set(crf_only.seconds) == {"deconvnet_whole", "deconvnet_whole_crf"}
    # FCN-8s + CRF alone runs neither DeconvNet pass; the whole-image ensemble no proposals
    fcn_crf = compare_methods(deconvnet, data, "val", fcn=fcn, limit=1, progress=False,
                              methods=["fcn8s_crf", "edeconvnet_whole"], options=FAST)
    assert list(fcn_crf.reports) == ["fcn8s_crf", "edeconvnet_whole"]
    assert set(fcn_crf.seconds) == {"deconvnet_whole", "fcn8s", "fcn8s_crf"}
    for methods in (["edeconvnet"], ["fcn8s_crf"], ["edeconvnet_whole_crf"]):
        with pytest.raises(ValueError, match="need an FCN"):
            compare_methods(deconvnet, data, methods=methods, progress=False)
    with pytest.raises(ValueError, match="Unknown method"):
        compare_methods(deconvnet, data, methods=["deeplab"], progress=False)


def test_paper_table_tool(setup, capsys):
    tmp, data, _, _ = setup
    spec = importlib.util.spec_from_file_location("paper_table", ROOT / "tools" / "paper_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp / "table.json"
    code = tool.main(["--deconvnet", str(tmp / "deconvnet.keras"), "--fcn", str(tmp / "fcn.keras"),
                      "--data", str(data), "--methods", "fcn8s", "deconvnet", "edeconvnet",
                      "--edge", "gradient", "--top-k", "3", "--input-size", "32", "--limit", "1",
                      "--output", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| FCN-8s |" in printed and "| EDeconvNet |" in printed
    assert "Seconds per image" in printed
    assert set(json.loads(out.read_text())["methods"]) == {"fcn8s", "deconvnet", "edeconvnet"}
    assert tool.main(["--deconvnet", str(tmp / "missing.keras"), "--data", str(data)]) == 2
    assert "paper_table: error: Model not found" in capsys.readouterr().err
    assert tool.main(["--deconvnet", str(tmp / "missing.keras"), "--data", str(data), "--flip"]) == 2
    assert "paper_table: error: Model not found" in capsys.readouterr().err
    code = tool.main(["--deconvnet", str(tmp / "deconvnet.keras"), "--fcn", str(tmp / "fcn.keras"),
                      "--data", str(data), "--methods", "fcn8s", "deconvnet_whole", "--flip",
                      "--limit", "1", "--output", str(tmp / "flip.json"), "--quiet"])
    assert code == 0
    assert set(json.loads((tmp / "flip.json").read_text())["methods"]) == {"fcn8s", "deconvnet_whole"}
    # An existing --output is the user's: refused before the run, byte for byte untouched.
    before = out.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--deconvnet", str(tmp / "deconvnet.keras"), "--data", str(data),
                   "--methods", "deconvnet_whole", "--limit", "1", "--output", str(out)])
    assert exit_info.value.code == 2
    assert f"--output {str(out)!r} exists; name a new file or pass --overwrite" in \
        capsys.readouterr().err
    assert out.read_bytes() == before
    assert tool.main(["--deconvnet", str(tmp / "deconvnet.keras"), "--data", str(data),
                      "--methods", "deconvnet_whole", "--limit", "1", "--output", str(out),
                      "--overwrite", "--quiet"]) == 0
    assert set(json.loads(out.read_text())["methods"]) == {"deconvnet_whole"}
    assert not [p.name for p in tmp.iterdir() if p.name.startswith(".table.json")]  # no temp left
    with pytest.raises(SystemExit) as exit_info:  # argparse: choices come from METHODS
        tool.main(["--deconvnet", str(tmp / "deconvnet.keras"), "--data", str(data),
                   "--methods", "fcn8s_crf", "deeplab"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --methods: invalid choice: 'deeplab'" in err and "'edeconvnet_whole'" in err
