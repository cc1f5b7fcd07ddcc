"""Every command in README.md runs: the fenced ``bash`` blocks through the CLI (in the
default run with arguments that keep them small; verbatim under ``-m slow``) and the
``python`` blocks in order, on a few hundred MNIST images.

A README command this file does not know fails :func:`test_every_readme_command_is_covered`,
so a new command cannot go untested."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgefw import cli, datasets
from edgefw.demo import runners

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

#: README command -> extra arguments for the default (fast) run.
FAST_ARGS = {
    "edgefw demo": ["--quick", "--limit", "800", "--test-limit", "200", "--runtimes",
                    "cpu,onnxruntime,tflite", "--verbose", "0"],
    "edgefw verify edgefw-demo/models/mlp_int8.tflite": ["--runtimes", "cpu,tflite"],
    "edgefw --help": [],
    "edgefw train --model lenet --epochs 1 --out lenet.npz": ["--limit", "300", "--verbose",
                                                              "0"],
    "edgefw export lenet.npz --format tflite --quantize int8 --out lenet_int8.tflite": [
        "--calibration", "32"],
    "edgefw inspect lenet_int8.tflite": [],
    "edgefw bench lenet_int8.tflite --compare tflite": ["--runs", "5", "--warmup", "1"],
    "edgefw compare lenet.npz --data mnist --out lenet-compare": [
        "--limit", "200", "--calibration", "64", "--no-latency",
        "--variants", "float32,int8_per_channel"],
    "edgefw devices": [],
}
#: README commands run by other means, and how.
OTHER = {
    "python3 -m venv .venv && . .venv/bin/activate": "the environment .ci/run creates",
    'pip install -e ".[dev,gpu]"': "test_install_commands (pyproject) and, slow, pip's dry run",
    "pytest": "the suite this file is part of",
}


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def bash_commands(text: str) -> list[str]:
    """Commands of the README's bash blocks: continuations joined, comments dropped."""
    commands = []
    for block in fenced_blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(" ".join(command.split()))
    return commands


def test_every_readme_command_is_covered():
    commands = bash_commands(README)
    assert "edgefw demo" in commands and 'pip install -e ".[dev,gpu]"' in commands
    unknown = [c for c in commands if c not in FAST_ARGS and c not in OTHER]
    assert unknown == [], f"README commands without a test: {unknown}"
    assert len(fenced_blocks(README, "python")) >= 4


def test_install_commands_match_pyproject():
    """``pip install -e .`` brings what the README's comment says; the extras it names
    (``[dev]``, ``[plot]``) exist."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {re.split(r"[<>=;\s\[]", d)[0] for d in project["dependencies"]}
    line = next(ln for ln in fenced_blocks(README, "bash")[0].splitlines()
                if ln.startswith("pip install -e"))
    for package in re.findall(r"[a-z][a-z0-9-]+", line.split("#", 1)[1]):
        if package not in ("use", "a", "venv", "wgpu"):
            assert package in required, package
    for extras in re.findall(r'pip install -e "\.\[([\w,]+)\]"', README):
        for extra in extras.split(","):
            assert extra in project["optional-dependencies"], extra
    assert project["scripts"]["edgefw"] == "edgefw.cli:main"


def _run_cli(command: str, extra: list[str]) -> int:
    argv = shlex.split(command)[1:] + extra
    try:
        return cli.main(argv)
    except SystemExit as exc:  # --help exits through argparse
        return int(exc.code or 0)


def test_readme_bash_commands_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for command in bash_commands(README):
        if command in OTHER:
            continue
        code = _run_cli(command, FAST_ARGS[command])
        out = capsys.readouterr()
        assert code == 0, f"{command}: exit {code}\n{out.out[-2000:]}\n{out.err[-2000:]}"
    assert (tmp_path / "edgefw-demo" / "report.md").is_file()
    assert (tmp_path / "lenet_int8.tflite").is_file()


@pytest.fixture
def tiny_mnist(monkeypatch, tmp_path):
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    tiny = ((x_train[:384], y_train[:384]), (x_test[:256], y_test[:256]))
    monkeypatch.setattr(datasets, "load_mnist", lambda path=None: tiny)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_python_blocks_run_in_order(tiny_mnist, monkeypatch, capsys):
    # the GPU runner is covered by the GPU and verify tests; here it would only add time
    monkeypatch.setattr(runners, "_gpu_status", lambda graph: runners.RunnerStatus(
        "edgefw gpu", None, "left out by this test"))
    namespace: dict = {"__name__": "__readme__"}
    for block in fenced_blocks(README, "python"):
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's code
    out = capsys.readouterr().out
    assert (tiny_mnist / "mlp.npz").is_file() and (tiny_mnist / "net.npz").is_file()
    assert out.count("verified: True") == 2
    assert namespace["contract"].layout == "NHWC"
    assert namespace["scores"].shape == (1, 10)
    # the traced graph's output is the trained net's own forward
    import edgefw

    with edgefw.no_grad():
        forward = namespace["net"](namespace["images"]).numpy()
    np.testing.assert_allclose(namespace["logits"], forward, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_readme_commands_verbatim(tmp_path, monkeypatch, capsys):
    """The README's commands exactly as written (the demo trains 5 epochs on 60,000 images;
    pip resolves the editable install without installing anything)."""
    monkeypatch.chdir(tmp_path)
    for command in bash_commands(README):
        if command == "pytest" or command.startswith("python3 -m venv"):
            continue  # the suite itself; the environment .ci/run creates (see OTHER)
        if command.startswith("pip install"):
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
                 "--no-build-isolation", "--no-index", "-e", str(ROOT)],
                capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stderr[-2000:]
            continue
        assert _run_cli(command, []) == 0, command
        capsys.readouterr()
