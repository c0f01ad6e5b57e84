"""Inference: whole-image and instance-wise prediction, proposals, EDeconvNet ensembling,
dense-CRF post-processing and the paper's method comparison.

Modules (imported on use; nothing heavy happens when this package is imported):

* ``predict``: :class:`~deconvnet_tf.inference.predict.Predictor`, ``load_predictor``,
  ``predict_image`` / ``predict_images`` (any image size, probabilities at that size);
* ``proposals``: ``propose_boxes`` (EdgeBoxes on HED or gradient edges, selective search);
* ``instance``: ``predict_instances`` (crop, warp, batch, aggregate by max or mean);
* ``ensemble``: ``combine_probabilities``, ``predict_edeconvnet``;
* ``crf``: ``dense_crf`` (pydensecrf), presets ``deconvnet`` and ``deeplab``;
* ``pipeline``: ``infer``, ``predict_files`` (behind ``deconvnet-predict``);
* ``compare``: ``compare_methods`` (the paper's Table 1 on any dataset split).
"""

__all__ = ["compare", "crf", "ensemble", "instance", "pipeline", "predict", "proposals"]
