"""``train()``: one training run from a :class:`TrainConfig` (the library behind
``deconvnet-train``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from deconvnet_tf.training.config import TrainConfig

__all__ = ["TrainResult", "train", "resolve_dataset_root"]


@dataclass
class TrainResult:
    """What a run produced."""

    output: Path
    model_path: Path
    history: dict
    class_names: tuple[str, ...]
    ignore_label: int
    replicas: int = 1


def resolve_dataset_root(config: TrainConfig) -> Path:
    """The dataset folder of ``config``: ``config.data``, or the generated default (written
    once under ``<output>/synthetic_data``)."""
    if config.data is not None:
        return Path(config.data)
    from deconvnet_tf.data.synthetic import write_synthetic_dataset

    root = Path(config.output) / "synthetic_data"
    if not (root / "meta.json").is_file():
        write_synthetic_dataset(root, config.synthetic_train, config.synthetic_val,
                                *config.synthetic_size, seed=config.seed)
    return root


def _strategy(name: str):
    if name == "default":
        return None
    import tensorflow as tf

    if name == "mirrored":
        # All GPUs; without GPUs, every logical CPU device (e.g. for tests, or after
        # tf.config.set_logical_device_configuration).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.MultiWorkerMirroredStrategy()


def _set_precision(mixed: bool) -> None:
    if not mixed:
        keras.config.set_dtype_policy("float32")
        return
    on_gpu = bool(keras.config.backend() == "tensorflow" and _tf_gpus()) or (
        keras.config.backend() == "jax" and _jax_gpu()
    )
    keras.config.set_dtype_policy("mixed_float16" if on_gpu and not _bf16_gpu() else "mixed_bfloat16")


def _tf_gpus():
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def _jax_gpu() -> bool:
    import jax

    return any(d.platform == "gpu" for d in jax.devices())


def _bf16_gpu() -> bool:
    """bfloat16 is native from NVIDIA Ampere (compute capability 8.0) on."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        for gpu in _tf_gpus():
            cc = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
            if cc < (8, 0):
                return False
        return True
    return True


def _optimizer(config: TrainConfig):
    wd = config.weight_decay or None
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.learning_rate, weight_decay=wd)
    return keras.optimizers.SGD(config.learning_rate, momentum=config.momentum, weight_decay=wd)


def train(
    config: TrainConfig, verbose: int | str = "auto", callbacks: list | None = None
) -> TrainResult:
    """Trains a model as ``config`` says; resumable.

    Writes into ``config.output``: ``config.json`` (the resolved config), ``backup/`` (state
    for resuming: re-running the same command after a crash or ``kill -9`` continues from the
    last backup, taken every ``checkpoint_every`` steps and at each epoch end),
    ``checkpoints/last.keras`` and ``best.keras`` (atomic), ``log.csv``, ``tensorboard/`` and
    ``model.keras`` (the final model, atomic).

    Args:
        config: The run's configuration.
        verbose: Keras ``fit`` verbosity.
        callbacks: Extra Keras callbacks.

    Returns:
        A :class:`TrainResult`.
    """
    from deconvnet_tf.data.folder import folder_dataset, list_examples, read_meta, validate_examples
    from deconvnet_tf.data.pipeline import make_pipeline
    from deconvnet_tf.models import build_model
    from deconvnet_tf.training.callbacks import AtomicModelCheckpoint, save_model_atomic, step_decay
    from deconvnet_tf.training.losses import SegmentationCrossEntropy, median_frequency_weights
    from deconvnet_tf.training.metrics import mean_iou_metric

    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    config.save(output / "config.json")
    keras.utils.set_random_seed(config.seed)
    _set_precision(config.mixed_precision)

    root = resolve_dataset_root(config)
    info = read_meta(root)
    num_classes = config.num_classes or info.num_classes
    ignore = info.ignore_label if info.ignore_label is not None else 255
    train_examples = list_examples(root, config.train_split)
    pixel_counts, image_pixels = validate_examples(train_examples, info)
    class_weights = None
    if config.class_weighting == "median_frequency":
        class_weights = median_frequency_weights(pixel_counts, image_pixels)
        class_weights = np.pad(class_weights, (0, num_classes - len(class_weights))).tolist()

    pipeline_args = dict(batch_size=config.batch_size, crop_size=tuple(config.crop_size),
                         ignore_label=ignore, seed=config.seed, deterministic=config.deterministic)
    train_ds = make_pipeline(folder_dataset(root, config.train_split, validate=False),
                             mode=config.stage, training=True, **pipeline_args)
    val_ds = None
    if config.val_split:
        val_examples = list_examples(root, config.val_split)
        validate_examples(val_examples, info)
        val_ds = make_pipeline(folder_dataset(root, config.val_split, validate=False),
                               mode="whole", training=False, **pipeline_args)
    steps = config.steps_per_epoch or max(1, math.ceil(len(train_examples) / config.batch_size))

    strategy = _strategy(config.strategy)
    unpooling = config.unpooling or ("switch" if config.jit_compile else None)
    overrides = {} if config.bn_momentum is None else {"bn_momentum": config.bn_momentum}
    if unpooling is not None and not config.preset.startswith("fcn"):
        overrides["unpooling"] = unpooling

    def build_and_compile():
        model = build_model(config.preset, num_classes=num_classes,
                            encoder_weights=config.encoder_weights,
                            frozen_blocks=config.frozen_blocks, **overrides)
        model.compile(
            optimizer=_optimizer(config),
            loss=SegmentationCrossEntropy(num_classes, ignore, class_weights),
            metrics=[mean_iou_metric(num_classes, ignore)],
            jit_compile=config.jit_compile,
        )
        return model

    if strategy is None:
        model = build_and_compile()
    else:
        with strategy.scope():
            model = build_and_compile()

    callbacks = list(callbacks or []) + [
        keras.callbacks.BackupAndRestore(str(output / "backup"), save_freq=config.checkpoint_every,
                                         double_checkpoint=True),
        keras.callbacks.LearningRateScheduler(
            step_decay(config.learning_rate, config.lr_decay_epochs, config.lr_decay_factor)),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(output / "log.csv"), append=True),
        AtomicModelCheckpoint(output / "checkpoints",
                              monitor="val_mean_iou" if val_ds is not None else "mean_iou"),
    ]
    try:
        import tensorboard  # noqa: F401

        callbacks.append(keras.callbacks.TensorBoard(str(output / "tensorboard"), write_graph=False))
    except ImportError:  # the TensorBoard callback needs the tensorboard package
        pass
    history = model.fit(
        train_ds, epochs=config.epochs, steps_per_epoch=steps, validation_data=val_ds,
        validation_steps=config.validation_steps, callbacks=callbacks, verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    model_path = save_model_atomic(model, output / "model.keras")
    keras.config.set_dtype_policy("float32")
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    return TrainResult(output, model_path, dict(history.history), info.class_names, ignore, replicas)
