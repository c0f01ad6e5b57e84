"""Inference: whole-image and instance-wise prediction, the Segmenter task, proposals,
EDeconvNet ensembling and dense-CRF post-processing.

Modules (imported on use; nothing heavy happens when this package is imported):

* ``predict``: :class:`~deconvnet_tf.inference.predict.Predictor`, ``load_predictor``,
  ``predict_image`` / ``predict_images`` (any image size, probabilities at that size);
* ``segmenter``: :class:`~deconvnet_tf.inference.segmenter.Segmenter` (a network with its image
  converter, classes, void label and palette; public as ``deconvnet_tf.Segmenter``),
  ``load_segmenter``;
* ``proposals``: ``propose_boxes`` (EdgeBoxes on HED or gradient edges, selective search);
* ``instance``: ``predict_instances`` (crop, warp, batch, aggregate by max or mean);
* ``ensemble``: ``combine_probabilities``, ``predict_edeconvnet``;
* ``crf``: ``dense_crf`` (pydensecrf), presets ``deconvnet`` and ``deeplab``;
* ``pipeline``: ``infer``, ``predict_files`` (behind ``deconvnet-predict``).

The paper's method comparison (``compare_methods``) moved to
:mod:`deconvnet_tf.evaluation.compare`; ``deconvnet_tf.inference.compare`` is a deprecated alias.
"""

__all__ = ["crf", "ensemble", "instance", "pipeline", "predict", "proposals", "segmenter"]
