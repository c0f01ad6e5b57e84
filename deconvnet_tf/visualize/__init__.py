"""Zeiler-Fergus deconvnet visualisation of Keras CNNs (plus gradient and guided backprop).

Project any unit of a trained functional Keras CNN back to pixel space
(:func:`project`, :class:`Projector`), find a unit's strongest activations over a dataset and
draw them beside their receptive-field patches like Zeiler & Fergus' Figure 2
(:func:`top_k`, :func:`top_k_grid`, :func:`visualize`). The ``deconvnet-visualize`` console
script wraps :func:`visualize`.

Nothing is imported from TensorFlow here; the projection runs on the active Keras backend.
"""

from deconvnet_tf.visualize.graph import (
    NotInvertibleError,
    UnknownLayerError,
    VisualizationError,
    invertible_layer_names,
)
from deconvnet_tf.visualize.grid import projection_to_image, top_k_grid
from deconvnet_tf.visualize.project import MODES, TIES, Box, Projector, project, receptive_field
from deconvnet_tf.visualize.topk import (
    ChannelTopK,
    ImageSource,
    TopKItem,
    VisualizationResult,
    top_k,
    visualize,
)

__all__ = [
    "MODES",
    "TIES",
    "Box",
    "ChannelTopK",
    "ImageSource",
    "TopKItem",
    "VisualizationResult",
    "NotInvertibleError",
    "Projector",
    "UnknownLayerError",
    "VisualizationError",
    "invertible_layer_names",
    "project",
    "projection_to_image",
    "receptive_field",
    "top_k",
    "top_k_grid",
    "visualize",
]
