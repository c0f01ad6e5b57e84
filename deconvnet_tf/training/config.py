"""Typed, validated training configuration, written next to the checkpoints."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
import warnings
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from deconvnet_tf.data.augment_spec import MAX_GAMMA_STRENGTH
from deconvnet_tf.training.atomic import write_text_atomic

__all__ = ["TrainConfig", "ConfigError"]

# What a training step sees: random crops, whole images, or the paper's windows around objects
# (stage 1: object-centred crops) and around proposals (stage 2: proposal windows).
INPUT_MODES = ("crop", "whole", "object_crops", "proposal_windows")
# The paper's training stage whose windows an input mode is (deconvnet_tf.data.crops names).
WINDOW_STAGES = {"object_crops": "stage1", "proposal_windows": "stage2"}
# The field ``stage`` of configs written before it was split into ``input_mode`` and
# ``two_stage``: each old value and the fields it means (read with a FutureWarning).
LEGACY_STAGES = {"crop": ("crop", False), "whole": ("whole", False),
                 "stage1": ("object_crops", False), "stage2": ("proposal_windows", False),
                 "two_stage": ("proposal_windows", True)}
STAGE2_PROPOSALS = ("jitter", "edgeboxes", "edgeboxes_gradient", "selective_search")
OPTIMIZERS = ("sgd", "adam")
# class_weighting -> the power of the median-frequency ratio (losses.median_frequency_weights)
CLASS_WEIGHT_POWER = {"median_frequency": 1.0, "sqrt_median_frequency": 0.5}
CLASS_WEIGHTING = ("none", *CLASS_WEIGHT_POWER)
STRATEGIES = ("default", "mirrored", "multiworker")


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field."""


@dataclass
class TrainConfig:
    """Everything a training run needs. Defaults follow the paper where it says something.

    Attributes:
        preset: Model preset (``deconvnet_tf.list_presets()``).
        output: Folder for checkpoints, logs, the resolved config and the final model.
        data: Root of a dataset in the folder layout (``<root>/<split>/images`` ...) or of
            PASCAL VOC (``VOCdevkit``/``VOC2012``), or ``None`` for the generated default
            (``synthetic``) unless ``tfds`` is set.
        tfds: TensorFlow Datasets name instead of ``data`` (``oxford_iiit_pet``,
            ``cityscapes/semantic_segmentation``, ``camvid_segmentation``,
            ``voc2012_segmentation``).
        tfds_data_dir: TFDS data directory (``None``: TFDS's default).
        tfds_manual_dir: TFDS manual directory (Cityscapes zips, CamVid or VOC folders).
        tfds_download: Let TFDS download missing data (off: nothing downloads at run time).
        sbd_root: SBD folder (``benchmark_RELEASE``) for VOC's ``train_aug`` split.
        train_split: Split used for training.
        val_split: Split used for validation (``""`` for none).
        input_mode: What the training steps see: ``"crop"`` (random scale/crop/flip/jitter
            crops, e.g. CamVid), ``"whole"`` (whole images centre-cropped/padded to
            ``crop_size``, no augmentation), ``"object_crops"`` (the paper's stage-1 inputs:
            object-centred instance crops) or ``"proposal_windows"`` (its stage-2 inputs:
            windows of proposals / jittered boxes overlapping objects).
        two_stage: The paper's two-stage training: stage 1 on ``object_crops`` for
            ``stage1_epochs``, then stage 2 on ``proposal_windows`` for ``epochs``
            initialised from stage 1, each in a subfolder ``stage1/``, ``stage2/`` of
            ``output``; needs ``input_mode="proposal_windows"`` (the final model's inputs).
        stage1_epochs: Epochs of stage 1 when ``two_stage`` (``None``: ``epochs``).
        window_size: Stage 1/2: object windows are warped to this size (paper: 250), then
            randomly cropped to ``crop_size`` (224).
        box_scale: Stage 1/2: enlargement of object / proposal boxes about their centre.
        min_object_pixels: Stage 1/2: smaller objects are skipped.
        background_class: Stage 1/2: the background class (stage 1 relabels other objects to it).
        stage2_proposals: ``"jitter"`` (jittered ground-truth boxes, fast), or object
            proposals of ``deconvnet_tf.inference.proposals.propose_boxes`` (top 50 per image,
            cached in ``<output>/proposals/``): ``"edgeboxes"`` (EdgeBoxes on HED edges, the
            paper's; ~0.3 s+ per image on a CPU), ``"edgeboxes_gradient"`` (EdgeBoxes on
            gradient edges) or ``"selective_search"``.
        stage2_min_iou: Stage 2 keeps windows with IoU >= this with a ground-truth object.
        stage2_windows_per_object: Jittered candidates per object (``"jitter"``).
        init_from: A ``.keras`` model whose weights initialise the model (same architecture).
        epochs: Epochs.
        batch_size: Global batch size.
        crop_size: ``[height, width]`` of training crops.
        scale_range: ``[min, max]`` of the random rescale before each ``"crop"`` training crop
            (image bilinear, label nearest; ``[1, 1]`` turns it off).
        color_jitter: Strength of the random brightness/contrast/saturation jitter of
            ``"crop"`` training (brightness delta and contrast/saturation factor ranges
            ``1 +- color_jitter``; 0 turns it off).
        gamma_jitter: Strength ``t`` of a random tone curve of ``"crop"`` training: each crop
            becomes ``x ** g`` on the 0..1 scale, ``log g`` uniform in ``[-log(1 + t),
            log(1 + t))`` (``t = 0.5``: ``g`` in ``[0.67, 1.5]``), after the colour jitter; 0
            (the default) turns it off. A non-linear change of exposure that the affine jitter
            and the test-time colour normalisation do not cover.
        grayscale_prob: Probability that a ``"crop"`` training crop becomes greyscale: its
            luma ``0.2989 R + 0.5870 G + 0.1140 B`` (the weights of
            ``tf.image.rgb_to_grayscale``) in all three channels, after the colour jitter and
            the tone curve; a number in ``[0, 1]``, 0 (the default) turns it off. For test
            sets with grey images (Weizmann Horse) that a colour-trained model has not seen.
        class_uniform_crops: Probability that a ``"crop"`` training crop is placed around a
            pixel drawn class-uniformly (a class present in the rescaled label picked with
            equal chance, then one of its pixels; the crop window uniform among those holding
            it) instead of uniformly over the image; 0 (the default) turns it off. Shows thin
            and rare classes (poles, signs, cyclists) in more crops than their share of pixels.
        class_paste: Probability that a ``"crop"`` training crop receives the pixels of the
            ``class_paste_classes`` of the previous crop of its batch (image and label, after
            the augmentation: a copy-paste of thin and rare objects onto another scene); 0
            (the default) turns it off.
        class_paste_classes: The class ids ``class_paste`` pastes; ``null`` (the default):
            the classes rarer than the median class, by the pixel frequency of median-frequency
            weighting over the training split (on CamVid: Pole, SignSymbol, Fence, Pedestrian,
            Bicyclist).
        color_norm: Train-time colour normalisation: every training and validation image is
            brought, per channel, to the mean and standard deviation of the training split
            (:func:`deconvnet_tf.io.normalize_colors`, once, before augmentation), so that a
            dark or colour-cast frame looks like the others. The statistics are written to
            the run folder's ``color_target.json`` (and ``finished.json``); every tool that
            opens the run's models normalises to them
            (:func:`deconvnet_tf.inference.segmenter.run_color_target`). Not with the window
            input modes.
        optimizer: ``"sgd"`` (paper) or ``"adam"``.
        learning_rate: Initial learning rate (paper: 0.01).
        momentum: SGD momentum (paper: 0.9).
        weight_decay: Decoupled weight decay of the optimizer (paper: 5e-4).
        lr_decay_epochs: Multiply the learning rate by ``lr_decay_factor`` every this many
            epochs (0: constant).
        lr_decay_factor: Step-decay factor.
        lr_schedule: ``"step"`` (``lr_decay_epochs``/``lr_decay_factor``, the paper's),
            ``"poly"`` (power 0.9 to zero at the last epoch) or ``"cosine"``; set per epoch.
        validation_freq: Validate every this many epochs (and after the last); ``best.keras``
            is chosen among validated epochs.
        class_weighting: ``"none"``, ``"median_frequency"`` (SegNet's) or
            ``"sqrt_median_frequency"`` (its square root: milder), computed from the train split.
        lovasz_weight: Add this times the Lovasz-softmax loss (a surrogate of 1 - mean IoU,
            Berman et al. 2018; :func:`deconvnet_tf.training.losses.lovasz_softmax`) to the
            cross-entropy (``0``: cross-entropy only).
        focal_gamma: Multiply each pixel's cross-entropy by ``(1 - p)**focal_gamma``, ``p``
            the predicted probability of its class (the focal loss, Lin et al. 2017; class
            weights still apply). ``0`` (default): plain cross-entropy.
        label_smoothing: Spread this share of each pixel's target uniformly over the classes
            (Szegedy et al. 2016); ``0`` (default): one-hot targets. In ``[0, 1)``.
        ema_decay: Keep an exponential moving average of the weights, updated after every
            step with this decay (:class:`deconvnet_tf.training.averaging.WeightEMA`, with
            warm-up), and save it as ``model.keras``; the trained weights stay in
            ``checkpoints/last.keras``, which validation during training and ``best.keras``
            use. ``0`` (default): no average.
        num_classes: Override the dataset's class count (``None``: from the dataset).
        encoder_weights: ``None``, ``"imagenet"``, ``"hed"``, a path (VGG16), or
            ``"efficientnet_lite0"`` (preset ``deconvnet_efficientnet_lite0``).
        frozen_blocks: Freeze this many leading encoder blocks.
        bn_momentum: BatchNorm momentum (``None``: the preset's).
        fc_dropout: Dropout rate after fc6 and fc7 (``None``: the preset's, 0 for every
            shipped one; :class:`deconvnet_tf.models.presets.Architecture`). In ``[0, 1)``.
        decoder_width: Multiplier of the decoder's widths (``None``: the preset's; an
            :class:`~deconvnet_tf.models.presets.Architecture` field). ``> 0``.
        unpooling: ``"argmax"``/``"switch"``/``None`` (default of the backend; ``jit_compile``
            forces ``"switch"``).
        mixed_precision: ``True``: bfloat16 on CPUs and on GPUs with native bfloat16 (compute
            capability >= 8.0), float16 with loss scaling on older GPUs; ``False``: float32;
            ``None`` (default): the machine's fastest, mixed on GPUs and on CPUs with AMX,
            float32 on other CPUs (the run's first log line says which and why).
        jit_compile: XLA-compile the train step; ``None`` (default): on for the JAX backend
            and on GPUs; on TensorFlow's CPU path on when the run is long enough to pay for
            compiling (its training FLOPs take over ``XLA_MIN_RUN_SECONDS`` = 2 min at 100
            GFLOP/s), else off (the argmax pair is then the default unpooling).
        strategy: ``"default"``, ``"mirrored"`` or ``"multiworker"`` (tf.distribute).
        sync_batchnorm: Under a ``mirrored``/``multiworker`` strategy, compute BatchNorm batch
            statistics over all replicas (identical moving statistics everywhere; saved
            models keep the portable per-device setting).
        steps_per_epoch: Limit the steps of an epoch (``None``: the whole split).
        validation_steps: Limit the validation steps.
        checkpoint_every: Save a resumable backup every this many steps (besides each epoch).
        seed: Seed of Keras, shuffling and augmentation.
        deterministic: Deterministic input pipeline order.
        synthetic_train: Number of generated training images when ``data`` is ``None``.
        synthetic_val: Number of generated validation images.
        synthetic_size: ``[height, width]`` of generated images.
    """

    preset: str = "deconvnet_small"
    output: str = "runs/default"
    data: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    tfds: str | None = None
    tfds_data_dir: str | None = None
    tfds_manual_dir: str | None = None
    tfds_download: bool = False
    sbd_root: str | None = None
    input_mode: str = "crop"
    two_stage: bool = False
    stage1_epochs: int | None = None
    window_size: int = 250
    box_scale: float = 1.2
    min_object_pixels: int = 16
    background_class: int = 0
    stage2_proposals: str = "jitter"
    stage2_min_iou: float = 0.5
    stage2_windows_per_object: int = 4
    init_from: str | None = None
    epochs: int = 10
    batch_size: int = 8
    crop_size: list[int] = field(default_factory=lambda: [224, 224])
    scale_range: list[float] = field(default_factory=lambda: [0.75, 1.25])
    color_jitter: float = 0.2
    gamma_jitter: float = 0.0
    grayscale_prob: float = 0.0
    class_uniform_crops: float = 0.0
    class_paste: float = 0.0
    class_paste_classes: list[int] | None = None
    color_norm: bool = False
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_epochs: int = 0
    lr_decay_factor: float = 0.1
    lr_schedule: str = "step"
    validation_freq: int = 1
    class_weighting: str = "none"
    lovasz_weight: float = 0.0
    focal_gamma: float = 0.0
    label_smoothing: float = 0.0
    ema_decay: float = 0.0
    num_classes: int | None = None
    encoder_weights: str | None = None
    frozen_blocks: int = 0
    bn_momentum: float | None = None
    fc_dropout: float | None = None
    decoder_width: float | None = None
    unpooling: str | None = None
    mixed_precision: bool | None = None
    jit_compile: bool | None = None
    strategy: str = "default"
    sync_batchnorm: bool = True
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    checkpoint_every: int = 50
    seed: int = 0
    deterministic: bool = False
    synthetic_train: int = 64
    synthetic_val: int = 16
    synthetic_size: list[int] = field(default_factory=lambda: [96, 128])
    # Deprecated: the old single field for input_mode and two_stage (``LEGACY_STAGES``).
    stage: InitVar[str | None] = None

    def __post_init__(self, stage: str | None = None):
        if stage is not None:
            _apply_legacy_stage(self, stage, "TrainConfig(stage=...)")
        self.validate()

    # ------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raises :class:`ConfigError` naming the first invalid field."""
        # Keras: deconvnet_tf.models imports Keras; this module stays framework-free on import
        from deconvnet_tf.models.presets import list_presets

        def fail(name, message):
            raise ConfigError(f"config field '{name}': {message}")

        _check_types(self, fail)
        if not self.output.strip():
            fail("output", "must name a folder, got an empty string")
        if self.preset not in list_presets():
            fail("preset", f"unknown {self.preset!r}; available: {', '.join(list_presets())}")
        for name, choices in (("input_mode", INPUT_MODES), ("optimizer", OPTIMIZERS),
                              ("class_weighting", CLASS_WEIGHTING), ("strategy", STRATEGIES),
                              ("stage2_proposals", STAGE2_PROPOSALS)):
            if getattr(self, name) not in choices:
                fail(name, f"must be one of {choices}, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "checkpoint_every", "synthetic_train", "synthetic_val",
                     "stage2_windows_per_object", "min_object_pixels"):
            if int(getattr(self, name)) < 1:
                fail(name, f"must be >= 1, got {getattr(self, name)!r}")
        for name in ("steps_per_epoch", "validation_steps", "num_classes", "stage1_epochs"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                fail(name, f"must be >= 1 or null, got {value!r}")
        for name in ("crop_size", "synthetic_size"):
            value = getattr(self, name)
            if len(value) != 2 or min(int(v) for v in value) < 16:
                fail(name, f"must be [height, width] with both >= 16, got {value!r}")
        _check_augmentation(self, fail)
        if self.data is not None and self.tfds is not None:
            fail("tfds", "give either data (a folder) or tfds (a TFDS name), not both")
        if self.two_stage and self.input_mode != "proposal_windows":
            fail("two_stage", "stage 2 trains on proposal windows: set input_mode="
                 f"proposal_windows (got {self.input_mode!r}; stage 1 uses object_crops)")
        if self.input_mode in ("object_crops", "proposal_windows"):
            if self.tfds is not None:
                fail("input_mode", f"{self.input_mode} need a file-based dataset (data), not tfds")
            if self.color_norm:
                fail("color_norm", f"applies to input_mode crop or whole, not {self.input_mode}")
            for name in ("gamma_jitter", "grayscale_prob", "class_uniform_crops", "class_paste"):
                if getattr(self, name):
                    fail(name, f"applies to input_mode crop, not {self.input_mode}")
            if max(int(v) for v in self.crop_size) > self.window_size:
                fail("crop_size", f"{self.crop_size} is larger than window_size {self.window_size}")
        if not self.box_scale > 0:
            fail("box_scale", f"must be > 0, got {self.box_scale!r}")
        if not 0 < self.stage2_min_iou <= 1:
            fail("stage2_min_iou", f"must be in (0, 1], got {self.stage2_min_iou!r}")
        if self.window_size < 16:
            fail("window_size", f"must be >= 16, got {self.window_size!r}")
        if not self.learning_rate > 0:
            fail("learning_rate", f"must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.momentum < 1:
            fail("momentum", f"must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            fail("weight_decay", f"must be >= 0, got {self.weight_decay!r}")
        self._validate_loss(fail)
        if not (_is_real(self.ema_decay) and 0 <= self.ema_decay < 1):
            fail("ema_decay", f"must be a number with 0 <= ema_decay < 1, got {self.ema_decay!r}")
        if self.frozen_blocks < 0:
            fail("frozen_blocks", f"must be >= 0, got {self.frozen_blocks!r}")
        if self.bn_momentum is not None and not 0 <= self.bn_momentum < 1:
            fail("bn_momentum", f"must be in [0, 1) or null, got {self.bn_momentum!r}")
        _check_architecture_overrides(self, fail)
        if self.lr_decay_epochs < 0 or not 0 < self.lr_decay_factor <= 1:
            fail("lr_decay_epochs", "needs lr_decay_epochs >= 0 and 0 < lr_decay_factor <= 1")
        if self.lr_schedule not in ("step", "poly", "cosine"):
            fail("lr_schedule", f"must be step, poly or cosine, got {self.lr_schedule!r}")
        if not (isinstance(self.validation_freq, int) and self.validation_freq >= 1):
            fail("validation_freq", f"must be an integer >= 1, got {self.validation_freq!r}")
        if self.unpooling not in (None, "argmax", "switch"):
            fail("unpooling", f"must be argmax, switch or null, got {self.unpooling!r}")
        if self.jit_compile and self.unpooling == "argmax":
            fail("unpooling", "argmax pooling has no XLA kernel: use switch with jit_compile")

    def _validate_loss(self, fail) -> None:
        """The loss settings: ``lovasz_weight``, ``focal_gamma``, ``label_smoothing``."""
        for name in ("lovasz_weight", "focal_gamma"):
            value = getattr(self, name)
            if not (_is_real(value) and value >= 0):
                fail(name, f"must be a finite number >= 0, got {value!r}")
        if not (_is_real(self.label_smoothing) and 0 <= self.label_smoothing < 1):
            fail("label_smoothing", f"must be a number in [0, 1), got {self.label_smoothing!r}")

    # ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of every field."""
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the config as JSON, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Builds a config from a dict; unknown keys are an error naming ``source``.

        A config of an older version with the field ``stage`` is read as its ``input_mode``
        and ``two_stage`` (``LEGACY_STAGES``), with a ``FutureWarning``.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"stage"})
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {unknown}; valid: {sorted(names)}")
        data = dict(data)
        stage = data.pop("stage", None)
        config = cls(**data)
        if stage is not None:
            _apply_legacy_stage(config, stage, source)
            config.validate()
        return config

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Reads a JSON config file."""
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"config file {str(path)!r} is a folder; expected a JSON file")
        if not path.is_file():
            raise ConfigError(f"config file not found: {str(path)!r}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{str(path)!r} is not valid JSON: {err}") from err
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read config file {str(path)!r}: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{str(path)!r} must hold a JSON object of config fields")
        return cls.from_dict(data, source=str(path))

    def with_overrides(self, assignments: list[str]) -> TrainConfig:
        """Returns a copy with ``key=value`` assignments applied (values parsed by field type).

        Values are parsed as JSON when they look like it (``[224,224]``, ``true``, ``null``,
        numbers), else taken as strings, then converted to the field's type.
        """
        data = self.to_dict()
        types = _field_types(type(self))
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"--set expects key=value, got {item!r}")
            key, raw = item.split("=", 1)
            key = key.strip()
            if key == "stage":
                mode, two = _legacy_stage(raw.strip(), "--set stage")
                _warn_stage(raw.strip(), mode, two, "--set stage")
                data["input_mode"], data["two_stage"] = mode, two
                continue
            if key not in types:
                raise ConfigError(f"--set: unknown field {key!r}; valid: {sorted(types)}")
            data[key] = _parse_value(key, raw, types[key])
        return type(self).from_dict(data, source="--set")


def _field_types(cls) -> dict[str, Any]:
    """The type of each dataclass field (not the ``InitVar`` ``stage``)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _legacy_stage(value: Any, source: str) -> tuple[str, bool]:
    """``(input_mode, two_stage)`` of an old ``stage`` value."""
    if not isinstance(value, str) or value not in LEGACY_STAGES:
        raise ConfigError(f"{source}: config field 'stage' (renamed input_mode and two_stage) "
                          f"must be one of {tuple(LEGACY_STAGES)}, got {value!r}")
    return LEGACY_STAGES[value]


def _warn_stage(value: str, mode: str, two: bool, source: str) -> None:
    new = f"input_mode={mode}" + (" and two_stage=true" if two else "")
    warnings.warn(f"{source}: the config field 'stage' is deprecated (split into input_mode and "
                  f"two_stage); reading stage={value} as {new}", FutureWarning, stacklevel=4)


def _apply_legacy_stage(config: TrainConfig, value: Any, source: str) -> None:
    """Sets ``input_mode``/``two_stage`` from an old ``stage`` value, with a warning; a
    conflicting explicit ``input_mode``/``two_stage`` is an error."""
    mode, two = _legacy_stage(value, source)
    if (config.input_mode, config.two_stage) not in (("crop", False), (mode, two)):
        raise ConfigError(f"{source}: stage={value!r} (deprecated) conflicts with "
                          f"input_mode={config.input_mode!r}, two_stage={config.two_stage!r}")
    _warn_stage(value, mode, two, source)
    config.input_mode, config.two_stage = mode, two


def _check_augmentation(config, fail) -> None:
    """The strengths of the training augmentation (``scale_range``, ``color_jitter``,
    ``gamma_jitter``, ``grayscale_prob``, ``class_uniform_crops``, ``class_paste``,
    ``class_paste_classes``); ``fail(name, message)`` raises."""
    if len(config.scale_range) != 2 or not 0 < config.scale_range[0] <= config.scale_range[1]:
        fail("scale_range", f"must be [min, max] with 0 < min <= max, got {config.scale_range!r}")
    if not 0 <= config.color_jitter < 1:
        fail("color_jitter", f"must be in [0, 1), got {config.color_jitter!r}")
    gamma = config.gamma_jitter
    if not (isinstance(gamma, (int, float)) and not isinstance(gamma, bool)
            and 0 <= gamma <= MAX_GAMMA_STRENGTH):
        fail("gamma_jitter", f"must be a number in [0, {MAX_GAMMA_STRENGTH:g}], got {gamma!r}")
    for name in ("grayscale_prob", "class_uniform_crops", "class_paste"):
        share = getattr(config, name)
        if not (isinstance(share, (int, float)) and not isinstance(share, bool)
                and 0 <= share <= 1):
            fail(name, f"must be a probability in [0, 1], got {share!r}")
    classes = config.class_paste_classes
    if classes is not None and not (
            isinstance(classes, list) and classes and all(
                isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255
                for c in classes)):
        fail("class_paste_classes", f"must be null (the classes rarer than the median) or a "
             f"non-empty list of class ids in [0, 255], got {classes!r}")


def _check_architecture_overrides(config: TrainConfig, fail) -> None:
    """The architecture fields a run may override (``null``: the preset's)."""
    dropout = config.fc_dropout
    if dropout is not None and not (_is_real(dropout) and 0 <= dropout < 1):
        fail("fc_dropout", f"must be a number in [0, 1) or null, got {config.fc_dropout!r}")
    width = config.decoder_width
    if width is not None and not (_is_real(width) and 0 < width < float("inf")):
        fail("decoder_width", f"must be a number > 0 or null, got {width!r}")


def _is_real(value) -> bool:
    """A finite int or float that is not a bool."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_types(config: TrainConfig, fail) -> None:
    """Fails on a field whose value has the wrong type (e.g. from a JSON config file) or a
    float that is not finite; converts integral numbers (NumPy's too) to ``int``, numbers
    of float fields to ``float`` and tuples of list fields to lists."""
    import math
    import numbers

    def integral(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    for name, annotation in _field_types(type(config)).items():
        value = getattr(config, name)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            if value is None:
                continue
            annotation = [a for a in typing.get_args(annotation) if a is not type(None)][0]
        origin = typing.get_origin(annotation) or annotation
        if origin is bool:
            if not isinstance(value, bool):
                fail(name, f"expected true or false, got {value!r}")
        elif origin is int:
            if not integral(value):
                fail(name, f"expected an integer, got {value!r}")
            setattr(config, name, int(value))
        elif origin is float:
            if not (isinstance(value, numbers.Real) and not isinstance(value, bool)):
                fail(name, f"expected a number, got {value!r}")
            if not math.isfinite(value):
                fail(name, f"must be a finite number, got {value!r}")
            setattr(config, name, float(value))
        elif origin is str:
            if not isinstance(value, str):
                fail(name, f"expected a string, got {value!r}")
        elif origin is list and typing.get_args(annotation) == (float,):
            if not (isinstance(value, (list, tuple)) and all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                    for v in value)):
                fail(name, f"expected a list of finite numbers such as [0.5, 2.0], got {value!r}")
            setattr(config, name, [float(v) for v in value])
        elif origin is list:
            if not (isinstance(value, (list, tuple)) and all(integral(v) for v in value)):
                fail(name, f"expected a list of integers such as [224, 224], got {value!r}")
            setattr(config, name, [int(v) for v in value])


def _parse_value(key: str, raw: str, annotation) -> Any:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        allowed = typing.get_args(annotation)
    else:
        allowed = (annotation,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(f"--set {key}: null is not allowed")
    for target in allowed:
        origin = typing.get_origin(target) or target
        if origin is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false", "1", "0", "yes", "no"):
                return str(value).lower() in ("true", "1", "yes")
        elif origin is int and isinstance(value, (int, float)) and not isinstance(value, bool):
            if float(value).is_integer():
                return int(value)
        elif origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        elif origin is list and isinstance(value, list):
            return value
        elif origin is str:
            return raw if isinstance(value, (list, dict)) else str(value)
    raise ConfigError(f"--set {key}: cannot use {raw!r} for a field of type {annotation}")
