"""``Deconv2D``: a Conv2DTranspose with fast stride-1 paths (same weights, same layout).

TensorFlow's CPU kernel for transposed convolution reshuffles the whole kernel on every call.
For DeconvNet's ``fc6_deconv`` (7x7, 4096 -> 512 channels, a 411 MB kernel applied to a 1x1 map
at 224x224) that took ~0.4 s of a ~1.3 s forward pass on a 2-core machine. Two exact rewrites
for stride 1:

* ``padding="same"``, odd kernel (the decoder's 3x3 deconvolutions): a transposed convolution
  is a convolution with the spatially flipped kernel and swapped in/out channels.
* ``padding="valid"`` (``fc6_deconv``): one matrix product of every input pixel with the kernel
  read as ``(k*k*out, in)`` (a transposed-B GEMM, no copy of the kernel), then overlap-add of the
  ``k x k`` output patches. Every tensor has rank <= 4 (TFLite int8 friendly).

Other configurations use ``keras.layers.Conv2DTranspose`` unchanged.
"""

from __future__ import annotations

import keras
from keras import ops

from deconvnet_tf._backend import backend_name

__all__ = ["Deconv2D"]


def _matmul_transpose_b(a, b):
    """``a @ b.T`` without materialising ``b.T`` (TensorFlow would copy it in eager mode)."""
    if backend_name() == "tensorflow":
        import tensorflow as tf

        return tf.matmul(a, b, transpose_b=True)
    return ops.matmul(a, ops.transpose(b))


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class Deconv2D(keras.layers.Conv2DTranspose):
    """Transposed 2D convolution (the paper's "deconvolution"), fast for stride 1.

    Same constructor, variables (kernel ``(k, k, filters, in_channels)``, bias) and results as
    ``keras.layers.Conv2DTranspose``; weights move freely between the two.

    Args:
        filters: Output channels.
        kernel_size: int or pair.
        **kwargs: Any other ``keras.layers.Conv2DTranspose`` argument (``strides``,
            ``padding``, ``use_bias``, initializers, ...).

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        As ``Conv2DTranspose``: stride 1 ``"same"`` keeps the size, ``"valid"`` adds
        ``kernel_size - 1``.

    Example:

    >>> layer = Deconv2D(8, 7, padding="valid")
    >>> layer(np.zeros((1, 1, 1, 16), "float32")).shape
    (1, 7, 7, 8)
    """

    def _fast_path(self) -> str | None:
        if (
            tuple(self.strides) != (1, 1)
            or tuple(self.dilation_rate) != (1, 1)
            or self.data_format != "channels_last"
            or self.output_padding is not None
        ):
            return None
        if self.padding == "valid":
            return "gemm"
        if self.padding == "same" and all(k % 2 == 1 for k in self.kernel_size):
            return "conv"
        return None

    def call(self, inputs):
        path = self._fast_path()
        if path is None:
            return super().call(inputs)
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if "float" not in dtype:  # Conv2DTranspose refuses it too (a ValueError)
            raise ValueError(f"{self.name}: expects a float input, as Conv2DTranspose (cast "
                             f"integer images first), got {dtype}")
        kernel = ops.cast(self.kernel, self.compute_dtype)
        if path == "conv":
            leading = tuple(inputs.shape)[:3]
            if 0 in leading:  # no images, rows or columns: see _empty_batch_shape
                return super().call(inputs)
            flipped = ops.transpose(ops.flip(ops.flip(kernel, 0), 1), (0, 1, 3, 2))
            outputs = ops.conv(inputs, flipped, strides=1, padding="same",
                               data_format="channels_last")  # not the global default
            if None in leading:
                outputs = self._empty_batch_shape(outputs, inputs)
        else:
            outputs = self._gemm_overlap_add(inputs, kernel)
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, self.compute_dtype)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _empty_batch_shape(self, outputs, inputs):
        """``outputs`` reshaped to ``(batch, H, W, filters)``: a no-op, except on an empty
        input (a batch, height or width of 0 not known while tracing) under TensorFlow, whose
        oneDNN CPU convolution (TF 2.21) returns the input's shape ``(0, H, W, in_channels)``
        (``keras.layers.Conv2D`` fails there too; ``Conv2DTranspose`` does not)."""
        if backend_name() != "tensorflow":
            return outputs
        shape = ops.shape(inputs)
        return ops.reshape(outputs, (shape[0], shape[1], shape[2], self.filters))

    def _gemm_overlap_add(self, inputs, kernel):
        kh, kw = self.kernel_size
        out_ch = self.filters
        shape = ops.shape(inputs)
        batch, height, width, in_ch = shape[0], shape[1], shape[2], shape[3]
        rows = ops.reshape(inputs, (-1, in_ch))
        patches = _matmul_transpose_b(rows, ops.reshape(kernel, (kh * kw * out_ch, in_ch)))
        patches = ops.reshape(patches, (batch, height, width, kh * kw * out_ch))
        result = None
        for i in range(kh):
            row = None
            for j in range(kw):
                start = (i * kw + j) * out_ch
                part = ops.pad(
                    patches[..., start : start + out_ch], ((0, 0), (0, 0), (j, kw - 1 - j), (0, 0))
                )
                row = part if row is None else row + part
            row = ops.pad(row, ((0, 0), (i, kh - 1 - i), (0, 0), (0, 0)))
            result = row if result is None else result + row
        return result
