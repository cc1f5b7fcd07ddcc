"""edgefw's runtime as an ONNX backend (``onnx.backend.base.Backend``), so the ONNX backend
test suite — and any tool written against that interface — can drive it.

    >>> import numpy as np
    >>> from onnx import TensorProto, helper
    >>> from runtime.onnx_backend import EdgeFWBackend
    >>> node = helper.make_node("Relu", ["x"], ["y"])
    >>> graph = helper.make_graph(
    ...     [node], "relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    >>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    >>> rep = EdgeFWBackend.prepare(model)
    >>> rep.run([np.array([-1.0, 0.0, 2.0], np.float32)])[0]
    array([0., 0., 2.], dtype=float32)

``prepare`` serializes the model and opens it with :class:`runtime.InferenceSession`, i.e.
through the registered ONNX loader, the optimizer and the planner: exactly the path a user's
``InferenceSession("model.onnx")`` takes. Only the CPU device exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from edgefw.errors import DeviceError, InvalidInputError
from runtime.session import InferenceSession

#: The opset ``run_node`` builds its one-node model with when the caller names none.
DEFAULT_RUN_NODE_OPSET = 21


class EdgeFWBackendRep(BackendRep):
    """A prepared model: ``run(inputs)`` returns the outputs as a named tuple.

    ``inputs`` may be one array, a sequence of arrays in the model's input order, or a
    mapping from input names to arrays.
    """

    def __init__(self, session: InferenceSession) -> None:
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        feed = self._feed(inputs)
        outputs = self.session.run(None, feed)
        return namedtupledict("Outputs", self.output_names)(*outputs)

    def _feed(self, inputs: Any) -> dict[str, np.ndarray]:
        if isinstance(inputs, Mapping):
            return dict(inputs)
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if not isinstance(inputs, Sequence):
            raise InvalidInputError(f"inputs must be an array, a sequence of arrays or a dict; "
                                    f"got {type(inputs).__name__}")
        if len(inputs) != len(self.input_names):
            raise InvalidInputError(f"the model takes {len(self.input_names)} inputs "
                                    f"({', '.join(self.input_names)}); got {len(inputs)}")
        return dict(zip(self.input_names, inputs, strict=True))


class EdgeFWBackend(Backend):
    """``onnx.backend.base.Backend`` over :class:`runtime.InferenceSession` (CPU provider).

    ``prepare(model, device="CPU", optimization="all")``: ``optimization`` is passed to the
    session ("none", "basic" or "all").
    """

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            return Device(device).type == DeviceType.CPU
        except AttributeError:
            return False

    @classmethod
    def prepare(cls, model: onnx.ModelProto | bytes | str, device: str = "CPU",
                **kwargs: Any) -> EdgeFWBackendRep:
        if not cls.supports_device(device):
            raise DeviceError(f"the edgefw ONNX backend runs on CPU only; device {device!r} "
                              "was asked for")
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        session = InferenceSession(source, providers=["cpu"],
                                   optimization=kwargs.get("optimization", "all"))
        return EdgeFWBackendRep(session)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
                 **kwargs: Any) -> tuple[Any, ...]:
        """Run one node on ``inputs`` (arrays for the node's non-empty inputs, in order).

        ``opset_version`` (keyword) picks the opset the node is read at (default 21).
        """
        arrays = [np.asarray(a) for a in (inputs.values() if isinstance(inputs, Mapping)
                                          else inputs)]
        names = [n for n in node.input if n]
        if len(arrays) != len(names):
            raise InvalidInputError(f"node {node.op_type} has {len(names)} inputs "
                                    f"({', '.join(names)}); got {len(arrays)} arrays")
        graph_inputs = [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, arrays, strict=True)
        ]
        outputs = []
        for k, name in enumerate(o for o in node.output if o):
            if outputs_info is not None and k < len(outputs_info):
                dtype, shape = outputs_info[k]
                outputs.append(helper.make_tensor_value_info(
                    name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape))
            else:
                outputs.append(helper.make_empty_tensor_value_info(name))
        graph = helper.make_graph([node], f"run_node_{node.op_type}", graph_inputs, outputs)
        opset = int(kwargs.pop("opset_version", DEFAULT_RUN_NODE_OPSET))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(node.domain, opset)])
        return cls.prepare(model, device, **kwargs).run(arrays)


prepare = EdgeFWBackend.prepare
run_model = EdgeFWBackend.run_model
run_node = EdgeFWBackend.run_node
supports_device = EdgeFWBackend.supports_device

__all__ = ["EdgeFWBackend", "EdgeFWBackendRep", "prepare", "run_model", "run_node",
           "supports_device"]
