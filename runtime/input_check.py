"""Validation of the arrays given to ``InferenceSession.run``.

Errors name the input, what was given and what is expected. The check runs on every call,
so for the common case (right names, ndarray of the right dtype and shape) it is a small
generated function with the model's names, dtypes and static dims baked in; anything it
does not accept at once goes to the full, explanatory check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefw.errors import InvalidInputError
from edgefw.ir.graph import Value
from edgefw.ir.schema.dims import format_shape


@dataclass(frozen=True)
class InputSpec:
    """What one graph input accepts."""

    name: str
    dtype: np.dtype
    rank: int | None
    static: tuple[tuple[int, int], ...]  # (axis, dim) that must match exactly
    dynamic: tuple[int, ...]  # axes whose size selects the plan
    declared: str  # "float32[batch,784]" for messages

    @staticmethod
    def of(v: Value) -> InputSpec:
        if v.dtype is None:
            raise InvalidInputError(f"graph input {v.name!r} has no dtype")
        shape = v.shape
        static = tuple((i, d) for i, d in enumerate(shape or ()) if isinstance(d, int))
        dynamic = tuple(i for i, d in enumerate(shape or ()) if not isinstance(d, int))
        return InputSpec(v.name, np.dtype(v.dtype), None if shape is None else len(shape),
                         static, dynamic, f"{v.dtype}{format_shape(shape)}")


class InputChecker:
    """``check(feed) -> (arrays in input order, plan key)``; the key holds the sizes of the
    non-static dims, so each batch size gets its own plan."""

    def __init__(self, inputs: list[Value]) -> None:
        self.specs = [InputSpec.of(v) for v in inputs]
        self.symbol_groups = _symbol_groups(inputs, self.specs)
        self.check = self._compile() if all(s.rank is not None for s in self.specs) \
            else self.check_slowly

    # ------------------------------------------------------------------ full check
    def check_slowly(self, feed: Any) -> tuple[list[np.ndarray], tuple]:
        """The explanatory check: raises InvalidInputError describing the first problem."""
        if not isinstance(feed, Mapping):
            raise InvalidInputError(f"inputs must be a dict {{name: array}}, got "
                                    f"{type(feed).__name__}")
        if len(feed) != len(self.specs):
            self._report_names(feed)
        arrays = []
        key: list[int] = []
        for spec in self.specs:
            if spec.name not in feed:
                self._report_names(feed)
            a = feed[spec.name]
            if type(a) is not np.ndarray:
                a = _coerce(spec, a)
            if a.dtype != spec.dtype:
                raise InvalidInputError(
                    f"input {spec.name!r} has dtype {a.dtype}, expected {spec.dtype} "
                    f"({spec.declared}); convert it with .astype(np.{spec.dtype})")
            shape = a.shape
            if spec.rank is not None:
                if len(shape) != spec.rank:
                    raise InvalidInputError(
                        f"input {spec.name!r} has shape {list(shape)} (rank {len(shape)}), "
                        f"expected rank {spec.rank}: {spec.declared}")
                for axis, dim in spec.static:
                    if shape[axis] != dim:
                        raise InvalidInputError(
                            f"input {spec.name!r} has shape {list(shape)}: dim {axis} is "
                            f"{shape[axis]}, expected {dim} ({spec.declared})")
                key.extend(shape[axis] for axis in spec.dynamic)
            else:
                key.extend(shape)
                key.append(-1)  # separates inputs of unknown rank
            arrays.append(a)
        for symbol, places in self.symbol_groups:
            first = key[places[0][2]]
            for name, axis, pos in places[1:]:
                if key[pos] != first:
                    name0, axis0, _ = places[0]
                    raise InvalidInputError(
                        f"input {name!r} binds symbolic dim {symbol!r} (dim {axis}) to "
                        f"{key[pos]}, but input {name0!r} bound it to {first} (dim {axis0})")
        return arrays, tuple(key)

    def _report_names(self, feed: Mapping[str, Any]) -> None:
        expected = {s.name: s.declared for s in self.specs}
        for name in feed:
            if name not in expected:
                listing = ", ".join(f"{n!r} {d}" for n, d in expected.items())
                raise InvalidInputError(f"unknown input {name!r}; the model's inputs are: "
                                        f"{listing}")
        for name, declared in expected.items():
            if name not in feed:
                raise InvalidInputError(f"missing input {name!r} (expected {declared}); given: "
                                        f"{sorted(feed)}")

    # ------------------------------------------------------------------ fast path
    def _compile(self) -> Any:
        """Generate the accept-at-once check; every doubt defers to :meth:`check_slowly`.

        Input names and dtypes enter the generated code as globals, never as source text.
        """
        namespace: dict[str, Any] = {"_ndarray": np.ndarray, "_slow": self.check_slowly,
                                     "_dict": dict}
        lines = ["def check(feed):",
                 f"    if type(feed) is not _dict or len(feed) != {len(self.specs)}:",
                 "        return _slow(feed)"]
        key_parts = []
        for i, spec in enumerate(self.specs):
            namespace[f"_n{i}"] = spec.name
            namespace[f"_d{i}"] = spec.dtype
            conditions = [f"len(s{i}) != {spec.rank}"]
            conditions += [f"s{i}[{axis}] != {dim}" for axis, dim in spec.static]
            lines += [
                f"    a{i} = feed.get(_n{i})",
                f"    if type(a{i}) is not _ndarray or a{i}.dtype != _d{i}:",
                "        return _slow(feed)",
                f"    s{i} = a{i}.shape",
                f"    if {' or '.join(conditions)}:",
                "        return _slow(feed)",
            ]
            key_parts += [f"s{i}[{axis}]" for axis in spec.dynamic]
        positions = {}
        pos = 0
        for i, spec in enumerate(self.specs):
            for axis in spec.dynamic:
                positions[pos] = f"s{i}[{axis}]"
                pos += 1
        for _, places in self.symbol_groups:
            first = positions[places[0][2]]
            for _, _, p in places[1:]:
                lines += [f"    if {positions[p]} != {first}:", "        return _slow(feed)"]
        arrays = ", ".join(f"a{i}" for i in range(len(self.specs)))
        key = "(" + "".join(f"{k}, " for k in key_parts) + ")"
        lines.append(f"    return [{arrays}], {key}")
        source = "\n".join(lines) + "\n"
        exec(compile(source, "<edgefw input check>", "exec"), namespace)  # noqa: S102
        self.source = source
        return namespace["check"]


def _symbol_groups(inputs: list[Value], specs: list[InputSpec]
                   ) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """Symbols used more than once across inputs, with (input, axis, key position) each."""
    places: dict[str, list[tuple[str, int, int]]] = {}
    pos = 0
    for v, spec in zip(inputs, specs, strict=True):
        if spec.rank is None:
            return []  # an input of unknown rank makes key positions data-dependent
        for axis in spec.dynamic:
            d = v.shape[axis]
            if isinstance(d, str):
                places.setdefault(d, []).append((v.name, axis, pos))
            pos += 1
    return [(s, p) for s, p in places.items() if len(p) > 1]


def _coerce(spec: InputSpec, value: Any) -> np.ndarray:
    """Python lists/scalars take the input's dtype; other array-likes keep their own."""
    if isinstance(value, (list, tuple, int, float, bool)):
        try:
            return np.asarray(value, dtype=spec.dtype)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"input {spec.name!r} cannot be converted to {spec.dtype}: "
                                    f"{exc}") from None
    try:
        return np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - whatever the object raised, say which input
        raise InvalidInputError(f"input {spec.name!r} is not an array ({type(value).__name__}): "
                                f"{exc}") from None


__all__ = ["InputChecker", "InputSpec"]
