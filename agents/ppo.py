"""Stable-Baselines3 PPO with equigym graph policies and a masked diagonal Gaussian.

This is the only module that touches SB3 internals. :class:`GraphActorCriticPolicy` replaces
SB3's MLP extractor, ``action_net`` and ``value_net`` by one :class:`~equigym.policies.GraphPolicy`
(built with :func:`equigym.policies.make`), and its action distribution ignores the action
dimensions that ``obs["action_mask"]`` marks as padding or passive::

    from equigym.agents import make_ppo, make_vec_env

    venv = make_vec_env("equigym/Hopper3D-v0", n_envs=4, seed=0)
    model = make_ppo(venv, policy="gnn", policy_cfg={"hidden_dim": 64}, n_steps=256)
    model.learn(10_000)
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.vec_env import VecEnv
from torch import Tensor, nn

from equigym import policies
from equigym.graph import GraphSpec

SelfMasked = TypeVar("SelfMasked", bound="MaskedDiagGaussianDistribution")


class MaskedDiagGaussianDistribution(DiagGaussianDistribution):
    """Diagonal Gaussian whose log-probability and entropy sum only over unmasked dimensions.

    Padded and passive action dimensions (``action_mask == 0``) still get sampled (the env
    ignores them) but contribute nothing to ``log_prob`` or ``entropy``, so PPO's ratio and
    entropy bonus depend only on the actions that drive actuators, and morphologies of different
    sizes are weighted by their real action count.
    """

    def __init__(self, action_dim: int) -> None:
        super().__init__(action_dim)
        self.mask: Tensor | None = None

    def proba_distribution(  # type: ignore[override]
        self: SelfMasked, mean_actions: Tensor, log_std: Tensor, action_mask: Tensor | None = None
    ) -> SelfMasked:
        """Set the distribution's parameters.

        Args:
            mean_actions: Means, (B, A).
            log_std: Log standard deviations, (A,) or (B, A).
            action_mask: (B, A), 1 for dimensions that count; ``None`` counts every dimension.
        """
        super().proba_distribution(mean_actions, log_std)
        self.mask = None if action_mask is None else (action_mask > 0.5).to(mean_actions.dtype)
        return self

    def log_prob(self, actions: Tensor) -> Tensor:
        """Log-density of ``actions`` (B, A) summed over unmasked dimensions, shape (B,)."""
        per_dim = self.distribution.log_prob(actions)
        if self.mask is not None:
            # where, not multiply: a padded dim whose log-density is -inf must still give 0.
            per_dim = torch.where(self.mask > 0.5, per_dim, 0.0)
        return per_dim.sum(dim=-1)

    def entropy(self) -> Tensor:
        """Entropy summed over unmasked dimensions, shape (B,)."""
        per_dim = self.distribution.entropy()
        if self.mask is not None:
            per_dim = per_dim * self.mask
        return per_dim.sum(dim=-1)


class GraphActorCriticPolicy(ActorCriticPolicy):
    """Equivariant exactly when the wrapped graph policy is: SB3 actor-critic around a GraphPolicy.

    All networks are one :class:`~equigym.policies.GraphPolicy`; the SB3 layers that would mix
    action components (``action_net``, ``value_net``) are identities. Use it as
    ``PPO(GraphActorCriticPolicy, env, policy_kwargs={"graph_spec": spec, "policy_name": "gnn"})``
    or through :func:`make_ppo`.

    Args:
        observation_space: The env's ``Dict`` observation space (``spec.observation_space()``).
        action_space: The env's flat ``Box`` action space.
        lr_schedule: Learning-rate schedule (from the algorithm).
        graph_spec: The env's graph spec.
        policy_name: Name for :func:`equigym.policies.make` (``"mlp"``, ``"gnn"``).
        policy_cfg: Keyword arguments for the graph policy (``hidden_dim``, ``n_layers``, ...).
        optimizer_class: Optimizer class.
        optimizer_kwargs: Optimizer keyword arguments besides the learning rate (default for Adam:
            ``eps=1e-5``, as in SB3).
        compile: Run the graph policy through ``torch.compile`` (static shapes). Each new batch
            size (rollout, minibatch, evaluation) costs a one-off compilation of about a minute on
            a CPU, then a forward pass of the small rollout batches is about 4x and a minibatch
            update about 2x faster (``benchmarks/results/policy_speed.json``). The saved model
            is the same either way (the compiled function is not part of the state).
        **kwargs: Further :class:`~stable_baselines3.common.policies.ActorCriticPolicy` options;
            ``ortho_init`` and ``use_sde`` are fixed to ``False`` (the graph policy initialises
            itself; gSDE would need a latent that mixes action dimensions).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        graph_spec: GraphSpec | None = None,
        policy_name: str = "gnn",
        policy_cfg: dict[str, Any] | None = None,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        compile: bool = False,
        **kwargs: Any,
    ) -> None:
        if graph_spec is None:
            raise ValueError(
                "GraphActorCriticPolicy needs "
                "policy_kwargs={'graph_spec': env.unwrapped.graph_spec}"
            )
        if not isinstance(observation_space, spaces.Dict):
            raise ValueError("GraphActorCriticPolicy needs an equigym Dict observation space")
        if not isinstance(action_space, spaces.Box) or action_space.shape != (
            graph_spec.action_dim,
        ):
            raise ValueError(
                f"action space {action_space} does not match the graph spec's "
                f"action_dim={graph_spec.action_dim}"
            )
        missing = sorted(set(graph_spec.keys) - set(observation_space.spaces))
        if missing:
            raise ValueError(f"observation space lacks graph-spec keys {missing}")
        if kwargs.pop("use_sde", False):
            raise ValueError("GraphActorCriticPolicy does not support gSDE (use_sde=True)")
        kwargs.pop("ortho_init", None)
        self.graph_spec = graph_spec
        self.policy_name = policy_name
        self.policy_cfg = dict(policy_cfg or {})
        self.compile = bool(compile)
        if "log_std_init" in kwargs:
            # SB3's option, honoured by handing it to the graph policy (which owns log_std).
            self.policy_cfg.setdefault("log_std_init", kwargs.pop("log_std_init"))
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            ortho_init=False,
            use_sde=False,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            **kwargs,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        """Build the graph policy, identity SB3 heads, the masked distribution and the optimizer."""
        self.net = policies.make(self.policy_name, self.graph_spec, **self.policy_cfg)
        # SB3's own heads would be Linear layers mixing all action dimensions; the graph policy
        # already outputs means and values, so they are identities (kept for SB3 code that
        # expects the attributes).
        self.mlp_extractor = nn.Identity()
        self.action_net = nn.Identity()
        self.value_net = nn.Identity()
        self.action_dist = MaskedDiagGaussianDistribution(self.graph_spec.action_dim)
        # Compile the bound method, not the module: the state dict keeps its keys (no
        # "_orig_mod." prefix), so compiled and eager models load each other's checkpoints.
        self._net_forward = (
            torch.compile(self.net.forward, dynamic=False) if self.compile else self.net.forward
        )
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    @property
    def log_std(self) -> Tensor:
        """The graph policy's state-independent log std parameter (per group and channel)."""
        return self.net.log_std

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        unused = ("net_arch", "activation_fn", "ortho_init", "use_sde", "full_std", "use_expln")
        for key in (*unused, "log_std_init"):
            data.pop(key, None)
        data.update(
            graph_spec=self.graph_spec,
            policy_name=self.policy_name,
            policy_cfg=self.policy_cfg,
            compile=self.compile,
        )
        return data

    # --- the graph policy, once per call --------------------------------------------------
    def _run(self, obs: PyTorchObs) -> tuple[MaskedDiagGaussianDistribution, Tensor]:
        """Distribution and values (B, 1) for a batch of SB3 observations."""
        tensors = preprocess_obs(obs, self.observation_space, normalize_images=False)
        assert isinstance(tensors, dict)
        mean, log_std, value = self._net_forward(tensors)
        dist = self.action_dist.proba_distribution(mean, log_std, tensors["action_mask"])
        # SB3 expects values of shape (B, 1).
        return dist, value.unsqueeze(-1)

    def forward(
        self, obs: PyTorchObs, deterministic: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Actions (B, A), values (B, 1) and masked log-probabilities (B,)."""
        dist, values = self._run(obs)
        actions = dist.get_actions(deterministic=deterministic)
        return actions, values, dist.log_prob(actions)

    def evaluate_actions(
        self, obs: PyTorchObs, actions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Values (B, 1), masked log-probabilities (B,) and masked entropies (B,) of ``actions``."""
        dist, values = self._run(obs)
        return values, dist.log_prob(actions), dist.entropy()

    def get_distribution(self, obs: PyTorchObs) -> MaskedDiagGaussianDistribution:
        """The masked action distribution for ``obs``."""
        return self._run(obs)[0]

    def predict_values(self, obs: PyTorchObs) -> Tensor:
        """Values (B, 1) for ``obs``."""
        return self._run(obs)[1]

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> Tensor:
        return self._run(observation)[0].get_actions(deterministic=deterministic)


def graph_spec_of(env: VecEnv) -> GraphSpec:
    """The graph spec of the first sub-env of ``env`` (sub-envs must share it, see make_vec_env).

    Raises:
        ValueError: If the env has no ``graph_spec`` (not an equigym env).
    """
    if not env.has_attr("graph_spec"):
        raise ValueError("the vector env's sub-envs have no graph_spec: not an equigym env")
    spec = env.get_attr("graph_spec", indices=[0])[0]
    if not isinstance(spec, GraphSpec):
        raise ValueError(f"graph_spec is a {type(spec).__name__}, not a GraphSpec")
    return spec


def make_ppo(
    env: VecEnv,
    policy: str = "gnn",
    policy_cfg: dict[str, Any] | None = None,
    spec: GraphSpec | None = None,
    compile: bool = False,
    **ppo_kwargs: Any,
) -> PPO:
    """PPO on ``env`` with the equigym graph policy called ``policy``.

    Args:
        env: Vector env of equigym sub-envs (e.g. from :func:`equigym.agents.make_vec_env`).
        policy: Graph policy name (``"mlp"``, ``"gnn"``).
        policy_cfg: Options of the graph policy (``hidden_dim``, ``n_layers``, ...).
        spec: Graph spec; read from ``env`` when omitted.
        compile: ``torch.compile`` the graph policy (see :class:`GraphActorCriticPolicy`).
        **ppo_kwargs: Arguments of :class:`stable_baselines3.PPO` (``n_steps``, ``batch_size``,
            ``learning_rate``, ``tensorboard_log``, ``seed``, ``device``, ...); a
            ``policy_kwargs`` dict here is merged into the policy's arguments.

    Returns:
        The PPO model (not trained yet).

    Raises:
        ValueError: For an unknown policy name or option.
    """
    spec = spec if spec is not None else graph_spec_of(env)
    # Fail on a bad name or option here, not deep inside PPO's set-up.
    policies.make(policy, spec, **(policy_cfg or {}))
    policy_kwargs = dict(ppo_kwargs.pop("policy_kwargs", None) or {})
    policy_kwargs.update(
        graph_spec=spec, policy_name=policy, policy_cfg=dict(policy_cfg or {}), compile=compile
    )
    return PPO(GraphActorCriticPolicy, env, policy_kwargs=policy_kwargs, **ppo_kwargs)
