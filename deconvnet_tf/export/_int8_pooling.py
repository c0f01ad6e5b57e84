"""A TFLite-int8-safe form of the switch max pooling, used only while tracing TFLite exports.

:class:`~deconvnet_tf.layers.SwitchMaxPooling2D` finds the switch with ``EQUAL(window,
max(window))``. In a full-integer model that becomes an int8 ``EQUAL`` whose LiteRT kernel
rescales both inputs by their quantisation scale in fixed point; for a scale >= 1 (activations
above ~255, e.g. VGG's conv1/conv2 outputs on raw-pixel inputs) the rescaled values collapse and
*every* element compares equal, so the mask takes the first window position instead of the
maximum, the pooled value is wrong and the decoder unpools to the wrong place. Measured on the
CamVid compact model: block1 scale 5.93, the mask true at all 4 positions of every window, pooled
values 50% off, label agreement with Keras 76%.

:class:`ArgMaxSwitchPooling2D` computes the same outputs without comparing quantised values:
``ARG_MAX`` over the window (it compares the raw integers of one tensor, exact at any scale,
first maximum on ties) and ``EQUAL`` on the int32 index; the pooled value is ``REDUCE_MAX``.
In float it equals the switch layer exactly (same first-max mask, ``max == sum(window * mask)``
for finite values). It has no gradient rule of its own and is not registered for saving: it
lives only inside the traced export graph.
"""

from __future__ import annotations

import keras

from deconvnet_tf.layers import SwitchMaxPooling2D
from deconvnet_tf.layers.switch_pooling import _crop_or_pad_end

__all__ = ["ArgMaxSwitchPooling2D", "with_int8_safe_pooling"]


class ArgMaxSwitchPooling2D(SwitchMaxPooling2D):
    """:class:`~deconvnet_tf.layers.SwitchMaxPooling2D` computed with ``ARG_MAX`` (TF only).

    Same arguments, outputs and configuration as the parent; the switch is the first maximum
    of each window in row-major order, as there. Used by the TFLite exporter so that
    full-integer int8 models find the switches exactly.

    Args:
        pool_size: As :class:`~deconvnet_tf.layers.SwitchMaxPooling2D`.
        strides: As :class:`~deconvnet_tf.layers.SwitchMaxPooling2D`.
        padding: As :class:`~deconvnet_tf.layers.SwitchMaxPooling2D`.
        **kwargs: Base layer arguments.

    Returns:
        ``(pooled, mask)`` as :class:`~deconvnet_tf.layers.SwitchMaxPooling2D`.

    Raises:
        ValueError: As :class:`~deconvnet_tf.layers.SwitchMaxPooling2D`.

    Example:

    >>> layer = ArgMaxSwitchPooling2D.from_config(SwitchMaxPooling2D().get_config())
    >>> pooled, mask = layer(tf.random.uniform((1, 4, 4, 2)))
    """

    def call(self, inputs):
        import tensorflow as tf

        kh, kw = self.pool_size
        shape = tf.shape(inputs)
        height, width, channels = shape[1], shape[2], inputs.shape[3]
        if channels is None:
            channels = shape[3]
        static_h, static_w = inputs.shape[1], inputs.shape[2]
        if static_h is not None and static_w is not None:
            height, width = int(static_h), int(static_w)
        if self.padding == "same":
            out_h, out_w = (height + kh - 1) // kh, (width + kw - 1) // kw
        else:
            out_h, out_w = height // kh, width // kw
        x = _crop_or_pad_end(inputs, out_h * kh, out_w * kw, "edge")
        x5 = tf.reshape(x, (-1, kh, out_w, kw, channels))
        pooled = tf.reshape(tf.reduce_max(x5, axis=(1, 3)), (-1, out_h, out_w, channels))
        # (batch * out_h, out_w, kh * kw, channels), window positions in row-major order.
        windows = tf.stack([x5[:, a, :, b, :] for a in range(kh) for b in range(kw)], axis=2)
        first = tf.math.argmax(windows, axis=2, output_type=tf.int32)
        rows = [tf.stack([tf.equal(first, a * kw + b) for b in range(kw)], axis=2)
                for a in range(kh)]
        mask5 = tf.cast(tf.stack(rows, axis=1), inputs.dtype)
        mask = tf.reshape(mask5, (-1, out_h * kh, out_w * kw, channels))
        mask = _crop_or_pad_end(mask, height, width, "zeros")
        return pooled, mask


def with_int8_safe_pooling(model: keras.Model) -> keras.Model:
    """A functional copy of ``model`` whose switch poolings are :class:`ArgMaxSwitchPooling2D`.

    Every other layer is shared (same weights, no copy). A model without switch pooling
    layers is returned as is.

    Args:
        model: A functional Keras model (e.g. a DeconvNet rebuilt with ``unpooling="switch"``,
            or an ensemble of such networks: nested models are rebuilt too).

    Returns:
        The rebuilt model (or ``model``).
    """
    if not _has_switch_pooling(model):
        return model

    def clone(layer):
        if type(layer) is SwitchMaxPooling2D:
            return ArgMaxSwitchPooling2D.from_config(layer.get_config())
        if isinstance(layer, keras.Model) and _has_switch_pooling(layer):
            return with_int8_safe_pooling(layer)  # a nested network (an ensemble's member)
        return layer

    functional = keras.Model(model.inputs, model.outputs, name=model.name)
    return keras.models.clone_model(functional, clone_function=clone)


def _has_switch_pooling(model: keras.Model) -> bool:
    """True when ``model`` or a model nested in it has a switch pooling layer."""
    return any(type(layer) is SwitchMaxPooling2D
               or (isinstance(layer, keras.Model) and _has_switch_pooling(layer))
               for layer in model.layers)
