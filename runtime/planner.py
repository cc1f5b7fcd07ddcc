"""Execution planning: schedule, shapes, liveness, buffers, and the compiled run function.

A plan is built for one set of concrete input shapes (symbolic dims bound, e.g. batch=1),
so shapes are static wherever the graph allows and kernels can precompute. Planning walks
the topologically ordered nodes once:

- **shapes**: schema inference re-run with the bound input shapes (:func:`propagate_types`);
- **liveness**: each value's last reader; a value is released right after it, like
  torch.fx's interpreter does;
- **storage**: which values share memory (views such as Reshape, in-place kernels), so a
  buffer is only recycled when every value living in it is dead;
- **buffers**: outputs with static shapes get preallocated blocks from a pool; a released
  block is reused by a later output that fits (best fit);
- **code**: the steps become one generated Python function (``plan.source``): one line per
  node calling its prebuilt kernel, ``del`` after last uses, so a run costs a call per
  node and nothing else.
"""

from __future__ import annotations

import itertools
import linecache
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from edgefw.errors import EdgeFWError
from edgefw.ir import Graph, Node, TensorType, infer_types
from edgefw.ir.graph import constant_data
from edgefw.ir.schema.dims import Dim, format_shape, is_static
from runtime.providers.base import ExecutionProvider, Kernel, KernelContext

NEVER = sys.maxsize  # "last use" of graph outputs and constants
# Preallocation limits: a declared shape can be absurd (untrusted files); past these the
# kernel allocates at run time, where numpy reports a clean MemoryError for the node.
MAX_BUFFER_BYTES = 256 << 20
MAX_POOL_BYTES = 1 << 30
_plan_ids = itertools.count()


# --------------------------------------------------------------------------- shapes
def propagate_types(graph: Graph, input_shapes: dict[str, tuple[int, ...]] | None
                    ) -> dict[int, TensorType]:
    """Types of every value (by id) with the graph inputs bound to ``input_shapes``.

    Where inference cannot say more than the stored type (e.g. a data-dependent Reshape),
    the stored type is kept with its symbols bound.
    """
    bindings: dict[str, int] = {}
    types: dict[int, TensorType] = {}
    for v in graph.inputs:
        shape = v.shape
        if input_shapes is not None and v.name in input_shapes:
            concrete = tuple(int(d) for d in input_shapes[v.name])
            if shape is not None:
                for d, c in zip(shape, concrete, strict=False):
                    if isinstance(d, str):
                        bindings[d] = c
            shape = concrete
        types[id(v)] = TensorType(v.dtype, shape)
    for v in graph.constants.values():
        types[id(v)] = v.type
    for node in graph.nodes:
        stored = [_bind(v.type, bindings) for v in node.outputs]
        try:
            inferred = infer_types(
                node.op_type,
                [None if v is None else types.get(id(v), v.type) for v in node.inputs],
                [None if v is None else constant_data(v) for v in node.inputs],
                node.attrs,
                len(node.outputs),
                node.domain,
            )
        except EdgeFWError:
            inferred = stored
        for v, got, kept in zip(node.outputs, inferred, stored, strict=True):
            types[id(v)] = _merge(got, kept)
    return types


def _bind(t: TensorType, bindings: dict[str, int]) -> TensorType:
    if t.shape is None:
        return t
    return TensorType(t.dtype, tuple(bindings.get(d, d) if isinstance(d, str) else d
                                     for d in t.shape))


def _merge(inferred: TensorType, stored: TensorType) -> TensorType:
    """Prefer inferred ints, then stored ints, then symbols; dtype from either."""
    dtype = inferred.dtype or stored.dtype
    a, b = inferred.shape, stored.shape
    if a is None or (b is not None and len(a) != len(b)):
        return TensorType(dtype, b if a is None else a)
    if b is None:
        return TensorType(dtype, a)
    dims: list[Dim] = []
    for x, y in zip(a, b, strict=True):
        dims.append(x if isinstance(x, int) else y if isinstance(y, int) else x or y)
    return TensorType(dtype, tuple(dims))


# --------------------------------------------------------------------------- buffers
class BufferPool:
    """Preallocated byte blocks handed out best-fit and returned when their values die."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self._free: list[int] = []
        self.reuses = 0

    def acquire(self, nbytes: int) -> int:
        fitting = [b for b in self._free if self.blocks[b].nbytes >= nbytes]
        # Reuse only blocks at most 2x too big, so one huge block is not pinned by a tiny value.
        fitting = [b for b in fitting if self.blocks[b].nbytes <= 2 * nbytes + 64]
        if fitting:
            best = min(fitting, key=lambda b: self.blocks[b].nbytes)
            self._free.remove(best)
            self.reuses += 1
            return best
        self.blocks.append(np.empty(nbytes, dtype=np.uint8))
        return len(self.blocks) - 1

    def release(self, block: int) -> None:
        self._free.append(block)

    def view(self, block: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return self.blocks[block][:nbytes].view(dtype).reshape(shape)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.blocks)


class _Storage:
    """Memory shared by one or more values: kind is "input", "const", "fresh" (a new array
    per run) or "buffer" (a pool block); it lives until its last value's last use."""

    __slots__ = ("kind", "last_use", "block")

    def __init__(self, kind: str, last_use: int, block: int | None = None) -> None:
        self.kind = kind
        self.last_use = last_use
        self.block = block


# --------------------------------------------------------------------------- the plan
@dataclass
class PlanStep:
    """One node of the schedule, with what the planner decided for it."""

    index: int
    node: Node
    provider: str
    kernel: Kernel
    output_types: list[TensorType]
    #: Per output: "buffer N" (preallocated), "in-place (input i)", "view", "new".
    storage: list[str]
    #: Names of the values released after this step (their last use).
    freed: list[str] = field(default_factory=list)
    #: Variables of the generated code holding the inputs (None for omitted ones).
    arg_vars: list[str | None] = field(default_factory=list)


class ExecutionPlan:
    """A compiled schedule for one binding of the input shapes; ``str(plan)`` shows it."""

    def __init__(self, graph: Graph, steps: list[PlanStep], source: str, namespace: dict,
                 filename: str, line_steps: dict[int, int], pool: BufferPool,
                 input_shapes: dict[str, tuple[int, ...]] | None) -> None:
        self.graph_name = graph.name
        self.steps = steps
        self.source = source
        self.input_shapes = input_shapes
        self.buffer_bytes = pool.nbytes
        self.num_buffers = len(pool.blocks)
        self.buffer_reuses = pool.reuses
        self._filename = filename
        self._line_steps = line_steps
        self.run: Callable[..., list[np.ndarray]] = namespace["run"]
        self.run_profiled: Callable[..., list[np.ndarray]] = namespace["run_profiled"]
        #: Seconds spent per step by ``run_profiled`` (accumulated over calls).
        self.step_seconds: np.ndarray = namespace["_acc"]
        self.profiled_runs = 0

    def failing_step(self, tb: TracebackType | None) -> tuple[PlanStep, dict] | None:
        """The step whose kernel raised and the arrays it was given, found from the
        traceback (so tracking costs nothing per step)."""
        found = None
        while tb is not None:
            frame = tb.tb_frame
            if frame.f_code.co_filename == self._filename:
                index = self._line_steps.get(tb.tb_lineno)
                if index is not None:
                    step = self.steps[index]
                    args = {var: frame.f_locals.get(var, frame.f_globals.get(var))
                            for var in step.arg_vars if var is not None}
                    found = (step, args)
            tb = tb.tb_next
        return found

    def __str__(self) -> str:
        shapes = ", ".join(f"{k}{list(v)}" for k, v in (self.input_shapes or {}).items())
        lines = [
            f"plan for graph '{self.graph_name}'" + (f" with inputs {shapes}" if shapes else "")
            + f": {len(self.steps)} steps, {self.num_buffers} preallocated buffers "
            f"({self.buffer_bytes / 1024:.1f} KiB, {self.buffer_reuses} reuses)"
        ]
        rows = [("#", "node", "op", "provider", "outputs", "storage", "freed after")]
        for s in self.steps:
            op = s.node.op_type
            fused = s.node.meta.get("fused_activation")
            if fused is not None:
                op += "+" + (fused if isinstance(fused, str) else str(fused[0]))
            outs = ", ".join(f"{v.name}:{t.dtype}{format_shape(t.shape)}"
                             for v, t in zip(s.node.outputs, s.output_types, strict=True))
            rows.append((str(s.index), s.node.name, op, s.provider, outs, ", ".join(s.storage),
                         ", ".join(s.freed) or "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                         .rstrip())
        return "\n".join(lines)


def last_uses(graph: Graph) -> dict[int, int]:
    """``id(value) -> index of the last step reading it`` (NEVER for graph outputs)."""
    last: dict[int, int] = {}
    for s, node in enumerate(graph.nodes):
        for v in node.outputs:
            last.setdefault(id(v), s)
        for v in node.inputs:
            if v is not None:
                last[id(v)] = s
    for v in graph.outputs:
        last[id(v)] = NEVER
    return last


def build_plan(
    graph: Graph,
    assignment: Sequence[ExecutionProvider],
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    concurrent: bool = False,
) -> ExecutionPlan:
    """Plan ``graph`` with node i on ``assignment[i]``; ``input_shapes`` binds the inputs;
    ``concurrent``: the plan will run beside other threads (see :class:`KernelContext`).

    Kernel build failures are re-raised with the node named.
    """
    types = propagate_types(graph, input_shapes)
    last = last_uses(graph)
    storage: dict[int, _Storage] = {}
    pool = BufferPool()
    live_buffers: list[_Storage] = []
    for v in graph.inputs:
        storage[id(v)] = _Storage("input", last.get(id(v), -1))
    for v in graph.constants.values():
        storage[id(v)] = _Storage("const", NEVER)

    steps: list[PlanStep] = []
    for s, (node, provider) in enumerate(zip(graph.nodes, assignment, strict=True)):
        for st in [st for st in live_buffers if st.last_use < s]:
            pool.release(st.block)
            live_buffers.remove(st)
        out_types = [types[id(v)] for v in node.outputs]
        decided: dict[int, tuple[_Storage, str]] = {}
        buffers: dict[int, np.ndarray] = {}

        def output_buffer(k: int, node=node, s=s, out_types=out_types, decided=decided,
                          buffers=buffers) -> np.ndarray | None:
            if k in buffers:
                return buffers[k]
            v, t = node.outputs[k], out_types[k]
            if k in decided or last[id(v)] == NEVER or t.dtype is None or not is_static(t.shape):
                return None
            dtype = np.dtype(t.dtype)
            nbytes = int(np.prod(t.shape, dtype=np.int64)) * dtype.itemsize
            if nbytes == 0 or nbytes > MAX_BUFFER_BYTES or pool.nbytes + nbytes > MAX_POOL_BYTES:
                return None
            st = _Storage("buffer", last[id(v)], pool.acquire(nbytes))
            live_buffers.append(st)
            decided[k] = (st, f"buffer {st.block}")
            buffers[k] = pool.view(st.block, dtype, tuple(t.shape))
            return buffers[k]

        def reuse_input(i: int, node=node, s=s, decided=decided) -> bool:
            v = node.inputs[i] if i < len(node.inputs) else None
            if v is None or 0 in decided or not node.outputs:
                return False
            st = storage[id(v)]
            shared = any(j != i and w is not None and storage[id(w)] is st
                         for j, w in enumerate(node.inputs))
            if st.kind not in ("fresh", "buffer") or st.last_use != s or shared:
                return False
            decided[0] = (st, f"in-place (input {i})")
            return True

        input_types = [None if v is None else types.get(id(v), v.type) for v in node.inputs]
        ctx = KernelContext(node, input_types, out_types,
                            [None if v is None else constant_data(v) for v in node.inputs],
                            output_buffer, reuse_input, concurrent)
        try:
            kernel = provider.build_kernel(ctx)
        except EdgeFWError as exc:
            raise type(exc)(f"{node.describe()}: {exc}") from exc
        alias = provider.output_alias(node)
        notes = []
        for k, v in enumerate(node.outputs):
            if k in decided:
                st, note = decided[k]
            elif alias == "view" and node.inputs and node.inputs[0] is not None:
                st, note = storage[id(node.inputs[0])], "view"
            elif alias == "const":
                st, note = _Storage("const", NEVER), "held"
            else:
                st, note = _Storage("fresh", last[id(v)]), "new"
            st.last_use = max(st.last_use, last[id(v)])
            storage[id(v)] = st
            notes.append(note)
        steps.append(PlanStep(s, node, provider.name, kernel, out_types, notes))

    for step in steps:
        touched = [v for v in step.node.inputs + step.node.outputs
                   if v is not None and v.data is None]
        step.freed = list(dict.fromkeys(v.name for v in touched
                                        if last.get(id(v)) == step.index))
    return _compile(graph, steps, storage, types, pool, input_shapes, assignment)


def _compile(graph: Graph, steps: list[PlanStep], storage: dict[int, _Storage],
             types: dict[int, TensorType], pool: BufferPool,
             input_shapes: dict[str, tuple[int, ...]] | None,
             assignment: Sequence[ExecutionProvider]) -> ExecutionPlan:
    """Generate and compile ``run`` / ``run_profiled`` for the steps."""
    names: dict[int, str] = {}
    namespace: dict[str, Any] = {"_np": np, "_clock": time.perf_counter,
                                 "_acc": np.zeros(len(steps))}
    for i, v in enumerate(graph.inputs):
        names[id(v)] = f"a{i}"
    for i, v in enumerate(graph.constants.values()):
        names[id(v)] = f"c{i}"
        namespace[f"c{i}"] = v.data
    counter = itertools.count()
    for step in steps:
        for v in step.node.outputs:
            names[id(v)] = f"v{next(counter)}"
        namespace[f"k{step.index}"] = step.kernel

    params = ", ".join(names[id(v)] for v in graph.inputs)
    body: list[tuple[str, int | None]] = []
    var_by_name = {v.name: names[id(v)] for v in graph.values()}
    transfers = _Transfers(names, types, namespace, body)
    for step in steps:
        node = step.node
        provider = assignment[step.index]
        step.arg_vars = [None if v is None else transfers.to(v, provider, step.index)
                         for v in node.inputs]
        args = ", ".join("None" if var is None else var for var in step.arg_vars)
        outs = [names[id(v)] for v in node.outputs]
        lhs = outs[0] if len(outs) == 1 else ", ".join(outs) + ("," if len(outs) == 1 else "")
        body.append((f"{lhs} = k{step.index}({args})", step.index))
        transfers.produced(node, provider)
        if step.freed:
            freed = [var_by_name[n] for n in step.freed] + transfers.copies_of(step.freed)
            body.append((f"del {', '.join(freed)}", None))

    returned: set[int] = set()
    results = []
    for v in graph.outputs:
        st = storage[id(v)]
        expr = names[id(v)]
        if transfers.on_device(v):
            results.append(transfers.read_back(v))  # a fresh host array
            continue
        t = types.get(id(v))
        if st.kind in ("input", "const", "buffer") or id(st) in returned:
            expr += ".copy()"
        elif t is not None and t.shape is not None and len(t.shape) >= 2:
            # Kernels may hand results on in another memory order (conv's batch-minor
            # layout); callers get C-contiguous arrays, as from onnxruntime.
            expr = f"_np.ascontiguousarray({expr})"
        if t is None or t.shape is None or len(t.shape) == 0:
            expr = f"_np.asarray({expr})"
        returned.add(id(st))
        results.append(expr)
    ret = f"return [{', '.join(results)}]"

    plan_id = next(_plan_ids)
    filename = f"<edgefw plan {plan_id}: {graph.name}>"
    lines = [f"def run({params}):"]
    line_steps: dict[int, int] = {}
    for code, index in body:
        lines.append("    " + code)
        if index is not None:
            line_steps[len(lines)] = index
    lines.append("    " + ret)
    lines.append("")
    lines.append(f"def run_profiled({params}):")
    for code, index in body:
        if index is None:
            lines.append("    " + code)
            continue
        lines.append("    _t = _clock()")
        lines.append("    " + code)
        line_steps[len(lines)] = index
        lines.append(f"    _acc[{index}] += _clock() - _t")
    lines.append("    " + ret)
    source = "\n".join(lines) + "\n"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated code
    return ExecutionPlan(graph, steps, source, namespace, filename, line_steps, pool,
                         input_shapes)


class _Transfers:
    """Copies between host and a device provider (the GPU) in the generated code.

    A device provider (``provider.device != "host"``) takes and returns its own tensors.
    Where a value crosses to or from it, a transfer function the provider made for that
    crossing (``provider.upload(type)`` / ``provider.download(type)``) is called once per
    run and its result shared by every reader on that side; the copy is deleted with the
    value. Constants stay host arrays: device kernels take them when they are built.
    """

    def __init__(self, names: dict[int, str], types: dict[int, TensorType],
                 namespace: dict[str, Any], body: list[tuple[str, int | None]]) -> None:
        self._names, self._types, self._namespace, self._body = names, types, namespace, body
        self._home: dict[int, ExecutionProvider] = {}  # value id -> device provider holding it
        self._copies: dict[tuple[int, str], str] = {}
        self._by_name: dict[str, list[str]] = {}
        self._outputs = 0
        self._returned: set[str] = set()

    def on_device(self, value) -> bool:
        return id(value) in self._home

    def to(self, value, provider: ExecutionProvider, step: int) -> str:
        """The variable holding ``value`` where ``provider`` reads it (adds the copy)."""
        var = self._names[id(value)]
        source = self._home.get(id(value))
        here = provider.device
        there = "host" if source is None else source.device
        if here == there or (here != "host" and constant_data(value) is not None):
            return var
        if source is not None and here != "host":
            var = self.to(value, _HOST, step)  # device -> host -> another device
        key = (id(value), here)
        if key not in self._copies:
            t = self._types.get(id(value), value.type)
            make = provider.upload(t) if here != "host" else source.download(t)
            fn = f"_x{len(self._copies)}"
            self._namespace[fn] = make
            copy = self._copies[key] = f"{self._names[id(value)]}_{here}"
            self._body.append((f"{copy} = {fn}({var})", step))
            self._by_name.setdefault(value.name, []).append(copy)
        return self._copies[key]

    def produced(self, node: Node, provider: ExecutionProvider) -> None:
        if provider.device != "host":
            for v in node.outputs:
                self._home[id(v)] = provider

    def copies_of(self, value_names: list[str]) -> list[str]:
        return [c for n in value_names for c in self._by_name.get(n, ())]

    def read_back(self, value) -> str:
        """An expression giving a graph output held on a device as a fresh host array."""
        copy = self._copies.get((id(value), "host"))
        if copy is not None and copy not in self._returned:  # already read back this run
            self._returned.add(copy)
            return copy
        fn = f"_out{self._outputs}"
        self._outputs += 1
        self._namespace[fn] = self._home[id(value)].download(
            self._types.get(id(value), value.type))
        return f"{fn}({self._names[id(value)]})"


_HOST = ExecutionProvider()  # a provider whose tensors are numpy arrays


__all__ = ["BufferPool", "ExecutionPlan", "PlanStep", "build_plan", "last_uses",
           "propagate_types"]
