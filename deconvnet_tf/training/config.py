"""Typed, validated training configuration, written next to the checkpoints."""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainConfig", "ConfigError"]

STAGES = ("whole", "crop")
OPTIMIZERS = ("sgd", "adam")
CLASS_WEIGHTING = ("none", "median_frequency")
STRATEGIES = ("default", "mirrored", "multiworker")


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field."""


@dataclass
class TrainConfig:
    """Everything a training run needs. Defaults follow the paper where it says something.

    Attributes:
        preset: Model preset (``deconvnet_tf.list_presets()``).
        output: Folder for checkpoints, logs, the resolved config and the final model.
        data: Root of a dataset in the folder layout (``<root>/<split>/images`` ...), or
            ``None`` for the generated default (``synthetic``).
        train_split: Split used for training.
        val_split: Split used for validation (``""`` for none).
        stage: ``"crop"`` (random scale/crop/flip/jitter crops, e.g. CamVid) or ``"whole"``
            (whole images centre-cropped/padded to ``crop_size``, no augmentation).
        epochs: Epochs.
        batch_size: Global batch size.
        crop_size: ``[height, width]`` of training crops.
        optimizer: ``"sgd"`` (paper) or ``"adam"``.
        learning_rate: Initial learning rate (paper: 0.01).
        momentum: SGD momentum (paper: 0.9).
        weight_decay: Decoupled weight decay of the optimizer (paper: 5e-4).
        lr_decay_epochs: Multiply the learning rate by ``lr_decay_factor`` every this many
            epochs (0: constant).
        lr_decay_factor: Step-decay factor.
        class_weighting: ``"none"`` or ``"median_frequency"`` (computed from the train split).
        num_classes: Override the dataset's class count (``None``: from the dataset).
        encoder_weights: ``None``, ``"imagenet"``, ``"hed"`` or a path.
        frozen_blocks: Freeze this many leading encoder blocks.
        bn_momentum: BatchNorm momentum (``None``: the preset's).
        unpooling: ``"argmax"``/``"switch"``/``None`` (default of the backend; ``jit_compile``
            forces ``"switch"``).
        mixed_precision: bfloat16 on CPU, float16 with loss scaling on GPU.
        jit_compile: XLA-compile the train step.
        strategy: ``"default"``, ``"mirrored"`` or ``"multiworker"`` (tf.distribute).
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
    stage: str = "crop"
    epochs: int = 10
    batch_size: int = 8
    crop_size: list[int] = field(default_factory=lambda: [224, 224])
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_epochs: int = 0
    lr_decay_factor: float = 0.1
    class_weighting: str = "none"
    num_classes: int | None = None
    encoder_weights: str | None = None
    frozen_blocks: int = 0
    bn_momentum: float | None = None
    unpooling: str | None = None
    mixed_precision: bool = False
    jit_compile: bool = False
    strategy: str = "default"
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    checkpoint_every: int = 50
    seed: int = 0
    deterministic: bool = False
    synthetic_train: int = 64
    synthetic_val: int = 16
    synthetic_size: list[int] = field(default_factory=lambda: [96, 128])

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raises :class:`ConfigError` naming the first invalid field."""
        from deconvnet_tf.models.presets import list_presets

        def fail(name, message):
            raise ConfigError(f"config field '{name}': {message}")

        if self.preset not in list_presets():
            fail("preset", f"unknown {self.preset!r}; available: {', '.join(list_presets())}")
        for name, choices in (("stage", STAGES), ("optimizer", OPTIMIZERS),
                              ("class_weighting", CLASS_WEIGHTING), ("strategy", STRATEGIES)):
            if getattr(self, name) not in choices:
                fail(name, f"must be one of {choices}, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "checkpoint_every", "synthetic_train", "synthetic_val"):
            if int(getattr(self, name)) < 1:
                fail(name, f"must be >= 1, got {getattr(self, name)!r}")
        for name in ("steps_per_epoch", "validation_steps", "num_classes"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                fail(name, f"must be >= 1 or null, got {value!r}")
        for name in ("crop_size", "synthetic_size"):
            value = getattr(self, name)
            if len(value) != 2 or min(int(v) for v in value) < 16:
                fail(name, f"must be [height, width] with both >= 16, got {value!r}")
        if not self.learning_rate > 0:
            fail("learning_rate", f"must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.momentum < 1:
            fail("momentum", f"must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            fail("weight_decay", f"must be >= 0, got {self.weight_decay!r}")
        if self.lr_decay_epochs < 0 or not 0 < self.lr_decay_factor <= 1:
            fail("lr_decay_epochs", "needs lr_decay_epochs >= 0 and 0 < lr_decay_factor <= 1")
        if self.unpooling not in (None, "argmax", "switch"):
            fail("unpooling", f"must be argmax, switch or null, got {self.unpooling!r}")
        if self.jit_compile and self.unpooling == "argmax":
            fail("unpooling", "argmax pooling has no XLA kernel: use switch with jit_compile")

    # ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of every field."""
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the config as JSON, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Builds a config from a dict; unknown keys are an error naming ``source``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {unknown}; valid: {sorted(names)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Reads a JSON config file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {str(path)!r}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{str(path)!r} is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{str(path)!r} must hold a JSON object of config fields")
        return cls.from_dict(data, source=str(path))

    def with_overrides(self, assignments: list[str]) -> TrainConfig:
        """Returns a copy with ``key=value`` assignments applied (values parsed by field type).

        Values are parsed as JSON when they look like it (``[224,224]``, ``true``, ``null``,
        numbers), else taken as strings, then converted to the field's type.
        """
        data = self.to_dict()
        types = typing.get_type_hints(type(self))
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"--set expects key=value, got {item!r}")
            key, raw = item.split("=", 1)
            key = key.strip()
            if key not in types:
                raise ConfigError(f"--set: unknown field {key!r}; valid: {sorted(types)}")
            data[key] = _parse_value(key, raw, types[key])
        return type(self).from_dict(data, source="--set")


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
