"""One table for the paper's comparison (Noh et al. 2015, Table 1): FCN-8s, DeconvNet on the
whole image (+ CRF), DeconvNet instance-wise, + CRF, EDeconvNet, EDeconvNet + CRF, scored on a
dataset split with the same mean IoU as ``deconvnet-evaluate`` (``keras.metrics.MeanIoU`` with the void
label ignored)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deconvnet_tf.data.sources import label_statistics, open_source
from deconvnet_tf.inference import crf, instance
from deconvnet_tf.inference.ensemble import combine_probabilities
from deconvnet_tf.inference.pipeline import InferenceOptions
from deconvnet_tf.inference.postprocess import keep_largest_component
from deconvnet_tf.inference.predict import as_predictor, predict_image

__all__ = ["METHODS", "MethodComparison", "compare_methods"]

METHODS: dict[str, str] = {
    "fcn8s": "FCN-8s",
    "fcn8s_crf": "FCN-8s + CRF",
    "deconvnet_whole": "DeconvNet (whole image)",
    "deconvnet_whole_crf": "DeconvNet (whole image) + CRF",
    "deconvnet": "DeconvNet (instance-wise)",
    "deconvnet_crf": "DeconvNet + CRF",
    "edeconvnet": "EDeconvNet",
    "edeconvnet_crf": "EDeconvNet + CRF",
    "edeconvnet_whole": "EDeconvNet (whole-image DeconvNet)",
    "edeconvnet_whole_crf": "EDeconvNet (whole-image DeconvNet) + CRF",
}
"""Method key -> row name. ``edeconvnet`` is the paper's ensemble (instance-wise DeconvNet and
FCN-8s); ``edeconvnet_whole`` combines the whole-image DeconvNet with FCN-8s instead (no
proposals); ``*_crf`` is the dense CRF on that method's probabilities."""
_NEEDS_FCN = ("fcn8s", "fcn8s_crf", "edeconvnet", "edeconvnet_crf", "edeconvnet_whole",
              "edeconvnet_whole_crf")
_CRF_OF = {f"{key}_crf": key for key in ("fcn8s", "deconvnet_whole", "deconvnet", "edeconvnet",
                                         "edeconvnet_whole")}


@dataclass
class MethodComparison:
    """Scores of several inference methods on one split.

    Attributes:
        class_names: Dataset classes.
        reports: Method key -> :class:`~deconvnet_tf.evaluation.metrics.SegmentationReport`.
        seconds: Stage -> mean seconds per image: ``deconvnet_whole``, ``deconvnet_instance``
            (proposals + crops), ``fcn8s``, and the CRFs (``<method>_crf``).
        num_images: Images scored.
        settings: What was run (for the record).
    """

    class_names: tuple[str, ...]
    reports: dict
    seconds: dict[str, float] = field(default_factory=dict)
    num_images: int = 0
    settings: dict = field(default_factory=dict)

    def table(self) -> str:
        """Markdown table: one row per method, per-class IoU and mean IoU (in %)."""
        header = "| method | " + " | ".join(self.class_names) + " | **mean IoU** |"
        lines = [header, "|---|" + "---:|" * (len(self.class_names) + 1)]
        for key, report in self.reports.items():
            cells = ["-" if np.isnan(v) else f"{v * 100:.1f}" for v in report.per_class_iou]
            lines.append(f"| {METHODS.get(key, key)} | " + " | ".join(cells)
                         + f" | **{report.mean_iou * 100:.1f}** |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "num_images": self.num_images,
            "settings": self.settings,
            "seconds_per_image": self.seconds,
            "methods": {k: {"name": METHODS.get(k, k), "mean_iou": r.mean_iou,
                            "pixel_accuracy": r.pixel_accuracy,
                            "per_class_iou": dict(zip(self.class_names, r.per_class_iou))}
                        for k, r in self.reports.items()},
        }


def compare_methods(
    deconvnet: Any,
    data: str | os.PathLike,
    split: str = "val",
    *,
    fcn: Any = None,
    methods: tuple[str, ...] | list[str] | None = None,
    limit: int | None = None,
    options: Any = None,
    progress: bool = True,
) -> MethodComparison:
    """Scores DeconvNet (whole, instance-wise), FCN-8s and their ensembles, each +- CRF, on a split.

    Every image is predicted once per stage (whole-image DeconvNet, proposals + instance-wise
    DeconvNet, whole-image FCN); the ensembles and CRFs reuse those probabilities.

    Args:
        deconvnet: DeconvNet (predictor, Keras model, ``.keras`` path or SavedModel folder).
        data: Dataset root: the folder layout or PASCAL VOC (:func:`~deconvnet_tf.data.sources.
            open_source`).
        split: Split name, with an optional selector (``train[0001TP]``: the frames of one
            CamVid sequence, ``train[2/5]``: a fold; the dev-split protocol of docs/training.md).
        fcn: FCN-8s for ``fcn8s``, the ``edeconvnet*`` ensembles and their CRFs (optional).
        methods: Keys of :data:`METHODS` (default: all that the given models allow).
        limit: Only the first ``limit`` images.
        options: :class:`~deconvnet_tf.inference.pipeline.InferenceOptions` for the proposals,
            crop size, aggregation, ensemble method and CRF preset (``mode``/``crf`` ignored).
            Its ``largest_component`` post-processes every method's final probabilities (after
            its CRF).
        progress: Show a progress bar.

    Returns:
        The :class:`MethodComparison` (``.table()`` prints like the paper's Table 1).

    Raises:
        ValueError: Unknown methods, FCN methods without an FCN, class-count mismatch.

    Example:
        >>> result = compare_methods("dn.keras", "data/camvid", fcn="fcn.keras")  # doctest: +SKIP
        >>> print(result.table())                                                # doctest: +SKIP
    """
    import keras

    # Keras: evaluation.metrics imports Keras; this module stays framework-free on import
    from deconvnet_tf.evaluation.metrics import report_from_confusion

    methods = _check_methods(methods, fcn)
    options = (options or InferenceOptions()).validate()
    deconvnet = as_predictor(deconvnet)
    fcn = as_predictor(fcn) if fcn is not None else None
    source = open_source(data)
    info = source.info
    total = source.num_examples(split)
    total = total if limit is None else min(limit, total)

    metrics: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    bar = keras.utils.Progbar(total, unit_name="image") if progress else None
    crf_kwargs = dict(preset=options.crf_preset, **options.crf_overrides)
    records = source.records(split)
    for index, (image, label) in enumerate(source.numpy_examples(split, limit), 1):
        # label values outside the classes (not void) raise, naming the file, as in evaluate
        label_statistics(label, info, str(records[index - 1].label))
        probs = _method_probabilities(image, methods, deconvnet, fcn, options, crf_kwargs,
                                      seconds)
        _update_metrics(metrics, methods, probs, label, info, data)
        if bar is not None:
            bar.update(index)

    count = max(total, 1)
    return MethodComparison(
        class_names=info.class_names,
        reports={key: report_from_confusion(
            np.asarray(metrics[key].total_cm)[: info.num_classes, : info.num_classes],
            info.class_names) for key in methods},
        seconds={k: v / count for k, v in seconds.items()},
        num_images=total,
        settings=_settings(split, options),
    )


def _update_metrics(metrics: dict[str, Any], methods: list[str], probs: dict[str, np.ndarray],
                    label: np.ndarray, info, data) -> None:
    """Adds one image's predictions of every method to its ``MeanIoU`` (made on first use);
    raises ``ValueError`` when a method predicts fewer classes than the dataset has."""
    import keras

    for key in methods:
        scores = probs[key]
        if scores.shape[-1] < info.num_classes:
            raise ValueError(f"{METHODS[key]} predicts {scores.shape[-1]} classes but "
                             f"{str(data)!r} has {info.num_classes}")
        if key not in metrics:
            metrics[key] = keras.metrics.MeanIoU(num_classes=scores.shape[-1],
                                                 ignore_class=info.ignore_label)
        metrics[key].update_state(label.astype(np.int32), scores.argmax(-1).astype(np.int32))


def _check_methods(methods, fcn) -> list[str]:
    """The methods to run (default: all that the given models allow), deduplicated, checked."""
    if methods is None:
        methods = [m for m in METHODS if fcn is not None or m not in _NEEDS_FCN]
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if fcn is None and any(m in _NEEDS_FCN for m in methods):
        raise ValueError(f"Methods {[m for m in methods if m in _NEEDS_FCN]} need an FCN model "
                         "(fcn=...)")
    return methods


def _method_probabilities(image: np.ndarray, methods: list[str], deconvnet, fcn, options,
                          crf_kwargs: dict, seconds: dict[str, float]) -> dict[str, np.ndarray]:
    """Probabilities of one image for every stage the methods need (each stage predicted
    once; the ensembles and CRFs reuse them); adds each stage's seconds to ``seconds``.
    The instance-wise pass and the CRF are looked up on their modules at each call (so a test
    can replace them there)."""

    def timed(stage, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
        return out

    probs: dict[str, np.ndarray] = {}
    need = set(methods) | {_CRF_OF[m] for m in methods if m in _CRF_OF}
    if need - {"fcn8s", "fcn8s_crf"}:
        probs["deconvnet_whole"] = timed("deconvnet_whole", predict_image, deconvnet, image)
    if need & {"deconvnet", "deconvnet_crf", "edeconvnet", "edeconvnet_crf"}:
        probs["deconvnet"] = timed(
            "deconvnet_instance", instance.predict_instances, deconvnet, image,
            input_size=options.input_size, batch_size=options.batch_size,
            aggregate=options.aggregate, whole=probs["deconvnet_whole"],
            proposals=options.proposals)
    if fcn is not None and need & set(_NEEDS_FCN):
        probs["fcn8s"] = timed("fcn8s", predict_image, fcn, image)
    for key, base in (("edeconvnet", "deconvnet"), ("edeconvnet_whole", "deconvnet_whole")):
        if key in need:
            probs[key] = combine_probabilities([probs[base], probs["fcn8s"]],
                                               options.ensemble_method)
    for key, base in _CRF_OF.items():
        if key in need:
            probs[key] = timed(key, crf.dense_crf, image, probs[base], **crf_kwargs)
    if options.largest_component:  # every method's final output, after its CRF
        probs = {key: keep_largest_component(value, options.largest_component)
                 for key, value in probs.items()}
    return probs


def _settings(split: str, options) -> dict:
    """What was run, for :attr:`MethodComparison.settings`."""
    return {"split": split, "input_size": options.input_size, "aggregate": options.aggregate,
            "ensemble_method": options.ensemble_method, "crf_preset": options.crf_preset,
            "largest_component": list(options.largest_component),
            "proposals": {k: (str(v) if k == "cache_dir" and v is not None else v)
                          for k, v in options.proposals.items()}}
