"""Importing and using ``runtime`` must not import edgefw's autograd, nn or optim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import numpy as np
import runtime
from edgefw.ir import Graph
g = Graph("mlp")
x = g.add_input("x", "float32", ("batch", 4))
h = g.add_node("Gemm", [x, np.ones((3, 4), np.float32)], {"transB": 1}).output
g.set_outputs([g.add_node("Relu", [h]).output])
for level in ("none", "all"):
    session = runtime.InferenceSession(g, optimization=level)
    out = session.run(None, {"x": np.ones((2, 4), np.float32)})
    assert out[0].tolist() == [[4.0] * 3] * 2
forbidden = ("edgefw.tensor", "edgefw.nn", "edgefw.optim", "edgefw.autograd", "edgefw.ops",
             "edgefw.functional")
loaded = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))
print("LOADED:" + ",".join(loaded))
"""


def test_runtime_does_not_import_the_trainer():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                            text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("LOADED:"))
    assert line == "LOADED:", f"importing runtime pulled in: {line[len('LOADED:'):]}"
