"""The critic a scenario asks for (``[learning] critic``): none, the deterministic critic
(:mod:`asyncneurons.learning.critic`) or the MAP Propagation critic (:mod:`asyncneurons.learning.map_critic`)."""

from __future__ import annotations

from asyncneurons.learning import streams
from asyncneurons.learning.critic import Critic
from asyncneurons.learning.map_critic import MapCritic
from asyncneurons.learning.optim import AdamConfig


def make_critic(scenario, n_obs: int, seed: int, adam: AdamConfig):
    """The critic a scenario asks for (``[learning] critic``), or None."""
    L = scenario.learning
    if L.critic == "none":
        return None
    kwargs = dict(lambda_=L.critic_lambda, gamma=scenario.env.gamma, lr_start=L.critic_lr,
                  lr_end=L.critic_lr_end if L.critic_lr_end is not None else L.critic_lr,
                  lr_steps=L.lr_steps, adam=adam, bias_scale=scenario.network.bias_init)
    critic_seed = streams.seed_of(seed, "critic")
    if L.critic == "map_prop":
        return MapCritic(n_obs, L.critic_hidden, critic_seed, variance=L.critic_variance,
                         steps=L.map_steps, step_size=L.map_step_size, **kwargs)
    return Critic(n_obs, L.critic_hidden, critic_seed, **kwargs)
