"""The multi-worker Keras workarounds sit behind a version check (training/distribution.py):
verified range, a warning outside it, a clear error when the private functions are gone.
That they give the weights of a one-process run is tests/training/test_distributed.py."""

from __future__ import annotations

import keras
import pytest

from deconvnet_tf.training import distribution
from tests.conftest import requires_tf

pytestmark = requires_tf


@pytest.fixture
def trainer(monkeypatch):
    """Keras' TensorFlow trainer module, its reduce_per_replica restored after the test."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    monkeypatch.setattr(tf_trainer, "reduce_per_replica", tf_trainer.reduce_per_replica)
    return tf_trainer


def _model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_keras_version_parsing():
    assert distribution.keras_version("3.15.0") == (3, 15)
    assert distribution.keras_version("3.16.0.dev2026120101") == (3, 16)
    assert distribution.keras_version() == tuple(int(v) for v in keras.version().split(".")[:2])
    with pytest.raises(ValueError, match="cannot read a Keras version from 'nightly'"):
        distribution.keras_version("nightly")


def test_verified_version_installs_both_workarounds_silently(trainer, recwarn):
    low, high = distribution.KERAS_WORKAROUNDS_VERIFIED
    model = _model()
    version = f"{high[0]}.{high[1]}.0"
    assert distribution.multiworker_workarounds(model, object(), version=version) is True
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert getattr(trainer.reduce_per_replica, "_deconvnet_patched", False)
    assert "_maybe_symbolic_build" in vars(model)  # model-local, not the class's
    assert "_maybe_symbolic_build" not in vars(_model())
    # Installed once: a second model does not wrap the wrapper.
    patched = trainer.reduce_per_replica
    distribution.multiworker_workarounds(_model(), object(), version=version)
    assert trainer.reduce_per_replica is patched


def test_scalars_pass_through_the_patched_reduce_on_one_worker(trainer):
    import tensorflow as tf

    distribution.multiworker_workarounds(_model(), object(), version="3.15.0")
    strategy = tf.distribute.get_strategy()  # the default strategy: not multi-worker
    got = trainer.reduce_per_replica({"loss": tf.constant(2.5)}, strategy, "auto")
    assert float(got["loss"]) == 2.5


def test_unverified_version_warns_and_still_installs(trainer):
    with pytest.warns(RuntimeWarning, match=r"Keras 3\.99: the multi-worker workarounds .* "
                                            r"verified on Keras 3\.15-3\.15 only"):
        assert distribution.multiworker_workarounds(_model(), object(), version="3.99.1") is False
    assert getattr(trainer.reduce_per_replica, "_deconvnet_patched", False)


def test_missing_private_function_is_a_clear_error(trainer, monkeypatch):
    monkeypatch.delattr(trainer, "_collective_all_reduce_multi_worker")
    with pytest.raises(RuntimeError, match=r"no longer has \(_collective_all_reduce_multi_worker\)"
                                           r".*or train on one worker"):
        distribution.multiworker_workarounds(_model(), object())
    assert not getattr(trainer.reduce_per_replica, "_deconvnet_patched", False)
