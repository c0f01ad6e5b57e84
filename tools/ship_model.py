"""Ship a trained run into ``saved_models/``: ``.keras``, LiteRT fp32 + int8, metadata, model card.

For a run folder written by ``deconvnet-train`` (``config.json``, ``model.keras``) and the
dataset it was trained on, this writes

* ``<out>/<name>.keras``: a ``deconvnet_tf.Segmenter`` without optimizer state: the network with
  its working resolution (``--input-size``), class names and void label (the dataset's
  ``meta.json``) and palette (the registry entry of ``<name>`` when there is one, else the
  default), so ``Segmenter.from_preset`` and ``deconvnet-predict --model`` use them;
* ``<out>/<name>.tflite`` and ``<name>_int8.tflite`` (+ ``.json`` sidecars with class names and
  palette): builtins-only LiteRT models, int8 calibrated on the training split (``--litert
  int8`` leaves the fp32 file out, e.g. for the size budget; the card names the command that
  writes it);
* ``<out>/<name>.md``: the model card (data and its terms, preset, training command, training
  wall time, the dev-split score of ``--dev-run`` (the recipe chosen on data that is not
  reported), metrics of the Keras model and of both LiteRT files on the validation split (or
  ``--split``: selectors and unions; images the model trained on are named as such), sizes).

Test-time settings go into every file: ``--test-time-flip``, ``--default-crf`` and
``--color-target SPLIT`` (colour normalisation to that split's statistics). Existing files are
never replaced unless ``--overwrite`` is given, and a left-out variant's file from an earlier
ship is refused, not left next to the new model; every file is written atomically.
``--update-settings`` changes the Segmenter settings of a shipped model without retraining it
(``--test-time-flip``, ``--default-crf``, ``--scales``, ...; see :func:`update_settings`); the
card's settings paragraph then states the current settings (``--refresh-card`` rewrites it from
the shipped ``.keras`` file alone).

    python tools/ship_model.py --run runs/camvid --data /path/to/camvid_180x240 --name camvid_compact \
        --input-size 180x240 --terms "CamVid ... CC BY-NC 4.0" --command "deconvnet-train ..."
    python tools/ship_model.py --update-settings --name camvid_compact --data /path/to/camvid_180x240 \
        --test-time-flip --reason "dev split: +1.8 mIoU ..."
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

#: ``ship(color_target=...)`` not given: the run's own statistics or the registry entry's.
_UNSET = object()


def _confusion(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore) -> np.ndarray:
    keep = label != ignore if ignore is not None else np.ones(label.shape, bool)
    keep &= label < num_classes
    index = label[keep].astype(np.int64) * num_classes + np.clip(pred[keep], 0, num_classes - 1)
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


#: The LiteRT variants a ship can write (``--litert``; ``"none"``: fp32).
LITERT = ("none", "int8")
# the key suffix of the agreement with the Keras model run at the working size alone
AT_WORKING_SIZE = "(Keras at the working size)"


def litert_path(out: Path, name: str, quantize: str) -> Path:
    """The shipped ``.tflite`` file of one variant (the export's own naming)."""
    from deconvnet_tf.export import tflite_name  # cheap: TensorFlow loads on use

    return out / tflite_name(name, quantize)


def shipped_files(out: Path, name: str, litert=LITERT) -> list[Path]:
    """Every file :func:`ship` writes for ``name`` into ``out`` with the LiteRT variants
    ``litert``."""
    tflite = [litert_path(out, name, q).with_suffix(ending) for q in litert
              for ending in (".tflite", ".json")]
    return [out / f"{name}.keras", *tflite, out / f"{name}.md"]


def shipped_litert(out: Path, name: str) -> list[str]:
    """The LiteRT variants of ``name`` shipped in ``out`` (their ``.tflite`` files exist)."""
    return [q for q in LITERT if litert_path(out, name, q).is_file()]


def dev_split_score(dev_run: Path) -> dict:
    """The dev-protocol run's last validated score: ``{train_split, val_split, epochs,
    mean_iou}`` from its ``config.json`` and ``log.csv``."""
    import csv

    config = json.loads((dev_run / "config.json").read_text())
    with open(dev_run / "log.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_mean_iou") not in (None, "", "NA")]
    if not rows:
        raise ValueError(f"--dev-run {str(dev_run)!r}: log.csv has no validated epoch")
    return {"train_split": config["train_split"], "val_split": config["val_split"],
            "epochs": int(rows[-1]["epoch"]) + 1, "mean_iou": float(rows[-1]["val_mean_iou"])}


def trained_on(data: Path, train_split: str, split: str) -> int:
    """How many images of ``split`` are also in ``train_split`` (selectors and ``+`` unions
    allowed): a card must not present numbers on training images as held-out ones."""
    from deconvnet_tf.data.sources import open_source

    source = open_source(data)
    seen = {Path(r.image).resolve() for r in source.records(train_split)}
    return sum(Path(r.image).resolve() in seen for r in source.records(split))


def training_minutes(run: Path) -> float:
    """Wall time of the run: from its ``config.json`` (written at the start) to its
    ``model.keras`` (written at the end), in minutes."""
    return ((run / "model.keras").stat().st_mtime - (run / "config.json").stat().st_mtime) / 60


def measure(model, tflite: dict, data: Path, split: str, *,
            flip: bool | None = None, color_target="model") -> tuple[dict, dict]:
    """``(reports, agreement)``: the Keras model's report on ``split`` and those of its LiteRT
    files (``tflite``: ``{"none": path, "int8": path}`` or one of them, run with their
    sidecar's settings, or with ``flip`` / ``color_target`` when given), with the share of
    their labels equal to the Keras model's. A model with test-time scales other than the
    working size alone (which the LiteRT files do not run) also gets the share equal to the
    Keras model at the working size, under ``f"{label} {AT_WORKING_SIZE}"``: the conversion's
    own effect, without the scales'."""
    from deconvnet_tf.data.sources import load_record, open_source
    from deconvnet_tf.evaluation.evaluate import evaluate, predict_native
    from deconvnet_tf.evaluation.metrics import report_from_confusion
    from deconvnet_tf.lite import LiteSegmenter

    source = open_source(data)
    info = source.info
    reports = {"Keras (.keras)": evaluate(model, source=source, split=split, progress=False)}
    agreement = {}
    scaled = tuple(getattr(model, "test_time_scales", None) or (1.0,)) != (1.0,)
    records = list(source.records(split)) if tflite else []
    # the Keras labels once per image (as set, and at the working size), for every LiteRT file
    keras_labels = [
        (predict_native(model, image).argmax(-1),
         predict_native(model, image, scales=(1.0,)).argmax(-1) if scaled else None)
        for image, _ in map(load_record, records)]
    for key, label_name in (("none", "LiteRT fp32"), ("int8", "LiteRT int8")):
        if key not in tflite:
            continue
        segmenter = LiteSegmenter(tflite[key], threads=2, flip=flip, color_target=color_target)
        confusion = np.zeros((info.num_classes,) * 2, np.int64)
        same = same_working = total = 0
        for record, (keras_pred, working) in zip(records, keras_labels):
            image, label = load_record(record)
            pred, _ = segmenter.predict(image)
            same += int((pred == keras_pred).sum())
            if scaled:
                same_working += int((pred == working).sum())
            total += pred.size
            confusion += _confusion(pred, label, info.num_classes, info.ignore_label)
        reports[label_name] = report_from_confusion(confusion, info.class_names)
        agreement[label_name] = same / total
        if scaled:
            agreement[f"{label_name} {AT_WORKING_SIZE}"] = same_working / total
    return reports, agreement


def _ensemble(model, runs: list[Path]):
    """``model`` (a Segmenter) with its network averaged with the networks of ``runs``."""
    import deconvnet_tf
    from deconvnet_tf.models import EnsembleNetwork

    others = []
    for run in runs:
        if not (run / "model.keras").is_file():
            raise ValueError(f"--member {str(run)!r} has no model.keras")
        other = deconvnet_tf.load_model(run / "model.keras")
        others.append(getattr(other, "network", other))
    config = model.get_config()
    for key in ("network", "image_converter", "trainable", "name"):
        config.pop(key, None)
    return deconvnet_tf.Segmenter(EnsembleNetwork([model.network, *others]), **config)


# training settings that are off by default: on the card only when a run set them
_AUGMENT_EXTRAS = (("gamma_jitter", "tone-curve jitter"), ("grayscale_prob", "greyscale crops p"),
                   ("class_uniform_crops", "class-uniform crops p"),
                   ("class_paste", "class paste p"))


def _resolved_config(config: dict, run_target, minutes: float, label: str = "") -> str:
    """The card's sentence on one run's resolved config and training time."""
    label = f" {label}" if label else ""
    return (f"Resolved config{label}: encoder weights `{config.get('encoder_weights')}`, "
            f"frozen blocks {config.get('frozen_blocks')}, {config.get('epochs')} epochs, batch "
            f"{config.get('batch_size')}, crops {config.get('crop_size')}, optimizer "
            f"{config.get('optimizer')} lr {config.get('learning_rate')}, class weighting "
            f"{config.get('class_weighting')}, scale range "
            f"{config.get('scale_range', [0.75, 1.25])}, colour jitter "
            f"{config.get('color_jitter', 0.2)}"
            + "".join(f", {text} {config[key]}" for key, text in _AUGMENT_EXTRAS
                      if config.get(key))
            + (", colour normalisation of every image to the training split's statistics "
               f"(mean {run_target['mean']}, std {run_target['std']}; the model's "
               "`color_target`, applied by every runtime)" if run_target else "")
            + f". Training took {minutes:.1f} min wall (run folder's config.json to "
            "model.keras).")


def _metrics_table(reports: dict, agreement: dict) -> list[str]:
    """The card's metrics table; with a column of the agreement with Keras at the working
    size when :func:`measure` gave one (a model with test-time scales)."""
    working = any(k.endswith(AT_WORKING_SIZE) for k in agreement)
    lines = ["| model file | mean IoU | pixel acc. | class-avg acc. | labels equal to Keras |"
             + (" labels equal to Keras at the working size |" if working else ""),
             "|---|---:|---:|---:|---:|" + ("---:|" if working else "")]

    def cell(agree) -> str:
        return "-" if agree is None else f"{100 * agree:.2f}%"

    for key, report in reports.items():
        lines.append(f"| {key} | {100 * report.mean_iou:.1f} | {100 * report.pixel_accuracy:.1f} "
                     f"| {100 * report.mean_class_accuracy:.1f} | {cell(agreement.get(key))} |"
                     + (f" {cell(agreement.get(f'{key} {AT_WORKING_SIZE}'))} |" if working
                        else ""))
    return lines



def _describe(value) -> str:
    """A setting's value for the card: on / off, the classes, or the colour target's numbers."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == ():
        return "off"
    if isinstance(value, tuple):  # class names, or test-time scales
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return (f"mean {', '.join(f'{v:.1f}' for v in value['mean'])}, "
            f"std {', '.join(f'{v:.1f}' for v in value['std'])} (RGB)")


SETTINGS_LINE = "Default post-processing in `deconvnet-predict`: "
CURRENT_LINE = "Current settings (since "


def current_settings(model, since: str) -> str:
    """The card's paragraph of a shipped model's settings after a change (``since``: the date),
    in place of the paragraph written at shipping: what every runtime does now."""
    scales = tuple(model.test_time_scales or (1.0,))
    parts = [
        "post-processing in `deconvnet-predict`: " + (
            "the dense CRF (`--no-crf` skips it)" if model.default_crf
            else "none (`--crf` adds the dense CRF)") + ".",
        "Test-time flip: " + ("on, in every runtime (`--no-flip` skips it)."
                              if model.test_time_flip else "off (`--flip` adds it)."),
        *([f"Test-time scales: {_describe(scales)} of the working size, probabilities averaged "
           "(the Keras runtime; the LiteRT files run the working size; `--scales 1` skips "
           "them)."] if scales != (1.0,) else []),
        *([f"Test-time colour normalisation to {_describe(model.color_target)}, in every "
           "runtime (`--no-color-norm` skips it)."] if model.color_target else []),
        *([f"Largest connected region kept for: {_describe(tuple(model.largest_component))}."]
          if model.largest_component else []),
    ]
    return (f"{CURRENT_LINE}{since}; the first metrics table below was measured with the "
            "settings at shipping, each dated section at the end with its own): "
            + " ".join(parts))


def with_current_settings(card: str, paragraph: str) -> str:
    """``card`` with its settings paragraph (written at shipping, or by an earlier change)
    replaced by ``paragraph``; a card without one gets it before its first section."""
    lines = card.split("\n")
    for i, line in enumerate(lines):
        if line.startswith((SETTINGS_LINE, CURRENT_LINE)):
            lines[i] = paragraph
            return "\n".join(lines)
    first = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    return "\n".join(lines[:first] + [paragraph, ""] + lines[first:])


def refresh_card(name: str, out: Path, *, today: str | None = None) -> Path:
    """Rewrites the settings paragraph of ``<out>/<name>.md`` from the shipped
    ``<out>/<name>.keras`` (its date: ``today``, else the last dated section's); nothing else
    of the card, and no model file, changes.

    Raises:
        FileNotFoundError: the card or the ``.keras`` file is missing.
        ValueError: no ``today`` and no dated section (the settings are those of shipping).
    """
    import re

    from deconvnet_tf.inference.segmenter import load_segmenter
    from deconvnet_tf.training.atomic import write_text_atomic

    card, keras_path = out / f"{name}.md", out / f"{name}.keras"
    missing = [str(p) for p in (card, keras_path) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"not shipped: {', '.join(missing)}")
    text = card.read_text()
    dates = re.findall(r"^## Settings changed after training \((\S+)\)$", text, re.M)
    if not dates and today is None:
        raise ValueError(f"{card} has no section 'Settings changed after training': its "
                         "settings paragraph is the one written at shipping")
    since = today or dates[-1]
    new = with_current_settings(text, current_settings(load_segmenter(keras_path), since))
    if new != text:
        write_text_atomic(card, new)
    return card


def _color_target(data: Path, split: str) -> dict | None:
    """``--color-target``: ``None`` for ``off``, else the statistics of ``split`` of ``data``."""
    if split == "off":
        return None
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.data.stats import color_statistics

    return color_statistics(open_source(data), split)

def update_settings(name: str, out: Path, data: Path, *, split: str = "val",
                    reason: str, today: str | None = None, **settings) -> dict:
    """Changes Segmenter settings of a shipped model without retraining it.

    Rewrites ``<out>/<name>.keras`` (same weights, new settings), the ``extra`` of its LiteRT
    sidecars (e.g. ``test_time_flip``), and appends a dated section to its card with
    ``reason`` (the held-out evidence for the change) and the ``split`` metrics of every file
    with the new settings. Every file is written atomically; the ``.tflite`` files are not
    touched.

    Args:
        settings: Segmenter options to change: ``test_time_flip`` and/or ``default_crf``
            (true / false), ``color_target`` (``{"mean": [r, g, b], "std": [r, g, b]}`` or
            ``None``), ``largest_component`` (class names; ``[]``: none),
            ``test_time_scales`` (multiples of the working size, e.g. ``(1.0, 1.5)``; the Keras
            runtime only: the LiteRT files keep running the working size; the card's
            agreement columns show what that changes, and the LiteRT files' agreement with
            the Keras model at the working size).

    Raises:
        FileNotFoundError: a shipped file of ``name`` is missing.
        ValueError: an unknown or unchanged setting, or no ``reason``.
    """
    import dataclasses
    import datetime
    import hashlib

    from deconvnet_tf.inference.predict import check_scales
    from deconvnet_tf.inference.segmenter import load_segmenter
    from deconvnet_tf.lite import read_metadata, write_metadata
    from deconvnet_tf.training.atomic import write_text_atomic
    from deconvnet_tf.training.checkpointing import save_model_atomic

    allowed = {"test_time_flip", "default_crf", "color_target", "largest_component",
               "test_time_scales"}
    if not settings or set(settings) - allowed:
        raise ValueError(f"settings to change: some of {sorted(allowed)}, got {sorted(settings)}")
    if not reason.strip():
        raise ValueError("a reason (the held-out evidence for the change) is required")
    litert = shipped_litert(out, name)
    missing = [str(p) for p in shipped_files(out, name, litert or LITERT)
               if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"not shipped: {', '.join(missing)}")
    model = load_segmenter(out / f"{name}.keras")
    settings = {k: v if k == "color_target" else tuple(v) if k == "largest_component"
                else check_scales(v, "test_time_scales") if k == "test_time_scales"
                else bool(v) for k, v in settings.items()}
    unchanged = [k for k, v in settings.items() if getattr(model, k) == v]
    if unchanged:
        raise ValueError(f"{name} already has {', '.join(f'{k}={getattr(model, k)}' for k in unchanged)}")
    model = model.with_options(**settings)
    tflite = {q: litert_path(out, name, q) for q in litert}
    # measured first: nothing is written when the model or the data fail
    reports, agreement = measure(model, tflite, data, split, flip=model.test_time_flip,
                                 color_target=model.color_target)
    for path in tflite.values():
        meta = read_metadata(path)
        write_metadata(path, dataclasses.replace(meta, extra={
            **(meta.extra or {}), "test_time_flip": model.test_time_flip,
            "color_target": model.color_target}))
    keras_path = save_model_atomic(model, out / f"{name}.keras")
    today = today or datetime.date.today().isoformat()
    change = ", ".join(f"`{k}` {_describe(v)}" for k, v in settings.items())
    card = out / f"{name}.md"
    head = with_current_settings(card.read_text().rstrip("\n"), current_settings(model, today))
    lines = [head, "", f"## Settings changed after training ({today})",
             "", f"Same weights; {change}. {reason.strip()}", "",
             f"Metrics on the `{split}` split with the new settings (every runtime):", "",
             *_metrics_table(reports, agreement), ""]
    write_text_atomic(card, "\n".join(lines))
    digest = hashlib.sha256(keras_path.read_bytes()).hexdigest()
    return {"card": card, "reports": {k: r.to_dict() for k, r in reports.items()},
            "agreement": agreement, "sha256": digest}


def ship(run: Path, data: Path, name: str, out: Path, *, input_size=None, terms: str = "",
         command: str = "", notes: str = "", split: str = "val", dev_run: Path | None = None,
         overwrite: bool = False, default_crf: bool = False,
         test_time_flip: bool = False, color_target=_UNSET,
         litert=LITERT, members=(), weights_storage: str = "float32",
         test_time_scales=(1.0,)) -> dict:
    """Writes the shipped files of one model; returns the measured numbers.

    ``default_crf``: the shipped Segmenter's ``deconvnet-predict`` refines with the dense CRF
    unless ``--no-crf`` (choose it on a dev split; the card says so). ``test_time_flip``: every
    prediction of the shipped model (Keras, SavedModel and LiteRT runtimes) averages with the
    mirrored image unless ``--no-flip``; the card's metrics include it. ``color_target``:
    the test-time colour normalisation of every runtime (``{"mean", "std"}``, ``None``: off;
    not given: the run's own, if it trained with ``color_norm``, else the registry entry's);
    the card's metrics include it. ``litert``: the LiteRT variants to write (``"none"``: fp32,
    ``"int8"``); the card names the ``deconvnet-export`` command for one left out.
    ``members``: further run folders whose networks are averaged with ``run``'s
    (EDeconvNet: an :class:`~deconvnet_tf.models.EnsembleNetwork` of all of them, equal
    weights; ``command`` then lists one training command per run, in order).
    ``weights_storage``: ``"float16"`` stores the ``.keras`` file's weights in half precision
    (the card's metrics are measured on the file as written). ``test_time_scales``: the Keras
    runtime's test-time multi-scale (multiples of the working size; the LiteRT files run the
    working size); like the other settings it is never taken from the registry entry of
    ``name``, so a re-ship states it (the card's metrics include it).

    Raises:
        FileExistsError: A file to write exists and ``overwrite`` is false (nothing written).
    """
    from deconvnet_tf.data.folder import read_meta
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.inference.segmenter import run_color_target
    from deconvnet_tf.export import export_tflite_variants
    from deconvnet_tf.inference.predict import check_scales
    from deconvnet_tf.inference.segmenter import load_segmenter
    from deconvnet_tf.models.registry import REGISTRY
    from deconvnet_tf.training.atomic import write_text_atomic
    from deconvnet_tf.training.checkpointing import save_model_atomic

    unknown = [q for q in litert if q not in LITERT]
    if unknown or not litert:
        raise ValueError(f"LiteRT variants: some of {list(LITERT)}, got {list(litert)}")
    left_out = [str(p) for p in shipped_files(out, name) if p.exists()
                and p not in shipped_files(out, name, litert)]
    if left_out:  # a stale file of an earlier ship next to the new model: never silently
        raise FileExistsError(f"{', '.join(left_out)} exist(s) and --litert leaves that "
                              "variant out: remove it (an earlier ship's file) or ship it too")
    existing = [str(p) for p in shipped_files(out, name, litert) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} exist(s); pass --overwrite to replace "
                              "the shipped files")
    test_time_scales = check_scales(test_time_scales, "test_time_scales")
    dev = dev_split_score(dev_run) if dev_run is not None else None
    info = read_meta(data)
    config = json.loads((run / "config.json").read_text())
    # the split is checked before anything is written
    num_images = open_source(data).num_examples(split)
    overlap = trained_on(data, config.get("train_split", "train"), split)
    # a run trained with color_norm: load_segmenter gives the model its statistics (the card
    # says so)
    run_target = run_color_target(run / "model.keras")
    target = {} if color_target is _UNSET else {"color_target": color_target}
    model = load_segmenter(run / "model.keras", registry_entry=REGISTRY.get(name),
                           image_size=input_size, class_names=list(info.class_names),
                           void_label=info.ignore_label, default_crf=default_crf,
                           test_time_flip=test_time_flip, weights_storage=weights_storage,
                           test_time_scales=test_time_scales, **target)
    runs = [run, *map(Path, members)]
    if members:
        model = _ensemble(model, runs[1:])
    out.mkdir(parents=True, exist_ok=True)
    # the LiteRT files first: their export checks every path before any work and writes
    # nothing on failure, so a failed ship leaves the shipped .keras as it was
    start = time.perf_counter()
    tflite = export_tflite_variants(
        model, {q: litert_path(out, name, q) for q in litert},
        input_size=input_size, representative_data=data, class_names=list(info.class_names))
    export_seconds = time.perf_counter() - start
    keras_path = save_model_atomic(model, out / f"{name}.keras")
    if weights_storage != "float32":  # measured as shipped: the weights rounded on saving
        model = load_segmenter(keras_path)

    reports, agreement = measure(model, tflite, data, split)
    sizes = {p.name: p.stat().st_size for p in [keras_path, *map(Path, tflite.values())]}

    configs = [json.loads((r / "config.json").read_text()) for r in runs]
    presets = " + ".join(f"`{c['preset']}`" for c in configs)
    commands = [command] if isinstance(command, str) else list(command)
    lines = [f"# Model card: `{name}`", "",
             (f"DeconvNet-family segmentation model trained with deconvnet-tf, preset "
              f"{presets}" if not members else
              f"EDeconvNet (DeconvNet-family ensemble) trained with deconvnet-tf: the mean of "
              f"the class probabilities of {len(runs)} networks, presets {presets}")
             + f" ({model.count_params():,} parameters), "
             f"{info.num_classes} classes: {', '.join(info.class_names)}"
             + (f"; label {info.ignore_label} (void) is ignored." if info.ignore_label is not None
                else "."), "",
             "## Data and terms", "", terms or "(see the dataset's own terms)", "",
             "## Training", "",
             *([f"    {c}" for c in commands if c] or ["(command not recorded)"]), "",
             *[_resolved_config(c, run_target if i == 0 else None, training_minutes(r),
                                f"`{c['preset']}`" if members else "")
               for i, (c, r) in enumerate(zip(configs, runs))],
             *([f"Training took {sum(training_minutes(r) for r in runs):.1f} min wall in all "
                f"({len(runs)} runs, one after the other)."] if members else []),
             "", "Working resolution: " + (f"{model.image_size[0]}x{model.image_size[1]} (images "
             "are resized to it and the labels mapped back)" if model.image_size else
             "native (each image at its own size)") + ".", "",
             SETTINGS_LINE + (
                 "the dense CRF (`--no-crf` skips it)" if default_crf else
                 "none (`--crf` adds the dense CRF)") + "; the metrics below are without it. "
             "Test-time flip: " + ("on: every runtime averages each image's probabilities with "
                                  "its mirror image's (twice the cost; `--no-flip` skips it); "
                                  "the metrics below include it." if test_time_flip else
                                  "off (`--flip` adds it).")
             + (f" Test-time scales: {_describe(test_time_scales)} of the working size, "
                "probabilities averaged (the Keras runtime; the LiteRT files run the working "
                "size; `--scales 1` skips them); the Keras metrics below include them."
                if test_time_scales != (1.0,) else "")
             + (" Test-time colour normalisation: each image's channels are brought to "
                f"{_describe(model.color_target)} before the network, in every runtime "
                "(`--no-color-norm` skips it); the metrics below include it."
                if model.color_target else ""), ""]
    if dev is not None:
        lines += ["## How the recipe was chosen", "",
                  f"On a dev split that is not reported: trained on `{dev['train_split']}`, "
                  f"scored on `{dev['val_split']}` ({dev['epochs']} epoch{'s' if dev['epochs'] != 1 else ''}): "
                  f"**{100 * dev['mean_iou']:.1f} mean IoU** (Keras MeanIoU, void ignored)."
                  + ("" if overlap else f" The `{split}` numbers below are reported once, after "
                     "the choice."), ""]
    if notes:
        lines += [notes, ""]
    lines += [f"## Metrics on the `{split}` split ({num_images} images, native resolution)", ""]
    if overlap:
        lines += [f"**{overlap} of these {num_images} images are in the model's training data** "
                  f"(`{config.get('train_split')}`): the numbers show that every runtime "
                  "agrees, not how accurate the model is on new images.", ""]
    lines += _metrics_table(reports, agreement)
    keras_report = reports["Keras (.keras)"]
    lines += ["", "Per-class IoU (Keras): " + ", ".join(
        f"{c} {100 * v:.1f}" for c, v in zip(info.class_names, keras_report.per_class_iou)), "",
        "## Files", "", "| file | MiB |", "|---|---:|"]
    lines += [f"| `{n}` | {s / 2**20:.1f} |" for n, s in sizes.items()]
    lines += ["", f"LiteRT files: builtin ops only (stock `ai-edge-litert`), input uint8 RGB "
              f"{'of any size' if input_size is None else 'of %dx%d' % tuple(input_size)}; "
              f"outputs `probabilities` and `labels`; class names and palette in the `.json` "
              f"sidecars. Export took {export_seconds:.0f} s."
              + ("" if "none" in litert else " The fp32 LiteRT file is not shipped (the size "
                 "budget of `saved_models/`); this writes it (same graph and settings):"), ""]
    if "none" not in litert:
        lines += [f"    deconvnet-export --model saved_models/{name}.keras --output "
                  f"{name}.tflite", ""]
    lines += ["    deconvnet-predict --model saved_models/%s.keras --input IMG --output out/" % name,
              "    deconvnet-lite-predict --model saved_models/%s --input IMG --output out/"
              % litert_path(out, name, "int8" if "int8" in litert else "none").name, ""]
    card = write_text_atomic(out / f"{name}.md", "\n".join(lines))
    return {"card": card, "reports": {k: r.to_dict() for k, r in reports.items()},
            "agreement": agreement, "sizes": sizes, "dev": dev}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--run", type=Path, help="run folder of deconvnet-train (ship it)")
    mode.add_argument("--update-settings", action="store_true",
                      help="change Segmenter settings of the shipped model --name (same "
                      "weights): --test-time-flip / --default-crf (or their --no- forms), "
                      "--scales, --largest-component, --color-target, with --reason; its card "
                      "gets a dated section with the new metrics")
    mode.add_argument("--refresh-card", action="store_true",
                      help="rewrite the settings paragraph of the card of --name from its "
                      "shipped .keras file (nothing else changes; no --data)")
    parser.add_argument("--data", type=Path,
                        help="dataset root (folder layout); required with --run and "
                        "--update-settings")
    parser.add_argument("--split", default="val",
                        help="split the card's metrics are measured on (default: val; "
                        "selectors and + unions as in deconvnet-evaluate --split)")
    parser.add_argument("--name", required=True, help="file name stem in the output folder")
    parser.add_argument("--output", type=Path, default=Path("saved_models"),
                        help="folder of the shipped files (default: saved_models)")
    parser.add_argument("--input-size", default=None,
                        help="HxW working resolution of the model and its LiteRT input "
                        "(default: native / dynamic)")
    parser.add_argument("--terms", default="", help="data source and licence line")
    parser.add_argument("--command", action="append", default=[],
                        help="the training command, for the card (once per run: --run's, "
                        "then each --member's)")
    parser.add_argument("--member", action="append", type=Path, default=[], metavar="RUN",
                        help="a further run folder whose network is averaged with --run's "
                        "(EDeconvNet, e.g. the FCN-8s run; repeatable)")
    parser.add_argument("--weights-storage", choices=["float32", "float16"],
                        default="float32",
                        help="dtype of the .keras file's weights (float16: half the size; "
                        "the card's metrics are measured on the file as written)")
    parser.add_argument("--notes", default="", help="extra paragraph for the card")
    parser.add_argument("--reason", default="",
                        help="--update-settings: the held-out evidence for the change (card)")
    parser.add_argument("--dev-run", type=Path, default=None,
                        help="run folder of the dev-split run that chose the recipe (its score "
                        "goes on the card)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing shipped files of --name")
    parser.add_argument("--default-crf", action=argparse.BooleanOptionalAction, default=None,
                        help="the shipped model's deconvnet-predict applies the dense CRF "
                        "unless --no-crf (Segmenter default_crf)")
    parser.add_argument("--test-time-flip", action=argparse.BooleanOptionalAction, default=None,
                        help="the shipped model averages each image with its mirror image in "
                        "every runtime unless --no-flip (Segmenter test_time_flip)")
    parser.add_argument("--scales", nargs="+", type=float, metavar="S", default=None,
                        help="test-time multi-scale of the Keras runtime, multiples of the working "
                        "size whose probabilities are averaged, e.g. 1 1.5 (Segmenter "
                        "test_time_scales; 1 alone: off): a ship's setting (default 1; never "
                        "taken from the registry), or a change with --update-settings")
    parser.add_argument("--largest-component", nargs="+", metavar="CLASS", default=None,
                        help="--update-settings: class names whose pixels deconvnet-predict "
                        "reduces to their largest connected region after the CRF unless "
                        "--no-largest-component (Segmenter largest_component); 'off' removes it")
    parser.add_argument("--color-target", metavar="SPLIT|off", default=None,
                        help="test-time colour normalisation to the per-channel mean / std of "
                        "this split of --data (e.g. train: the training images; Segmenter "
                        "color_target); 'off' removes it (default: a ship keeps the run's "
                        "own, an update leaves it as it is)")
    parser.add_argument("--litert", nargs="+", choices=list(LITERT), default=list(LITERT),
                        help="the LiteRT variants a ship writes (default: none int8, i.e. fp32 "
                        "and int8); the card names the export command of one left out")
    return parser


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from deconvnet_tf.cli._common import check_scales_flag  # the CLIs' --scales rule

    check_scales_flag(parser, args.scales)
    if args.refresh_card:
        given = [flag for flag, value in (
            ("--default-crf", args.default_crf), ("--test-time-flip", args.test_time_flip),
            ("--scales", args.scales), ("--largest-component", args.largest_component),
            ("--color-target", args.color_target), ("--reason", args.reason or None),
            ("--member", args.member or None), ("--input-size", args.input_size))
            if value is not None]
        if given:
            parser.error(f"--refresh-card rewrites the card from the shipped model and takes "
                         f"--name and --output only, not {', '.join(given)} (settings change "
                         "with --update-settings)")
        try:
            card = refresh_card(args.name, args.output)
        except (FileNotFoundError, ValueError) as err:
            parser.error(str(err))
        print(card.read_text())
        return 0
    if args.data is None:
        parser.error("--data is required with --run and --update-settings")
    if args.update_settings:
        settings = {k: v for k, v in (("test_time_flip", args.test_time_flip),
                                      ("default_crf", args.default_crf)) if v is not None}
        try:
            if args.scales is not None:
                settings["test_time_scales"] = tuple(args.scales)
            if args.largest_component is not None:
                settings["largest_component"] = ([] if args.largest_component == ["off"]
                                                 else args.largest_component)
            if args.color_target is not None:
                settings["color_target"] = _color_target(args.data, args.color_target)
            result = update_settings(args.name, args.output, args.data, reason=args.reason,
                                     split=args.split, **settings)
        except (FileNotFoundError, ValueError) as err:
            parser.error(str(err))
        print(result["card"].read_text())
        print(f"sha256 of {args.name}.keras (the registry entry): {result['sha256']}")
        return 0
    if not (args.run / "model.keras").is_file():
        parser.error(f"--run {str(args.run)!r} has no model.keras")
    size = None
    if args.input_size:
        try:
            size = tuple(int(v) for v in args.input_size.lower().split("x"))
        except ValueError:
            parser.error(f"--input-size must look like 180x240, got {args.input_size!r}")
    for member in args.member:
        if not (member / "model.keras").is_file():
            parser.error(f"--member {str(member)!r} has no model.keras")
    if args.dev_run is not None and not (args.dev_run / "log.csv").is_file():
        parser.error(f"--dev-run {str(args.dev_run)!r} has no log.csv")
    from deconvnet_tf.inference.predict import check_scales

    try:
        scales = check_scales(args.scales or (1.0,), "--scales")
    except ValueError as err:
        parser.error(str(err))
    try:
        target = ({} if args.color_target is None
                  else {"color_target": _color_target(args.data, args.color_target)})
        result = ship(args.run, args.data, args.name, args.output, input_size=size,
                      terms=args.terms, command=args.command, notes=args.notes,
                      split=args.split, dev_run=args.dev_run, overwrite=args.overwrite,
                      default_crf=bool(args.default_crf),
                      test_time_flip=bool(args.test_time_flip), litert=args.litert,
                      members=args.member, weights_storage=args.weights_storage,
                      test_time_scales=scales, **target)
    except (FileExistsError, ValueError) as err:
        parser.error(str(err))
    print(result["card"].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
