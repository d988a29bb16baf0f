"""sb3-gpg: Group Policy Gradient (GPG) for Stable-Baselines3."""

from sb3_gpg.buffers import GroupRolloutBuffer
from sb3_gpg.gpg import GPG
from sb3_gpg.policies import CnnPolicy, GPGCnnPolicy, GPGMultiInputPolicy, GPGPolicy, MlpPolicy, MultiInputPolicy
from sb3_gpg.rollout import GroupRollout
from sb3_gpg.version import __version__
from sb3_gpg.wrappers import GroupResetWrapper, add_group_reset

__all__ = [
    "GPG",
    "CnnPolicy",
    "GPGCnnPolicy",
    "GPGMultiInputPolicy",
    "GPGPolicy",
    "GroupResetWrapper",
    "GroupRollout",
    "GroupRolloutBuffer",
    "MlpPolicy",
    "MultiInputPolicy",
    "__version__",
    "add_group_reset",
]
