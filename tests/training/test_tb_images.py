"""PredictionImages: validation predictions as TensorBoard image summaries."""

from __future__ import annotations

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.training.tb_images import PredictionImages
from tests.conftest import BACKEND, requires_tf


def _events(log_dir):
    import tensorflow as tf

    found = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found.append((event.step, value))
    return found


@requires_tf
def test_one_epoch_of_fit_writes_the_validation_pictures(tmp_path):
    import tensorflow as tf

    root = write_synthetic_dataset(tmp_path / "ds", num_train=2, num_val=3, height=32, width=40)
    callback = PredictionImages.from_folder(tmp_path / "tb", root, "val", num_images=2)
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    model.compile("adam", keras_loss())
    x = np.stack(callback.images).astype("float32")
    y = np.stack(callback.labels).astype("int32")
    model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=2, verbose=0,
              callbacks=[callback])
    events = _events(tmp_path / "tb")
    assert [(step, v.tag) for step, v in events] == [(0, "val_predictions")]
    tensor = tf.make_ndarray(events[0][1].tensor)  # [width, height, png, png]
    assert tensor.shape == (4,) and int(tensor[0]) > 3 * 40 and int(tensor[1]) > 32
    pictures = [tf.io.decode_png(png).numpy() for png in tensor[2:]]
    assert len(pictures) == 2 and pictures[0].shape[-1] == 3
    # The first picture: titles, then image | truth | prediction, then the colour key.
    expected = callback.pictures()[0]
    h, w = expected.shape[:2]
    np.testing.assert_array_equal(pictures[0][:h, :w], expected)


def keras_loss():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@requires_tf
def test_epochs_without_validation_are_skipped_and_every_thins_out(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (24, 30, 3), dtype=np.uint8)]
    labels = [np.full((24, 30), 255, np.uint8)]  # all void: white truth, "void" in the key
    callback = PredictionImages(tmp_path / "tb", images, labels, ["a", "b", "c"], every=2)
    callback.set_model(deconvnet_tf.build_model("deconvnet_tiny", num_classes=3))
    for epoch in range(5):
        callback.on_epoch_end(epoch, {"loss": 1.0, **({"val_loss": 1.0} if epoch != 1 else {})})
    callback.on_train_end()
    # validated epochs: 0, 2, 3, 4 -> every second one: 0 and 3
    assert [step for step, _ in _events(tmp_path / "tb")] == [0, 3]
    picture = callback.pictures()[0]
    assert np.all(picture[20:20 + 24, 34:64] == 255)  # void truth is white


@pytest.mark.jax
def test_errors_and_the_jax_backend(tmp_path, capsys):
    with pytest.raises(ValueError, match="as many labels as images"):
        PredictionImages(tmp_path, [np.zeros((4, 4, 3))], [], ["a"])
    with pytest.raises(ValueError, match="does not match"):
        PredictionImages(tmp_path, [np.zeros((4, 4, 3))], [np.zeros((4, 5))], ["a"])
    if BACKEND != "tensorflow":
        callback = PredictionImages(tmp_path / "tb", [np.zeros((4, 4, 3))], [np.zeros((4, 4))],
                                    ["a"])
        callback.on_epoch_end(0, {"val_loss": 1.0})
        callback.on_epoch_end(1, {"val_loss": 1.0})
        assert capsys.readouterr().out.count("skipped") == 1
        assert not (tmp_path / "tb").exists()
