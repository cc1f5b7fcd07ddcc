"""Trace an edgefw model into the graph IR.

The tracer runs the model's forward once, in eval mode, on example inputs and records every
op it executes: each :class:`edgefw.ops.function.Function` says how it is written in ONNX
terms (its ``lower`` method). Parameters and buffers become constants named by their module
path (``fc1.weight``, ``features.1.bn.running_mean``); each node remembers the module it ran
in (``features.3.conv``). With ``dynamic_batch`` the first axis of every input is the
symbolic ``"batch"``, and reshapes are written so that any batch size runs.

>>> import edgefw, numpy as np
>>> from edgefw import models
>>> graph = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
>>> [n.op_type for n in graph.nodes]
['Flatten', 'Gemm', 'Relu', 'Gemm']

Python control flow that depends on tensor values cannot be recorded in a graph: using a
traced tensor's value (``if x.sum() > 0``, ``x.item()``, ``x.numpy()``) raises
:class:`~edgefw.errors.TraceError` instead of silently freezing one branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgefw.errors import TraceError
from edgefw.ir.graph import Graph, Value

BATCH = "batch"


class Emitter:
    """What an op's ``lower`` method writes with: nodes and constants in the graph, the
    module path of the op, and the concrete shapes of the traced tensors."""

    def __init__(self, tracer: Tracer, in_shapes: list[tuple[int, ...]],
                 out_shape: tuple[int, ...]) -> None:
        self._tracer = tracer
        self.graph = tracer.graph
        self.module_path = tracer.module_path()
        self.in_shapes = in_shapes
        self.out_shape = out_shape
        self.batch_size = tracer.batch_size

    def node(self, op_type: str, inputs: Sequence[Value | None], attrs: dict | None = None,
             num_outputs: int = 1) -> Value:
        node = self.graph.add_node(op_type, list(inputs), attrs or {},
                                   module_path=self.module_path or None,
                                   num_outputs=num_outputs)
        return node.outputs[0]

    def const(self, array: Any, hint: str) -> Value:
        base = f"{self.module_path}.{hint}" if self.module_path else hint
        return self.graph.add_constant(base, np.asarray(array))

    def ints(self, values: Sequence[int], hint: str) -> Value:
        return self.const(np.asarray(values, dtype=np.int64), hint)

    def array_constant(self, array: np.ndarray, hint: str) -> Value:
        """A module buffer (e.g. running statistics) by its module path, else a new one."""
        return self._tracer.buffer_value(array) or self.const(array, hint)

    def dynamic_shape(self, shape: Sequence[int], in_value: Value) -> list[int]:
        """A Reshape target that also runs for other batch sizes: the batch axis becomes 0
        (copy the input's) or -1 (infer) when the input carries the symbolic batch."""
        shape = [int(s) for s in shape]
        in_shape = in_value.shape or ()
        if not in_shape or in_shape[0] != BATCH:
            return shape
        if shape and shape[0] == self.batch_size:
            shape[0] = 0
            return shape
        # The batch axis was merged into the leading axis: let Reshape infer it.
        return [-1] + shape[1:]


class Tracer:
    """Records Function applications into a Graph; installed while ``trace`` runs."""

    def __init__(self, graph: Graph, model: Any, batch_size: int) -> None:
        self.graph = graph
        self.batch_size = batch_size
        self.values: dict[int, Value] = {}
        self.keep_alive: list[Any] = []  # ids stay valid while the trace runs
        self.param_names = {id(p): n for n, p in model.named_parameters()}
        self.buffer_names = {id(b): n for n, b in model.named_buffers()}
        self.module_names = {id(m): n for n, m in model.named_modules()}
        self.stack: list[str] = []

    # module observer protocol (edgefw.nn.module._call_observers)
    def enter(self, module: Any) -> None:
        self.stack.append(self.module_names.get(id(module), ""))

    def exit(self, module: Any) -> None:
        self.stack.pop()

    def module_path(self) -> str:
        return self.stack[-1] if self.stack else ""

    def is_traced(self, tensor: Any) -> bool:
        return id(tensor) in self.values

    def buffer_value(self, array: np.ndarray) -> Value | None:
        name = self.buffer_names.get(id(array))
        if name is None:
            return None
        if self.graph.has_value(name):
            return self.graph.value(name)
        return self.graph.add_constant(name, array)

    def value_of(self, tensor: Any) -> Value:
        v = self.values.get(id(tensor))
        if v is not None:
            return v
        name = self.param_names.get(id(tensor))
        if name is not None:
            v = self.graph.value(name) if self.graph.has_value(name) else \
                self.graph.add_constant(name, tensor.data)
        else:
            path = self.module_path()
            v = self.graph.add_constant(f"{path}.const" if path else "const", tensor.data)
        self.bind(tensor, v)
        return v

    def bind(self, tensor: Any, value: Value) -> None:
        self.values[id(tensor)] = value
        self.keep_alive.append(tensor)

    def record(self, fn: Any, inputs: Sequence[Any], out: Any, attrs: dict) -> None:
        lower = getattr(fn, "lower", None)
        if lower is None or getattr(fn, "training_only", False):
            raise TraceError(
                f"op {type(fn).__name__} (module '{self.module_path() or '<root>'}') has no "
                "graph form and cannot be traced; losses and training-only ops belong outside "
                "the traced forward"
            )
        xs = [self.value_of(t) for t in inputs]
        emitter = Emitter(self, [t.shape for t in inputs], out.shape)
        try:
            value = lower(emitter, *xs, **attrs)
        except TraceError:
            raise
        except Exception as exc:  # an edgefw schema error, with the op and module added
            raise TraceError(
                f"while tracing {type(fn).__name__} in module '{self.module_path() or '<root>'}'"
                f" with input shapes {[t.shape for t in inputs]}: {exc}"
            ) from exc
        self.bind(out, value)


def _as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, list | tuple) else (x,)


def trace(model: Any, example_inputs: Any, dynamic_batch: bool = True,
          input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
          name: str | None = None) -> Graph:
    """Record ``model``'s inference forward as a :class:`Graph`.

    ``example_inputs`` is one array/Tensor or a tuple of them (for several inputs). The model
    runs in eval mode (Dropout vanishes, BatchNorm uses its running statistics) and is put
    back in the mode it was in."""
    from edgefw import ops as _ops_pkg  # noqa: F401 - registers every Function
    from edgefw.autograd import Tensor, no_grad
    from edgefw.nn.module import _call_observers, as_input
    from edgefw.ops import function as fn_mod

    inputs = [as_input(np.asarray(x) if isinstance(x, list) else x)
              for x in _as_tuple(example_inputs)]
    inputs = [x if isinstance(x, Tensor) else Tensor(np.asarray(x)) for x in inputs]
    batch = inputs[0].shape[0] if inputs and inputs[0].ndim else 1
    if dynamic_batch:
        if any(x.ndim == 0 or x.shape[0] != batch for x in inputs):
            raise TraceError(
                "dynamic_batch needs every input to share its first (batch) axis, got shapes "
                f"{[x.shape for x in inputs]}; pass dynamic_batch=False"
            )
        if batch == 1:
            # With batch 1 a literal 1 in a reshape is ambiguous; trace with 2 instead.
            inputs = [Tensor(np.concatenate([x.data, x.data])) for x in inputs]
            batch = 2
    names = list(input_names) if input_names else (
        ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))])
    if len(names) != len(inputs):
        raise TraceError(f"{len(names)} input names for {len(inputs)} inputs")

    graph = Graph(name or type(model).__name__)
    tracer = Tracer(graph, model, batch)
    for tensor, input_name in zip(inputs, names):
        dims = tuple(tensor.shape)
        if dynamic_batch:
            dims = (BATCH,) + dims[1:]
        tracer.bind(tensor, graph.add_input(input_name, str(tensor.dtype), dims))

    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    if fn_mod._tracer is not None:
        raise TraceError("trace() cannot be nested inside another trace")
    fn_mod._tracer = tracer
    _call_observers.append(tracer)
    try:
        with no_grad():
            outputs = model(*inputs)
    finally:
        fn_mod._tracer = None
        _call_observers.remove(tracer)
        if hasattr(model, "train"):
            model.train(was_training)

    outs = _as_tuple(outputs)
    out_names = list(output_names) if output_names else (
        ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))])
    if len(out_names) != len(outs):
        raise TraceError(f"{len(out_names)} output names for {len(outs)} outputs")
    result = []
    for out, out_name in zip(outs, out_names):
        if not isinstance(out, Tensor) or not tracer.is_traced(out):
            raise TraceError(
                f"model output {out_name!r} is not computed from the inputs by edgefw ops "
                f"(got {type(out).__name__}); only tensors produced by traced ops can be outputs"
            )
        value = tracer.values[id(out)]
        if value.producer is None or value in result:  # an input or constant passed through
            value = graph.add_node("Identity", [value]).output
        graph.rename_value(value, graph.unique_value_name(out_name)
                           if graph.has_value(out_name) and graph.value(out_name) is not value
                           else out_name)
        result.append(value)
    graph.set_outputs(result)
    graph.remove_unused_constants()
    graph.check()
    return graph
