"""RNN, GRU and LSTM: one direction at a time, one matmul for every time step's input
projection, then the recurrence step by step.

Variable-length batches (sequence_lens): steps past a sequence's end leave its state
unchanged and output zeros; a reverse direction reads each sequence backwards from its own
last step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgefw.errors import ShapeError
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel

_DEFAULTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
# (alpha, beta) defaults of the parametric activations.
_PARAMS = {"Affine": (1.0, 0.0), "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None),
           "ScaledTanh": (1.0, 1.0), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, None)}


def activation(name: str, alpha: float | None, beta: float | None
               ) -> Callable[[np.ndarray], np.ndarray]:
    a, b = _PARAMS.get(name, (None, None))
    a = a if alpha is None else alpha
    b = b if beta is None else beta
    table = {
        "Relu": lambda x: np.maximum(x, 0),
        "Tanh": np.tanh,
        "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "Affine": lambda x: a * x + b,
        "LeakyRelu": lambda x: np.where(x >= 0, x, a * x),
        "ThresholdedRelu": lambda x: np.where(x > a, x, 0),
        "ScaledTanh": lambda x: a * np.tanh(b * x),
        "HardSigmoid": lambda x: np.clip(a * x + b, 0, 1),
        "Elu": lambda x: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1)),
        "Softsign": lambda x: x / (1 + np.abs(x)),
        "Softplus": lambda x: np.logaddexp(0, x),
    }
    return table[name]


def _activations(ctx: KernelContext, op: str, dirs: int) -> list[list[Callable]]:
    """Per direction, the op's activation functions (f, g[, h])."""
    names = ctx.attr("activations") or _DEFAULTS[op] * dirs
    per = len(_DEFAULTS[op])
    if len(names) == per and dirs == 2:
        names = names * 2
    if len(names) != per * dirs:
        raise ShapeError(f"{op} needs {per * dirs} activations, got {names}")
    alphas = list(ctx.attr("activation_alpha") or [])
    betas = list(ctx.attr("activation_beta") or [])
    fns = []
    for name in names:
        # alpha/beta lists hold values only for the activations that take them, in order.
        takes = name in _PARAMS
        alpha = alphas.pop(0) if takes and alphas else None
        beta = betas.pop(0) if takes and _PARAMS[name][1] is not None and betas else None
        fns.append(activation(name, alpha, beta))
    return [fns[d * per:(d + 1) * per] for d in range(dirs)]


def _reverse_within(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """x [seq, batch, ...] with each batch entry's first lengths[b] steps reversed."""
    seq = x.shape[0]
    t = np.arange(seq)[:, None]
    source = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
    return x[source, np.arange(x.shape[1])[None, :]]


@cpu_kernel("RNN", since=14)
@cpu_kernel("GRU", since=14)
@cpu_kernel("LSTM", since=14)
def recurrent(ctx: KernelContext) -> Kernel:
    op = ctx.node.op_type
    direction = ctx.attr("direction")
    dirs = 2 if direction == "bidirectional" else 1
    layout = int(ctx.attr("layout"))
    clip = ctx.attr("clip")
    gates = _GATES[op]
    fns = _activations(ctx, op, dirs)
    before_reset = bool(ctx.attr("linear_before_reset")) if op == "GRU" else False
    couple = bool(ctx.attr("input_forget")) if op == "LSTM" else False
    n_outputs = len(ctx.node.outputs)

    def recurrent_(x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None, p=None):
        if layout:
            x = x.transpose(1, 0, 2)
        seq, batch, _ = x.shape
        hidden = r.shape[-1]
        if w.shape[0] != dirs or w.shape[1] != gates * hidden:
            raise ShapeError(f"{op} W {list(w.shape)} must be [{dirs}, {gates} * hidden, input]")
        lengths = np.full(batch, seq, np.int64) if sequence_lens is None else \
            sequence_lens.reshape(-1).astype(np.int64)
        if lengths.size != batch or lengths.min(initial=0) < 0 or lengths.max(initial=0) > seq:
            raise ShapeError(f"{op} sequence_lens {lengths.tolist()} must give {batch} lengths "
                             f"in [0, {seq}]")
        active = (np.arange(seq)[:, None] < lengths[None, :])[..., None]  # [seq, batch, 1]
        dtype = x.dtype
        ys, hs, cs = [], [], []
        for d in range(dirs):
            reverse = direction == "reverse" or d == 1
            xd = _reverse_within(x, lengths) if reverse else x
            bias = np.zeros(2 * gates * hidden, dtype) if b is None else b[d]
            wb, rb = bias[:gates * hidden], bias[gates * hidden:]
            projected = xd @ w[d].T + wb  # [seq, batch, gates * hidden], all steps at once
            h = np.zeros((batch, hidden), dtype) if initial_h is None else initial_h[d]
            c = np.zeros((batch, hidden), dtype) if initial_c is None else initial_c[d]
            peep = np.zeros(3 * hidden, dtype) if p is None else p[d]
            out = np.zeros((seq, batch, hidden), dtype)
            f = fns[d]
            for t in range(seq):
                g = projected[t]
                recur = h @ r[d].T + rb
                if op == "RNN":
                    pre = g + recur
                    h_new = f[0](np.clip(pre, -clip, clip) if clip else pre)
                    c_new = c
                elif op == "GRU":
                    zr = g[:, :2 * hidden] + recur[:, :2 * hidden]
                    zr = f[0](np.clip(zr, -clip, clip) if clip else zr)
                    z, rst = zr[:, :hidden], zr[:, hidden:]
                    if before_reset:
                        cand = g[:, 2 * hidden:] + rst * recur[:, 2 * hidden:]
                    else:
                        cand = g[:, 2 * hidden:] + (rst * h) @ r[d][2 * hidden:].T \
                            + rb[2 * hidden:]
                    cand = f[1](np.clip(cand, -clip, clip) if clip else cand)
                    h_new = (1 - z) * cand + z * h
                    c_new = c
                else:
                    pre = g + recur
                    if clip:
                        pre = np.clip(pre, -clip, clip)
                    i_pre, o_pre, f_pre, c_pre = np.split(pre, 4, axis=1)
                    i = f[0](i_pre + peep[:hidden] * c)
                    fg = 1 - i if couple else f[0](f_pre + peep[2 * hidden:] * c)
                    c_new = fg * c + i * f[1](c_pre)
                    o = f[0](o_pre + peep[hidden:2 * hidden] * c_new)
                    h_new = o * f[2](c_new)
                live = active[t]
                h = np.where(live, h_new, h).astype(dtype)
                c = np.where(live, c_new, c).astype(dtype)
                out[t] = np.where(live, h, 0)
            ys.append(_reverse_within(out, lengths) if reverse else out)
            hs.append(h)
            cs.append(c)
        y = np.stack(ys, axis=1)  # [seq, dirs, batch, hidden]
        y_h, y_c = np.stack(hs), np.stack(cs)
        if layout:
            y, y_h, y_c = y.transpose(2, 0, 1, 3), y_h.transpose(1, 0, 2), y_c.transpose(1, 0, 2)
        outs = (y, y_h, y_c)[:n_outputs]
        return outs[0] if n_outputs == 1 else tuple(np.ascontiguousarray(o) for o in outs)

    return recurrent_
