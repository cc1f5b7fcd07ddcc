"""Quantization-aware training: fake-quantize an nn model, fine-tune it with ``fit()``, and
convert it to the same QDQ graph form the PTQ path produces.

1. :func:`prepare_qat` copies the model, traces the copy once to see its data flow, then
   swaps modules: every Conv2d/Linear (Keras Dense too) becomes a :class:`QATConv2d` /
   :class:`QATLinear` with a BatchNorm that follows it folded in, a Relu/ReLU6 that follows
   it absorbed (the fake-quant comes *after* the activation), per-channel (or per-tensor)
   symmetric int8 weights and an EMA-ranged activation fake-quant. A layer whose input is
   not already a fake-quantized tensor (the model input, the output of an average pool or
   an Add) also fake-quantizes its input. The folded BatchNorm and absorbed activation
   modules become Identity.
2. Fine-tune with ``model.compile(...); model.fit(...)`` — usually one epoch at a lower
   learning rate. Gradients pass the fake-quant ops straight through inside the range.
3. :func:`convert_qat` traces the fine-tuned model (fake-quant ops are written as
   ``QuantizeLinear -> DequantizeLinear``) and rewrites the graph to the QDQ contract:
   int8 weight constants, int32 biases at ``input_scale * weight_scale``, no Relu/Clip left
   after a DequantizeLinear that already bounds the range, and Q/DQ pairs extended through
   data movement (MaxPool, Flatten, ...) so every quantized op reads a DequantizeLinear.
   The runtime's output matches the fake-quant model's eager output within one
   quantization step.

:func:`save_qat` / :func:`load_qat` keep a fine-tuned QAT model in an edgefw checkpoint.

    >>> import numpy as np, quantize
    >>> from edgefw import models
    >>> qat = quantize.prepare_qat(models.build("lenet"))
    >>> type(qat.features[0]).__name__, qat.features[0].activation, type(qat.features[1]).__name__
    ('QATConv2d', 'relu', 'Identity')
    >>> x = np.random.default_rng(0).random((8, 1, 28, 28), np.float32)
    >>> _ = qat(x)  # training mode: the activation ranges observe this batch
    >>> graph = quantize.convert_qat(qat)
    >>> graph.value("features.0.weight.quantized").dtype
    'int8'
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefw.errors import CheckpointError, EdgeFWError, QuantizationError
from edgefw.ir import Graph
from edgefw.ir.graph import Node, Value, constant_data
from edgefw.nn.module import Module
from quantize.fake_quant import (
    ABSORBED_ACTIVATIONS,
    DEFAULT_EMA_MOMENTUM,
    ActivationFakeQuant,
    QATConv2d,
    QATLinear,
)
from quantize.qdq import _dequantized_constant, insert_qdq
from quantize.qparams import QParams, check_activation_dtype, qrange, quantize_array, quantize_bias

#: Ops that move or select values: a fake-quantized tensor stays on its grid through them.
DATA_MOVEMENT_OPS = ("MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
                     "Identity")
# Training-state entries of a compiled model that a QAT copy must not share.
_TRAINING_STATE = ("_loss", "_metrics", "_optimizer", "_optimizer_factory", "history",
                   "checkpoint_extra", "_pending_optimizer_state")
_CHECKPOINT_KEY = "qat"


# ---------------------------------------------------------------------------- prepare
@dataclass
class _Group:
    """A weighted node and what prepare_qat folds into its QAT layer."""

    path: str
    node: Node
    bn_path: str | None = None
    activation: str | None = None
    activation_path: str | None = None  # an activation module that becomes Identity
    quantize_input: bool = False


def prepare_qat(model: Module, per_channel: bool = True, activation_dtype: str = "int8", *,
                example_inputs: Any = None,
                momentum: float = DEFAULT_EMA_MOMENTUM) -> Module:
    """A copy of float ``model`` with BatchNorm folded and fake quantization inserted (see
    the module docstring); ``model`` itself is unchanged.

    ``example_inputs``: an input batch (or a tuple of them) to trace the data flow with; zoo
    models, models trained with ``fit`` and Keras-style Sequential models whose first layer
    has an ``input_shape`` know their input shape and need none.
    ``momentum``: weight of each batch in the moving average of activation ranges.

    >>> from edgefw import models
    >>> qat = prepare_qat(models.build("mlp"), per_channel=False)
    >>> [type(m).__name__ for m in qat]
    ['Flatten', 'QATLinear', 'Identity', 'QATLinear']
    >>> qat[1].input_quant is not None, qat[3].input_quant is None
    (True, True)
    """
    import edgefw

    if not isinstance(model, Module):
        raise QuantizationError(f"prepare_qat takes an edgefw Module, got "
                                f"{type(model).__name__}")
    if not isinstance(per_channel, bool):
        raise QuantizationError(f"per_channel must be True or False, got {per_channel!r}")
    check_activation_dtype(activation_dtype)
    if "_qat_config" in model.__dict__ or any(isinstance(m, QATConv2d | QATLinear)
                                              for m in model.modules()):
        raise QuantizationError(f"{type(model).__name__} is already prepared for QAT")
    examples = _example_inputs(model, example_inputs)
    qat = _training_free_copy(model)
    with edgefw.no_grad():  # builds lazily sized layers before the trace
        qat.eval()
        qat(*examples)
    try:
        graph = edgefw.trace(qat, examples if len(examples) > 1 else examples[0])
    except EdgeFWError as exc:
        raise QuantizationError(f"prepare_qat traces the model to find its layers and "
                                f"failed: {exc}") from exc
    modules = dict(qat.named_modules())
    groups = _plan_groups(graph, modules)
    for g in groups:
        qat = _replace(qat, g.path, _qat_layer(modules, g, per_channel, activation_dtype,
                                                momentum))
        for path in (g.bn_path, g.activation_path):
            if path is not None:
                qat = _replace(qat, path, _identity())
    qat.train(model.training)
    qat.__dict__["_qat_config"] = {
        "per_channel": per_channel, "activation_dtype": activation_dtype,
        "momentum": momentum,
        "input_shapes": [list(x.shape[1:]) for x in examples],
        "input_dtypes": [str(x.dtype) for x in examples],
        "layers": [{"layer": g.path, "op_type": g.node.op_type, "batch_norm": g.bn_path,
                    "activation": g.activation, "quantize_input": g.quantize_input}
                   for g in groups]}
    return qat


def _example_inputs(model: Module, example_inputs: Any) -> list[np.ndarray]:
    if example_inputs is not None:
        items = example_inputs if isinstance(example_inputs, tuple | list) else (example_inputs,)
        arrays = [np.asarray(getattr(x, "data", x)) for x in items]
        if any(a.ndim == 0 for a in arrays):
            raise QuantizationError(f"example_inputs must be batches (rank >= 1), got shapes "
                                    f"{[a.shape for a in arrays]}")
        return [a.astype(np.float32) if a.dtype == np.float64 else a for a in arrays]
    zoo = model.__dict__.get("_zoo_spec")
    shape = None
    if zoo is not None:
        from edgefw import models

        shape = models.INPUT_SHAPES.get(zoo["name"])
    shape = shape or model.__dict__.get("_input_sample_shape")
    if shape is None and getattr(model, "layers", None):  # Keras: the first layer's input_shape
        shape = getattr(model.layers[0], "input_shape", None)
    if shape is None:
        raise QuantizationError(f"prepare_qat needs example_inputs for "
                                f"{type(model).__name__} (a batch of the model's input, e.g. "
                                f"np.zeros((1, 1, 28, 28), np.float32)) to trace its layers")
    return [np.zeros((1,) + tuple(shape), np.float32)]


def _training_free_copy(model: Module) -> Module:
    """A deep copy without the compiled optimizer, loss and history (compile the copy)."""
    memo = {id(model.__dict__[k]): None for k in _TRAINING_STATE if k in model.__dict__}
    qat = copy.deepcopy(model, memo)
    for key in _TRAINING_STATE:
        qat.__dict__.pop(key, None)
    return qat


def _identity() -> Module:
    from edgefw import nn

    return nn.Identity()


def _replace(root: Module, path: str, new: Module) -> Module:
    """Put ``new`` at ``path`` keeping the parent's child order; returns the (new) root."""
    if not path:
        return new
    parent_path, _, name = path.rpartition(".")
    parent = dict(root.named_modules())[parent_path]
    parent._modules[name] = new  # in place: Sequential runs children in this order
    object.__setattr__(parent, name, new)
    return root


def _weighted_module(module: Any) -> bool:
    from edgefw import nn

    return isinstance(module, nn.Conv2d | nn.Linear | nn.Dense)


def _plan_groups(graph: Graph, modules: dict[str, Module]) -> list[_Group]:
    """The layers to swap, read from the traced float graph: which module computes each
    Conv/Gemm, what follows it, and whether its input is already fake-quantized."""
    from edgefw.nn.layers import _BatchNorm

    per_module = Counter(n.module_path for n in graph.nodes)
    groups: list[_Group] = []
    quantized: set[int] = set()  # ids of values a QAT layer's output fake-quant produces
    for node in graph.nodes:
        if node.op_type in DATA_MOVEMENT_OPS and node.inputs and id(node.inputs[0]) in quantized:
            quantized.add(id(node.output))
            continue
        path = node.module_path or ""
        module = modules.get(path)
        weight_name = f"{path}.weight" if path else "weight"
        if node.op_type not in ("Conv", "Gemm") or not _weighted_module(module) \
                or node.inputs[1].name != weight_name or not node.inputs[1].is_constant \
                or sum(1 for n in graph.nodes if n.module_path == node.module_path
                       and n.op_type in ("Conv", "Gemm")) != 1:
            continue  # stays float: not a layer we can swap (shared, functional, ...)
        if node.op_type == "Gemm" and (not node.attr("transB") or node.attr("transA")):
            continue
        group = _Group(path, node, quantize_input=id(node.inputs[0]) not in quantized)
        out = node.output
        follower = _only_reader(graph, out)
        if follower is not None and follower.op_type == "BatchNormalization" \
                and isinstance(modules.get(follower.module_path or ""), _BatchNorm) \
                and modules[follower.module_path].track_running_stats \
                and per_module[follower.module_path] == 1:
            group.bn_path, out = follower.module_path, follower.output
            follower = _only_reader(graph, out)
        activation = _absorbable(follower)
        if activation is not None:
            group.activation, out = activation, follower.output
            act_path = follower.module_path or ""
            from edgefw import nn

            if isinstance(modules.get(act_path), nn.ReLU | nn.ReLU6) \
                    and per_module[act_path] == 1 and not act_path.startswith(path + "."):
                group.activation_path = act_path
        quantized.add(id(out))
        groups.append(group)
    return groups


def _only_reader(graph: Graph, value: Value) -> Node | None:
    readers = graph.consumers(value)
    if len(readers) != 1 or graph.is_output(value):
        return None
    return readers[0]


def _absorbable(node: Node | None) -> str | None:
    """"relu" / "relu6" when ``node`` is a Relu or a Clip(0, 6) a QAT layer can absorb."""
    if node is None:
        return None
    if node.op_type == "Relu":
        return "relu"
    if node.op_type == "Clip" and len(node.inputs) == 3 and all(
            v is not None and constant_data(v) is not None for v in node.inputs[1:]):
        lo, hi = (float(np.asarray(constant_data(v))) for v in node.inputs[1:])
        for name, bounds in ABSORBED_ACTIVATIONS.items():
            if (lo, hi) == bounds:
                return name
    return None


def _qat_layer(modules: dict[str, Module], g: _Group, per_channel: bool, dtype: str,
               momentum: float) -> Module:
    module = modules[g.path]
    weight = module.weight.data.astype(np.float64)
    bias = None if module.bias is None else module.bias.data.astype(np.float64)
    if g.bn_path is not None:
        bn = modules[g.bn_path]
        # y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta, folded into the weights.
        scale = bn.weight.data.astype(np.float64) / np.sqrt(
            bn.running_var.astype(np.float64) + bn.eps)
        weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
        bias = ((0.0 if bias is None else bias) - bn.running_mean.astype(np.float64)) * scale \
            + bn.bias.data.astype(np.float64)
    options = dict(activation=g.activation, quantize_input=g.quantize_input,
                   per_channel=per_channel, activation_dtype=dtype, momentum=momentum)
    if g.node.op_type == "Conv":
        return QATConv2d(weight, bias, module.stride, module.padding, module.dilation,
                         module.groups, **options)
    return QATLinear(weight, bias, **options)


def qat_config(model: Module) -> dict[str, Any]:
    """What :func:`prepare_qat` recorded on ``model`` (QuantizationError if it did not)."""
    config = model.__dict__.get("_qat_config") if isinstance(model, Module) else None
    if config is None:
        raise QuantizationError(f"{type(model).__name__} was not prepared for "
                                "quantization-aware training; call quantize.prepare_qat(model)")
    return config


# ---------------------------------------------------------------------------- convert
def convert_qat(model: Module, example_inputs: Any = None) -> Graph:
    """The QDQ graph of a fine-tuned QAT model (see the module docstring): int8 weights,
    int32 biases, per-tensor activation Q/DQ from the trained ranges.

    ``example_inputs`` defaults to zeros of the shape the model was prepared with.
    """
    import edgefw

    config = qat_config(model)
    unobserved = [name for name, m in model.named_modules()
                  if isinstance(m, ActivationFakeQuant) and not m.observed]
    if unobserved:
        raise QuantizationError(f"activation ranges {unobserved[:3]} have seen no data; run "
                                "the QAT model on training batches (fit) before converting")
    if example_inputs is None:
        example_inputs = tuple(np.zeros([1] + shape, dtype) for shape, dtype in
                               zip(config["input_shapes"], config["input_dtypes"]))
        example_inputs = example_inputs[0] if len(example_inputs) == 1 else example_inputs
    try:
        graph = edgefw.trace(model, example_inputs)
    except EdgeFWError as exc:
        raise QuantizationError(f"convert_qat could not trace the QAT model: {exc}") from exc
    weights = _fold_weight_quantization(graph)
    biases = _quantize_biases(graph)
    dropped = _drop_bounded_activations(graph)
    _extend_through_data_movement(graph)
    graph.remove_unused_constants()
    graph.check()
    graph.metadata["quantization"] = json.dumps({
        "mode": "qat", "weight_dtype": "int8", "activation_dtype": config["activation_dtype"],
        "per_channel": config["per_channel"], "quantized_weights": weights,
        "int32_biases": biases, "absorbed_activations": dropped,
        "layers": config["layers"]}, sort_keys=True)
    return graph


def _fold_weight_quantization(graph: Graph) -> list[str]:
    """``QuantizeLinear(float constant)`` -> an integer constant ``<name>.quantized``."""
    done = []
    for q in [n for n in graph.nodes if n.op_type == "QuantizeLinear"]:
        weight, scale, zero_point = q.inputs[0], q.inputs[1], q.inputs[2]
        if not weight.is_constant:
            continue
        axis = q.attrs.get("axis")
        zp = constant_data(zero_point)
        params = QParams(constant_data(scale), zp, str(zp.dtype), axis)
        codes = graph.add_constant(f"{weight.name}.quantized", quantize_array(weight.data, params),
                                   quant=q.output.quant)
        for reader in graph.consumers(q.output):
            reader.inputs = [codes if v is q.output else v for v in reader.inputs]
        graph.remove_node(q)
        for value, suffix in ((scale, "scale"), (zero_point, "zero_point")):
            name = f"{weight.name}.{suffix}"
            if not graph.has_value(name):
                graph.rename_value(value, name)
        done.append(weight.name)
    return done


def _activation_params(graph: Graph, value: Value | None) -> QParams | None:
    """Per-tensor parameters when ``value`` is a DequantizeLinear of a non-constant."""
    node = None if value is None else value.producer
    if node is None or node.op_type != "DequantizeLinear" or node.inputs[0].is_constant:
        return None
    scale, zp = (constant_data(v) if v is not None else None for v in node.inputs[1:3])
    if scale is None or zp is None or np.ndim(scale) != 0:
        return None
    return QParams(np.asarray(scale, np.float32), np.asarray(zp), str(zp.dtype))


def _quantize_biases(graph: Graph) -> list[str]:
    """Float Conv/Gemm biases -> int32 at ``input_scale * weight_scale`` (zero point 0)."""
    done = []
    for node in [n for n in graph.nodes if n.op_type in ("Conv", "Gemm")]:
        if len(node.inputs) < 3 or node.inputs[2] is None or not node.inputs[2].is_constant:
            continue
        x_params = _activation_params(graph, node.inputs[0])
        w_node = node.inputs[1].producer
        if x_params is None or w_node is None or w_node.op_type != "DequantizeLinear" \
                or not w_node.inputs[0].is_constant:
            continue
        bias_value = node.inputs[2]
        weight_scale = constant_data(w_node.inputs[1])
        bias = bias_value.data.astype(np.float64).reshape(-1)
        try:
            q_bias, bias_scale = quantize_bias(bias, float(x_params.scale), weight_scale)
        except QuantizationError:
            continue  # does not fit int32: the float bias stays (still a valid QDQ group)
        zero = np.zeros(bias_scale.shape, np.int32)
        node.inputs[2] = _dequantized_constant(graph, node, bias_value.name, q_bias, bias_scale,
                                               zero, 0 if bias_scale.ndim else None)
        done.append(bias_value.name)
    return done


def _drop_bounded_activations(graph: Graph) -> list[str]:
    """Remove a Relu / Clip(0, hi) that reads a DequantizeLinear whose codes already lie in
    its range (the QAT layer applied it before its output fake-quant; a functional
    activation in the model's forward then repeats it). Values move by < half a step."""
    dropped = []
    for node in [n for n in graph.nodes if n.op_type in ("Relu", "Clip")]:
        params = _activation_params(graph, node.inputs[0])
        if params is None:
            continue
        qmin, qmax = qrange(params.dtype)
        scale, zp = float(params.scale), int(params.zero_point)
        lo, hi = (qmin - zp) * scale, (qmax - zp) * scale
        bounds = _absorbable(node)
        if bounds is None or lo < 0.0:
            continue
        clip_max = ABSORBED_ACTIVATIONS[bounds][1]
        if clip_max is not None and hi > clip_max + scale / 2:
            continue
        graph.replace_all_uses(node.output, node.inputs[0])
        graph.remove_node(node)
        dropped.append(node.name)
    return dropped


def _extend_through_data_movement(graph: Graph) -> None:
    """Give every data-movement op a Q/DQ on both sides with the same parameters, so the
    runtime sees ``DQ -> op -> Q`` (it then moves the integers) and every quantized op
    reads a DequantizeLinear. Exact: these ops commute with a monotonic quantizer."""
    for node in list(graph.nodes):  # DQ -> op -> (readers): add Q/DQ after op
        if node.op_type not in DATA_MOVEMENT_OPS or len(node.outputs) != 1:
            continue
        params = _activation_params(graph, node.inputs[0])
        readers = graph.consumers(node.output)
        if params is not None and readers and not all(r.op_type == "QuantizeLinear"
                                                      for r in readers):
            insert_qdq(graph, node.output, params)
    changed = True
    while changed:  # (float) -> op -> Q: add the same Q/DQ before op
        changed = False
        for q in [n for n in graph.nodes if n.op_type == "QuantizeLinear"]:
            op = q.inputs[0].producer
            if op is None or op.op_type not in DATA_MOVEMENT_OPS or len(op.outputs) != 1 \
                    or _only_reader(graph, q.inputs[0]) is not q:
                continue
            source = op.inputs[0]
            if _activation_params(graph, source) is not None or source.is_constant \
                    or _only_reader(graph, source) is not op:
                continue
            scale, zp = constant_data(q.inputs[1]), constant_data(q.inputs[2])
            insert_qdq(graph, source, QParams(np.asarray(scale), np.asarray(zp),
                                              str(np.asarray(zp).dtype)))
            changed = True


# ------------------------------------------------------------------------ checkpoints
def save_qat(model: Module, path: str | os.PathLike, **extra: Any) -> Path:
    """Write a QAT model to an edgefw checkpoint (with its optimizer state, as
    ``edgefw.save``); :func:`load_qat` rebuilds it."""
    import edgefw

    config = qat_config(model)
    return edgefw.save(model, path, **{_CHECKPOINT_KEY: config}, **extra)


def load_qat(path: str | os.PathLike, model: Module | None = None) -> Module:
    """The QAT model saved by :func:`save_qat`: the float architecture recorded in the
    checkpoint (or ``model``, a float model of the same architecture) is prepared again
    with the saved options, then takes the saved weights and ranges."""
    import edgefw
    from edgefw import checkpoint

    ckpt = checkpoint.read(path)
    config = ckpt.extra.get(_CHECKPOINT_KEY)
    if not isinstance(config, dict) or "input_shapes" not in config:
        raise CheckpointError(f"{path}: not a QAT checkpoint (write one with "
                              "quantize.save_qat(qat_model, path))")
    if model is None:
        model = checkpoint._rebuild(ckpt, path)
    examples = tuple(np.zeros([1] + list(s), d) for s, d in
                     zip(config["input_shapes"], config["input_dtypes"]))
    qat = prepare_qat(model, config["per_channel"], config["activation_dtype"],
                      example_inputs=examples,
                      momentum=config.get("momentum", DEFAULT_EMA_MOMENTUM))
    return edgefw.load(path, model=qat)


__all__ = ["DATA_MOVEMENT_OPS", "convert_qat", "load_qat", "prepare_qat", "qat_config",
           "save_qat"]
