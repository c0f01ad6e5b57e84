"""Vector-Jacobian products on the active Keras backend (TensorFlow, JAX or PyTorch).

The visualiser pushes a signal backwards through each *linear* step of the network (a conv, a
BatchNorm in inference mode, a pooling with its switches held fixed, a concatenation, ...). The
transpose of a linear map is its vector-Jacobian product, so one backend-neutral helper covers
them all: for a conv it is exactly the transposed convolution with the same kernel, strides and
padding; for max pooling it routes each value to the recorded maximum (the switch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

__all__ = ["vjp"]


def vjp(fn: Callable, primals: Sequence) -> tuple[list, Callable]:
    """Evaluates ``fn(*primals)`` and returns its outputs and a pull-back function.

    Args:
        fn: Maps the primal tensors to a list of output tensors.
        primals: Input tensors.

    Returns:
        ``(outputs, pullback)``: ``outputs`` is the list ``fn`` returned; ``pullback(cotangents)``
        takes one cotangent per output (``None`` for zero) and returns one cotangent per primal.
        Each pull-back may be called once.

    Raises:
        NotImplementedError: On a backend other than TensorFlow, JAX or PyTorch.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        primals = [tf.convert_to_tensor(p) for p in primals]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            for p in primals:
                tape.watch(p)
            outputs = list(fn(*primals))

        def pullback(cotangents):
            pairs = [(o, c) for o, c in zip(outputs, cotangents) if c is not None]
            grads = tape.gradient(
                [o for o, _ in pairs], primals, output_gradients=[c for _, c in pairs]
            )
            return [tf.zeros_like(p) if g is None else g for p, g in zip(primals, grads)]

        return outputs, pullback
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        outputs, pull = jax.vjp(lambda *xs: list(fn(*xs)), *primals)

        def pullback(cotangents):
            full = [jnp.zeros_like(o) if c is None else c for o, c in zip(outputs, cotangents)]
            return list(pull(full))

        return outputs, pullback
    if backend == "torch":  # pragma: no cover - torch is not installed in this project's venv
        import torch

        primals = [torch.as_tensor(p).detach().requires_grad_(True) for p in primals]
        with torch.enable_grad():
            outputs = list(fn(*primals))

        def pullback(cotangents):
            pairs = [(o, c) for o, c in zip(outputs, cotangents) if c is not None]
            grads = torch.autograd.grad(
                [o for o, _ in pairs], primals, [c for _, c in pairs], allow_unused=True
            )
            return [torch.zeros_like(p) if g is None else g for p, g in zip(primals, grads)]

        return [o.detach() for o in outputs], pullback
    raise NotImplementedError(
        f"deconvnet_tf.visualize supports the tensorflow, jax and torch backends, not {backend!r}"
    )
