"""A crash while saving never destroys the previous checkpoint; training resumes from the last one."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch as th

from sb3_gpg import GPG

TRAIN_FOREVER = textwrap.dedent(
    """
    import sys
    from stable_baselines3.common.callbacks import CheckpointCallback
    from sb3_gpg import GPG

    model = GPG("MlpPolicy", "CartPole-v1", group_size=2, n_groups=1, n_epochs=1, seed=0)
    model.learn(10**9, callback=CheckpointCallback(save_freq=25, save_path=sys.argv[1], name_prefix="gpg"))
    """
)


def _checkpoints(folder):
    files = [f for f in os.listdir(folder) if f.startswith("gpg_") and f.endswith("_steps.zip")]
    return sorted(files, key=lambda f: int(f.split("_")[1]))


def test_crash_during_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.zip"
    model = GPG("MlpPolicy", "CartPole-v1", seed=0)
    model.save(path)
    before = path.read_bytes()

    def dying_save(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    import stable_baselines3.common.save_util as save_util

    real = save_util.save_to_zip_file

    def partial_write(save_path, *args, **kwargs):
        # Write part of a zip, then die, as a process killed mid-save would.
        save_path.write(b"PK\x03\x04 partial")
        dying_save()

    monkeypatch.setattr("stable_baselines3.common.base_class.save_to_zip_file", partial_write)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.setattr("stable_baselines3.common.base_class.save_to_zip_file", real)
    assert path.read_bytes() == before, "the previous checkpoint is intact"
    assert not list(tmp_path.glob(".*.tmp")), "the partial temporary file is removed"
    GPG.load(path)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [2.5, 3.3, 4.1])
def test_sigkill_leaves_last_checkpoint_loadable_and_training_resumes(tmp_path, kill_after):
    process = subprocess.Popen([sys.executable, "-c", TRAIN_FOREVER, str(tmp_path)])
    try:
        deadline = time.time() + 120
        while not _checkpoints(tmp_path) and time.time() < deadline:
            time.sleep(0.1)
        assert _checkpoints(tmp_path), "the training process wrote no checkpoint"
        time.sleep(kill_after)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    names = _checkpoints(tmp_path)
    assert len(names) >= 2
    # Every file with a checkpoint's name is complete (only hidden temporary files may be partial).
    for name in names[-3:]:
        GPG.load(tmp_path / name)
    last = tmp_path / names[-1]
    model = GPG.load(last, env=GPG("MlpPolicy", "CartPole-v1").get_env())
    steps = int(names[-1].split("_")[1])
    assert model.num_timesteps == steps
    params = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()
    model.learn(100, reset_num_timesteps=False)
    assert model.num_timesteps > steps
    assert not np.array_equal(params.numpy(), th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().numpy())


@pytest.mark.slow
def test_sigkill_during_rl_zoo3_save_freq_checkpoints(tmp_path):
    pytest.importorskip("rl_zoo3")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "sb3_gpg.train", "--algo", "gpg", "--env", "CartPole-v1", "--seed", "0"]
    process = subprocess.Popen(
        [*command, "-n", "10000000", "--save-freq", "400", "--eval-freq", "-1", "-f", "logs"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_dir = tmp_path / "logs" / "gpg" / "CartPole-v1_1"
    try:
        deadline = time.time() + 180
        while time.time() < deadline and len(list(run_dir.glob("rl_model_*_steps.zip"))) < 3:
            time.sleep(0.2)
        time.sleep(1.7)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    names = sorted(run_dir.glob("rl_model_*_steps.zip"), key=lambda p: int(p.name.split("_")[2]))
    assert len(names) >= 3
    for path in names:
        GPG.load(path)
    # rl-zoo3 resumes from the last checkpoint with --trained-agent.
    resumed = subprocess.run(
        [*command, "-i", str(names[-1]), "-n", "500", "--eval-freq", "-1", "-f", "resumed"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert list((tmp_path / "resumed" / "gpg").glob("CartPole-v1_*/CartPole-v1.zip"))
