"""
The command lines without the ``[zoo]`` extra: one line saying what to install, exit status 1, no traceback.

The missing package is simulated in subprocesses by a ``sitecustomize`` module that makes importing it fail
as an absent package does (``ModuleNotFoundError`` naming it), so the real console script and
``python -m`` entry points run as in an environment without rl-zoo3 or Optuna.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sb3_gpg import cli

REPO = Path(__file__).resolve().parents[1]
BLOCKER = """
import importlib.abc
import sys

BLOCKED = {blocked!r}


class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Absent())
"""
INSTALL_HINT = 'install the zoo extra: pip install ".[zoo]" in a checkout of sb3-gpg'


def _commands() -> list[tuple[str, list[str], str]]:
    """Each command line: a name for it, its arguments, and the program name its message must start with."""
    modules = {
        "sb3_gpg.cli": "sb3-gpg",
        "sb3_gpg.train": "python -m sb3_gpg.train",
        "sb3_gpg.enjoy": "python -m sb3_gpg.enjoy",
        "sb3_gpg.record_video": "python -m sb3_gpg.record_video",
    }
    commands = [(module, [sys.executable, "-m", module, "--help"], prog) for module, prog in modules.items()]
    script = shutil.which("sb3-gpg", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if script is not None:  # the console script of `pip install -e .`
        commands.append(("sb3-gpg", [script, "--help"], "sb3-gpg"))
    return commands


def _run_without(missing: str, command: list[str], folder: Path) -> subprocess.CompletedProcess:
    """Run ``command`` in ``folder`` as if the package ``missing`` were not installed."""
    (folder / "sitecustomize.py").write_text(BLOCKER.format(blocked=missing))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(folder), str(REPO)]))
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


COMMANDS = _commands()


@pytest.mark.slow
@pytest.mark.parametrize(
    "missing,command,prog",
    [pytest.param("rl_zoo3", command, prog, id=f"rl_zoo3-{name}") for name, command, prog in COMMANDS]
    + [pytest.param("optuna", COMMANDS[0][1], COMMANDS[0][2], id=f"optuna-{COMMANDS[0][0]}")],
)
def test_command_lines_without_the_zoo_extra_say_what_to_install(tmp_path, missing, command, prog):
    result = _run_without(missing, command, tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{prog}: the command line needs rl-zoo3 and Optuna (no module named {missing!r}): " + INSTALL_HINT
    ]


def test_other_missing_modules_are_not_reported_as_the_zoo_extra(monkeypatch):
    # A module missing for another reason (a broken install of a dependency) keeps its own error and traceback.
    def absent(name: str):
        raise ModuleNotFoundError("No module named 'sqlalchemy'", name="sqlalchemy")

    monkeypatch.setattr(cli.importlib, "import_module", absent)
    with pytest.raises(ModuleNotFoundError, match="sqlalchemy"):
        cli.zoo_cli()


def test_missing_zoo_extra_exits_with_one_line(monkeypatch):
    def absent(name: str):
        raise ModuleNotFoundError("No module named 'rl_zoo3'", name="rl_zoo3")

    monkeypatch.setattr(cli.importlib, "import_module", absent)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    message = str(exit_info.value.code)
    assert message.startswith("sb3-gpg: ") and message.endswith(INSTALL_HINT) and "\n" not in message
    assert exit_info.value.__suppress_context__, "the ModuleNotFoundError is not chained into the output"
