"""Branched groups: members start from one state anywhere in the episode; the trunks are whole episodes."""

import io

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack, VecNormalize

from sb3_gpg import GPG, add_group_reset


class Spy(BaseCallback):
    """Copies the buffer's rows and the logged values at the end of every rollout."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts: list[dict] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        rows = {name: np.array(getattr(buffer, name)) for name in ("observations", "group_ids", "episode_ids", "timesteps")}
        self.rollouts.append({**rows, "logged": dict(self.model.logger.name_to_value)})


def test_members_start_from_one_state_and_trunks_are_whole_episodes():
    # Pendulum-v1 never terminates: every trunk is a whole episode of exactly its 200-step time limit, stitched from
    # the first 15 steps of member 0 of each group of its chain; every member of a group starts from one state.
    model = GPG("MlpPolicy", "Pendulum-v1", branch_horizon=30, branch_interval=15, group_size=3, n_groups=12, seed=0)
    spy = Spy()
    model.learn(3000, callback=spy)
    assert len(model.ep_info_buffer) >= 2
    assert all(info["l"] == 200 for info in model.ep_info_buffer)
    assert all(-16.3 * 200 <= info["r"] <= 0 for info in model.ep_info_buffer)
    from_snapshots = 0
    for rollout in spy.rollouts:
        assert rollout["timesteps"].max() < 15  # the steps past the interval only lengthened the returns
        starts = rollout["timesteps"] == 0
        for group in np.unique(rollout["group_ids"]):
            first = rollout["observations"][starts & (rollout["group_ids"] == group)]
            assert len(first) == 3
            np.testing.assert_array_equal(first, np.repeat(first[:1], 3, axis=0))
        from_snapshots += rollout["logged"]["gpg/branch_groups_from_snapshots"]
        assert rollout["logged"]["gpg/branch_groups"] == 12
    assert from_snapshots > 0


def test_branching_through_subproc_and_vec_normalize_saves_and_loads(tmp_path):
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, wrapper_class=add_group_reset))
    try:
        model = GPG("MlpPolicy", env, branch_horizon=20, group_size=2, n_groups=4, seed=0)
        model.learn(600)
        assert model.num_timesteps >= 600 and len(model.ep_info_buffer) > 0
        model.save(tmp_path / "model")
        loaded = GPG.load(tmp_path / "model", env=env)
        assert (loaded.branch_horizon, loaded.branch_interval) == (20, 10)
        assert loaded._chains == []  # snapshots belong to the env they came from
        loaded.learn(200)
    finally:
        env.close()


def test_replayed_envs_branch_and_log_their_replays():
    # LunarLander-v3 (Box2D) restores by replaying the episode's actions: the replayed steps are counted and logged.
    spy = Spy()
    GPG("MlpPolicy", "LunarLander-v3", branch_horizon=16, branch_interval=8, group_size=2, n_groups=8, seed=0).learn(
        500, callback=spy
    )
    replayed = [rollout["logged"]["gpg/branch_replayed_steps"] for rollout in spy.rollouts]
    from_snapshots = [rollout["logged"]["gpg/branch_groups_from_snapshots"] for rollout in spy.rollouts]
    assert sum(from_snapshots) > 0 and sum(replayed) >= 8 * sum(from_snapshots)


def test_branching_parameters_and_envs_are_checked():
    with pytest.raises(ValueError, match="branch_interval=30 is larger than branch_horizon=20"):
        GPG("MlpPolicy", "CartPole-v1", branch_horizon=20, branch_interval=30)
    with pytest.raises(ValueError, match="needs branch_horizon"):
        GPG("MlpPolicy", "CartPole-v1", branch_interval=10)
    with pytest.raises(ValueError, match="branch_horizon must be an integer >= 1"):
        GPG("MlpPolicy", "CartPole-v1", branch_horizon=0)
    stacked = VecFrameStack(make_vec_env("CartPole-v1", n_envs=2, wrapper_class=add_group_reset), n_stack=2)
    with pytest.raises(ValueError, match="VecFrameStack"):
        GPG("MlpPolicy", stacked, branch_horizon=20)
    # Without branching, stacking outside the env is fine as before.
    GPG("MlpPolicy", stacked, group_size=2)


def test_idle_envs_are_not_stored():
    spy = Spy()
    model = GPG("MlpPolicy", gym.make("CartPole-v1"), branch_horizon=10, group_size=2, n_groups=3, seed=1)
    model.learn(100, callback=spy)
    for rollout in spy.rollouts:
        assert len(np.unique(rollout["episode_ids"])) == 6
    buffer = io.BytesIO()
    model.save(buffer)


def test_monitor_files_hold_the_trunks_not_the_segments(tmp_path):
    # rl-zoo3's training plots read the monitor files: with branching they hold the whole episodes (Pendulum-v1's
    # 200 steps each), not the members' segments.
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0, monitor_dir=str(tmp_path), wrapper_class=add_group_reset)
    model = GPG("MlpPolicy", env, branch_horizon=40, branch_interval=20, group_size=2, n_groups=6, seed=0)
    model.learn(2500)
    rows = [
        line.split(",")
        for path in tmp_path.glob("*.monitor.csv")
        for line in path.read_text().splitlines()[2:]  # a JSON header line, then the column names
    ]
    assert len(rows) >= 2 and all(int(row[1]) == 200 for row in rows)
    returns = sorted(float(row[0]) for row in rows)
    assert returns == pytest.approx(sorted(info["r"] for info in model.ep_info_buffer), rel=1e-5)
