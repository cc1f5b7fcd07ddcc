"""Which nodes of a float graph get quantized, which tensors get Q/DQ pairs, and why the
rest stay float.

Node kinds:

- **weighted**: Conv, Gemm and MatMul with a constant float weight: int8 weights (through
  DequantizeLinear), int32 bias, quantized input and output;
- **activation**: ops computed on quantized inputs with their own output range: Add and
  MatMul of two activations, Concat, AveragePool/GlobalAveragePool, standalone Relu/Clip;
- **pass-through**: pure data movement or monotonic ops (MaxPool, Reshape, Flatten,
  Transpose, Squeeze, Unsqueeze) whose output reuses its input's parameters; quantized when
  a neighbour is, so that the quantized chain is not broken;
- everything else stays float, with a note saying why.

The quantized tensors are the float activation inputs and the outputs of quantized nodes;
tensors linked through pass-through nodes form one group with one set of parameters.
Per-layer activation dtypes (int8, uint8, int16) come from ``layer_dtypes``; a tensor
shared by layers of different dtypes takes the widest (int16).

    >>> import numpy as np, edgefw
    >>> from edgefw import models
    >>> from edgefw.ir.passes import optimize
    >>> g = optimize(edgefw.trace(models.build("lenet"), np.zeros((1, 1, 28, 28), np.float32)))
    >>> plan = plan_quantization(g, "int8")
    >>> [plan.decisions[n.name].kind for n in g.nodes][:3]
    ['weighted', 'pass-through', 'weighted']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgefw.errors import QuantizationError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.graph import constant_data
from quantize.qparams import check_activation_dtype

if TYPE_CHECKING:
    from edgefw.ir import Graph, Node, Value

WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")
ACTIVATION_OPS = ("Add", "MatMul", "Concat", "AveragePool", "GlobalAveragePool", "Relu", "Clip")
PASS_THROUGH_OPS = ("MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze")
#: Ops left float on purpose, and why (the others get a generic note).
FLOAT_REASONS = {
    "Softmax": "Softmax stays float: its exp/normalize loses most of its precision in int8 "
               "(onnxruntime and TFLite keep it float or use a lookup table)",
    "LayerNormalization": "LayerNormalization stays float: its statistics need more than "
                          "8 bits",
    "BatchNormalization": "BatchNormalization that could not be folded into a Conv stays "
                          "float",
    "Gelu": "Gelu stays float: edgefw has no integer Gelu",
}
LAYER_KINDS = ("weighted", "activation")
#: What a layer may be set to in ``layer_dtypes``.
LAYER_SETTINGS = ("float", "int8", "uint8", "int16")


@dataclass
class NodeDecision:
    """What the quantizer does with one node: ``kind`` (weighted, activation,
    pass-through, float), its activation dtype when quantized, and why when it stays float."""

    name: str
    op_type: str
    module_path: str | None
    kind: str
    dtype: str | None = None
    reason: str = ""

    @property
    def quantized(self) -> bool:
        return self.kind != "float"

    @property
    def layer(self) -> str:
        """The name users know it by: the module path, else the node name."""
        return self.module_path or self.name


@dataclass
class QuantizationPlan:
    """Node decisions (by node name, graph order) and the quantized tensors: value name ->
    ``(dtype, group root)``, where the root is the value whose calibrated range the whole
    pass-through group uses."""

    decisions: dict[str, NodeDecision]
    tensors: dict[str, tuple[str, str]] = field(default_factory=dict)

    def layers(self) -> list[NodeDecision]:
        """The quantized nodes with parameters of their own (weighted and activation)."""
        return [d for d in self.decisions.values() if d.kind in LAYER_KINDS]

    def float_notes(self) -> dict[str, str]:
        return {d.name: d.reason for d in self.decisions.values() if d.kind == "float"}

    def calibrated_tensors(self) -> list[str]:
        """The group roots, whose ranges calibration must provide."""
        return list(dict.fromkeys(root for _, root in self.tensors.values()))


def is_float(v: Value | None) -> bool:
    return v is not None and v.dtype in FLOAT_DTYPES


def is_activation(v: Value | None) -> bool:
    """A float tensor computed at run time (not a constant)."""
    return is_float(v) and constant_data(v) is None


def classify(node: Node) -> tuple[str, str]:
    """``(kind, reason)`` for ``node`` ignoring user settings; reason set when float."""
    op = node.op_type
    if node.domain != "":
        return "float", f"custom-domain op {node.domain}::{op} stays float"
    outputs = [v for v in node.outputs if v is not None]
    if not outputs or not all(is_float(v) for v in outputs[:1]):
        return "float", ""  # integer/shape arithmetic: nothing to quantize
    inputs = node.inputs
    if op in WEIGHTED_OPS and len(inputs) >= 2 and is_activation(inputs[0]) \
            and is_float(inputs[1]) and constant_data(inputs[1]) is not None:
        if op == "Gemm" and len(inputs) > 2 and inputs[2] is not None \
                and constant_data(inputs[2]) is None:
            return "float", "Gemm with a computed (non-constant) C input stays float"
        if op == "MatMul" and (inputs[1].rank or 0) < 2:
            return "float", "MatMul with a 1-D weight stays float"
        return "weighted", ""
    if op == "MatMul" and all(is_activation(v) for v in inputs[:2]):
        return "activation", ""
    if op in ("Add", "Concat"):
        if all(is_activation(v) for v in inputs if v is not None):
            return "activation", ""
        return "float", f"{op} with a constant operand stays float (only {op} of quantized " \
                        "activations has an integer form)"
    if op in ("AveragePool", "GlobalAveragePool", "Relu"):
        return "activation", ""
    if op == "Clip":
        if all(v is None or constant_data(v) is not None for v in inputs[1:]):
            return "activation", ""
        return "float", "Clip with computed bounds stays float"
    if op in PASS_THROUGH_OPS:
        if not is_activation(inputs[0] if inputs else None):
            return "float", f"{op} of a constant stays float"
        if op == "MaxPool" and len(outputs) > 1:
            return "float", "MaxPool returning indices stays float"
        return "pass-through", ""
    if op in FLOAT_REASONS:
        return "float", FLOAT_REASONS[op]
    if op in WEIGHTED_OPS:
        return "float", f"{op} whose first input is a constant stays float"
    return "float", f"{op} has no quantized form in edgefw; it runs in float between " \
                    "DequantizeLinear and QuantizeLinear"


def resolve_layers(graph: Graph, names: Iterable[str], what: str) -> set[str]:
    """Node names selected by ``names``: node names, module paths, or module-path prefixes
    (``"classifier"`` selects ``classifier.0``, ``classifier.2``...)."""
    if isinstance(names, str):
        names = [names]
    selected: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise QuantizationError(f"{what}: layer names are strings, got {name!r}")
        hits = {n.name for n in graph.nodes
                if n.name == name or n.module_path == name
                or (n.module_path or "").startswith(name + ".")}
        if not hits:
            known = sorted({n.module_path or n.name for n in graph.nodes
                            if classify(n)[0] in LAYER_KINDS})
            raise QuantizationError(f"{what}: no node or module named {name!r} in graph "
                                    f"'{graph.name}'; quantizable layers: {', '.join(known)}")
        selected |= hits
    return selected


def plan_quantization(graph: Graph, activation_dtype: str, *, exclude: Iterable[str] = (),
                      layer_dtypes: Mapping[str, str] | None = None) -> QuantizationPlan:
    """Decide node by node; ``exclude`` keeps layers float, ``layer_dtypes`` maps layer
    names (as in ``exclude``) to ``"float"``, ``"int8"``, ``"uint8"`` or ``"int16"``."""
    check_activation_dtype(activation_dtype)
    settings: dict[str, str] = {}
    for name in resolve_layers(graph, exclude, "exclude"):
        settings[name] = "float"
    for layer, setting in (layer_dtypes or {}).items():
        if setting not in LAYER_SETTINGS:
            raise QuantizationError(f"layer {layer!r}: setting {setting!r} is not one of "
                                    f"{', '.join(LAYER_SETTINGS)}")
        for name in resolve_layers(graph, [layer], "layer_dtypes"):
            settings[name] = setting

    decisions: dict[str, NodeDecision] = {}
    for node in graph.nodes:
        kind, reason = classify(node)
        setting = settings.get(node.name)
        decision = NodeDecision(node.name, node.op_type, node.module_path, kind, reason=reason)
        if kind != "float" and setting == "float":
            decision.kind, decision.reason = "float", "kept float as asked"
        elif kind != "float":
            decision.dtype = setting or activation_dtype
        decisions[node.name] = decision

    _settle_pass_through(graph, decisions)
    plan = QuantizationPlan(decisions)
    _assign_tensors(graph, plan)
    return plan


def _settle_pass_through(graph: Graph, decisions: dict[str, NodeDecision]) -> None:
    """A pass-through node is quantized when the node before it or one after it is (to a
    fixed point: chains of Reshape/Flatten/MaxPool between quantized layers)."""
    consumers = _consumers(graph)
    candidates = [n for n in graph.nodes if decisions[n.name].kind == "pass-through"]
    active: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in candidates:
            if node.name in active:
                continue
            producer = node.inputs[0].producer if node.inputs and node.inputs[0] else None
            neighbours = [producer] if producer is not None else []
            neighbours += consumers.get(id(node.outputs[0]), [])
            if any(_is_quantized(decisions[m.name], active) for m in neighbours):
                active.add(node.name)
                changed = True
    for node in candidates:
        if node.name not in active:
            d = decisions[node.name]
            d.kind, d.reason = "float", f"{d.op_type} between float ops stays float"


def _is_quantized(decision: NodeDecision, active: set[str]) -> bool:
    return decision.kind in LAYER_KINDS or decision.name in active


def _consumers(graph: Graph) -> dict[int, list[Node]]:
    readers: dict[int, list[Node]] = {}
    for node in graph.nodes:
        for v in node.inputs:
            if v is not None:
                readers.setdefault(id(v), []).append(node)
    return readers


def _assign_tensors(graph: Graph, plan: QuantizationPlan) -> None:
    decisions = plan.decisions
    root: dict[str, str] = {}  # tensor -> group root (pass-through outputs join their input)
    wanted: dict[str, set[str]] = {}  # tensor -> dtypes asked by adjacent quantized nodes

    def find(name: str) -> str:
        while root.get(name, name) != name:
            name = root[name]
        return name

    for node in graph.nodes:
        d = decisions[node.name]
        if not d.quantized:
            continue
        activations = [v for v in node.inputs if is_activation(v)]
        outputs = [v for v in node.outputs[:1] if is_float(v)]
        if d.kind == "pass-through":
            source = node.inputs[0]
            for v in outputs:
                root[v.name] = find(source.name)
        for v in activations + outputs:
            wanted.setdefault(v.name, set())
            if d.dtype is not None:
                wanted[v.name].add(d.dtype)

    groups: dict[str, set[str]] = {}
    for name, dtypes in wanted.items():
        groups.setdefault(find(name), set()).update(dtypes)
    for name in wanted:
        r = find(name)
        dtypes = groups[r]
        # The widest dtype any adjacent layer asks for; uint8 only when all ask for it.
        dtype = "int16" if "int16" in dtypes else "uint8" if dtypes == {"uint8"} else "int8"
        plan.tensors[name] = (dtype, r)
    # A pass-through node takes its group's dtype (for the report).
    for d in decisions.values():
        if d.kind == "pass-through":
            out = graph.node(d.name).outputs[0].name
            d.dtype = plan.tensors[out][0]


__all__ = [
    "ACTIVATION_OPS",
    "FLOAT_REASONS",
    "LAYER_KINDS",
    "LAYER_SETTINGS",
    "NodeDecision",
    "PASS_THROUGH_OPS",
    "QuantizationPlan",
    "WEIGHTED_OPS",
    "classify",
    "plan_quantization",
    "resolve_layers",
]
