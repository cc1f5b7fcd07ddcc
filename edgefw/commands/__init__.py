"""The CLI's commands, one module each. A module defines ``register(subparsers)``, which
adds its sub-command with ``set_defaults(func=...)``; ``func(args) -> int`` is the exit code.

Commands are the integration point of the packages: they import ``runtime``, ``exporter``
and ``quantize`` lazily, inside the command, so ``import edgefw`` stays light.
"""

from __future__ import annotations

#: Command modules, in the order ``edgefw --help`` lists them.
COMMAND_MODULES = [
    "edgefw.commands.demo",
    "edgefw.commands.train",
    "edgefw.commands.run",
    "edgefw.commands.inspect",
    "edgefw.commands.bench",
    "edgefw.commands.export",
    "edgefw.commands.verify",
    "edgefw.commands.compare",
    "edgefw.commands.devices",
]
