"""``train()``: one training run from a :class:`TrainConfig` (the library behind
``deconvnet-train``)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from deconvnet_tf.training.config import TrainConfig

__all__ = ["TrainResult", "open_data_source", "resolve_dataset_root", "resolve_jit_compile", "train",
           "validation_epochs"]


@dataclass
class TrainResult:
    """What a run produced: the run folder, the final model, the Keras history (of the last
    stage), class names, the ignore label, the number of replicas, and per-stage histories
    of a two-stage run (``None`` for a stage 1 kept from an earlier run)."""

    output: Path
    model_path: Path
    history: dict
    class_names: tuple[str, ...]
    ignore_label: int
    replicas: int = 1
    stage_histories: dict | None = None  # two_stage: {"stage1": ..., "stage2": ...}


def resolve_dataset_root(config: TrainConfig) -> Path:
    """The dataset folder of ``config``: ``config.data``, or the generated default (written
    once under ``<output>/synthetic_data``).

    Raises:
        ValueError: ``config`` uses a TFDS dataset (no folder).
    """
    if config.tfds is not None:
        raise ValueError(f"config uses the TFDS dataset {config.tfds!r}, not a folder")
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
    if keras.config.backend() == "jax":
        if name != "mirrored":
            from deconvnet_tf.training.config import ConfigError

            raise ConfigError(f"config field 'strategy': {name!r} needs TensorFlow; on JAX use "
                              "'mirrored' (keras.distribution.DataParallel)")
        from deconvnet_tf.training.distribution import data_parallel

        return data_parallel()
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


def _use_tf_data() -> bool:
    """tf.data on the TensorFlow backend when TensorFlow imports; the PyDataset otherwise."""
    if keras.config.backend() != "tensorflow":
        return False
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_jit_compile(config: TrainConfig) -> bool:
    """``config.jit_compile``, or when it is ``None``: XLA on the JAX backend and on GPUs, off on
    TensorFlow's CPU path (MaxPoolWithArgmax, the default unpooling there, has no XLA kernel)."""
    if config.jit_compile is not None:
        return bool(config.jit_compile)
    if keras.config.backend() == "jax":
        return True
    return keras.config.backend() == "tensorflow" and bool(_tf_gpus()) and config.unpooling != "argmax"


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


def open_data_source(config: TrainConfig):
    """The data source of ``config``: ``tfds``, ``data`` (folder layout or VOC), or the generated
    default (:func:`resolve_dataset_root`)."""
    from deconvnet_tf.data.sources import open_source

    if config.tfds is not None:
        return open_source(tfds=config.tfds, tfds_data_dir=config.tfds_data_dir,
                           manual_dir=config.tfds_manual_dir, download=config.tfds_download)
    return open_source(resolve_dataset_root(config), sbd_root=config.sbd_root)


def _proposal_fn(config: TrainConfig):
    """``boxes_fn(image)`` for stage 2 (top-50 object proposals, not enlarged: the windows are
    enlarged by ``box_scale`` after the IoU test), or ``None`` for jittered ground-truth boxes."""
    if config.stage2_proposals == "jitter":
        return None
    try:
        from deconvnet_tf.inference.proposals import propose_boxes
    except ImportError as err:
        from deconvnet_tf.training.config import ConfigError

        raise ConfigError(f"config field 'stage2_proposals': {config.stage2_proposals!r} needs "
                          f"deconvnet_tf.inference.proposals ({err}); use 'jitter'") from err
    method, edge = {"edgeboxes": ("edgeboxes", "hed"),
                    "edgeboxes_gradient": ("edgeboxes", "gradient"),
                    "selective_search": ("selective_search", "hed")}[config.stage2_proposals]
    cache = str(Path(config.output) / "proposals")
    return lambda image: propose_boxes(image, method=method, edge=edge, top_k=50, enlarge=1.0,
                                       cache_dir=cache)


def _cache_fits(source, split: str, limit_bytes: int = 2**31) -> bool:
    """Whether the decoded examples of ``split`` (image + label, ~4 bytes a pixel) fit in
    ``limit_bytes``: estimated from the first image of a file source, assumed for TFDS splits
    of <= 2000 examples."""
    from deconvnet_tf.data.sources import RecordSource, load_record

    n = source.num_examples(split)
    if isinstance(source, RecordSource):
        image, _ = load_record(source.records(split)[0])
        return n * image.shape[0] * image.shape[1] * 4 <= limit_bytes
    return n <= 2000


def _task(strategy) -> tuple[str | None, int]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


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
    _patch_multiworker_reduce()


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


def _copy_atomic(src: Path, dst: Path) -> Path:
    import os
    import shutil

    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


def validation_epochs(epochs: int, every: int) -> list[int]:
    """The 1-based epochs that validate: every ``every``-th and always the last."""
    return sorted({e for e in range(every, epochs + 1, every)} | {epochs})


def train(
    config: TrainConfig, verbose: int | str = "auto", callbacks: list | None = None
) -> TrainResult:
    """Trains a model as ``config`` says; resumable.

    Writes into ``config.output``: ``config.json`` (the resolved config), ``backup/`` (state
    for resuming: re-running the same command after a crash or ``kill -9`` continues from the
    last backup, taken every ``checkpoint_every`` steps and at each epoch end),
    ``checkpoints/last.keras`` and ``best.keras`` (atomic), ``log.csv``, ``tensorboard/`` and
    ``model.keras`` (the final model, atomic). With ``stage="two_stage"`` the two stages run
    in ``stage1/`` and ``stage2/`` (stage 2 initialised from ``stage1/model.keras``; a finished
    stage 1 is not redone when the command is re-run) and ``model.keras`` is stage 2's model.
    Under ``strategy="multiworker"`` workers other than the chief write to
    ``<output>/worker<i>/``.

    Args:
        config: The run's configuration.
        verbose: Keras ``fit`` verbosity.
        callbacks: Extra Keras callbacks.

    Returns:
        A :class:`TrainResult`.

    Raises:
        DatasetError: bad input data (the message names the file).
        ConfigError: a setting that cannot be used (e.g. unavailable proposals).

    Example:

    >>> result = train(TrainConfig(preset="deconvnet_tiny", output="runs/shapes", epochs=2))
    """
    # MultiWorkerMirroredStrategy must exist before other TensorFlow work in the process.
    strategy = _strategy(config.strategy)
    if config.stage != "two_stage":
        return _train_single(config, strategy, verbose, callbacks)
    import dataclasses

    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    config.save(output / "config.json")
    data = config.data
    if data is None and config.tfds is None:
        data = str(resolve_dataset_root(config))
    stage1 = dataclasses.replace(config, stage="stage1", output=str(output / "stage1"), data=data,
                                 epochs=config.stage1_epochs or config.epochs)
    first = output / "stage1" / "model.keras"
    result1 = None
    if not first.is_file():  # a finished stage 1 is kept when the command is re-run
        result1 = _train_single(stage1, strategy, verbose, callbacks)
        first = result1.model_path
    stage2 = dataclasses.replace(config, stage="stage2", output=str(output / "stage2"), data=data,
                                 init_from=str(first))
    result2 = _train_single(stage2, strategy, verbose, callbacks)
    model_path = result2.model_path
    if result2.output == output / "stage2":  # the chief (or a single process)
        model_path = _copy_atomic(result2.model_path, output / "model.keras")
    stages = {"stage1": result1.history if result1 is not None else None, "stage2": result2.history}
    return TrainResult(output, model_path, dict(result2.history), result2.class_names,
                       result2.ignore_label, result2.replicas, stages)


def _train_single(config: TrainConfig, strategy, verbose, callbacks) -> TrainResult:
    from deconvnet_tf.data.crops import make_window_pipeline, stage1_windows, stage2_windows
    from deconvnet_tf.data.pipeline import make_pipeline
    from deconvnet_tf.models import build_model, load_model
    from deconvnet_tf.training.callbacks import AtomicModelCheckpoint, lr_schedule, save_model_atomic
    from deconvnet_tf.training.losses import SegmentationCrossEntropy, median_frequency_weights
    from deconvnet_tf.training.metrics import mean_iou_metric

    output = Path(config.output)
    task_type, task_id = _task(strategy)
    if task_type is not None and not strategy.extended.should_checkpoint:
        output = output / f"{task_type}{task_id}"  # non-chief workers: their own folder
    output.mkdir(parents=True, exist_ok=True)
    config.save(output / "config.json")
    keras.utils.set_random_seed(config.seed)
    _set_precision(config.mixed_precision)

    source = open_data_source(config)
    info = source.info
    num_classes = config.num_classes or info.num_classes
    ignore = info.ignore_label if info.ignore_label is not None else 255
    class_weights = None
    if config.tfds is None or config.class_weighting != "none":
        pixel_counts, image_pixels = source.validate(config.train_split)
        if config.class_weighting == "median_frequency":
            class_weights = median_frequency_weights(pixel_counts, image_pixels)
            class_weights = np.pad(class_weights, (0, num_classes - len(class_weights))).tolist()

    pipeline_args = dict(batch_size=config.batch_size, crop_size=tuple(config.crop_size),
                         ignore_label=ignore, seed=config.seed, deterministic=config.deterministic)
    if config.stage in ("stage1", "stage2"):
        records = source.records(config.train_split)
        object_args = dict(ignore_label=ignore, background=config.background_class,
                           box_scale=config.box_scale, min_pixels=config.min_object_pixels)
        if config.stage == "stage1":
            windows = stage1_windows(records, **object_args)
        else:
            windows = stage2_windows(records, boxes_fn=_proposal_fn(config), min_iou=config.stage2_min_iou,
                                     per_object=config.stage2_windows_per_object, seed=config.seed,
                                     **object_args)
        train_ds = make_window_pipeline(records, windows, stage=config.stage,
                                        window_size=config.window_size,
                                        background=config.background_class, **pipeline_args)
        num_train = len(windows)
    elif not _use_tf_data():
        from deconvnet_tf.data.pydataset import make_pydataset

        train_ds = make_pydataset(None, config.train_split, source=source, mode=config.stage,
                                  training=True, validate=False,
                                  cache=_cache_fits(source, config.train_split), **pipeline_args)
    else:
        train_ds = make_pipeline(source.dataset(config.train_split), mode=config.stage,
                                 training=True, cache=_cache_fits(source, config.train_split),
                                 **pipeline_args)
        num_train = source.num_examples(config.train_split)
    val_ds = None
    if config.val_split:
        if config.tfds is None:
            source.validate(config.val_split)
        if _use_tf_data():
            val_ds = make_pipeline(source.dataset(config.val_split), mode="whole", training=False,
                                   cache=_cache_fits(source, config.val_split), **pipeline_args)
        else:
            from deconvnet_tf.data.pydataset import make_pydataset

            val_ds = make_pydataset(None, config.val_split, source=source, mode="whole",
                                    training=False, validate=False,
                                    cache=_cache_fits(source, config.val_split), **pipeline_args)
    if task_type is not None:
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds = train_ds.with_options(options)
        val_ds = val_ds.with_options(options) if val_ds is not None else None
    steps = config.steps_per_epoch or max(1, math.ceil(num_train / config.batch_size))

    jit_compile = resolve_jit_compile(config)
    unpooling = config.unpooling or ("switch" if jit_compile else None)
    overrides = {} if config.bn_momentum is None else {"bn_momentum": config.bn_momentum}
    if unpooling is not None and not config.preset.startswith("fcn"):
        overrides["unpooling"] = unpooling

    def build_and_compile():
        model = build_model(config.preset, num_classes=num_classes,
                            encoder_weights=config.encoder_weights,
                            frozen_blocks=config.frozen_blocks, **overrides)
        if config.init_from:
            source_model = load_model(config.init_from)
            try:
                model.set_weights(source_model.get_weights())
            except ValueError as err:
                raise ValueError(f"init_from {config.init_from!r} does not match preset "
                                 f"{config.preset!r} with {num_classes} classes: {err}") from err
        model.compile(
            optimizer=_optimizer(config),
            loss=SegmentationCrossEntropy(num_classes, ignore, class_weights),
            metrics=[mean_iou_metric(num_classes, ignore)],
            jit_compile=jit_compile,
        )
        return model

    if strategy is None:
        model = build_and_compile()
    else:
        with strategy.scope():
            model = build_and_compile()
        if config.sync_batchnorm and keras.config.backend() == "tensorflow":
            from deconvnet_tf.training.callbacks import set_batchnorm_sync

            set_batchnorm_sync(model, True)
        if task_type is not None:
            _patch_symbolic_build(model, strategy)

    callbacks = list(callbacks or []) + [
        keras.callbacks.BackupAndRestore(str(output / "backup"), save_freq=config.checkpoint_every,
                                         double_checkpoint=True),
        keras.callbacks.LearningRateScheduler(
            lr_schedule(config.lr_schedule, config.learning_rate, config.epochs,
                        every=config.lr_decay_epochs, factor=config.lr_decay_factor)),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(output / "log.csv"), append=True),
        AtomicModelCheckpoint(output / "checkpoints",
                              monitor="val_mean_iou" if val_ds is not None else "mean_iou",
                              fallback=val_ds is None),
    ]
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401  (Keras' TensorBoard callback writes with tf.summary)

        callbacks.append(keras.callbacks.TensorBoard(str(output / "tensorboard"), write_graph=False))
    except ImportError:  # the TensorBoard callback needs the tensorboard package
        pass
    validation_freq = validation_epochs(config.epochs, config.validation_freq)
    fit_scope = contextlib.nullcontext()
    if strategy is not None and keras.config.backend() == "jax":
        from deconvnet_tf.training.distribution import check_global_batch

        check_global_batch(config.batch_size, strategy.num_replicas_in_sync)
        fit_scope = strategy.scope()  # keras.distribution shards batches inside its scope
    with fit_scope:
        history = model.fit(
            train_ds, epochs=config.epochs, steps_per_epoch=steps, validation_data=val_ds,
            validation_steps=config.validation_steps, validation_freq=validation_freq,
            callbacks=callbacks, verbose=verbose,
            shuffle=False,  # the input pipeline shuffles
        )
    model_path = save_model_atomic(model, output / "model.keras")
    keras.config.set_dtype_policy("float32")
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    return TrainResult(output, model_path, dict(history.history), info.class_names, ignore, replicas)
