"""
The package as users get it: built into an sdist and a wheel, installed from the wheel with the ``[zoo]`` extra.

The wheel goes into a fresh virtual environment (not one that sees this environment's packages, which
would hide a missing dependency) with torch and the Box2D and MuJoCo envs, and every entry of
``hyperparams/gpg.yml``, ``default`` included, trains there through ``python -m sb3_gpg.train``. Slow:
building and installing take one to two minutes, the trainings about as long again.
"""

import concurrent.futures
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
#: An env without an entry in gpg.yml, trained with its ``default`` entry (MuJoCo; short episodes when untrained).
ENV_WITHOUT_ENTRY = "InvertedPendulum-v5"
#: The torch to install, as scripts/install.sh chooses it.
TORCH = os.environ.get("SB3_GPG_TORCH", "torch==2.13.0")

# Building, installing and training take minutes: twice pytest's usual 10-minute limit, for loaded machines.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment, without what would let a subprocess import packages from outside its venv."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def _check_call(command: list[str], cwd: Path, timeout: float) -> str:
    """Run ``command``; fail with the end of its output unless it exits 0; return its output."""
    result = subprocess.run(
        command, cwd=cwd, env=_clean_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output[-6000:]}"
    return output


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel (built from the sdist, as ``python -m build`` does), in a folder of their own."""
    out = tmp_path_factory.mktemp("dist")
    _check_call([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], cwd=out, timeout=300)
    return out


@pytest.fixture(scope="module")
def venv_python(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Python of a fresh venv holding the wheel with its ``[zoo]`` extra, torch and the Box2D and MuJoCo envs."""
    (wheel,) = dist.glob("sb3_gpg-*.whl")
    venv = tmp_path_factory.mktemp("venv")
    _check_call([sys.executable, "-m", "venv", str(venv)], cwd=venv, timeout=120)
    python = venv / "bin" / "python"
    # --no-compile: byte-compiling torch's sources would take longer than installing it.
    install = [str(python), "-m", "pip", "install", "-q", "--no-compile", TORCH, f"{wheel}[zoo]", "gymnasium[box2d,mujoco]"]
    _check_call(install, cwd=venv, timeout=900)
    return python


def test_wheel_ships_the_license_the_type_marker_and_the_configuration(dist: Path, venv_python: Path):
    (wheel,) = dist.glob("sb3_gpg-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sb3_gpg/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    code = "import pathlib, sb3_gpg.zoo.config as c; print(c.config_path()); print(pathlib.Path(c.__file__).resolve())"
    config, module = _check_call([str(venv_python), "-c", code], cwd=dist, timeout=300).split()
    # The installed package, not this checkout, and its configuration is the repository's.
    assert not Path(module).is_relative_to(REPO), module
    assert Path(config).read_text() == (REPO / "hyperparams" / "gpg.yml").read_text()


def _train(python: Path, env_id: str, folder: Path) -> str:
    """``python -m sb3_gpg.train`` on ``env_id`` in ``folder``, one torch thread, no evaluation; its output."""
    folder.mkdir()
    # GPG completes the rollout it starts (whole episodes), so -n 1 is one rollout and one update, whatever the entry.
    command = [str(python), "-m", "sb3_gpg.train", "--algo", "gpg", "--env", env_id, "-n", "1", "--seed", "0"]
    command += ["--eval-freq", "-1", "--num-threads", "1", "-f", "logs"]
    result = subprocess.run(
        command,
        cwd=folder,
        env=_clean_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        return f"{env_id}: exited {result.returncode}:\n{output[-4000:]}"
    if not (folder / "logs" / "gpg" / f"{env_id}_1" / f"{env_id}.zip").is_file():
        return f"{env_id}: exited 0 but saved no model:\n{output[-4000:]}"
    if env_id == ENV_WITHOUT_ENTRY and "Using 'default' hyperparameters" not in output:
        return f"{env_id}: not trained with the default entry:\n{output[-4000:]}"
    return ""


def test_every_gpg_yml_entry_trains_from_the_installed_wheel(venv_python: Path, tmp_path: Path):
    with open(REPO / "hyperparams" / "gpg.yml") as file:
        config = yaml.safe_load(file)
    assert "default" in config and ENV_WITHOUT_ENTRY not in config
    # Largest rollouts first, so that the longest run does not start last.
    entries = sorted(config, key=lambda env_id: -config[env_id]["group_size"] * (config[env_id].get("n_groups") or 1))
    env_ids = [ENV_WITHOUT_ENTRY if env_id == "default" else env_id for env_id in entries]
    # Two runs at a time: one torch thread each, on a machine of two cores or more.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda env_id: _train(venv_python, env_id, tmp_path / env_id), env_ids))
    failed = [outcome for outcome in outcomes if outcome]
    assert not failed, "\n\n".join(failed)
