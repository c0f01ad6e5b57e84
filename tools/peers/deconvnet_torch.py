"""A reference PyTorch DeconvNet: the benchmark peer of ``tools/bench_gpu.py``.

Benchmark-only: nothing in ``deconvnet_tf`` imports this file, and PyTorch is not a dependency
of the package. It builds the same network as ``deconvnet_tf.build_model(preset)`` from the
preset's architecture fields (``Architecture.to_dict()``), with the same layer names and the
same layers: VGG16-style encoder (3x3 conv with bias + BatchNorm + ReLU, 2x2/2 max pooling
that records indices, ``ceil_mode`` for ``"same"`` padding), ``fc6`` (7x7 valid conv), ``fc7``
(1x1), ``fc6_deconv`` (7x7 valid transposed conv), per block ``MaxUnpool2d`` to the pooled
input's size and 3x3 transposed convs + BatchNorm + ReLU, and a 1x1 ``score`` conv. BatchNorm
uses Keras' epsilon (1e-3) and momentum convention. Inputs are raw RGB (uint8 or float
0..255, NCHW); the model flips to BGR and subtracts DeconvNet's mean, as the Keras model.

``deconvnet_vgg16`` here has 251.8M parameters counting BatchNorm's running statistics, as
Keras' ``count_params`` does (:func:`keras_param_count`).

Example (in a script under ``tools/``, whose folder is ``sys.path[0]``, or under pytest, whose
``pythonpath`` has ``tools``):

    import torch
    from peers.deconvnet_torch import DeconvNetTorch
    model = DeconvNetTorch(num_classes=21).cuda().to(memory_format=torch.channels_last)
    logits = model(torch.zeros(1, 3, 224, 224, dtype=torch.uint8, device="cuda"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["DeconvNetTorch", "keras_param_count", "load_keras_weights", "VGG16_BLOCKS"]

VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
DECONVNET_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)


def _scale(filters: int, width: float) -> int:
    return max(1, int(round(filters * width)))


class DeconvNetTorch(nn.Module):
    """DeconvNet in PyTorch, layer for layer as ``deconvnet_tf``'s Keras model.

    Args:
        num_classes: Output classes.
        blocks: ``(filters, convs)`` per encoder block.
        fc_filters: Channels of fc6/fc7.
        fc_kernel: Kernel of fc6 and fc6_deconv.
        encoder_width: Multiplier of the encoder's filters.
        decoder_width: Multiplier of the decoder's inner deconvolutions.
        batchnorm: BatchNorm after every conv/deconv.
        bn_momentum: Keras-convention momentum (weight of the old statistics).
        pool_padding: ``"same"`` (ceil mode) or ``"valid"``.
        mean: BGR mean subtracted from the input.
        **unused: Other ``Architecture`` fields (``family``, ``description``) are ignored.
    """

    def __init__(self, num_classes: int = 21, blocks: Sequence[Sequence[int]] = VGG16_BLOCKS,
                 fc_filters: int = 4096, fc_kernel: int = 7, encoder_width: float = 1.0,
                 decoder_width: float = 1.0, batchnorm: bool = True, bn_momentum: float = 0.99,
                 pool_padding: str = "same", mean: Sequence[float] = DECONVNET_BGR_MEAN,
                 **unused):
        super().__init__()
        family = unused.pop("family", "deconvnet")
        unused.pop("description", None)
        if family != "deconvnet" or unused:
            raise ValueError(f"DeconvNetTorch builds the deconvnet family only (got family "
                             f"{family!r}, unknown fields {sorted(unused)})")
        self.blocks = [(int(f), int(n)) for f, n in blocks]
        enc = [_scale(f, encoder_width) for f, _ in self.blocks]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.ceil_mode = pool_padding == "same"
        self.layers = nn.ModuleDict()
        momentum = 1.0 - float(bn_momentum)

        def block(name, module, channels):
            self.layers[name] = module
            if batchnorm:
                self.layers[f"{name}_bn"] = nn.BatchNorm2d(channels, eps=1e-3, momentum=momentum)

        channels = 3
        for i, ((_, convs), filters) in enumerate(zip(self.blocks, enc), start=1):
            for j in range(1, convs + 1):
                block(f"block{i}_conv{j}", nn.Conv2d(channels, filters, 3, padding=1), filters)
                channels = filters
        block("fc6", nn.Conv2d(channels, fc_filters, fc_kernel), fc_filters)
        block("fc7", nn.Conv2d(fc_filters, fc_filters, 1), fc_filters)
        block("fc6_deconv", nn.ConvTranspose2d(fc_filters, enc[-1], fc_kernel), enc[-1])
        channels = enc[-1]
        self.decoder = []
        for i in range(len(self.blocks), 0, -1):
            convs = self.blocks[i - 1][1]
            inner = _scale(self.blocks[i - 1][0], encoder_width * decoder_width)
            last = enc[i - 2] if i > 1 else enc[0]
            names = []
            for j, filters in enumerate([inner] * (convs - 1) + [last], start=1):
                name = f"block{i}_deconv{j}"
                block(name, nn.ConvTranspose2d(channels, filters, 3, padding=1), filters)
                channels = filters
                names.append(name)
            self.decoder.append((i, names))
        self.layers["score"] = nn.Conv2d(channels, num_classes, 1)
        self.batchnorm = bool(batchnorm)
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=self.ceil_mode, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)

    def _conv_bn_relu(self, name: str, x: torch.Tensor) -> torch.Tensor:
        x = self.layers[name](x)
        if self.batchnorm:
            x = self.layers[f"{name}_bn"](x)
        return torch.relu(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes, H, W)`` of raw RGB images ``(N, 3, H, W)`` in 0..255."""
        x = images.float().flip(1) - self.mean
        switches = []
        for i, (_, convs) in enumerate(self.blocks, start=1):
            for j in range(1, convs + 1):
                x = self._conv_bn_relu(f"block{i}_conv{j}", x)
            size = x.shape[-2:]
            x, indices = self.pool(x)
            switches.append((indices, size))
        x = self._conv_bn_relu("fc6", x)
        x = self._conv_bn_relu("fc7", x)
        x = self._conv_bn_relu("fc6_deconv", x)
        for i, names in self.decoder:
            indices, size = switches[i - 1]
            x = self.unpool(x, indices, output_size=size)
            for name in names:
                x = self._conv_bn_relu(name, x)
        return self.layers["score"](x).float()


def keras_param_count(model: nn.Module) -> int:
    """Parameters as Keras counts them: weights plus BatchNorm's running mean and variance."""
    params = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for name, b in model.named_buffers()
                if name.endswith(("running_mean", "running_var")))
    return params + stats


def load_keras_weights(model: DeconvNetTorch, weights: Mapping[str, np.ndarray]) -> None:
    """Copies Keras weights (``{"<layer>/<weight>": array}``, e.g. from an ``.npz``) in.

    Conv2D kernels ``(kh, kw, in, out)`` become ``(out, in, kh, kw)``; Conv2DTranspose
    kernels ``(kh, kw, out, in)`` become ``(in, out, kh, kw)``; BatchNorm ``gamma``, ``beta``,
    ``moving_mean``, ``moving_variance`` go to ``weight``, ``bias``, ``running_mean``,
    ``running_var``.

    Raises:
        KeyError: If a layer of the model has no weights in ``weights``.
    """
    with torch.no_grad():
        for name, module in model.layers.items():
            def get(key):
                return torch.from_numpy(np.asarray(weights[f"{name}/{key}"], np.float32))

            if isinstance(module, nn.ConvTranspose2d):
                module.weight.copy_(get("kernel").permute(3, 2, 0, 1))
                module.bias.copy_(get("bias"))
            elif isinstance(module, nn.Conv2d):
                module.weight.copy_(get("kernel").permute(3, 2, 0, 1))
                module.bias.copy_(get("bias"))
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(get("gamma"))
                module.bias.copy_(get("beta"))
                module.running_mean.copy_(get("moving_mean"))
                module.running_var.copy_(get("moving_variance"))
