"""Forms of CaffeNet's LRN and ceil-mode max pooling, timed forward + backward on one device
(used by benchmarks/accelerator.py to choose a form per platform).

- LRN: ``reduce_window`` (jaxcnn.model.alexnet.local_response_norm: a windowed sum of squares
  over channels) against ``matmul`` (the same sum as a product with a 0/1 band matrix, which can
  run on matrix units; float32 at HIGHEST precision, so it computes the same numbers).
- Max pooling: ``slices`` (jaxcnn.model.alexnet.max_pool_ceil: the maximum of window^2 strided
  slices, ~4x faster backward on CPU) against ``reduce_window`` (XLA's reduce_window max, whose
  backward is select-and-scatter).

Each form is checked against the library's form (largest absolute difference is printed).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.model import alexnet


def lrn_matmul(x_NHWC, *, size: int, alpha: float, beta: float, k: float):
    """Caffe's ACROSS_CHANNELS LRN with the window sum as a matmul with a band matrix."""
    dtype, c, half = x_NHWC.dtype, x_NHWC.shape[-1], size // 2
    idx = np.arange(c)
    # channel i contributes to output channel j when j - half <= i <= j + (size - 1 - half)
    band_CxC = (idx[:, None] >= idx[None, :] - half) & (
        idx[:, None] <= idx[None, :] + size - 1 - half
    )
    x = x_NHWC.astype(jnp.float32)
    sq_sum = jnp.einsum(
        "nhwc,cd->nhwd", x * x, jnp.asarray(band_CxC, jnp.float32), precision="highest"
    )
    return (x * (k + (alpha / size) * sq_sum) ** (-beta)).astype(dtype)


def pool_reduce_window(x_NHWC, window: int, stride: int):
    """Ceil-mode max pooling with lax.reduce_window (padding the bottom/right with -inf)."""
    _, h, w, _ = x_NHWC.shape
    oh, ow = (
        alexnet.pool_output_size(h, window, stride),
        alexnet.pool_output_size(w, window, stride),
    )
    pad_h, pad_w = (oh - 1) * stride + window - h, (ow - 1) * stride + window - w
    return jax.lax.reduce_window(
        x_NHWC,
        -jnp.inf,  # a literal init value: reduce_window is differentiable only for max with -inf
        jax.lax.max,
        (1, window, window, 1),
        (1, stride, stride, 1),
        ((0, 0), (0, pad_h), (0, pad_w), (0, 0)),
    )


def layer_inputs(config: alexnet.AlexNetConfig) -> dict:
    """Per-image input shapes of pool1, lrn1, pool2, lrn2 for `config`."""
    shapes, size = {}, config.input_size
    for i, layer in enumerate(config.convs[:2], start=1):
        size = (size + 2 * layer.padding - layer.kernel) // layer.stride + 1
        shapes[f"pool{i}"] = (size, size, layer.features)
        size = alexnet.pool_output_size(size, config.pool_window, config.pool_stride)
        shapes[f"lrn{i}"] = (size, size, layer.features)
    return shapes


def forms(config: alexnet.AlexNetConfig) -> dict:
    """{layer kind: {form name: fn(x)}}; the first form is the library's."""
    lrn = dict(size=config.lrn_size, alpha=config.lrn_alpha, beta=config.lrn_beta, k=config.lrn_k)
    win, stride = config.pool_window, config.pool_stride
    return {
        "pool": {
            "slices": lambda x: alexnet.max_pool_ceil(x, win, stride),
            "reduce_window": lambda x: pool_reduce_window(x, win, stride),
        },
        "lrn": {
            "reduce_window": lambda x: alexnet.local_response_norm(x, **lrn),
            "matmul": lambda x: lrn_matmul(x, **lrn),
        },
    }


def _timed(fn, x, w, steps: int) -> tuple[float, jax.Array]:
    """Seconds per forward + backward of `fn` at `x` (one program: the output and the gradient
    of <fn(x), w>), and the output."""

    def both(x):
        out, vjp = jax.vjp(fn, x)
        return out, vjp(w.astype(out.dtype))[0]

    both = jax.jit(both)
    out, _ = jax.block_until_ready(both(x))
    start = time.perf_counter()
    for _ in range(steps):
        result = both(x)
    jax.block_until_ready(result)
    return (time.perf_counter() - start) / steps, out


def time_forms(config, *, batch: int, dtype, steps: int, device=None) -> list[dict]:
    """Forward + backward time of every form at `config`'s pool1/lrn1/pool2/lrn2 inputs."""
    device = device or jax.local_devices()[0]
    rows, table = [], forms(config)
    rng = np.random.default_rng(0)
    for layer, shape in layer_inputs(config).items():
        kind = layer.rstrip("12")
        x = jax.device_put(jnp.asarray(rng.normal(size=(batch, *shape)), dtype), device)
        reference = None
        for name, fn in table[kind].items():
            w = jax.device_put(jnp.ones(jax.eval_shape(fn, x).shape, jnp.float32), device)
            seconds, out = _timed(fn, x, w, steps)
            out = np.asarray(out, np.float32)
            reference = out if reference is None else reference
            rows.append(
                {
                    "layer": layer,
                    "form": name,
                    "ms": 1e3 * seconds,
                    "max_abs_diff": float(np.max(np.abs(out - reference))),
                }
            )
    return rows
