"""The optimizer base class: parameter groups, per-parameter state and checkpointable state.

An optimizer holds ``param_groups`` (dicts with ``"params"`` and the hyper-parameters of those
parameters) and ``state`` (a dict from parameter to its own state dict). Subclasses only write
the update of one parameter (:meth:`Optimizer._update`); this class walks the groups, creates
the state lazily at the first step, and skips parameters whose ``.grad`` is ``None``.

Speed. The update works on numpy arrays in place, with two scratch arrays per parameter shape
that every step reuses, so a step allocates nothing. Calling a ufunc costs about a microsecond
whatever the size, so small parameters (biases, small layers) of one group and dtype are updated
together: their state lives in one flat buffer (``state[p]["exp_avg"]`` is a view into it) and
their gradients are gathered into another, so a step pays the ufunc calls once for all of them.

State dict. :meth:`Optimizer.state_dict` returns only plain values, so a checkpoint writer can
put it into an ``.npz`` file::

    {
        "state": {                      # keyed by str(parameter index); no entry = no state yet
            "0": {"step": 3, "exp_avg": ndarray, "exp_avg_sq": ndarray},
            ...
        },
        "param_groups": [               # one dict per group, in order
            {"lr": 0.001, "betas": [0.9, 0.999], ..., "params": [0, 1, 2, 3]},
        ],
    }

Parameters are numbered 0, 1, ... across the groups in order. Arrays are copies. Numbers may
come back from a file as 0-d arrays and lists as 1-d arrays; :meth:`load_state_dict` accepts
either, checks that groups, parameter counts and every state array's shape match, and raises
:class:`edgefw.errors.CheckpointError` naming the parameter and both shapes if they do not.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np

from edgefw.errors import CheckpointError, EdgeFWError, ShapeError


class OptimizerConfigError(EdgeFWError, ValueError):
    """An optimizer or scheduler argument that is out of range or of the wrong kind."""


# Parameters with at most this many elements are packed into one flat buffer per group and
# dtype. Above it, copying the gradient into the pack costs more than the ufunc calls it saves
# (measured break-even near 1e5 float32 elements).
PACK_MAX_NUMEL = 65536


def check_number(name: str, value: Any, low: float = 0.0, high: float | None = None,
                 high_open: bool = False) -> float:
    """``value`` as a float, or :class:`OptimizerConfigError` if it is not in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptimizerConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not value >= low or too_high:  # `not >=` also rejects NaN
        if high is None:
            raise OptimizerConfigError(f"{name} must be >= {low}, got {value}")
        interval = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise OptimizerConfigError(f"{name} must be in {interval}, got {value}")
    return value


class _Workspace:
    """Scratch arrays of one shape: ``a`` receives the update, ``b`` the weight-decayed grad."""

    __slots__ = ("a", "b")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.a = np.empty(shape, dtype)
        self.b = np.empty(shape, dtype)


class _PackMember:
    __slots__ = ("param", "state", "shape", "grad_view", "param_view", "update_view", "views")


class _FlatPack:
    """Small parameters of one group and dtype whose state lives in shared flat buffers."""

    def __init__(self, items: list, dtype: np.dtype, names: tuple[str, ...]) -> None:
        total = sum(p.data.size for p, _ in items)
        self.grad = np.empty(total, dtype)
        self.param = np.empty(total, dtype)
        self.work = _Workspace((total,), dtype)
        self.arrays = {name: np.zeros(total, dtype) for name in names}
        self.synced = False  # True while every member's state arrays are views of `arrays`
        self.members: list[_PackMember] = []
        offset = 0
        for param, state in items:
            shape = param.data.shape
            end = offset + param.data.size
            member = _PackMember()
            member.param, member.state, member.shape = param, state, shape
            member.grad_view = self.grad[offset:end].reshape(shape)
            member.param_view = self.param[offset:end].reshape(shape)
            member.update_view = self.work.a[offset:end].reshape(shape)
            member.views = {n: flat[offset:end].reshape(shape) for n, flat in self.arrays.items()}
            self.members.append(member)
            offset = end

    def sync(self, names: tuple[str, ...]) -> None:
        """Move every member's state into the flat buffers (members share one step count)."""
        for member in self.members:
            state = member.state
            state.setdefault("step", 0)
            for name in names:
                view, current = member.views[name], state.get(name)
                if current is view:
                    continue
                if current is None:
                    view.fill(0)
                else:
                    np.copyto(view, current)
                state[name] = view
        self.synced = True


class _StepSettings(NamedTuple):
    names: tuple[str, ...]  # state arrays the update needs
    decay: float | None  # decoupled weight decay factor
    needs_param: bool  # whether the update reads the parameter values


class _GroupPlan:
    __slots__ = ("key", "singles", "packs")

    def __init__(self, key: tuple, singles: list, packs: list) -> None:
        self.key, self.singles, self.packs = key, singles, packs


def to_plain(value: Any) -> Any:
    """numpy scalars, 0-d arrays and arrays read back from a file as Python numbers/lists."""
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def _like(value: Any, current: Any) -> Any:
    """A loaded hyper-parameter converted to the Python type of the current one."""
    value = to_plain(value)
    if isinstance(current, bool):
        return bool(value)
    if isinstance(current, tuple):
        return tuple(float(v) for v in value)
    return value


class Optimizer:
    """Base class of the optimizers.

    ``params`` is an iterable of parameters (objects with a numpy ``.data`` and a ``.grad``
    that is an array of the same shape or ``None``), or a list of dicts, each with
    ``"params"`` and hyper-parameters that override ``defaults`` for that group.

    >>> import numpy as np
    >>> from edgefw.optim import SGD
    >>> from edgefw.autograd import Parameter
    >>> w = Parameter(np.array([1.0, 2.0], dtype=np.float32))
    >>> opt = SGD([{"params": [w], "lr": 0.5}], lr=0.1)
    >>> w.grad = np.array([1.0, 1.0], dtype=np.float32)
    >>> opt.step()
    >>> w.data
    array([0.5, 1.5], dtype=float32)
    """

    # Names of every array this optimizer may keep per parameter (checked on load).
    state_array_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Any, dict[str, Any]] = {}
        self._plans: dict[int, tuple[dict, _GroupPlan]] = {}
        self._workspaces: dict[tuple, _Workspace] = {}
        if hasattr(params, "data") and hasattr(params, "grad"):
            raise OptimizerConfigError(
                "params must be an iterable of parameters or of dicts, got a single parameter; "
                "wrap it in a list"
            )
        if isinstance(params, dict):
            params = [params]
        try:
            groups = list(params)
        except TypeError:
            raise OptimizerConfigError(
                f"params must be an iterable of parameters or of dicts, got "
                f"{type(params).__name__} (pass model.parameters())"
            ) from None
        if not groups:
            raise OptimizerConfigError("the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ to override
    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise :class:`OptimizerConfigError` if the group's hyper-parameters are invalid."""

    def _array_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The zero-initialised arrays the update of this group keeps per parameter."""
        return ()

    def _needs_param_values(self, group: dict[str, Any]) -> bool:
        """Whether :meth:`_update` reads the parameter values (coupled weight decay)."""
        return False

    def _decoupled_decay(self, group: dict[str, Any]) -> float | None:
        """Factor the parameter is multiplied by before the update (AdamW), or None."""
        return None

    def _update(self, group: dict[str, Any], param: np.ndarray | None, grad: np.ndarray,
                state: dict[str, Any], step: int, work: _Workspace) -> np.ndarray:
        """Return the array to subtract from the parameter, written into ``work.a``.

        ``state`` holds this parameter's arrays (updated in place); ``step`` counts from 1.
        ``param`` is None unless :meth:`_needs_param_values` says otherwise.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ public API
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with hyper-parameters that override ``defaults``.

        >>> opt.add_param_group({"params": [bias], "weight_decay": 0.0})  # doctest: +SKIP
        """
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise OptimizerConfigError(
                f"a parameter group must be a dict with a 'params' entry, got {param_group!r}"
            )
        params = param_group["params"]
        if hasattr(params, "data") and hasattr(params, "grad"):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise OptimizerConfigError(
                "parameters must be given in a sequence with a fixed order, not a set"
            )
        params = list(params)
        index0 = sum(len(g["params"]) for g in self.param_groups)
        for i, param in enumerate(params):
            data = getattr(param, "data", None)
            if not hasattr(param, "grad") or not isinstance(data, np.ndarray):
                raise OptimizerConfigError(
                    f"parameter {index0 + i} must have a numpy .data and a .grad, "
                    f"got {type(param).__name__}"
                )
            if data.dtype.kind != "f" or not data.flags.writeable:
                raise OptimizerConfigError(
                    f"parameter {index0 + i} has a read-only or {data.dtype} array; only "
                    f"writeable floating-point parameters can be optimized in place"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, param in enumerate(params):
            if id(param) in seen:
                raise OptimizerConfigError(
                    f"parameter {index0 + i} appears more than once in the optimizer's groups"
                )
            seen.add(id(param))
        group = dict(self.defaults)
        group.update(param_group)
        group["params"] = params
        self._check_group(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (``set_to_none``) or fill them with zeros in place."""
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none:
                    param.grad = None
                elif param.grad is not None:
                    param.grad.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()`` if given."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            names = self._array_state_names(group)
            plan = self._plan(group, names)
            how = _StepSettings(names, self._decoupled_decay(group),
                                self._needs_param_values(group))
            for param, state, work in plan.singles:
                self._step_one(group, how, param, param.grad, state, work)
            for pack in plan.packs:
                self._step_pack(group, how, pack)
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The state as plain arrays, numbers, lists and dicts (see the module docstring)."""
        groups, state = [], {}
        index = 0
        for group in self.param_groups:
            saved = {k: to_plain(v) for k, v in group.items() if k != "params"}
            saved["params"] = list(range(index, index + len(group["params"])))
            groups.append(saved)
            for param in group["params"]:
                param_state = self.state.get(param)
                if param_state:
                    state[str(index)] = {
                        k: np.array(v, copy=True) if isinstance(v, np.ndarray) else to_plain(v)
                        for k, v in param_state.items()
                    }
                index += 1
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`; the next step continues bit for bit.

        Raises :class:`edgefw.errors.CheckpointError` if the saved state does not fit these
        parameters (group count, parameter count, a state array's shape); nothing is changed
        then.
        """
        try:
            new_groups, new_state = self._validate_state_dict(state_dict)
        except CheckpointError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise CheckpointError(f"malformed {type(self).__name__} state: {err}") from err
        self.param_groups = new_groups
        self.state = new_state
        self._plans.clear()

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])

    # ------------------------------------------------------------------ internals
    def _validate_state_dict(self, state_dict: Any) -> tuple[list[dict], dict[Any, dict]]:
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise CheckpointError(
                "an optimizer state dict needs 'state' and 'param_groups' entries"
            )
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise CheckpointError(
                f"optimizer state has {len(saved_groups)} parameter groups, this "
                f"{type(self).__name__} has {len(self.param_groups)}"
            )
        new_groups = []
        by_saved_index: dict[int, tuple[Any, dict]] = {}  # saved index -> (param, its group)
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if not isinstance(saved, dict):
                raise CheckpointError(f"optimizer state group {g} is not a dict")
            saved_params = to_plain(saved.get("params", []))
            saved_params = saved_params if isinstance(saved_params, list) else [saved_params]
            if len(saved_params) != len(group["params"]):
                raise CheckpointError(
                    f"optimizer state group {g} has {len(saved_params)} parameters, this "
                    f"optimizer's group {g} has {len(group['params'])}"
                )
            new_group = dict(group)
            for key, value in saved.items():
                if key != "params":
                    new_group[key] = _like(value, group.get(key))
            try:
                self._check_group(new_group)
            except OptimizerConfigError as err:
                raise CheckpointError(f"optimizer state group {g}: {err}") from err
            new_groups.append(new_group)
            for index, param in zip(saved_params, group["params"], strict=True):
                by_saved_index[int(index)] = (param, new_group)
        new_state = {}
        for key, saved_state in dict(state_dict["state"]).items():
            index = int(to_plain(key))
            if index not in by_saved_index:
                raise CheckpointError(
                    f"optimizer state for parameter {index}, which no parameter group lists"
                )
            param, group = by_saved_index[index]
            new_state[param] = self._load_param_state(index, param, saved_state, group)
        return new_groups, new_state

    def _load_param_state(self, index: int, param: Any, saved: Any,
                          group: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(saved, dict):
            raise CheckpointError(f"optimizer state for parameter {index} is not a dict")
        data = param.data
        state: dict[str, Any] = {}
        for key, value in saved.items():
            if key == "step":
                state["step"] = int(to_plain(value))
                continue
            if key not in self.state_array_names:
                raise CheckpointError(
                    f"optimizer state for parameter {index} has '{key}', which "
                    f"{type(self).__name__} does not keep (it keeps: "
                    f"{', '.join(self.state_array_names) or 'no arrays'})"
                )
            array = np.asarray(value)
            if array.shape != data.shape:
                raise CheckpointError(
                    f"optimizer state '{key}' of parameter {index} has shape {array.shape} in "
                    f"the checkpoint, but the parameter has shape {data.shape}"
                )
            state[key] = np.array(array, dtype=data.dtype, copy=True)
        if state.get("step", 0) > 0:
            missing = [n for n in self._array_state_names(group) if n not in state]
            if missing:
                raise CheckpointError(
                    f"optimizer state of parameter {index} lacks {', '.join(missing)}"
                )
        return state

    def _workspace(self, data: np.ndarray) -> _Workspace:
        key = (data.dtype.str, data.shape)
        work = self._workspaces.get(key)
        if work is None:
            work = self._workspaces[key] = _Workspace(data.shape, data.dtype)
        return work

    def _plan(self, group: dict[str, Any], names: tuple[str, ...]) -> _GroupPlan:
        """Which parameters of the group to update this step, one by one or packed.

        Cached until the group's parameters, the state arrays it needs or the set of
        parameters that have a gradient change. Only members with the same step count are
        packed together, so a pack's members always share their bias corrections.
        """
        params = group["params"]
        # ids, not the parameters: comparing distinct Tensors with == may be elementwise.
        key = (tuple([id(p) for p in params]), names, tuple([p.grad is None for p in params]))
        cached = self._plans.get(id(group))
        if cached is not None and cached[0] is group and cached[1].key == key:
            return cached[1]
        singles, small = [], {}
        for param in params:
            if param.grad is None:
                continue
            state = self.state.setdefault(param, {})
            data = param.data
            if data.size <= PACK_MAX_NUMEL:
                small.setdefault((data.dtype, state.get("step", 0)), []).append((param, state))
            else:
                singles.append((param, state, self._workspace(data)))
        packs = []
        for (dtype, _), items in small.items():
            if len(items) > 1:
                packs.append(_FlatPack(items, dtype, names))
            else:
                singles += [(p, s, self._workspace(p.data)) for p, s in items]
        plan = _GroupPlan(key, singles, packs)
        self._plans[id(group)] = (group, plan)
        return plan

    def _param_index(self, param: Any) -> int:
        flat = [p for group in self.param_groups for p in group["params"]]
        return next(i for i, p in enumerate(flat) if p is param)

    def _check_shapes(self, param: Any, grad: np.ndarray, shape: tuple[int, ...]) -> None:
        if grad.shape != shape or param.data.shape != shape:
            i = self._param_index(param)
            if param.data.shape != shape:
                raise ShapeError(
                    f"parameter {i} changed shape from {shape} to {param.data.shape} after "
                    f"the optimizer state was created"
                )
            raise ShapeError(
                f"parameter {i} has shape {shape} but its gradient has shape {grad.shape}"
            )

    def _step_one(self, group: dict[str, Any], how: _StepSettings, param: Any, grad: np.ndarray,
                  state: dict[str, Any], work: _Workspace) -> None:
        data = param.data
        if grad.shape != work.a.shape or data.shape != work.a.shape:
            self._check_shapes(param, grad, work.a.shape)
        if "step" not in state:
            state["step"] = 0
        for name in how.names:
            if name not in state:
                state[name] = np.zeros_like(data)
        step = state["step"] + 1
        state["step"] = step
        update = self._update(group, data if how.needs_param else None, grad, state, step, work)
        if how.decay is not None:
            data *= how.decay
        np.subtract(data, update, out=data)

    def _step_pack(self, group: dict[str, Any], how: _StepSettings, pack: _FlatPack) -> None:
        members = pack.members
        for member in members:
            grad, data = member.param.grad, member.param.data
            if grad.shape != member.shape or data.shape != member.shape:
                self._check_shapes(member.param, grad, member.shape)
        if not pack.synced:
            pack.sync(how.names)
        step = members[0].state["step"] + 1
        for member in members:
            np.copyto(member.grad_view, member.param.grad)
            member.state["step"] = step
        param_values = None
        if how.needs_param:
            for member in members:
                np.copyto(member.param_view, member.param.data)
            param_values = pack.param
        update = self._update(group, param_values, pack.grad, pack.arrays, step, pack.work)
        if update is not pack.work.a:
            np.copyto(pack.work.a, update)
        for member in members:
            data = member.param.data
            if how.decay is not None:
                data *= how.decay
            np.subtract(data, member.update_view, out=data)


__all__ = ["Optimizer", "OptimizerConfigError", "PACK_MAX_NUMEL", "check_number", "to_plain"]
