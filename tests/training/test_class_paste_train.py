"""Training with the class paste (config ``class_paste``) on either backend: tf.data on
TensorFlow, the PyDataset on JAX."""

from __future__ import annotations

import pytest

from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.train import train


@pytest.mark.jax
def test_class_paste_trains_on_either_backend_and_names_its_classes(tmp_path, capsys):
    """A tiny run with the class paste on every crop trains and prints the classes it pastes
    (``class_paste_classes`` null: the rare ones of the training split)."""
    from deconvnet_tf.training.losses import rare_classes
    from deconvnet_tf.training.train import open_data_source

    config = TrainConfig(preset="deconvnet_tiny", output=str(tmp_path / "run"), epochs=1,
                         batch_size=4, crop_size=[48, 64], optimizer="adam", synthetic_train=8,
                         synthetic_val=4, synthetic_size=[48, 64], steps_per_epoch=1,
                         val_split="", mixed_precision=False, class_paste=1.0)
    source = open_data_source(config)
    names = [source.info.class_names[c]
             for c in rare_classes(*source.validate(config.train_split))]
    assert names
    result = train(config, verbose=0)
    assert result.model_path.exists()
    assert (f"deconvnet-train: class_paste 1: crops receive the pixels of {', '.join(names)} "
            "from the previous crop of their batch") in capsys.readouterr().out
