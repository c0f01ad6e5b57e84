"""Export: SavedModel (serving signature on raw uint8 RGB) and TFLite that runs on the stock
LiteRT interpreter (builtin ops only; fp32, fp16, dynamic-range, full-integer int8), with a
JSON metadata sidecar.

TensorFlow is imported inside the functions, so importing this package is cheap.
"""

from deconvnet_tf.export._common import ExportError, find_class_names, parse_input_size
from deconvnet_tf.export.pipeline import ExportResult, export_all, tflite_name
from deconvnet_tf.export.saved_model import (
    SavedModelPredictor,
    export_saved_model,
    load_saved_model,
    saved_model_info,
)
from deconvnet_tf.export.tflite import (
    QUANTIZE_CHOICES,
    check_builtins_only,
    export_tflite,
    export_tflite_variants,
    non_builtin_ops,
    representative_images,
    tflite_op_names,
)
from deconvnet_tf.lite.metadata import ModelMetadata, read_metadata

__all__ = [
    "QUANTIZE_CHOICES",
    "ExportError",
    "ExportResult",
    "ModelMetadata",
    "SavedModelPredictor",
    "check_builtins_only",
    "export_all",
    "export_saved_model",
    "export_tflite",
    "export_tflite_variants",
    "find_class_names",
    "load_saved_model",
    "non_builtin_ops",
    "parse_input_size",
    "read_metadata",
    "representative_images",
    "saved_model_info",
    "tflite_name",
    "tflite_op_names",
]
