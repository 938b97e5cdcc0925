"""A hand-written numpy forward pass and deconvnet of the AlexNet topology, one image at a time.

Independent of JAX's autodiff: the deconvnet is written as Zeiler & Fergus describe it
(2014, §2.1): unpool with the switches recorded on the way up (the first maximum of each window
in row-major order, Caffe's strict `>` scan), rectify, and filter with the transposed filters,
written as a convolution of the zero-upsampled signal with the spatially flipped kernels whose
input and output channels are swapped. LRN's backward pass is its derivative worked by hand:
for ``b_c = a_c · s_c^(−β)``, ``s_c = k + α/n · Σ_{c' ∈ W(c)} a_c'²``,
``∂L/∂a_j = g_j · s_j^(−β) − (2αβ/n) · a_j · Σ_{c : j ∈ W(c)} g_c · a_c · s_c^(−β−1)``.
"""

import numpy as np


def conv(x_HWC, kernel_HWIO, *, stride, padding, groups):
    """Caffe's grouped cross-correlation of one image, by explicit windows."""
    k = kernel_HWIO.shape[0]
    xp = np.pad(x_HWC, ((padding, padding), (padding, padding), (0, 0)))
    oh = (xp.shape[0] - k) // stride + 1
    ow = (xp.shape[1] - k) // stride + 1
    cin, cout = kernel_HWIO.shape[2], kernel_HWIO.shape[3]
    out = np.zeros((oh, ow, cout))
    for g in range(groups):
        ks = kernel_HWIO[..., g * (cout // groups) : (g + 1) * (cout // groups)]
        xs = xp[..., g * cin : (g + 1) * cin]
        for i in range(oh):
            for j in range(ow):
                win = xs[i * stride : i * stride + k, j * stride : j * stride + k]
                out[i, j, g * (cout // groups) : (g + 1) * (cout // groups)] = np.tensordot(
                    win, ks, axes=3
                )
    return out


def transposed_conv(g_HWC, kernel_HWIO, *, stride, padding, groups, in_hw):
    """Filter the signal with the transposed filters: insert stride−1 zeros between entries,
    pad by k−1−p, correlate with the flipped kernel (in/out channels swapped), then zero-pad the
    bottom/right rows the forward stride skipped."""
    k = kernel_HWIO.shape[0]
    oh, ow, _ = g_HWC.shape
    up = np.zeros(((oh - 1) * stride + 1, (ow - 1) * stride + 1, g_HWC.shape[2]))
    up[::stride, ::stride] = g_HWC
    flipped = kernel_HWIO[::-1, ::-1].transpose(0, 1, 3, 2)  # [k, k, C_out, C_in / groups]
    cin_g, cout = kernel_HWIO.shape[2], kernel_HWIO.shape[3]
    cout_g = cout // groups
    pieces = []
    for grp in range(groups):
        kg = flipped[:, :, grp * cout_g : (grp + 1) * cout_g, :]  # [k, k, cout_g, cin_g]
        sg = up[..., grp * cout_g : (grp + 1) * cout_g]
        pieces.append(conv(sg, kg, stride=1, padding=k - 1 - padding, groups=1))
    out = np.concatenate(pieces, axis=-1)
    full = np.zeros((*in_hw, cin_g * groups))
    full[: out.shape[0], : out.shape[1]] = out[: in_hw[0], : in_hw[1]]
    return full


def pool(x_HWC, window, stride):
    """Ceil-mode max pooling; returns (out, switches [OH, OW, C, 2]) with the first maximum in
    row-major order (strict `>` while scanning the window)."""
    h, w, c = x_HWC.shape
    oh = int(np.ceil((h - window) / stride)) + 1
    ow = int(np.ceil((w - window) / stride)) + 1
    out = np.full((oh, ow, c), -np.inf)
    switch = np.zeros((oh, ow, c, 2), int)
    for i in range(oh):
        for j in range(ow):
            for y in range(i * stride, min(i * stride + window, h)):
                for x in range(j * stride, min(j * stride + window, w)):
                    better = x_HWC[y, x] > out[i, j]
                    out[i, j] = np.where(better, x_HWC[y, x], out[i, j])
                    switch[i, j, better] = (y, x)
    return out, switch


def unpool(g_HWC, switch, in_shape):
    out = np.zeros(in_shape)
    oh, ow, c = g_HWC.shape
    for i in range(oh):
        for j in range(ow):
            for ch in range(c):
                y, x = switch[i, j, ch]
                out[y, x, ch] += g_HWC[i, j, ch]
    return out


def lrn(x, size, alpha, beta, k):
    c, half = x.shape[-1], size // 2
    s = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - half), min(c, ch - half + size)
        s[..., ch] = k + alpha / size * np.sum(x[..., lo:hi] ** 2, axis=-1)
    return x * s**-beta, s


def lrn_backward(g, a, s, size, alpha, beta):
    c, half = a.shape[-1], size // 2
    t = g * a * s ** (-beta - 1)
    out = g * s**-beta
    for j in range(c):
        users = [ch for ch in range(c) if max(0, ch - half) <= j < min(c, ch - half + size)]
        out[..., j] -= 2 * alpha * beta / size * a[..., j] * np.sum(t[..., users], axis=-1)
    return out


def forward(config, params, x_HWC):
    """(taps, records for the backward pass) of one image."""
    taps, records, x = {}, [], np.asarray(x_HWC, np.float64) * config.input_scale
    names = ("conv1", "conv2", "conv3", "conv4", "conv5")
    for name, layer in zip(names, config.convs, strict=True):
        kernel = np.asarray(params[name]["kernel"], np.float64)
        bias = np.asarray(params[name]["bias"], np.float64)
        pre = conv(x, kernel, stride=layer.stride, padding=layer.padding, groups=layer.groups)
        records.append(("conv", name, layer, x.shape[:2]))
        pre = pre + bias
        records.append(("relu", pre))
        x = np.maximum(pre, 0)
        if layer.pool:
            shape = x.shape
            x, switch = pool(x, config.pool_window, config.pool_stride)
            records.append(("pool", switch, shape))
        if layer.lrn:
            a = x
            x, s = lrn(a, config.lrn_size, config.lrn_alpha, config.lrn_beta, config.lrn_k)
            records.append(("lrn", a, s))
        taps[name] = x
        records.append(("tap", name))
    shape = x.shape
    x = x.reshape(-1)
    records.append(("flatten", shape))
    for name in ("fc6", "fc7"):
        pre = x @ np.asarray(params[name]["kernel"], np.float64) + np.asarray(params[name]["bias"])
        records.append(("dense", name))
        records.append(("relu", pre))
        x = np.maximum(pre, 0)
        taps[name] = x
        records.append(("tap", name))
    return taps, records


def deconvnet(config, params, x_HWC, *, layer, channel, rule="deconv", lrn_rule="vjp"):
    """Projection of the strongest activation of `channel` in `layer` (first in row-major
    order) to the input, by the deconvnet (`rule="deconv"`) or guided backpropagation."""
    taps, records = forward(config, params, x_HWC)
    act = taps[layer]
    g = np.zeros_like(act)
    if act.ndim == 1:
        g[channel] = act[channel]
    else:
        y, x = np.unravel_index(np.argmax(act[..., channel]), act.shape[:2])
        g[y, x, channel] = act[y, x, channel]
    start = records.index(("tap", layer))
    for rec in reversed(records[:start]):
        kind = rec[0]
        if kind == "lrn":
            if lrn_rule == "vjp":
                g = lrn_backward(g, rec[1], rec[2], config.lrn_size, config.lrn_alpha,
                                 config.lrn_beta)  # fmt: skip
        elif kind == "pool":
            g = unpool(g, rec[1], rec[2])
        elif kind == "relu":
            g = np.maximum(g, 0) if rule == "deconv" else np.maximum(g, 0) * (rec[1] > 0)
        elif kind == "conv":
            _, name, lay, in_hw = rec
            g = transposed_conv(
                g, np.asarray(params[name]["kernel"], np.float64),
                stride=lay.stride, padding=lay.padding, groups=lay.groups, in_hw=in_hw,
            )  # fmt: skip
        elif kind == "dense":
            g = np.asarray(params[rec[1]]["kernel"], np.float64) @ g
        elif kind == "flatten":
            g = g.reshape(rec[1])
    return g * config.input_scale
