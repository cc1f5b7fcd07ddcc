"""edgefw's runtime: run IR graphs (and, via loaders, .onnx/.tflite files) on execution
providers, with onnxruntime's API.

>>> from runtime import InferenceSession, available_providers
>>> "cpu" in available_providers()   # and "gpu" where wgpu and a Vulkan/Metal/D3D12 driver are
True

Importing this package needs numpy and ``edgefw.ir`` only — never the autograd engine,
``edgefw.nn`` or ``edgefw.optim`` — so a device can run models without the trainer.
"""

from __future__ import annotations

from edgefw.ir.primitives.blas import get_num_threads, set_num_threads
from runtime.loaders import load_onnx, load_tflite
from runtime.planner import ExecutionPlan, PlanStep
from runtime.preprocess import InputContract, prepare_image
from runtime.profiling import NodeProfile, ProfileReport
from runtime.providers import available_providers, get_provider, register_provider
from runtime.session import OPTIMIZATION_LEVELS, InferenceSession, NodeArg, register_loader

__all__ = [
    "OPTIMIZATION_LEVELS",
    "ExecutionPlan",
    "InferenceSession",
    "InputContract",
    "NodeArg",
    "NodeProfile",
    "PlanStep",
    "ProfileReport",
    "available_providers",
    "get_num_threads",
    "get_provider",
    "load_onnx",
    "load_tflite",
    "prepare_image",
    "register_loader",
    "register_provider",
    "set_num_threads",
]
