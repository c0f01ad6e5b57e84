"""LiteRT runtime: run exported ``.tflite`` models with ``ai-edge-litert``.

Never imports TensorFlow or Keras (the mobile path): only ``ai_edge_litert``, NumPy, OpenCV,
:mod:`deconvnet_tf.io` and :mod:`deconvnet_tf.render`.
"""

from deconvnet_tf.lite.metadata import (
    METADATA_FORMAT,
    MetadataError,
    ModelMetadata,
    metadata_path,
    read_metadata,
    write_metadata,
)
from deconvnet_tf.lite.runtime import (
    IMAGE_SUFFIXES,
    LiteSegmenter,
    list_images,
    predict_paths,
    read_image,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "METADATA_FORMAT",
    "LiteSegmenter",
    "MetadataError",
    "ModelMetadata",
    "list_images",
    "metadata_path",
    "predict_paths",
    "read_image",
    "read_metadata",
    "write_metadata",
]
