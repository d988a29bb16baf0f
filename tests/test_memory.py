"""No memory growth across rollouts beyond the buffer (RSS after every rollout of a benchmark run: ``memory/rss_mib``)."""

import tracemalloc

import pytest
from stable_baselines3.common.callbacks import BaseCallback

from sb3_gpg import GPG

# Count only memory allocated by sb3_gpg's own code (innermost frame). SB3's Monitor keeps every
# episode's return, length and time in lists by design (PPO too), which is not this package's to fix.
OWN_CODE = [tracemalloc.Filter(True, "*sb3_gpg*")]


class OwnMemory(BaseCallback):
    def __init__(self, stop_after: int) -> None:
        super().__init__()
        self.stop_after = stop_after
        self.n_rollouts = 0
        self.sizes: list[int] = []

    def _on_step(self) -> bool:
        return self.n_rollouts < self.stop_after

    def _on_rollout_end(self) -> None:
        self.n_rollouts += 1
        if self.n_rollouts % 10 == 0:
            stats = tracemalloc.take_snapshot().filter_traces(OWN_CODE).statistics("filename")
            self.sizes.append(sum(stat.size for stat in stats))


@pytest.mark.slow  # a soak test: 60 rollouts under tracemalloc (about 12 s on 2 cores)
def test_own_allocations_do_not_grow_with_rollouts():
    # learning_rate=0: the policy stays random, so every rollout has about the same size and any
    # growth would be memory kept from earlier rollouts.
    model = GPG("MlpPolicy", "CartPole-v1", group_size=2, n_groups=2, n_epochs=1, learning_rate=0.0, seed=0)
    callback = OwnMemory(stop_after=60)
    tracemalloc.start()
    try:
        model.learn(10**7, callback=callback)
    finally:
        tracemalloc.stop()
    growth = callback.sizes[-1] - callback.sizes[1]
    assert growth < 64 * 1024, f"sb3_gpg's live allocations grew by {growth} bytes over 40 rollouts: {callback.sizes}"
