"""``train()``: one training run from a :class:`TrainConfig` (the library behind
``deconvnet-train``)."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from deconvnet_tf.data import crops, pipeline
from deconvnet_tf.data.pydataset import make_pydataset
from deconvnet_tf.data.stats import color_statistics
from deconvnet_tf.data.sources import RecordSource, load_record, open_source
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.evaluation.metrics import mean_iou_metric
from deconvnet_tf.inference import proposals
from deconvnet_tf.inference.segmenter import load_model
from deconvnet_tf.io import RUN_COLOR_TARGET
from deconvnet_tf.models import (
    build_model,
    count_flops,
    get_architecture,
    load_encoder_weights,
)
from deconvnet_tf.models.weights import ENCODER_WEIGHTS
from deconvnet_tf.training.atomic import atomic_path, write_text_atomic
from deconvnet_tf.training.averaging import WeightEMA
from deconvnet_tf.training.callbacks import TimeEstimate
from deconvnet_tf.training.checkpointing import (
    AtomicModelCheckpoint,
    TrainingBackup,
    restore_backup,
    save_model_atomic,
    set_batchnorm_sync,
)
from deconvnet_tf.training.config import (
    CLASS_WEIGHT_POWER, WINDOW_STAGES, ConfigError, TrainConfig,
)
from deconvnet_tf.training.distribution import (
    check_global_batch, data_parallel, multiworker_workarounds,
)
from deconvnet_tf.training.losses import (
    SegmentationCrossEntropy,
    median_frequency_weights,
    rare_classes,
)
from deconvnet_tf.training.runfolder import (
    RunFolderError,
    RunLock,
    check_settings,
    clear_run,
    inspect_run,
    mark_finished,
    run_folder,
    read_log,
    truncate_log,
)
from deconvnet_tf.training.schedules import lr_schedule
from deconvnet_tf.training.tb_images import PredictionImages

__all__ = ["TrainResult", "open_data_source", "resolve_dataset_root", "resolve_jit_compile",
           "select_precision", "train", "validation_epochs"]


@dataclass
class TrainResult:
    """What a run produced: the run folder, the final model, the Keras history (of the last
    stage; of this call's epochs), class names, the ignore label, the number of replicas,
    per-stage histories of a two-stage run (``None`` for a stage kept from an earlier run),
    the epochs done in all, the epoch this call started at, whether the run had already
    finished before this call (nothing trained; ``history`` read from ``log.csv``), and the
    colour statistics the images were normalised to (``color_norm``; else ``None``): the
    ``color_target`` to predict with."""

    output: Path
    model_path: Path
    history: dict
    class_names: tuple[str, ...]
    ignore_label: int
    replicas: int = 1
    stage_histories: dict | None = None  # two_stage: {"stage1": ..., "stage2": ...}
    epochs_done: int = 0
    initial_epoch: int = 0
    already_finished: bool = False
    color_target: dict | None = None


# Runs estimated (from their first steps) to take longer than this print the estimate.
TIME_ESTIMATE_THRESHOLD = 120.0


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
            raise ConfigError(f"config field 'strategy': {name!r} needs TensorFlow; on JAX use "
                              "'mirrored' (keras.distribution.DataParallel)")
        return data_parallel()
    import tensorflow as tf

    if name == "mirrored":
        # All GPUs; without GPUs, every logical CPU device (e.g. for tests, or after
        # tf.config.set_logical_device_configuration).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.MultiWorkerMirroredStrategy()


def select_precision(mixed: bool, gpu_capabilities: list[tuple[int, int]]) -> str:
    """The Keras dtype policy of a run: ``"float32"`` unless ``mixed``; ``"mixed_bfloat16"``
    on CPUs and on GPUs that all have native bfloat16 (NVIDIA compute capability >= 8.0,
    Ampere on); ``"mixed_float16"`` when a GPU is older (Keras' ``compile`` then wraps the
    optimizer in a ``LossScaleOptimizer``: dynamic loss scaling).

    Args:
        mixed: ``config.mixed_precision``.
        gpu_capabilities: ``(major, minor)`` compute capability of each GPU in use (empty
            on CPUs; ``(0, 0)`` for a GPU whose capability is unknown).
    """
    if not mixed:
        return "float32"
    if gpu_capabilities and min(tuple(cc) for cc in gpu_capabilities) < (8, 0):
        return "mixed_float16"
    return "mixed_bfloat16"


def _parse_capability(value) -> tuple[int, int]:
    """``(8, 0)`` from ``(8, 0)``, ``"8.0"`` or ``None`` (unknown: ``(0, 0)``)."""
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        try:
            major, _, minor = value.partition(".")
            return (int(major), int(minor or 0))
        except ValueError:
            return (0, 0)
    return tuple(int(v) for v in value)[:2]


def _gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capabilities of the GPUs of the active backend (empty without GPUs)."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return [_parse_capability(tf.config.experimental.get_device_details(gpu)
                                  .get("compute_capability")) for gpu in _tf_gpus()]
    if keras.config.backend() == "jax":
        import jax

        return [_parse_capability(getattr(d, "compute_capability", None))
                for d in jax.devices() if d.platform == "gpu"]
    return []


def _set_precision(mixed: bool) -> str:
    policy = select_precision(mixed, _gpu_capabilities() if mixed else [])
    keras.config.set_dtype_policy(policy)
    return policy


def _cpu_flags(cpuinfo: str | None = None) -> list[str] | None:
    """The first ``flags`` line of ``/proc/cpuinfo`` (or of ``cpuinfo``), split; ``None``
    when there is none or the file cannot be read."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    return next((line.split() for line in cpuinfo.splitlines() if line.startswith("flags")), None)


def cpu_bf16_kernels(cpuinfo: str | None = None) -> str | None:
    """The CPU's native bfloat16 instructions as the flag that shows them: ``"amx_bf16"``
    (AMX tiles), ``"avx512_bf16"`` (AVX-512 BF16 dot products), or ``None`` (neither, or the
    flags cannot be read). oneDNN's bfloat16 kernels use them; XLA:CPU's do not."""
    flags = _cpu_flags(cpuinfo) or []
    return next((flag for flag in ("amx_bf16", "avx512_bf16") if flag in flags), None)


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` in
    ``/proc/cpuinfo``'s flags); without either, oneDNN emulates it: ``horse_compact``'s
    bfloat16 steps measured 65 s against 7 s in float32 on an AMD EPYC without AVX-512
    (docs/benchmarks.md). ``True`` when ``/proc/cpuinfo`` cannot be read (no claim)."""
    flags = _cpu_flags(cpuinfo)
    return flags is None or "avx512_bf16" in flags or "amx_bf16" in flags


def precision_warning(mixed: bool, gpu_capabilities=None, cpuinfo: str | None = None) -> str | None:
    """The line that warns of emulated bfloat16 (mixed precision on a CPU without native
    bfloat16, e.g. a recipe's ``mixed_precision: true`` on another machine), else ``None``."""
    gpus = _gpu_capabilities() if gpu_capabilities is None else gpu_capabilities
    if not mixed or gpus or cpu_has_native_bf16(cpuinfo):
        return None
    return ("deconvnet-train: warning: this CPU has no native bfloat16 (no avx512_bf16 or "
            "amx_bf16 flag), so bfloat16 is emulated, about 9x slower than float32 (measured); "
            "add --set mixed_precision=false to train in float32")


def resolve_mixed_precision(config: TrainConfig, gpu_capabilities=None,
                            cpuinfo: str | None = None) -> tuple[bool, str]:
    """``(mixed, why)``: ``config.mixed_precision``, or when it is ``None`` the fastest correct
    setting of this machine: mixed precision on GPUs (bfloat16 from compute capability 8.0,
    float16 with loss scaling before) and on CPUs with native bfloat16 (AMX or AVX-512 BF16,
    trained without XLA: the compact recipes' step 1.45-1.52x faster than float32 + XLA,
    docs/benchmarks.md); float32 on other CPUs, where bfloat16 is emulated (~9x slower)."""
    if config.mixed_precision is not None:
        return bool(config.mixed_precision), "set in the config"
    gpus = _gpu_capabilities() if gpu_capabilities is None else gpu_capabilities
    if gpus:
        return True, "GPU"
    kernels = cpu_bf16_kernels(cpuinfo)
    if kernels == "amx_bf16":
        return True, "CPU with AMX bfloat16"
    if kernels == "avx512_bf16":
        return True, "CPU with AVX-512 BF16"
    return False, "CPU without native bfloat16 (no avx512_bf16 or amx_bf16), where it is emulated"


def _use_tf_data() -> bool:
    """tf.data on the TensorFlow backend when TensorFlow imports; the PyDataset otherwise."""
    if keras.config.backend() != "tensorflow":
        return False
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


#: On TensorFlow's CPU path XLA is chosen by default when the run would take longer than this
#: without it (compiling costs ~10-60 s; the compiled step measured 1.2-1.7x faster on the
#: development CPUs), estimated at CPU_GFLOPS_ESTIMATE.
XLA_MIN_RUN_SECONDS = 120.0
CPU_GFLOPS_ESTIMATE = 100.0


def resolve_jit_compile(config: TrainConfig, run_gflop: float | None = None, *,
                        mixed: bool = False, cpuinfo: str | None = None) -> bool:
    """``config.jit_compile``, or when it is ``None`` the fastest correct setting: XLA on the
    JAX backend and on GPUs; on TensorFlow's CPU path XLA when the run is long enough to pay
    for compiling (``run_gflop``, the training FLOPs of the whole run, takes more than
    ``XLA_MIN_RUN_SECONDS`` at ``CPU_GFLOPS_ESTIMATE``; unknown: off), except for bfloat16
    (``mixed``) on CPUs with native bfloat16, where oneDNN's kernels use the AMX tiles or the
    AVX-512 BF16 instructions and XLA:CPU's do not (the compact network's train step measured
    2.83 s without XLA against 5.20 s with it on AMX, 2.10 s against 3.04 s for float32 + XLA
    on AVX-512 BF16, docs/benchmarks.md). Never with ``unpooling="argmax"``
    (MaxPoolWithArgmax has no XLA kernel)."""
    if config.jit_compile is not None:
        return bool(config.jit_compile)
    if keras.config.backend() == "jax":
        return True
    if keras.config.backend() != "tensorflow" or config.unpooling == "argmax":
        return False
    if _tf_gpus():
        return True
    if mixed and cpu_bf16_kernels(cpuinfo):
        return False
    return run_gflop is not None and run_gflop / CPU_GFLOPS_ESTIMATE > XLA_MIN_RUN_SECONDS


def run_gflop(config: TrainConfig, num_classes: int, steps: int) -> float:
    """Training FLOPs of the whole run in GFLOP (forward + backward ~ 3x forward), counted on
    the preset built at the crop size."""
    kwargs = {"unpooling": "switch"} if get_architecture(config.preset).family == "deconvnet" else {}
    probe = build_model(config.preset, input_shape=(*config.crop_size, 3),
                        num_classes=num_classes, **kwargs)
    per_image = count_flops(probe) / 1e9
    del probe
    return 3 * per_image * config.batch_size * steps * config.epochs


def _tf_gpus():
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def _optimizer(config: TrainConfig):
    wd = config.weight_decay or None
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.learning_rate, weight_decay=wd)
    return keras.optimizers.SGD(config.learning_rate, momentum=config.momentum, weight_decay=wd)


def open_data_source(config: TrainConfig):
    """The data source of ``config``: ``tfds``, ``data`` (folder layout or VOC), or the generated
    default (:func:`resolve_dataset_root`)."""
    if config.tfds is not None:
        return open_source(tfds=config.tfds, tfds_data_dir=config.tfds_data_dir,
                           manual_dir=config.tfds_manual_dir, download=config.tfds_download)
    return open_source(resolve_dataset_root(config), sbd_root=config.sbd_root)


def _proposal_fn(config: TrainConfig):
    """``boxes_fn(image)`` for stage 2 (top-50 object proposals, not enlarged: the windows are
    enlarged by ``box_scale`` after the IoU test), or ``None`` for jittered ground-truth boxes."""
    if config.stage2_proposals == "jitter":
        return None
    method, edge = {"edgeboxes": ("edgeboxes", "hed"),
                    "edgeboxes_gradient": ("edgeboxes", "gradient"),
                    "selective_search": ("selective_search", "hed")}[config.stage2_proposals]
    cache = str(Path(config.output) / "proposals")
    return lambda image: proposals.propose_boxes(image, method=method, edge=edge, top_k=50,
                                                 enlarge=1.0, cache_dir=cache)


def _cache_fits(source, split: str, limit_bytes: int = 2**31) -> bool:
    """Whether the decoded examples of ``split`` (image + label, ~4 bytes a pixel) fit in
    ``limit_bytes``: estimated from the first image of a file source, assumed for TFDS splits
    of <= 2000 examples."""
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


def _copy_atomic(src: Path, dst: Path) -> Path:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def validation_epochs(epochs: int, every: int) -> list[int]:
    """The 1-based epochs that validate: every ``every``-th and always the last."""
    return sorted({e for e in range(every, epochs + 1, every)} | {epochs})


def train(
    config: TrainConfig, verbose: int | str = "auto", callbacks: list | None = None, *,
    overwrite: bool = False, resume: bool = False,
) -> TrainResult:
    """Trains a model as ``config`` says; resumable.

    Writes into ``config.output``: ``config.json`` (the resolved config), ``backup/`` (state
    for resuming: re-running the same command after a crash or ``kill -9`` continues from the
    last backup, taken every ``checkpoint_every`` steps and at each epoch end, at the step
    where it was taken, with the batches an uninterrupted run would have seen),
    ``checkpoints/last.keras`` and ``best.keras`` (atomic; the best value so far survives a
    resume), ``log.csv`` (one row per epoch, also across resumes), ``tensorboard/``,
    ``model.keras`` (the final model, atomic) and ``finished.json``. One process at a time
    trains into a folder (a lock; a second one gets :class:`RunLockedError` naming the
    holder). A finished run is not trained again: ``train`` returns it with
    ``already_finished=True``, unless ``overwrite`` (start again) or ``resume`` with more
    ``epochs`` (continue it). With ``two_stage=True`` the two stages run in ``stage1/``
    and ``stage2/`` (stage 2 initialised from ``stage1/model.keras``; a finished stage 1 is
    not redone when the command is re-run) and ``model.keras`` is stage 2's model.
    Under ``strategy="multiworker"`` workers other than the chief write to
    ``<output>/worker<i>/``.

    Args:
        config: The run's configuration.
        verbose: Keras ``fit`` verbosity.
        callbacks: Extra Keras callbacks.
        overwrite: Remove what an earlier run wrote into ``config.output`` and start again.
        resume: Continue a finished run to ``config.epochs`` when that is more than it did
            (an interrupted run always continues).

    Returns:
        A :class:`TrainResult`.

    Raises:
        DatasetError: bad input data (the message names the file).
        ConfigError: a setting that cannot be used (e.g. a bad ``init_from``/
            ``encoder_weights`` file); :class:`RunFolderError` (a subclass)
            for an output folder that cannot be used, holds a run with other settings or a
            finished run with fewer epochs (without ``resume``/``overwrite``), and
            :class:`RunLockedError` when another process trains into it.

    Example:

    >>> result = train(TrainConfig(preset="deconvnet_tiny", output="runs/shapes", epochs=2))
    """
    _check_files(config)
    _check_crop_size(config)
    # MultiWorkerMirroredStrategy must exist before other TensorFlow work in the process.
    strategy = _strategy(config.strategy)
    if not config.two_stage:
        return _train_single(config, strategy, verbose, callbacks, overwrite, resume)
    return _train_two_stage(config, strategy, verbose, callbacks, overwrite, resume)


def _train_two_stage(config: TrainConfig, strategy, verbose, callbacks, overwrite: bool,
                     resume: bool) -> TrainResult:
    """Stage 1 in ``<output>/stage1``, then stage 2 from its model in ``<output>/stage2``;
    ``<output>/model.keras`` is stage 2's model."""
    import dataclasses

    task_type, _ = _task(strategy)
    chief = task_type is None or strategy.extended.should_checkpoint
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(run_folder(config.output))
        # Workers other than the chief keep their state in their own stage subfolders.
        if chief:
            stack.enter_context(RunLock(output))
            status, state = _begin_run(output, config, overwrite, resume)
            if status == "finished":
                return _finished_result(output, state, config)
            config.save(output / "config.json")
        data = config.data
        if data is None and config.tfds is None:
            data = str(resolve_dataset_root(config))
        stage1 = dataclasses.replace(config, input_mode="object_crops", two_stage=False,
                                     output=str(output / "stage1"), data=data,
                                     epochs=config.stage1_epochs or config.epochs)
        result1 = _train_single(stage1, strategy, verbose, callbacks, False, resume)
        first = output / "stage1" / "model.keras"
        stage2 = dataclasses.replace(config, input_mode="proposal_windows", two_stage=False,
                                     output=str(output / "stage2"), data=data,
                                     init_from=str(first))
        result2 = _train_single(stage2, strategy, verbose, callbacks, False, resume)
        model_path = result2.model_path
        if chief:
            model_path = _copy_atomic(result2.model_path, output / "model.keras")
            _mark_finished(output, result2.epochs_done, config.epochs, result2.class_names,
                           result2.ignore_label)
    stages = {"stage1": None if result1.already_finished else result1.history,
              "stage2": None if result2.already_finished else result2.history}
    return TrainResult(output, model_path, dict(result2.history), result2.class_names,
                       result2.ignore_label, result2.replicas, stages, result2.epochs_done,
                       result2.initial_epoch, result1.already_finished and result2.already_finished)


def _check_crop_size(config: TrainConfig) -> None:
    """Fails early on crops smaller than the preset takes (the model is built at that size)."""
    minimum = get_architecture(config.preset).min_input_size()
    if min(config.crop_size) < minimum:
        raise ConfigError(f"config field 'crop_size': {list(config.crop_size)} is smaller than "
                          f"{config.preset}'s minimum input size {minimum}x{minimum}")


def _check_files(config: TrainConfig) -> None:
    """Fails early (before any data is read) on ``init_from``/``encoder_weights`` files that
    do not exist."""

    def check(field: str, value: str | None, expected: str) -> None:
        if value is None or (field == "encoder_weights" and value in ENCODER_WEIGHTS):
            return
        path = Path(value)
        if path.is_dir():
            raise ConfigError(f"config field {field!r}: {value!r} is a folder; expected {expected}")
        if not path.is_file():
            raise ConfigError(f"config field {field!r}: no such file {value!r} (expected {expected})")

    check("init_from", config.init_from, "a .keras model saved by this package")
    check("encoder_weights", config.encoder_weights,
          "'imagenet', 'hed', 'efficientnet_lite0', null or the path of a Keras VGG16 "
          "weights file")


def _begin_run(output: Path, config: TrainConfig, overwrite: bool, resume: bool):
    """What to do in run folder ``output`` (locked): ``("finished", state)`` (nothing to
    train), ``("continue", state)`` (a finished run to more epochs) or ``("start", state)``
    (a new run, or an interrupted one that resumes from its backup)."""
    state = inspect_run(output)
    if overwrite and state.config is not None:
        clear_run(output)
        state = inspect_run(output)
    check_settings(state, config)
    if not state.finished:
        return "start", state
    done, target = state.epochs_done, int(state.finished.get("target", state.epochs_done))
    if config.epochs <= done:
        return "finished", state
    if resume:
        return "continue", state
    what = (f"a finished run of {done} epochs" if done >= target
            else f"a run that stopped after {done} of {target} epochs")
    raise RunFolderError(
        f"output folder {str(output)!r} holds {what}; add resume (--resume) to continue it to "
        f"{config.epochs} epochs, or overwrite (--overwrite) to start again")


def _mark_finished(output: Path, epochs: int, target: int, class_names, ignore_label: int,
                   color_target: dict | None = None) -> None:
    extra = {} if color_target is None else {"color_target": color_target}
    mark_finished(output, epochs, target, class_names=list(class_names),
                  ignore_label=int(ignore_label), **extra)


def _finished_result(output: Path, state, config: TrainConfig) -> TrainResult:
    """The :class:`TrainResult` of a run that finished before this call."""
    names, ignore = state.finished.get("class_names"), state.finished.get("ignore_label")
    if names is None or ignore is None:  # finished by an older version: ask the data
        info = open_data_source(config).info
        names, ignore = info.class_names, info.ignore_label if info.ignore_label is not None else 255
    log = output / "log.csv" if (output / "log.csv").is_file() else output / "stage2" / "log.csv"
    return TrainResult(output, output / "model.keras", read_log(log), tuple(names), int(ignore),
                       epochs_done=state.epochs_done, initial_epoch=state.epochs_done,
                       already_finished=True, color_target=state.finished.get("color_target"))


class _SkipBatches(keras.utils.PyDataset):
    """A training ``PyDataset`` from batch ``skip`` on (batches are a pure function of their
    index, so this is the stream an uninterrupted run sees from that point)."""

    def __init__(self, dataset, skip: int):
        super().__init__(workers=dataset.workers, use_multiprocessing=dataset.use_multiprocessing,
                         max_queue_size=dataset.max_queue_size)
        self.dataset, self.skip = dataset, int(skip)

    @property
    def num_batches(self):
        n = self.dataset.num_batches
        return None if n is None else max(0, n - self.skip)

    def __getitem__(self, index):
        return self.dataset[int(index) + self.skip]

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _build_and_compile(config: TrainConfig, num_classes: int, ignore: int, class_weights,
                       jit_compile: bool, overrides: dict):
    """The run's model, with ``init_from``/``encoder_weights`` loaded, compiled with the
    optimizer (decoupled weight decay), loss (class weights) and metric of ``config``, under
    the current dtype policy (``mixed_float16`` adds loss scaling)."""
    try:
        model = build_model(config.preset, num_classes=num_classes,
                            frozen_blocks=config.frozen_blocks, **overrides)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"config field 'preset': cannot build {config.preset!r} with these "
                          f"settings: {_first_line(err)}") from err
    if config.encoder_weights is not None:
        try:
            load_encoder_weights(model, config.encoder_weights)
        except (ValueError, OSError, RuntimeError, ImportError) as err:
            message = _first_line(err).removeprefix("encoder_weights: ")
            raise ConfigError(f"config field 'encoder_weights': {message}") from err
    if config.init_from:
        try:
            source_model = load_model(config.init_from)
        except Exception as err:  # noqa: BLE001 - Keras raises many types for a bad archive
            raise ConfigError(f"config field 'init_from': cannot load {config.init_from!r} as a "
                              f"Keras model: {_first_line(err)}") from err
        try:
            model.set_weights(source_model.get_weights())
        except ValueError as err:
            raise ConfigError(f"init_from {config.init_from!r} does not match preset "
                              f"{config.preset!r} with {num_classes} classes: "
                              f"{_first_line(err)}") from err
    model.compile(
        optimizer=_optimizer(config),
        loss=SegmentationCrossEntropy(num_classes, ignore, class_weights,
                                      lovasz_weight=config.lovasz_weight,
                                      focal_gamma=config.focal_gamma,
                                      label_smoothing=config.label_smoothing),
        metrics=[mean_iou_metric(num_classes, ignore)],
        jit_compile=jit_compile,
    )
    return model


def _train_single(config: TrainConfig, strategy, verbose, callbacks, overwrite: bool = False,
                  resume: bool = False) -> TrainResult:
    output = Path(config.output)
    task_type, task_id = _task(strategy)
    if task_type is not None and not strategy.extended.should_checkpoint:
        output = output / f"{task_type}{task_id}"  # non-chief workers: their own folder
    with run_folder(output) as output, RunLock(output):
        status, state = _begin_run(output, config, overwrite, resume)
        if status == "finished":
            return _finished_result(output, state, config)
        config.save(output / "config.json")
        try:
            return _fit(config, output, strategy, verbose, callbacks,
                        state.epochs_done if status == "continue" else None)
        finally:
            keras.config.set_dtype_policy("float32")


@dataclass
class _Inputs:
    """What the run reads: the source, its classes and the batches of ``fit``."""

    source: object
    info: object
    num_classes: int
    ignore: int
    class_weights: list | None
    train_data: Callable[[int], object]  # batches from batch ``position`` of the run on
    val_ds: object | None
    steps: int
    color_target: dict | None = None  # color_norm: the training split's colour statistics


def _class_setup(config: TrainConfig, source) -> tuple[int, int, list | None, list[int]]:
    """``(num_classes, ignore_label, class_weights, class_paste_classes)``; validates the
    training split."""
    info = source.info
    if config.num_classes is not None and config.num_classes < info.num_classes:
        raise ConfigError(f"config field 'num_classes': {config.num_classes} is fewer than the "
                          f"{info.num_classes} classes of the dataset")
    num_classes = config.num_classes or info.num_classes
    ignore = info.ignore_label if info.ignore_label is not None else 255
    class_weights = None
    paste = list(config.class_paste_classes or [])
    rare_default = config.class_paste > 0 and config.class_paste_classes is None
    if config.tfds is None or config.class_weighting != "none" or rare_default:
        pixel_counts, image_pixels = source.validate(config.train_split)
        if config.class_weighting != "none":
            class_weights = median_frequency_weights(
                pixel_counts, image_pixels, power=CLASS_WEIGHT_POWER[config.class_weighting])
            class_weights = np.pad(class_weights, (0, num_classes - len(class_weights))).tolist()
        if rare_default:
            paste = rare_classes(pixel_counts, image_pixels)
    bad = [c for c in paste if c >= num_classes or c == ignore]
    if bad:
        raise ConfigError(f"config field 'class_paste_classes': {bad} are not classes of the "
                          f"dataset (0..{num_classes - 1}, ignore label {ignore})")
    return num_classes, ignore, class_weights, paste


def _announce_paste(probability: float, classes: list[int], info) -> None:
    """One line naming the classes the class paste copies (by name where the data has names)."""
    names = list(getattr(info, "class_names", None) or [])
    shown = [names[c] if c < len(names) else str(c) for c in classes]
    print(f"deconvnet-train: class_paste {probability:g}: crops receive the pixels of "
          f"{', '.join(shown) or 'no class'} from the previous crop of their batch", flush=True)


def _inputs(config: TrainConfig, strategy) -> _Inputs:
    """Opens the data and builds the training batches (a function of the start position)
    and the validation batches."""
    task_type, _ = _task(strategy)
    source = open_data_source(config)
    num_classes, ignore, class_weights, paste_classes = _class_setup(config, source)
    if config.class_paste > 0:
        _announce_paste(config.class_paste, paste_classes, source.info)
    color_target = color_statistics(source, config.train_split) if config.color_norm else None
    pipeline_args = dict(batch_size=config.batch_size, crop_size=tuple(config.crop_size),
                         ignore_label=ignore, seed=config.seed, deterministic=config.deterministic,
                         color_target=color_target)
    augmentation = dict(scale=tuple(config.scale_range), jitter=config.color_jitter,
                        gamma=config.gamma_jitter, grayscale=config.grayscale_prob,
                        class_uniform=config.class_uniform_crops,
                        class_paste=config.class_paste, class_paste_classes=paste_classes)
    records = windows = None
    window_stage = WINDOW_STAGES.get(config.input_mode)  # the paper's stage of window inputs
    if window_stage:
        records = source.records(config.train_split)
        object_args = dict(ignore_label=ignore, background=config.background_class,
                           box_scale=config.box_scale, min_pixels=config.min_object_pixels)
        if window_stage == "stage1":
            windows = crops.stage1_windows(records, **object_args)
        else:
            windows = crops.stage2_windows(records, boxes_fn=_proposal_fn(config),
                                           min_iou=config.stage2_min_iou,
                                           per_object=config.stage2_windows_per_object,
                                           seed=config.seed, **object_args)
        num_train = len(windows)
    else:
        num_train = source.num_examples(config.train_split)
    tf_data = bool(window_stage) or _use_tf_data()

    def train_data(position: int):
        """The training batches from batch ``position`` of the run on."""
        args = dict(pipeline_args)
        skip = position if position and (config.deterministic or not tf_data) else 0
        if position and not skip:
            # Skipping batches of tf.data computes them: a resumed non-deterministic run
            # takes a fresh stream instead of replaying the one it had.
            args["seed"] = config.seed + position
        if window_stage:
            del args["color_target"]  # config.validate: no color_norm with windows
            ds = crops.make_window_pipeline(records, windows, stage=window_stage,
                                            window_size=config.window_size,
                                            background=config.background_class, **args)
        elif not tf_data:
            ds = make_pydataset(None, config.train_split, source=source, mode=config.input_mode,
                                training=True, validate=False, **augmentation,
                                cache=_cache_fits(source, config.train_split), **args)
            return _SkipBatches(ds, skip) if skip else ds
        else:
            ds = pipeline.make_pipeline(source.dataset(config.train_split), mode=config.input_mode,
                                        training=True, **augmentation,
                                        cache=_cache_fits(source, config.train_split), **args)
        if skip:
            ds = ds.skip(skip)
        if task_type is not None:
            ds = ds.with_options(_autoshard_options())
        return ds

    val_ds = None
    if config.val_split:
        if config.tfds is None:
            source.validate(config.val_split)
        if _use_tf_data():
            val_ds = pipeline.make_pipeline(source.dataset(config.val_split), mode="whole",
                                            training=False,
                                            cache=_cache_fits(source, config.val_split),
                                            **pipeline_args)
        else:
            val_ds = make_pydataset(None, config.val_split, source=source, mode="whole",
                                    training=False, validate=False,
                                    cache=_cache_fits(source, config.val_split), **pipeline_args)
        if task_type is not None:
            val_ds = val_ds.with_options(_autoshard_options())
    steps = config.steps_per_epoch or max(1, math.ceil(num_train / config.batch_size))
    return _Inputs(source, source.info, num_classes, ignore, class_weights, train_data, val_ds,
                   steps, color_target)


def _model_for(config: TrainConfig, strategy, inputs: _Inputs, jit_compile: bool):
    """The compiled model, built in the strategy's scope (synchronised BatchNorm under it)."""
    unpooling = config.unpooling or ("switch" if jit_compile else None)
    overrides = {name: getattr(config, name)
                 for name in ("bn_momentum", "fc_dropout", "decoder_width")
                 if getattr(config, name) is not None}
    if unpooling is not None and get_architecture(config.preset).family == "deconvnet":
        overrides["unpooling"] = unpooling
    args = (config, inputs.num_classes, inputs.ignore, inputs.class_weights, jit_compile, overrides)
    with _scope(strategy):
        model = _build_and_compile(*args)
    if strategy is not None:
        if config.sync_batchnorm and keras.config.backend() == "tensorflow":
            set_batchnorm_sync(model, True)
        if _task(strategy)[0] is not None:
            multiworker_workarounds(model, strategy)
    return model


def _settings_line(config: TrainConfig, policy: str, why_precision: str, jit_compile: bool,
                   gflop: float | None, mixed: bool = False) -> str:
    """The log line that says which precision and compilation the run uses, and why."""
    if config.jit_compile is not None:
        why_jit = "set in the config"
    elif keras.config.backend() == "jax":
        why_jit = "JAX compiles every step"
    elif config.unpooling == "argmax":
        why_jit = "the argmax unpooling has no XLA kernel"
    elif gflop is None:
        why_jit = "GPU"
    elif (mixed and not jit_compile and gflop / CPU_GFLOPS_ESTIMATE > XLA_MIN_RUN_SECONDS
          and (kernels := cpu_bf16_kernels())):
        why_jit = (f"bfloat16 on a CPU with {kernels}: oneDNN's kernels use it, XLA:CPU's do "
                   "not")
    else:
        minutes = gflop / CPU_GFLOPS_ESTIMATE / 60
        why_jit = (f"~{minutes:.1f} min of compute at {CPU_GFLOPS_ESTIMATE:.0f} GFLOP/s is "
                   + ("long enough" if jit_compile else "too short") + " to pay for compiling")
    return (f"deconvnet-train: {policy} ({why_precision}); XLA {'on' if jit_compile else 'off'} "
            f"({why_jit}). Override with --set mixed_precision=true|false and "
            f"--set jit_compile=true|false.")


def _scope(strategy):
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def _start_point(model, output: Path, strategy, continue_from: int | None,
                 steps: int, ema: WeightEMA | None = None) -> tuple[int, int]:
    """``(epoch, step)`` where this call starts: a finished run continued (``--resume``), the
    last backup, or ``(0, 0)``; the weights and optimizer state are restored into ``model``
    (and the weight average into ``ema``)."""
    start_epoch, start_step = 0, 0
    with _scope(strategy):
        # Built here, not by Keras inside the first trace of the train step: variables made
        # during a tf.function's first trace make TensorFlow trace it a second time.
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        if continue_from is not None:
            model.load_weights(str(output / "model.keras"))  # weights and optimizer state
            if ema is not None:  # model.keras holds the average, last.keras the trained weights
                ema.start_from(model, continue_from * steps)
                _load_last_checkpoint(model, output)
            start_epoch = continue_from
        else:
            try:
                point = restore_backup(model, output / "backup", extras=[ema] if ema else [])
            except ValueError as err:
                raise RunFolderError(f"cannot resume the run in {str(output)!r}: {err}; use "
                                     "overwrite (--overwrite) to start again") from err
            if point is not None:
                start_epoch, start_step = point
    if start_step >= steps:  # the epoch's steps were all done before the interruption
        start_epoch, start_step = start_epoch + 1, 0
    return start_epoch, start_step


def _load_last_checkpoint(model, output: Path) -> None:
    last = output / "checkpoints" / "last.keras"
    if not last.is_file():
        raise RunFolderError(f"cannot resume the run in {str(output)!r}: its model.keras holds "
                             f"the weight average and {str(last)!r}, the trained weights, is "
                             "missing; use overwrite (--overwrite) to start again")
    model.load_weights(str(last))


def _run_callbacks(config: TrainConfig, output: Path, strategy, verbose, callbacks,
                   inputs: _Inputs, start: tuple[int, int], ema: WeightEMA | None = None):
    """``(callbacks, backup)``: the user's, then time estimate, schedule, NaN stop, CSV log,
    checkpoints, TensorBoard, the weight average (``ema``), and last the resumable backup."""
    start_epoch, start_step = start
    checkpoint = AtomicModelCheckpoint(
        output / "checkpoints", monitor="val_mean_iou" if inputs.val_ds is not None else "mean_iou",
        fallback=inputs.val_ds is None)
    if start_epoch > 0 or start_step > 0:
        checkpoint.restore_best()
    else:
        with contextlib.suppress(FileNotFoundError):
            (output / "checkpoints" / "best.json").unlink()
    backup = TrainingBackup(output / "backup", config.checkpoint_every, steps_per_epoch=inputs.steps,
                            extras=[ema] if ema else [])
    left = max((config.epochs - start_epoch) * inputs.steps - start_step, 0)
    callbacks = list(callbacks or []) + [
        TimeEstimate(left, threshold=TIME_ESTIMATE_THRESHOLD,
                     printer=print if verbose else (lambda line: None)),
        keras.callbacks.LearningRateScheduler(
            lr_schedule(config.lr_schedule, config.learning_rate, config.epochs,
                        every=config.lr_decay_epochs, factor=config.lr_decay_factor)),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(output / "log.csv"), append=True),
        checkpoint,
    ]
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401  (Keras' TensorBoard callback writes with tf.summary)

        callbacks.append(keras.callbacks.TensorBoard(str(output / "tensorboard"), write_graph=False))
        if inputs.val_ds is not None and _task(strategy)[1] == 0:  # the chief logs predictions
            callbacks.append(PredictionImages.from_source(
                output / "tensorboard" / "val_images", inputs.source, config.val_split))
    except ImportError:  # the TensorBoard callback needs the tensorboard package
        pass
    if ema is not None:  # before the backup, which saves the average of the same step
        callbacks.append(ema)
    # Last: an epoch counts as done (not redone after a crash) once its log row and
    # checkpoints are written.
    callbacks.append(backup)
    return callbacks, backup


def _segments(start_epoch: int, start_step: int, epochs: int) -> list[tuple[int, int, int]]:
    """``(first, last, steps done)`` fit calls: an epoch interrupted in the middle is finished
    first (its remaining steps), then the remaining epochs run, so the batches and weights
    are those of an uninterrupted run."""
    segments = []
    epoch = start_epoch
    if start_step and epoch < epochs:
        segments.append((epoch, epoch + 1, start_step))
        epoch += 1
    if epoch < epochs:
        segments.append((epoch, epochs, 0))
    return segments


def _fit(config: TrainConfig, output: Path, strategy, verbose, callbacks,
         continue_from: int | None) -> TrainResult:
    keras.utils.set_random_seed(config.seed)
    mixed, why_precision = resolve_mixed_precision(config)
    policy = _set_precision(mixed)
    inputs = _inputs(config, strategy)
    if inputs.color_target is not None:  # what the run's models are fed (run_color_target)
        write_text_atomic(output / RUN_COLOR_TARGET, json.dumps(inputs.color_target) + "\n")
    gflop = None
    if config.jit_compile is None and keras.config.backend() == "tensorflow":
        gflop = run_gflop(config, inputs.num_classes, inputs.steps)
    jit_compile = resolve_jit_compile(config, gflop, mixed=mixed)
    if verbose:
        print(_settings_line(config, policy, why_precision, jit_compile, gflop, mixed),
              flush=True)
        if (warning := precision_warning(mixed)) is not None:
            print(warning, flush=True)
    model = _model_for(config, strategy, inputs, jit_compile)
    ema = WeightEMA(config.ema_decay) if config.ema_decay else None
    start_epoch, start_step = _start_point(model, output, strategy, continue_from, inputs.steps,
                                           ema)
    truncate_log(output / "log.csv", start_epoch)  # epochs about to be redone
    callbacks, backup = _run_callbacks(config, output, strategy, verbose, callbacks, inputs,
                                       (start_epoch, start_step), ema)
    validation_freq = validation_epochs(config.epochs, config.validation_freq)
    fit_scope = contextlib.nullcontext()
    if strategy is not None and keras.config.backend() == "jax":
        check_global_batch(config.batch_size, strategy.num_replicas_in_sync)
        fit_scope = strategy.scope()  # keras.distribution shards batches inside its scope

    history: dict = {}
    steps = inputs.steps
    with fit_scope:
        for first, last, done in _segments(start_epoch, start_step, config.epochs):
            backup.step_offset = done
            fitted = model.fit(
                inputs.train_data(first * steps + done), initial_epoch=first, epochs=last,
                steps_per_epoch=steps - done, validation_data=inputs.val_ds,
                validation_steps=config.validation_steps, validation_freq=validation_freq,
                callbacks=callbacks, verbose=verbose,
                shuffle=False,  # the input pipeline shuffles
            )
            for key, values in fitted.history.items():
                history.setdefault(key, []).extend(values)
            if model.stop_training:  # TerminateOnNaN
                break
    epochs_done = backup.epochs_done if backup.epochs_done is not None else start_epoch
    if ema is not None and ema.updates:  # the trained weights stay in checkpoints/last.keras
        ema.apply(model)
    model_path = save_model_atomic(model, output / "model.keras")
    _mark_finished(output, epochs_done, config.epochs, inputs.info.class_names, inputs.ignore,
                   inputs.color_target)
    shutil.rmtree(output / "backup", ignore_errors=True)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    return TrainResult(output, model_path, history, inputs.info.class_names, inputs.ignore,
                       replicas, epochs_done=epochs_done, initial_epoch=start_epoch,
                       color_target=inputs.color_target)


def _autoshard_options():
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options
