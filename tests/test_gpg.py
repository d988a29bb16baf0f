"""GPG as an SB3 algorithm: rollouts, buffer values, spaces, persistence, determinism, errors."""

import hashlib
import io
import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import (
    FakeImageEnv,
    IdentityEnv,
    IdentityEnvBox,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack, VecNormalize

from sb3_gpg import GPG, GroupResetWrapper, add_group_reset, estimator, safety
from tests.envs import ConstantRewardEnv, EndlessEnv, KnownRewardEnv, ResetRecorder, with_seeded_spaces


class RolloutSpy(BaseCallback):
    """Copies the buffer's arrays at the end of every rollout."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts: list[dict] = []
        self.logged: list[dict] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.logged.append(dict(self.model.logger.name_to_value))
        buf = self.model.rollout_buffer
        self.rollouts.append(
            {
                name: np.array(getattr(buf, name))
                for name in ("observations", "rewards", "returns", "advantages", "episode_ids", "group_ids", "timesteps")
            }
        )


# ---------------------------------------------------------------------------- buffer values


def _expected_group_advantages(episodes: list[list[float]], gamma: float) -> list[tuple[list[float], list[float]]]:
    """Plain-loop returns and timestep-bin advantages of one group (independent of the estimator module)."""
    returns = []
    for rewards in episodes:
        ret, acc = [0.0] * len(rewards), 0.0
        for t in reversed(range(len(rewards))):
            acc = rewards[t] + gamma * acc
            ret[t] = acc
        returns.append(ret)
    out = []
    for ret in returns:
        adv = []
        for t, value in enumerate(ret):
            peers = [other[t] for other in returns if len(other) > t]
            adv.append(value - sum(peers) / len(peers))
        out.append((ret, adv))
    return out


@pytest.mark.parametrize("n_envs", [1, 3])
def test_buffer_returns_and_advantages_match_independent_computation(n_envs):
    KnownRewardEnv.episodes.clear()
    spy = RolloutSpy()
    env = DummyVecEnv([KnownRewardEnv for _ in range(n_envs)])
    gamma = 0.9
    model = GPG("MlpPolicy", env, group_size=4, n_groups=2, gamma=gamma, normalize_advantage=False, seed=3)
    model.learn(30, callback=spy)
    data = spy.rollouts[0]
    # The env logged every finished episode with its seed; the rollout's 8 episodes are the first 8.
    logged = KnownRewardEnv.episodes[:8]
    by_seed: dict[int, list[list[float]]] = {}
    for episode in logged:
        by_seed.setdefault(episode["seed"], []).append(episode["rewards"])
    assert sorted(len(v) for v in by_seed.values()) == [4, 4], "each group's 4 episodes share one reset seed"

    for group in (0, 1):
        in_group = data["group_ids"] == group
        buffer_episodes = []
        for episode in np.unique(data["episode_ids"][in_group]):
            rows = data["episode_ids"] == episode
            buffer_episodes.append(
                (
                    [round(r, 5) for r in data["rewards"][rows]],
                    data["returns"][rows],
                    data["advantages"][rows],
                )
            )
        rewards_of_group = sorted(tuple(r) for r, _, _ in buffer_episodes)
        matching = [eps for eps in by_seed.values() if sorted(tuple(round(x, 5) for x in e) for e in eps) == rewards_of_group]
        assert matching, "the buffer's group holds exactly the episodes the env played from one seed"
        expected = _expected_group_advantages(matching[0], gamma)
        expected_by_rewards = sorted(
            ((tuple(round(x, 5) for x in rew), ret, adv) for rew, (ret, adv) in zip(matching[0], expected, strict=True)),
            key=lambda item: item[0],
        )
        got = sorted(((tuple(r), ret, adv) for r, ret, adv in buffer_episodes), key=lambda item: item[0])
        for (_, exp_ret, exp_adv), (_, ret, adv) in zip(expected_by_rewards, got, strict=True):
            np.testing.assert_allclose(ret, exp_ret, rtol=1e-5)
            np.testing.assert_allclose(adv, exp_adv, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- groups share start states


def _recorded_starts(env_id: str, n_envs: int, seed: int, wrap=None):
    log: list = []
    # The recorder sits below the GroupResetWrapper, so it sees the seed each reset really used.
    vec_env = make_vec_env(lambda: GroupResetWrapper(ResetRecorder(gym.make(env_id), log)), n_envs=n_envs, seed=seed)
    if wrap is not None:
        vec_env = wrap(vec_env)
    model = GPG("MlpPolicy", vec_env, group_size=4, n_groups=2, seed=seed, n_epochs=1)
    spy = RolloutSpy()
    # Drop the resets done while building and in learn()'s setup (which uses SB3's env seeds).
    spy._on_training_start = log.clear  # type: ignore[method-assign]
    model.learn(1, callback=spy)
    return log, spy, model


@pytest.mark.parametrize(
    "env_id,n_envs,wrap",
    [
        ("CartPole-v1", 1, None),
        ("CartPole-v1", 4, None),
        ("CartPole-v1", 3, lambda v: VecNormalize(v)),
        ("CartPole-v1", 2, lambda v: VecFrameStack(v, 2)),
        ("LunarLander-v3", 4, None),
    ],
)
def test_group_episodes_share_initial_state(env_id, n_envs, wrap):
    log, spy, _ = _recorded_starts(env_id, n_envs, seed=5, wrap=wrap)
    seeded = [(s, obs) for s, obs in log if s is not None]
    # Every episode of the rollout starts from a seeded reset: at the rollout's start through a VecEnv
    # reset, later through the env's own auto-reset with its armed seed. Backup arms may start a few
    # extra (unstored) episodes with a group's seed, so a seed can be used more than 4 times.
    seeds = [s for s, _ in seeded]
    assert len(set(seeds)) == 2 and all(seeds.count(s) >= 4 for s in set(seeds))
    for s in set(seeds):
        starts = [obs for seed, obs in seeded if seed == s]
        for obs in starts[1:]:
            np.testing.assert_array_equal(obs, starts[0])
    first_a, first_b = (next(obs for seed, obs in seeded if seed == s) for s in set(seeds))
    assert not np.array_equal(first_a, first_b), "the two groups of a rollout start from different states"
    # The buffer's episodes: 8, four per group.
    data = spy.rollouts[0]
    assert len(np.unique(data["episode_ids"])) == 8
    assert np.bincount(data["group_ids"][data["timesteps"] == 0]).tolist() == [4, 4]
    if wrap is None:
        # Without observation wrappers the stored first observations of a group's episodes are identical.
        for group in (0, 1):
            firsts = data["observations"][(data["group_ids"] == group) & (data["timesteps"] == 0)]
            assert (firsts == firsts[0]).all()


def test_rollouts_draw_fresh_group_seeds():
    log, _, model = _recorded_starts("CartPole-v1", 2, seed=1)
    first = {s for s, _ in log if s is not None}
    log.clear()
    model.learn(1, reset_num_timesteps=False)
    second = {s for s, _ in log if s is not None}
    assert first and second and not first & second


@pytest.mark.slow
def test_subproc_vec_env_and_idle_fraction():
    env = make_vec_env("CartPole-v1", n_envs=2, vec_env_cls=SubprocVecEnv, wrapper_class=add_group_reset, seed=0)
    try:
        model = GPG("MlpPolicy", env, group_size=4, n_groups=2, n_epochs=1, seed=0)
        spy = RolloutSpy()
        model.learn(500, callback=spy)
        assert model.num_timesteps >= 500
        assert all(0.0 <= logged["rollout/idle_fraction"] < 1.0 for logged in spy.logged)
    finally:
        env.close()


def test_monitor_records_capped_episodes_with_add_group_reset():
    # Pendulum's episodes last 200 steps; GPG's cap ends them after 10. Through add_group_reset (the
    # wrapper_class the docs recommend) the wrapper sits below SB3's Monitor, which records those episodes;
    # wrapped on top of Monitor, as wrapper_class=GroupResetWrapper puts it, it hides them from Monitor.
    recorded = {}
    for wrapper_class in (add_group_reset, GroupResetWrapper):
        env = make_vec_env("Pendulum-v1", n_envs=2, wrapper_class=wrapper_class, seed=0)
        model = GPG("MlpPolicy", env, group_size=2, n_groups=2, max_episode_steps=10, n_epochs=1, seed=0)
        model.learn(1)  # one rollout: 4 episodes of 10 steps
        recorded[wrapper_class] = [info["l"] for info in model.ep_info_buffer]
    assert recorded[add_group_reset] == [10, 10, 10, 10]
    assert recorded[GroupResetWrapper] == []


@pytest.mark.slow
def test_subproc_vec_env_without_wrapper_is_refused():
    env = make_vec_env("CartPole-v1", n_envs=2, vec_env_cls=SubprocVecEnv)
    try:
        with pytest.raises(ValueError, match="add_group_reset"):
            GPG("MlpPolicy", env)
    finally:
        env.close()


def test_num_timesteps_counts_every_env_step():
    class StepCounter(BaseCallback):
        calls = 0

        def _on_step(self) -> bool:
            StepCounter.calls += 1
            return True

    env = make_vec_env("CartPole-v1", n_envs=3, seed=0)
    model = GPG("MlpPolicy", env, group_size=2, n_groups=3, n_epochs=1, seed=0)
    model.learn(300, callback=StepCounter())
    assert model.num_timesteps == StepCounter.calls * 3


# ---------------------------------------------------------------------------- spaces and policies


@pytest.mark.parametrize(
    "env_fn,policy,kwargs",
    [
        (lambda: with_seeded_spaces(IdentityEnv)(4, ep_length=8), "MlpPolicy", {}),
        (lambda: with_seeded_spaces(IdentityEnvBox)(ep_length=8), "MlpPolicy", {}),
        (lambda: with_seeded_spaces(IdentityEnvBox)(ep_length=8), "MlpPolicy", {"use_sde": True, "sde_sample_freq": 4}),
        (lambda: with_seeded_spaces(IdentityEnvMultiDiscrete)(3, ep_length=8), "MlpPolicy", {}),
        (lambda: with_seeded_spaces(IdentityEnvMultiBinary)(3, ep_length=8), "MlpPolicy", {}),
        (lambda: gym.make("FrozenLake-v1"), "MlpPolicy", {"binning": "state"}),
        (
            lambda: with_seeded_spaces(FakeImageEnv)(screen_height=36, screen_width=36, n_channels=1),
            "CnnPolicy",
            {"max_episode_steps": 6},
        ),
        # random_start=True draws the start from NumPy's global generator: GPG refuses it (test_rollout.py).
        (lambda: SimpleMultiObsEnv(random_start=False), "MultiInputPolicy", {"max_episode_steps": 10}),
        (lambda: gym.make("Pendulum-v1"), "MlpPolicy", {"binning": "grid", "bin_eps": 0.5}),
    ],
)
def test_learn_smoke_on_every_space(env_fn, policy, kwargs):
    model = GPG(policy, env_fn(), group_size=2, n_groups=2, batch_size=16, n_epochs=2, seed=0, **kwargs)
    model.learn(60)
    assert model.num_timesteps >= 60
    assert model.rollout_buffer.size() > 0
    action, _ = model.predict(model.env.reset(), deterministic=True)
    assert action.shape[0] == model.env.num_envs == 1
    assert model.env.action_space.contains(action[0].astype(model.env.action_space.dtype))


def test_gsde_policy_resets_noise():
    model = GPG("MlpPolicy", "Pendulum-v1", use_sde=True, group_size=2, n_groups=1, n_epochs=1, seed=0)
    model.learn(10)
    assert "train/std" in model.logger.name_to_value


@pytest.mark.parametrize(
    "env_fn,policy,net_arch",
    [
        (lambda: gym.make("CartPole-v1"), "MlpPolicy", [64, 64]),
        (lambda: gym.make("Pendulum-v1"), "MlpPolicy", [32]),
        (lambda: FakeImageEnv(screen_height=36, screen_width=36, n_channels=1), "CnnPolicy", None),
        (lambda: SimpleMultiObsEnv(random_start=True), "MultiInputPolicy", [16]),
    ],
)
def test_parameter_count_equals_ppo_actor(env_fn, policy, net_arch):
    kwargs = {} if net_arch is None else {"net_arch": net_arch}
    gpg = GPG(policy, env_fn(), policy_kwargs=kwargs, max_episode_steps=10, seed=0)
    ppo_kwargs = {} if net_arch is None else {"net_arch": dict(pi=net_arch, vf=net_arch)}
    ppo = PPO(policy, env_fn(), policy_kwargs=ppo_kwargs, seed=0)
    n_gpg = sum(p.numel() for p in gpg.policy.parameters())
    critic = [*ppo.policy.value_net.parameters(), *ppo.policy.mlp_extractor.value_net.parameters()]
    n_ppo_actor = sum(p.numel() for p in ppo.policy.parameters()) - sum(p.numel() for p in critic)
    assert n_gpg == n_ppo_actor
    assert not any("value" in name for name, _ in gpg.policy.named_parameters())


def test_net_arch_dict_with_vf_warns():
    with pytest.warns(UserWarning, match="no value network"):
        model = GPG("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": dict(pi=[16], vf=[16])})
    assert model.policy.net_arch == [16]


# ---------------------------------------------------------------------------- persistence


@pytest.mark.parametrize(
    "baseline,baseline_kwargs",
    [
        ("group", {"leave_one_out": True, "min_bin_count": 3, "per_bin_std": True}),
        ("knn", {"n_neighbors": 4, "n_folds": 3, "time_weight": 0.5}),
    ],
)
def test_baselines_reach_the_buffer_and_survive_save_load(tmp_path, baseline, baseline_kwargs):
    # per_bin_std takes normalize_advantage=False; the buffer's advantages do not depend on it (train() normalizes).
    model = GPG("MlpPolicy", "Pendulum-v1", group_size=3, n_groups=2, n_epochs=1, baseline=baseline, seed=0,
                baseline_kwargs=baseline_kwargs, normalize_advantage=False)  # fmt: skip
    model.learn(1)  # one rollout: 6 episodes of 200 steps
    buffer = model.rollout_buffer
    expected = estimator.advantages(buffer.returns, buffer.group_ids, buffer.episode_ids, buffer.bin_ids,
                                    buffer.observations, buffer.timesteps, baseline, baseline_kwargs)  # fmt: skip
    np.testing.assert_allclose(buffer.advantages, expected.advantages.astype(np.float32))
    default = estimator.group_advantages(buffer.returns, buffer.group_ids, buffer.episode_ids, buffer.bin_ids)
    assert not np.allclose(buffer.advantages, default.advantages), "the option changes the advantages"
    model.save(tmp_path / "model")
    loaded = GPG.load(tmp_path / "model", env=make_vec_env("Pendulum-v1"))
    assert (loaded.rollout_buffer.baseline, loaded.rollout_buffer.baseline_kwargs) == (baseline, baseline_kwargs)


def test_save_load_roundtrip_and_continue_training(tmp_path):
    model = GPG("MlpPolicy", "CartPole-v1", group_size=2, n_groups=2, n_epochs=2, seed=0)
    model.learn(300)
    path = tmp_path / "gpg_cartpole"
    model.save(path)
    assert (tmp_path / "gpg_cartpole.zip").exists()
    assert not list(tmp_path.glob(".*tmp")), "no temporary file is left behind"
    loaded = GPG.load(path, env=make_vec_env("CartPole-v1", n_envs=1))
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    for key in ("group_size", "n_groups", "binning", "bin_width", "gamma", "batch_size"):
        assert getattr(loaded, key) == getattr(model, key)
    data, _, _ = load_from_zip_file(path)
    assert not {"n_steps", "gae_lambda", "vf_coef"} & set(data), "no critic or fixed-rollout parameter is saved"
    steps = loaded.num_timesteps
    loaded.learn(200, reset_num_timesteps=False)
    assert loaded.num_timesteps > steps
    # Buffers work too.
    buffer = io.BytesIO()
    loaded.save(buffer)
    buffer.seek(0)
    GPG.load(buffer)


def test_load_errors(tmp_path):
    ppo = PPO("MlpPolicy", "CartPole-v1", n_steps=64)
    ppo.save(tmp_path / "ppo")
    with pytest.raises(ValueError, match="not saved by GPG"):
        GPG.load(tmp_path / "ppo.zip")
    gpg = GPG("MlpPolicy", "CartPole-v1")
    gpg.save(tmp_path / "gpg")
    # PPO.load on a GPG file is SB3's to refuse: it loads, and fails at its first rollout (docs/modules/gpg.rst, "Notes").
    ppo_on_gpg = PPO.load(tmp_path / "gpg.zip", env=make_vec_env("CartPole-v1", n_envs=1))
    with pytest.raises(ValueError, match="not enough values to unpack"):
        ppo_on_gpg.learn(10)
    data = (tmp_path / "gpg.zip").read_bytes()
    (tmp_path / "truncated.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        GPG.load(tmp_path / "truncated.zip")
    with pytest.raises(FileNotFoundError):
        GPG.load(tmp_path / "missing.zip")


def test_checkpoints_and_eval_callback_and_vecnormalize(tmp_path):
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    eval_env = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=1), training=False, norm_reward=False)
    callbacks = [
        CheckpointCallback(save_freq=100, save_path=str(tmp_path), name_prefix="gpg", save_vecnormalize=True),
        EvalCallback(eval_env, eval_freq=200, n_eval_episodes=2, log_path=str(tmp_path), warn=False),
    ]
    model = GPG("MlpPolicy", env, group_size=2, n_groups=2, n_epochs=1, seed=0, tensorboard_log=str(tmp_path / "tb"))
    model.learn(600, callback=callbacks, progress_bar=True)
    checkpoints = sorted(tmp_path.glob("gpg_*_steps.zip"))
    assert checkpoints and (tmp_path / "evaluations.npz").exists()
    assert list((tmp_path / "tb").rglob("events.out.tfevents*"))
    loaded = GPG.load(checkpoints[-1])
    mean, _ = evaluate_policy(loaded, make_vec_env("CartPole-v1", n_envs=1), n_eval_episodes=2)
    assert mean > 0


# ---------------------------------------------------------------------------- determinism


def _trained_params(seed: int, vec_env_cls=DummyVecEnv) -> np.ndarray:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=seed, vec_env_cls=vec_env_cls, wrapper_class=add_group_reset)
    model = GPG("MlpPolicy", env, group_size=2, n_groups=2, batch_size=32, n_epochs=2, seed=seed)
    model.learn(400)
    env.close()
    return th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().numpy()


def test_same_seed_same_parameters():
    a, b = _trained_params(7), _trained_params(7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _trained_params(8))


@pytest.mark.slow
def test_same_parameters_with_subproc_vec_env():
    # Bitwise identical with SubprocVecEnv too (same seeds reach the same sub-envs).
    c, d = _trained_params(7, SubprocVecEnv), _trained_params(7, SubprocVecEnv)
    np.testing.assert_array_equal(c, d)
    np.testing.assert_array_equal(_trained_params(7), c)


def test_behaviour_fingerprint_is_unchanged():
    # Pinned before the rollout code was restructured, from the commit before that change: the rollouts' episode, group,
    # time-step and action arrays, and the trained parameters. A change means GPG no longer does what it did;
    # if that is intended (or torch's sampling changes), recompute the numbers and say why in the commit.
    digest = hashlib.sha256()

    class Spy(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            for name in ("episode_ids", "group_ids", "timesteps", "actions"):
                digest.update(np.ascontiguousarray(getattr(self.model.rollout_buffer, name)).tobytes())

    env = make_vec_env("CartPole-v1", n_envs=3, seed=0)
    model = GPG("MlpPolicy", env, group_size=4, n_groups=2, n_epochs=2, seed=0, device="cpu")
    model.learn(1500, callback=Spy())
    params = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().double()
    assert model.num_timesteps == 1662
    assert digest.hexdigest()[:16] == "662ea1a977d21003"
    # The rollouts are pinned bit for bit; the trained parameters to 1e-5: torch's CPU kernels round differently on
    # different CPUs (measured: 1.6e-6 relative on a CPU with AVX-512 and AMX against the CPU the numbers came from),
    # while a change of behaviour moves these sums far more.
    assert float(params.sum()) == pytest.approx(11.980275245645316, rel=1e-5)
    assert float(params.abs().sum()) == pytest.approx(621.5377854737162, rel=1e-5)


def test_group_seed_generator_survives_save_and_load(tmp_path):
    # A model saved mid-training and reloaded draws the same next group seeds as the original.
    def next_group_seeds(model: GPG) -> list[int]:
        log: list = []
        model.set_env(make_vec_env(lambda: GroupResetWrapper(ResetRecorder(gym.make("CartPole-v1"), log)), n_envs=2))
        spy = RolloutSpy()
        spy._on_training_start = log.clear  # type: ignore[method-assign]  # drop learn()'s own (SB3-seeded) reset
        model.learn(1, callback=spy, reset_num_timesteps=False)
        # The group seeds drawn (the order of the later resets depends on sampled actions, hence on torch's RNG).
        return sorted({seed for seed, _ in log if seed is not None})

    model = GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), group_size=2, n_groups=2, n_epochs=1, seed=3)
    model.learn(300)
    model.save(tmp_path / "mid")
    loaded = GPG.load(tmp_path / "mid")
    seeds = next_group_seeds(model)
    assert len(seeds) == 2 and seeds == next_group_seeds(loaded)
    fresh = GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2), group_size=2, n_groups=2, n_epochs=1, seed=3)
    assert not set(seeds) & set(next_group_seeds(fresh)), "the loaded generator did not restart from the seed"


# ---------------------------------------------------------------------------- configuration errors


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"group_size": 1}, "no bin can ever hold two returns"),
        ({"group_size": 0}, "group_size must be an integer >= 1"),
        ({"n_groups": 0}, "n_groups must be an integer >= 1"),
        ({"bin_eps": 0.0}, "bin_eps"),
        ({"bin_eps": -1.0}, "bin_eps"),
        ({"bin_width": 0}, "bin_width"),
        ({"batch_size": 0}, "batch_size"),
        ({"binning": "bogus"}, "binning='bogus' is unknown"),
        ({"binning": "state"}, "binning='state' needs a Discrete observation space"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
        ({"baseline": "critic"}, "baseline='critic' is unknown"),
        ({"baseline_kwargs": {"n_neighbors": 8}}, r"\['n_neighbors'\] do not apply to baseline='group'"),
        ({"baseline_kwargs": {"min_bin_count": 1}}, r"baseline_kwargs\['min_bin_count'\] must be None or an integer >= 2"),
        ({"baseline": "knn", "baseline_kwargs": {"n_folds": 1}}, r"baseline_kwargs\['n_folds'\] must be an integer >= 2"),
    ],
)
def test_configuration_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPG("MlpPolicy", "CartPole-v1", **kwargs)


def test_per_bin_std_with_per_minibatch_normalization_is_refused():
    per_bin_std = {"per_bin_std": True}
    message = r"'per_bin_std': True.* normalize_advantage=True normalizes .*twice.*set normalize_advantage=False"
    with pytest.raises(ValueError, match=message):
        GPG("MlpPolicy", "CartPole-v1", baseline_kwargs=per_bin_std)  # normalize_advantage=True is the default
    assert GPG("MlpPolicy", "CartPole-v1", baseline_kwargs=per_bin_std, normalize_advantage=False).normalize_advantage is False
    # Either normalization alone is accepted.
    GPG("MlpPolicy", "CartPole-v1", baseline_kwargs={"per_bin_std": False}, normalize_advantage=True)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_steps": 2048}, "PPO's n_steps=2048: GPG collects whole episodes.*group_size.*n_groups"),
        ({"gae_lambda": 0.95}, "PPO's gae_lambda=0.95: GPG has no critic.*no GAE"),
        ({"vf_coef": 0.5}, "PPO's vf_coef=0.5: GPG has no critic"),
        ({"clip_range_vf": 0.2}, "PPO's clip_range_vf=0.2: GPG has no critic"),
        ({"rollout_buffer_class": None}, "GroupRolloutBuffer"),
        ({"n_step": 5}, r"unexpected keyword arguments \['n_step'\]"),
    ],
)
def test_ppo_keyword_arguments_say_what_gpg_uses_instead(kwargs, match):
    with pytest.raises(TypeError, match=match):
        GPG("MlpPolicy", "CartPole-v1", **kwargs)


@pytest.mark.parametrize("verbose,expected", [(0, 0), (1, 1), (2, 3)])
def test_all_zero_advantages_message_once_at_verbose_1(verbose, expected, capsys):
    model = GPG("MlpPolicy", ConstantRewardEnv(length=2), group_size=2, n_groups=1, n_epochs=1, verbose=verbose)
    spy = RolloutSpy()
    model.learn(12, callback=spy)
    assert len(spy.logged) == 3 and all(logged["gpg/all_advantages_zero"] == 1 for logged in spy.logged)
    assert capsys.readouterr().out.count("every advantage of this rollout is zero") == expected


def test_too_few_episodes_for_envs():
    with pytest.raises(ValueError, match="fewer than n_envs=8"):
        GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8), group_size=2, n_groups=2)
    model = GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8), group_size=4)
    assert model.episodes_per_rollout >= 16


def test_unsupported_action_space():
    class TupleActionEnv(EndlessEnv):
        def __init__(self):
            super().__init__()
            self.action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))

    with pytest.raises(ValueError, match="does not support the action space"):
        GPG("MlpPolicy", TupleActionEnv())

    class TupleObsEnv(EndlessEnv):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))

    with pytest.raises(ValueError, match="does not support the observation space"):
        GPG("MlpPolicy", TupleObsEnv())


def test_endless_episode_error_and_max_episode_steps(monkeypatch):
    monkeypatch.setattr(safety, "RUNAWAY_EPISODE_STEPS", 50)
    # The missing time limit is said at construction, before any step ...
    with pytest.warns(UserWarning, match="no time limit.*max_episode_steps"):
        model = GPG("MlpPolicy", EndlessEnv(), group_size=2, n_groups=1)
    # ... and an episode that does not end stops training with the fix.
    with pytest.raises(RuntimeError, match="max_episode_steps"):
        model.learn(100)
    model = GPG("MlpPolicy", EndlessEnv(), group_size=2, n_groups=1, max_episode_steps=7, n_epochs=1)
    spy = RolloutSpy()
    model.learn(10, callback=spy)
    assert spy.rollouts[0]["timesteps"].max() == 6
    assert len(model.ep_info_buffer) == 2 and model.ep_info_buffer[0]["l"] == 7, "Monitor saw the GPG step limit"


def test_self_truncating_env_without_time_limit_works():
    model = GPG("MlpPolicy", ConstantRewardEnv(length=4), group_size=2, n_groups=2, n_epochs=1)
    spy = RolloutSpy()
    model.learn(20, callback=spy)
    assert spy.logged[0]["gpg/zero_advantage_fraction"] == 1.0


def test_nan_reward_error():
    with pytest.raises(ValueError, match=r"Env 0 returned a non-finite reward \(nan\) at step 3.*VecCheckNan"):
        GPG("MlpPolicy", ConstantRewardEnv(nan_at=3), group_size=2, n_groups=1).learn(20)


def test_inf_observation_error():
    class InfObservation(gym.ObservationWrapper):
        def observation(self, observation):
            return (
                observation * np.inf
                if self.env.unwrapped.steps_beyond_terminated is None and np.random.rand() < 0.2
                else observation
            )

    with pytest.raises(ValueError, match="non-finite observation"):
        GPG("MlpPolicy", InfObservation(gym.make("CartPole-v1")), group_size=2, n_groups=1, seed=0).learn(200)


def test_callable_binning_wrong_output_is_refused_clearly():
    model = GPG("MlpPolicy", "CartPole-v1", binning=lambda obs, t: np.zeros(3), group_size=2, n_groups=1)
    with pytest.raises(ValueError, match="one integer bin id per step"):
        model.learn(10)


def test_constant_rewards_train_without_nan():
    model = GPG("MlpPolicy", ConstantRewardEnv(scale=1e6, length=5), group_size=4, n_groups=1, n_epochs=2)
    before = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()
    spy = RolloutSpy()
    model.learn(40, callback=spy)
    after = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach()
    assert th.isfinite(after).all()
    assert spy.logged[0]["gpg/all_advantages_zero"] == 1
    assert math.isclose(spy.logged[0]["gpg/advantage_std"], 0.0)
    # Zero advantages and no entropy bonus: the policy does not move.
    assert th.allclose(before, after)


class TiedRewardWalk(gym.Env):
    """Every episode returns the same (reward -1 each step, 6 steps), while the actions move a point on a line."""

    observation_space = spaces.Box(-10.0, 10.0, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._x, self._t = 0.0, 0
        return np.array([self._x], dtype=np.float32), {}

    def step(self, action):
        self._x += 1.0 if action == 1 else -1.0
        self._t += 1
        return np.array([self._x], dtype=np.float32), -1.0, False, self._t >= 6, {}


@pytest.mark.parametrize("normalize", [False, True])
def test_tied_returns_take_novelty_advantages(normalize):
    # Tied returns would give every step a zero advantage. With explore_ties (the default) the rollout's advantages
    # come from novelty returns instead, and the policy moves; without it nothing is learned. Under VecNormalize the
    # rescaled rewards differ slightly from step to step: the tie is judged on the env's own rewards.
    def make(explore_ties):
        env = DummyVecEnv([TiedRewardWalk] * 4)
        env = VecNormalize(env) if normalize else env
        return GPG("MlpPolicy", env, group_size=4, n_groups=2, n_epochs=2, seed=0, explore_ties=explore_ties)

    for explore_ties in (True, False):
        model, spy = make(explore_ties), RolloutSpy()
        before = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()
        model.learn(96, callback=spy)
        after = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach()
        assert all(logged["gpg/returns_tied"] == 1.0 for logged in spy.logged)
        moved = not th.allclose(before, after)
        if explore_ties:
            assert moved and all(np.abs(r["advantages"]).max() > 0 for r in spy.rollouts)
        elif not normalize:
            assert not moved and all(np.all(r["advantages"] == 0) for r in spy.rollouts)


def test_returns_with_spread_are_not_tied():
    spy = RolloutSpy()
    GPG("MlpPolicy", "CartPole-v1", group_size=4, n_groups=1, n_epochs=1, seed=0).learn(100, callback=spy)
    assert spy.logged[0]["gpg/returns_tied"] == 0.0


def test_explore_ties_leaves_a_rollout_with_spread_bit_for_bit():
    advantages = []
    for explore_ties in (True, False):
        spy = RolloutSpy()
        model = GPG("MlpPolicy", "CartPole-v1", group_size=4, n_groups=2, n_epochs=1, seed=3, explore_ties=explore_ties)
        model.learn(500, callback=spy)
        assert all(logged["gpg/returns_tied"] == 0.0 for logged in spy.logged)
        advantages.append([rollout["advantages"] for rollout in spy.rollouts])
    assert len(advantages[0]) == len(advantages[1]) >= 2
    for on, off in zip(*advantages, strict=True):
        np.testing.assert_array_equal(on, off)


def test_tie_at_the_best_return_seen_is_success():
    # CartPole-v1 (real observations) with a 5-step time limit: every episode keeps the pole up and returns the
    # same. After the run has seen worse returns, that tie is the task solved: no novelty step, the policy stays.
    # With no worse return seen (a stall, as MountainCar's first rollouts) the novelty step moves it.
    best = sum(0.99**t for t in range(5))

    def learn(return_range):
        model = GPG("MlpPolicy", gym.make("CartPole-v1", max_episode_steps=5), group_size=4, n_groups=2, seed=0)
        model._return_range = return_range
        before = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()
        spy = RolloutSpy()
        model.learn(80, callback=spy)
        after = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach()
        return model, spy, not th.equal(before, after)

    model, spy, moved = learn((1.0, best))
    assert all(logged["gpg/returns_tied"] == 1.0 and logged["gpg/tied_at_best"] == 1.0 for logged in spy.logged)
    assert not moved and all(np.all(rollout["advantages"] == 0) for rollout in spy.rollouts)
    assert model._return_range == pytest.approx((1.0, best))
    model, spy, moved = learn(None)
    assert all(logged["gpg/returns_tied"] == 1.0 and logged["gpg/tied_at_best"] == 0.0 for logged in spy.logged)
    assert moved
    # The range a run has seen is saved with the model.
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    assert GPG.load(buffer)._return_range == pytest.approx(model._return_range)


# ---------------------------------------------------------------------------- numerical robustness


@pytest.mark.parametrize("scale", [1e6, 1e-6])
def test_scaled_rewards_train_finite(scale):
    class ScaledReward(gym.RewardWrapper):
        def reward(self, reward):
            return reward * scale

    spy = RolloutSpy()
    model = GPG("MlpPolicy", ScaledReward(gym.make("CartPole-v1")), group_size=4, n_groups=1, n_epochs=2, seed=0)
    model.learn(600, callback=spy)
    params = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach()
    assert th.isfinite(params).all()
    assert all(np.isfinite(r["advantages"]).all() for r in spy.rollouts)
    # The advantages scale with the rewards (normalized per minibatch before the update).
    assert spy.logged[0]["gpg/advantage_std"] > 0


def test_one_step_episodes():
    spy = RolloutSpy()
    model = GPG("MlpPolicy", ConstantRewardEnv(length=1), group_size=3, n_groups=2, n_epochs=1, seed=0)
    model.learn(12, callback=spy)
    assert spy.rollouts[0]["timesteps"].tolist() == [0] * 6
    assert spy.logged[0]["gpg/all_advantages_zero"] == 1


def test_all_episodes_hit_time_limit():
    # Every episode truncated by the time limit with the same return: zero advantages, logged, no NaN.
    spy = RolloutSpy()
    env = gym.wrappers.TimeLimit(ConstantRewardEnv(length=10**6), max_episode_steps=8)
    model = GPG("MlpPolicy", env, group_size=4, n_groups=1, n_epochs=1, seed=0)
    model.learn(40, callback=spy)
    assert spy.rollouts[0]["timesteps"].max() == 7
    assert spy.logged[0]["gpg/zero_advantage_fraction"] == 1.0
    assert th.isfinite(th.nn.utils.parameters_to_vector(model.policy.parameters())).all()


def test_batch_size_larger_than_rollout_uses_one_minibatch():
    # Documented adaptation: a rollout smaller than batch_size is trained on as a single minibatch.
    model = GPG("MlpPolicy", ConstantRewardEnv(length=3), group_size=2, n_groups=1, batch_size=10_000, n_epochs=3)
    model.learn(6)
    batches = list(model.rollout_buffer.get(model.batch_size))
    assert len(batches) == 1 and len(batches[0].advantages) == model.rollout_buffer.size() == 6
    assert model._n_updates == 3
