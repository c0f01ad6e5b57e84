"""train(): outputs, resume after kill -9, class weights, bf16 + XLA, MirroredStrategy."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.train import train
from tests.conftest import requires_tf

ROOT = Path(__file__).resolve().parents[2]
pytestmark = requires_tf  # tf.data input pipelines


def tiny_config(tmp_path, **changes) -> TrainConfig:
    """float32 pinned: the default (None) picks bfloat16 on CPUs with AMX, and these tests must
    mean the same on every machine (bfloat16 is tested on purpose below)."""
    base = dict(preset="deconvnet_tiny", output=str(tmp_path / "run"), epochs=2, batch_size=4,
                crop_size=[48, 64], optimizer="adam", learning_rate=3e-3, bn_momentum=0.9,
                synthetic_train=8, synthetic_val=4, synthetic_size=[48, 64], steps_per_epoch=2,
                checkpoint_every=1, deterministic=True, mixed_precision=False)
    base.update(changes)
    return TrainConfig(**base)


def test_train_writes_everything(tmp_path):
    config = tiny_config(tmp_path)
    plain = Inspect()  # defined below; the control of test_class_weights_bf16_and_xla_are_applied
    result = train(config, verbose=0, callbacks=[plain])
    assert plain.seen["class_weights"] is None and plain.seen["activation_dtype"] == "float32"
    assert plain.optimizer_built_at_start is True
    out = Path(config.output)
    assert TrainConfig.load(out / "config.json") == config
    for name in ("model.keras", "checkpoints/last.keras", "checkpoints/best.keras", "log.csv"):
        assert (out / name).is_file(), name
    assert any((out / "tensorboard").rglob("events.out.tfevents*"))
    assert not (out / "backup").exists()  # removed after a finished run
    assert json.loads((out / "finished.json").read_text())["epochs"] == 2
    assert len(result.history["loss"]) == 2 and all(np.isfinite(result.history["loss"]))
    assert "val_mean_iou" in result.history
    model = deconvnet_tf.load_model(result.model_path)
    assert model.output_shape[-1] == 5


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path):
    """kill -9 in the middle of epoch 2, then the same command continues from the backup.
    With the default checkpoint_every (50 steps, longer than an epoch) that is the backup
    taken at the end of epoch 1."""
    config = tiny_config(tmp_path, epochs=3, steps_per_epoch=4, checkpoint_every=50)
    config_path = config.save(tmp_path / "config.json")
    script = textwrap.dedent(
        f"""
        import os, signal, sys, keras
        from deconvnet_tf.training.config import TrainConfig
        from deconvnet_tf.training.train import train
        class Kill(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
            def on_train_batch_end(self, batch, logs=None):
                if self.epoch == 1 and batch == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
        extra = [Kill()] if sys.argv[1] == "kill" else []
        train(TrainConfig.load({str(config_path)!r}), verbose=0, callbacks=extra)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    first = subprocess.run([sys.executable, "-c", script, "kill"], env=env, capture_output=True, text=True)
    assert first.returncode == -9, first.stderr[-3000:]
    out = Path(config.output)
    meta = json.loads((out / "backup" / "training_metadata.json").read_text())
    assert (meta["epoch"], meta["step"]) == (1, 0)  # end of the first epoch: 0-based epoch 1 next
    assert not (out / "model.keras").exists()
    second = subprocess.run([sys.executable, "-c", script, "resume"], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    epochs = [int(row["epoch"]) for row in csv.DictReader(open(out / "log.csv"))]
    assert epochs == [0, 1, 2]  # epoch 0 from the first run, then 1 and 2: nothing redone twice
    assert (out / "model.keras").is_file()


class Inspect(keras.callbacks.Callback):
    """Records, during training, what the compiled model really uses."""

    def __init__(self):
        super().__init__()
        self.seen = {}
        self.optimizer_built_at_start = None

    def on_train_begin(self, logs=None):
        # Built before the first trace of the train step (else TensorFlow traces it twice)
        self.optimizer_built_at_start = self.model.optimizer.built

    def on_train_batch_end(self, batch, logs=None):
        if self.seen:
            return
        layer = self.model.get_layer("block1_conv1")
        out = layer(np.zeros((1, 8, 8, 3), "float32"))
        logits = self.model(np.zeros((1, 48, 64, 3), "uint8"))
        dtype = keras.backend.standardize_dtype
        self.seen.update(
            class_weights=self.model.loss.class_weights,
            policy=layer.dtype_policy.name, activation_dtype=dtype(out.dtype),
            kernel_dtype=dtype(layer.kernel.dtype), logits_dtype=dtype(logits.dtype),
            optimizer=type(self.model.optimizer).__name__)


@pytest.mark.parametrize("weighting,power", [("none", None), ("median_frequency", 1.0),
                                             ("sqrt_median_frequency", 0.5)])
def test_class_weighting_choices_reach_the_loss(tmp_path, weighting, power):
    """Each ``class_weighting`` choice gives the loss the weights of its power (none: no
    weights), computed from the training split."""
    from deconvnet_tf.training.losses import median_frequency_weights
    from deconvnet_tf.training.train import _class_setup, open_data_source

    config = tiny_config(tmp_path, class_weighting=weighting)
    source = open_data_source(config)
    num_classes, _, weights, paste = _class_setup(config, source)
    assert paste == []  # class_paste off
    if power is None:
        assert weights is None
        return
    counts, image_pixels = source.validate("train")
    expected = median_frequency_weights(counts, image_pixels, power=power)
    np.testing.assert_allclose(weights[:len(expected)], expected, rtol=1e-6)
    assert len(weights) == num_classes


def test_class_paste_classes_default_to_the_rare_classes_and_are_checked(tmp_path):
    """``class_paste_classes`` null: the classes whose median-frequency weight is above 1; an
    explicit list is kept; an id that is not a class of the dataset (or is its ignore label) is
    a ConfigError naming the field."""
    from deconvnet_tf.training.config import ConfigError
    from deconvnet_tf.training.losses import median_frequency_weights, rare_classes
    from deconvnet_tf.training.train import _class_setup, open_data_source

    config = tiny_config(tmp_path, class_paste=0.5)
    source = open_data_source(config)
    counts, image_pixels = source.validate("train")
    *_, paste = _class_setup(config, source)
    weights = median_frequency_weights(counts, image_pixels)
    assert paste == rare_classes(counts, image_pixels) == [
        c for c in range(len(weights)) if weights[c] > 1]
    assert paste and len(paste) < len(weights)
    config.class_paste_classes = [1]
    assert _class_setup(config, source)[3] == [1]
    num_classes = source.info.num_classes
    for bad in ([num_classes], [source.info.ignore_label or 255]):
        config.class_paste_classes = bad
        with pytest.raises(ConfigError, match=r"'class_paste_classes': \[\d+\] are not classes"):
            _class_setup(config, source)


@pytest.mark.slow
def test_class_weights_bf16_and_xla_are_applied(tmp_path):
    """The loss of the training step carries the median-frequency weights of the train split,
    and the model computes in bfloat16 (float32 variables and logits), compiled with XLA."""
    from deconvnet_tf.training.losses import median_frequency_weights
    from deconvnet_tf.training.train import open_data_source

    config = tiny_config(tmp_path, epochs=1, steps_per_epoch=1, class_weighting="median_frequency",
                         mixed_precision=True, jit_compile=True, val_split="")
    inspect = Inspect()
    result = train(config, verbose=0, callbacks=[inspect])
    seen = inspect.seen
    counts, image_pixels = open_data_source(config).validate("train")
    expected = median_frequency_weights(counts, image_pixels)
    assert len(set(np.round(expected, 4))) > 2  # the data is unbalanced: weights differ
    np.testing.assert_allclose(seen["class_weights"], expected, rtol=1e-6)
    assert seen["policy"] == "mixed_bfloat16"
    assert seen["activation_dtype"] == "bfloat16" and seen["kernel_dtype"] == "float32"
    assert seen["logits_dtype"] == "float32"
    assert seen["optimizer"] != "LossScaleOptimizer"  # bfloat16 needs no loss scaling
    assert np.isfinite(result.history["loss"][0])
    model = deconvnet_tf.load_model(result.model_path)
    assert model.unpooling == "switch"  # jit_compile picked the XLA-friendly pair
    assert keras.config.dtype_policy().name == "float32"  # restored after the run
    # The defaults (no weights, float32) are checked by test_train_writes_everything.


@pytest.mark.slow
def test_two_stage_runs_stage1_then_stage2_from_it(tmp_path):
    """One command: stage 1 (instance crops) then stage 2 (jittered windows) initialised
    from stage 1; re-running it keeps the finished stage 1."""
    config = tiny_config(tmp_path, input_mode="proposal_windows", two_stage=True, epochs=1, stage1_epochs=1, steps_per_epoch=1,
                         crop_size=[40, 40], window_size=48, val_split="")
    result = train(config, verbose=0)
    out = Path(config.output)
    assert result.model_path == out / "model.keras"
    for stage, mode in (("stage1", "object_crops"), ("stage2", "proposal_windows")):
        saved = TrainConfig.load(out / stage / "config.json")
        assert saved.input_mode == mode and not saved.two_stage and (out / stage / "model.keras").is_file()
        assert (out / stage / "log.csv").is_file()
    assert TrainConfig.load(out / "stage2" / "config.json").init_from == str(out / "stage1" / "model.keras")
    assert np.isfinite(result.stage_histories["stage1"]["loss"][0])
    mtimes = {p: (out / p).stat().st_mtime_ns for p in ("model.keras", "stage1/model.keras",
                                                         "stage2/model.keras")}
    again = train(config, verbose=0)  # a finished run: nothing is trained again
    assert again.already_finished and again.model_path == out / "model.keras"
    assert {p: (out / p).stat().st_mtime_ns for p in mtimes} == mtimes
    # Interrupted in stage 2 (its folder gone): the re-run keeps the finished stage 1.
    import shutil

    shutil.rmtree(out / "stage2")
    (out / "model.keras").unlink()
    (out / "finished.json").unlink()
    third = train(config, verbose=0)
    assert third.stage_histories["stage1"] is None  # not redone
    assert np.isfinite(third.stage_histories["stage2"]["loss"][0])
    assert (out / "stage1" / "model.keras").stat().st_mtime_ns == mtimes["stage1/model.keras"]
    assert (out / "model.keras").is_file() and not third.already_finished


@pytest.mark.slow
def test_init_from_copies_weights_and_checks_the_architecture(tmp_path):
    source = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    source.save(tmp_path / "init.keras")
    config = tiny_config(tmp_path, epochs=1, steps_per_epoch=1, val_split="", learning_rate=1e-9,
                         optimizer="sgd", weight_decay=0.0, momentum=0.0, input_mode="object_crops",
                         crop_size=[40, 40], window_size=48, init_from=str(tmp_path / "init.keras"))
    result = train(config, verbose=0)
    trained = deconvnet_tf.load_model(result.model_path)
    for a, b in zip(source.trainable_weights, trained.trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    bad = tiny_config(tmp_path / "bad", epochs=1, steps_per_epoch=1, val_split="", num_classes=7,
                      init_from=str(tmp_path / "init.keras"))
    with pytest.raises(ValueError, match="does not match preset 'deconvnet_tiny' with 7 classes"):
        train(bad, verbose=0)


def test_stage2_windows_from_object_proposals(tmp_path):
    from deconvnet_tf.data.crops import box_iou, object_boxes, stage2_windows
    from deconvnet_tf.data.sources import load_record
    from deconvnet_tf.training.train import _proposal_fn, open_data_source

    config = tiny_config(tmp_path, stage="stage2", stage2_proposals="edgeboxes_gradient",
                         synthetic_train=3, box_scale=1.0)
    assert _proposal_fn(tiny_config(tmp_path)) is None  # default: jittered boxes
    records = open_data_source(config).records("train")
    windows = stage2_windows(records, boxes_fn=_proposal_fn(config), box_scale=1.0)
    assert len(windows) >= 3
    for i in range(len(windows)):
        _, label, inst = load_record(records[windows.index[i]], instances=True)
        gt = np.array([o.box for o in object_boxes(label, inst)])
        assert box_iou(windows.boxes[i][None], gt).max() >= 0.5
    assert any((Path(config.output) / "proposals").glob("*.npy"))  # cached per image


@pytest.mark.slow
def test_poly_schedule_and_sparse_validation(tmp_path):
    config = tiny_config(tmp_path, epochs=3, lr_schedule="poly", validation_freq=2)
    train(config, verbose=0)
    with open(Path(config.output) / "log.csv") as f:
        rows = list(csv.DictReader(f))
    lrs = [float(r["learning_rate"]) for r in rows]
    np.testing.assert_allclose(lrs, [3e-3 * (1 - e / 3) ** 0.9 for e in range(3)], rtol=1e-5)
    validated = [r["val_mean_iou"] not in ("", "NA") for r in rows]
    assert validated == [False, True, True]  # every 2nd epoch and the last
    assert (Path(config.output) / "checkpoints" / "best.keras").is_file()


@pytest.mark.slow
def test_decoupled_weight_decay_reaches_the_optimizer(tmp_path):
    """One plain SGD step (momentum 0) from known weights w0, with and without weight decay:
    decoupled decay subtracts lr * wd * w0 on top of the same gradient step."""
    source = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5, bn_momentum=0.9)
    source.save(tmp_path / "init.keras")
    w0 = {w.path: np.asarray(w) for w in source.trainable_weights}
    lr, wd = 0.1, 0.5
    finals = {}
    for decay in (0.0, wd):
        config = tiny_config(tmp_path / f"wd{decay}", epochs=1, steps_per_epoch=1, val_split="",
                             optimizer="sgd", momentum=0.0, learning_rate=lr, weight_decay=decay,
                             init_from=str(tmp_path / "init.keras"))
        model = deconvnet_tf.load_model(train(config, verbose=0).model_path)
        finals[decay] = {w.path: np.asarray(w) for w in model.trainable_weights}
    kernels = [path for path in w0 if path.endswith("kernel")]
    assert len(kernels) > 5
    for path in kernels:
        np.testing.assert_allclose(finals[0.0][path] - finals[wd][path], lr * wd * w0[path],
                                   rtol=1e-3, atol=1e-6, err_msg=path)


@pytest.mark.slow
def test_augmentation_fields_reach_the_training_pipeline(tmp_path, monkeypatch):
    """The config's augmentation fields are what the tf.data training pipeline gets."""
    from deconvnet_tf.data import pipeline

    calls = []
    real = pipeline.make_pipeline

    def recording(dataset, **kwargs):
        calls.append(kwargs)
        return real(dataset, **kwargs)

    monkeypatch.setattr(pipeline, "make_pipeline", recording)
    config = tiny_config(tmp_path, epochs=1, steps_per_epoch=1, scale_range=[0.5, 2.0],
                         color_jitter=0.0, gamma_jitter=0.5, grayscale_prob=0.2,
                         class_uniform_crops=0.25, class_paste=0.5)
    train(config, verbose=0)
    training_calls = [c for c in calls if c.get("training")]
    assert training_calls, "the training pipeline was not built with make_pipeline"
    assert all(c["scale"] == (0.5, 2.0) and c["jitter"] == 0.0 and c["gamma"] == 0.5
               and c["grayscale"] == 0.2 and c["class_uniform"] == 0.25 and c["class_paste"] == 0.5
               for c in training_calls)
    # class_paste_classes null: the classes rarer than the median of the training split
    from deconvnet_tf.training.losses import rare_classes
    from deconvnet_tf.training.train import open_data_source

    pixel_counts, image_pixels = open_data_source(config).validate(config.train_split)
    rare = rare_classes(pixel_counts, image_pixels)
    assert rare and all(c["class_paste_classes"] == rare for c in training_calls)
