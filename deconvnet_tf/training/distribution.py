"""Data-parallel training on several devices with ``keras.distribution`` (JAX backend).

On the TensorFlow backend, ``train()`` uses ``tf.distribute.MirroredStrategy``; on JAX the
same request (``strategy="mirrored"``) means :class:`keras.distribution.DataParallel`: the
variables are replicated on every device and each global batch is split along its first axis.
:class:`JaxDataParallel` wraps it with the two members ``train()`` uses of a
``tf.distribute.Strategy`` (``scope()`` and ``num_replicas_in_sync``), so the training loop
stays the same on both backends.

On a machine without accelerators, every CPU device is used; tests create several with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (set before JAX starts).

Example:

>>> strategy = data_parallel(batch_size=64)            # all GPUs, or all CPU devices
>>> with strategy.scope():
...     model = build_model("deconvnet_vgg16", num_classes=21)
...     model.compile(optimizer="sgd", loss=loss)
...     model.fit(dataset, epochs=10, steps_per_epoch=100)
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Sequence

import keras

__all__ = ["JaxDataParallel", "data_parallel", "list_jax_devices", "check_global_batch",
           "multiworker_workarounds", "KERAS_WORKAROUNDS_VERIFIED"]

#: Keras versions (major, minor) on which the two multi-worker workarounds below were
#: verified to be needed and to give the weights of a one-process run
#: (tests/training/test_distributed.py::test_multiworker_two_processes_identical_weights).
KERAS_WORKAROUNDS_VERIFIED = ((3, 15), (3, 15))


def list_jax_devices(device_type: str | None = None) -> list[str]:
    """Devices Keras can distribute over, as ``"gpu:0"``, ``"cpu:1"``, ...

    Args:
        device_type: ``"gpu"``, ``"cpu"`` or ``"tpu"``; ``None``: the accelerators when there
            are any, else the CPU devices.

    Returns:
        Device names (never a mix of types).

    Raises:
        RuntimeError: If the Keras backend is not JAX.
    """
    _require_jax("list_jax_devices")
    return list(keras.distribution.list_devices(device_type))


def check_global_batch(batch_size: int, replicas: int) -> int:
    """Returns the per-device batch of a global batch, or raises if it does not divide.

    Raises:
        ValueError: If ``batch_size`` is not a positive multiple of ``replicas``.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    if batch_size < 1 or batch_size % replicas:
        raise ValueError(
            f"batch_size {batch_size} must be a positive multiple of the number of devices "
            f"({replicas}): each device gets batch_size / {replicas} examples"
        )
    return batch_size // replicas


def _require_jax(what: str) -> None:
    if keras.backend.backend() != "jax":
        raise RuntimeError(
            f"{what} is the JAX backend's data parallelism (keras.distribution), but the active "
            f"Keras backend is '{keras.backend.backend()}'. On TensorFlow use "
            "tf.distribute.MirroredStrategy (train(): strategy='mirrored')."
        )


class JaxDataParallel:
    """``keras.distribution.DataParallel`` with the strategy interface ``train()`` uses.

    Args:
        devices: Device names (``list_jax_devices()``); ``None``: all accelerators, else all
            CPU devices.
        batch_size: Optional global batch size to check against the number of devices.

    Attributes:
        distribution: The ``keras.distribution.DataParallel``.
        devices: The device names.
        num_replicas_in_sync: Number of devices (as ``tf.distribute.Strategy``).

    Raises:
        RuntimeError: If the Keras backend is not JAX.
        ValueError: If ``batch_size`` does not divide over the devices, or no devices.

    Example:

    >>> strategy = JaxDataParallel(batch_size=8)
    >>> with strategy.scope():
    ...     model = build_model("deconvnet_tiny"); model.compile(...); model.fit(...)
    """

    def __init__(self, devices: Sequence[str] | None = None, *, batch_size: int | None = None):
        _require_jax("JaxDataParallel")
        self.devices = list(devices) if devices else list_jax_devices()
        if not self.devices:
            raise ValueError("JaxDataParallel: no devices to distribute over")
        if batch_size is not None:
            check_global_batch(int(batch_size), len(self.devices))
        self.distribution = keras.distribution.DataParallel(devices=self.devices)

    @property
    def num_replicas_in_sync(self) -> int:
        return len(self.devices)

    @contextlib.contextmanager
    def scope(self) -> Iterator[JaxDataParallel]:
        """Makes the distribution current: variables created and ``fit``/``evaluate`` called
        inside are laid out over the devices. Restores the previous one on exit."""
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(self.distribution)
        try:
            yield self
        finally:
            keras.distribution.set_distribution(previous)

    def __repr__(self) -> str:
        return f"JaxDataParallel(devices={self.devices})"


def data_parallel(devices: Sequence[str] | None = None, *, batch_size: int | None = None,
                  device_type: str | None = None) -> JaxDataParallel:
    """Data parallelism over ``devices`` (default: every GPU, else every CPU device).

    Args:
        devices: Device names; ``None`` lists them (``device_type``).
        batch_size: Global batch size to check (must be a multiple of the device count).
        device_type: ``"gpu"``/``"cpu"``/``"tpu"`` when ``devices`` is ``None``.

    Returns:
        A :class:`JaxDataParallel`.

    Raises:
        RuntimeError: If the Keras backend is not JAX.
        ValueError: If the batch does not divide over the devices.
    """
    if devices is None:
        devices = list_jax_devices(device_type)
    return JaxDataParallel(devices, batch_size=batch_size)


def keras_version(version: str | None = None) -> tuple[int, int]:
    """``(major, minor)`` of Keras (or of ``version``, e.g. ``"3.15.0.dev1"``)."""
    match = re.match(r"(\d+)\.(\d+)", version or keras.version())
    if match is None:
        raise ValueError(f"cannot read a Keras version from {version or keras.version()!r}")
    return int(match[1]), int(match[2])


def multiworker_workarounds(model, strategy, *, version: str | None = None) -> bool:
    """Installs the two Keras workarounds a ``MultiWorkerMirroredStrategy`` run needs (a
    model-local ``_maybe_symbolic_build`` and a process-wide ``reduce_per_replica``), behind a
    version check: on a Keras outside :data:`KERAS_WORKAROUNDS_VERIFIED` they are still
    installed when the private functions they replace exist, with a warning that they were
    not verified there; when those functions are gone, a ``RuntimeError`` says so instead of
    an ``AttributeError`` from inside ``fit``.

    Returns:
        Whether the installed Keras is in the verified range.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    current = keras_version(version)
    low, high = KERAS_WORKAROUNDS_VERIFIED
    missing = [name for name in ("reduce_per_replica", "_collective_all_reduce_multi_worker")
               if not hasattr(tf_trainer, name)]
    if not hasattr(model, "_symbolic_build"):
        missing.append("Model._symbolic_build")
    if missing:
        raise RuntimeError(
            f"multi-worker training needs workarounds for private Keras functions that Keras "
            f"{current[0]}.{current[1]} no longer has ({', '.join(missing)}); they were "
            f"verified on Keras {low[0]}.{low[1]}-{high[0]}.{high[1]}: use one of those, or "
            f"train on one worker")
    verified = low <= current <= high
    if not verified:
        warnings.warn(
            f"Keras {current[0]}.{current[1]}: the multi-worker workarounds of deconvnet-tf were "
            f"verified on Keras {low[0]}.{low[1]}-{high[0]}.{high[1]} only; check that the "
            f"workers end with equal weights", RuntimeWarning, stacklevel=2)
    _patch_symbolic_build(model, strategy)
    _patch_multiworker_reduce()
    return verified


def _patch_symbolic_build(model, strategy) -> None:
    """Works around Keras 3 under ``MultiWorkerMirroredStrategy``: ``fit`` builds the model
    from its first batch by ``strategy.reduce("MEAN", batch)`` over the whole (nested, uint8)
    batch, which collective all-reduce across workers cannot do. Building needs only the
    shapes and dtypes, so this builds from the first replica's local values."""
    import tensorflow as tf
    from keras import tree

    def symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda x: strategy.experimental_local_results(x)[0]
                    if isinstance(x, tf.distribute.DistributedValues) else x, batch)
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build


def _patch_multiworker_reduce() -> None:
    """Works around Keras 3 under ``MultiWorkerMirroredStrategy``: ``fit`` averages the step's
    logs with ``strategy.reduce("MEAN", v, axis=0)``, which fails for scalar logs (the loss,
    metric results). Scalars are averaged over all replicas of all workers instead
    (``axis=None``); everything else goes to Keras' own function. Installed once, only by
    multi-worker runs."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "_deconvnet_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            from keras import tree

            def mean(v):
                rank = v.values[0].shape.rank if hasattr(v, "values") else v.shape.rank
                return strategy.reduce("MEAN", v, axis=None if rank == 0 else 0)

            return tree.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica._deconvnet_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica
