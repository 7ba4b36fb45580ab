"""Training glue for Stable-Baselines3: graph actor-critic policy, vector envs, evaluation.

:mod:`equigym.agents.ppo` is the only place that touches SB3 internals; the networks themselves
live in :mod:`equigym.policies` and do not depend on SB3.
"""

from __future__ import annotations

from equigym.agents.callbacks import PeriodicEvalCallback
from equigym.agents.checkpoint import AtomicCheckpointCallback, list_checkpoints, load_latest
from equigym.agents.evaluation import RandomPolicy, evaluate, summarize
from equigym.agents.ppo import (
    GraphActorCriticPolicy,
    MaskedDiagGaussianDistribution,
    graph_spec_of,
    make_ppo,
)
from equigym.agents.vec_env import (
    VEC_ENV_KINDS,
    check_env_id,
    check_morphologies,
    make_vec_env,
    sub_env_kwargs,
)

__all__ = [
    "AtomicCheckpointCallback",
    "PeriodicEvalCallback",
    "list_checkpoints",
    "load_latest",
    "RandomPolicy",
    "GraphActorCriticPolicy",
    "MaskedDiagGaussianDistribution",
    "VEC_ENV_KINDS",
    "check_env_id",
    "check_morphologies",
    "evaluate",
    "graph_spec_of",
    "make_ppo",
    "make_vec_env",
    "sub_env_kwargs",
    "summarize",
]
