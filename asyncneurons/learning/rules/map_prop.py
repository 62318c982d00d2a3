"""MAP Propagation: REINFORCE evaluated at the hidden state most probable given the state and
the action (algorithms.md §3).

After the action is fixed, every hidden unit relaxes by gradient ascent on
log p(h^l | h^{l−1}) + log p(h^{l+1} | h^l), the output's value held fixed::

    h^l ← h^l + α_l [ (μ^l − h^l)/σ_l²  +  Σ_j W^{l+1}_ij e^{l+1}_j ]          α_l = a · σ_l²

with μ^l = softplus(pot^l) its feed-forward mean and e^{l+1} the top-down error of the layer
above: ``(h − μ) softplus'(pot)/σ²`` for a Gaussian layer, ``(v − μ)/σ²`` for a linear-Gaussian
output with its value v frozen, ``(onehot(a) − π)/T`` for a categorical output. In the event
engine each unit relaxes every ``relax_period`` ms, ``map_steps`` times, with the values that
have reached it and each downstream error term as it stands when it reaches it: computed from
that unit's state as of ``retro_delay`` earlier (:mod:`asyncneurons.engine.relaxation`). At zero delay
and zero period this is exactly the published N synchronous iterations.

After the last step the trace records the score at the relaxed state,
``E^l ← λγ E^l + c · e^l ⊗ h^{l−1}_MAP`` (c = 1 for the actor), and every unit learns from the
broadcast TD error as under REINFORCE, ``W ← W + Adam(E δ)``.
"""

from __future__ import annotations

import numpy as np

from asyncneurons.learning.kernels import potential, sigmoid, softplus, sum_rows
from asyncneurons.learning.units import categorical_policy, softmax_policy
from asyncneurons.learning.rules.base import register
from asyncneurons.learning.rules.global_reinforce import GlobalReinforce


def map_error(kind, h: np.ndarray, pot: np.ndarray, lp, action=None, mean=None) -> np.ndarray:
    """The error term e (the score of the held value h at pre-activations ``pot``); ``mean`` is
    softplus(pot) when the caller has it already."""
    name = kind.name
    if name == "gaussian":
        return (h - (softplus(pot) if mean is None else mean)) * sigmoid(pot) / lp.variance
    if name == "linear_gaussian":
        return (h - pot) / lp.variance
    if name in ("categorical", "softmax"):
        pi = (categorical_policy if name == "categorical" else softmax_policy)(pot, lp.temperature)
        onehot = np.zeros_like(pi)
        np.put_along_axis(onehot, np.asarray(action).reshape(pi.shape[:-1] + (1,)), 1.0, axis=-1)
        e = (onehot - pi) / lp.temperature
        return e if name == "categorical" else e[..., :-1]
    raise ValueError(f"MAP Propagation has no error term for {name} units")


def relax_step(h: np.ndarray, mu: np.ndarray, variance: float, alpha: float, topdown: np.ndarray) -> np.ndarray:
    """One gradient-ascent step ``h + α [(μ − h)/σ² + top-down]``."""
    return h + alpha * ((mu - h) / variance + topdown)


def topdown_messages(P: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Per-synapse top-down messages ``W_ij e_j`` of a layer (units × sources, bias excluded)."""
    return P[..., :-1] * e[..., None]


def relax_layers(Ps, kinds, lps, x0, values, action, steps: int, step_size: float):
    """The published synchronous relaxation of a layered network, output value held fixed.

    ``Ps`` are the layers' parameters, ``values`` their sampled values (the last one the
    output's), ``x0`` the input. Every step updates all hidden layers at once from the values and
    errors of the previous step. Returns the relaxed values and, at the relaxed state, each
    layer's held inputs H and pre-activations.
    """
    vals = [np.asarray(v, dtype=np.float64).copy() for v in values]
    last = len(Ps) - 1
    shared = Ps[0].ndim == 2 and np.ndim(x0) == 2  # a batch of samples sharing the weights
    Hs, x = [], x0  # each layer's held inputs, refilled at every step (the bias column stays 1)
    for P in Ps:
        H = np.empty(np.broadcast_shapes(P.shape, np.shape(x)[:-1] + (1, 1)))
        H[..., -1] = 1.0
        Hs.append(H)
        x = np.empty(H.shape[:-1])
    for k in range(steps + 1):
        pots, x = [], x0
        for l, P in enumerate(Ps):
            H = Hs[l]
            H[..., :-1] = np.asarray(x)[..., None, :]
            # a shared-weight batch (supervised tasks only) uses a matrix product; everything the
            # event engine is held against uses the row-wise kernel
            pots.append(x @ P[:, :-1].T + P[:, -1] if shared else potential(P, H))
            x = vals[l]
        if k == steps:
            break
        means = [softplus(pot) for pot in pots[:last]]  # the hidden layers' feed-forward means
        errors = [None] + [map_error(kinds[l], vals[l], pots[l], lps[l], action if l == last else None,
                                     mean=means[l] if l < last else None)
                           for l in range(1, last + 1)]
        new = []
        for l in range(last):
            if shared:
                td = errors[l + 1] @ Ps[l + 1][:, :-1]
            else:
                td = sum_rows(topdown_messages(Ps[l + 1], errors[l + 1]))
            var = lps[l].variance
            new.append(relax_step(vals[l], means[l], var, step_size * var, td))
        vals[:last] = new
    return vals, Hs, pots


@register
class MapProp(GlobalReinforce):
    name = "map_prop"
    uses_retro = True
    broadcast_to_hidden = True
    hidden_kinds = ("gaussian",)
    output_kinds = ("categorical", "softmax", "linear_gaussian")
    samples_locally = False  # sampling starts the relaxation
    scores_samples = False  # the trace records the score at the relaxed state, not at the sample

    def on_sample(self, sim, group, values, aux, g):
        """The trace is recorded at the relaxed state, not now: start relaxing."""
        group.frozen_action = aux[1] if isinstance(aux, tuple) else None
        sim.relaxation.start(group)

    def on_reward(self, sim, group, delta, step, reset):
        """Learn as REINFORCE; the new weights change the error term the group sends back."""
        super().on_reward(sim, group, delta, step, reset)
        changed = getattr(sim.relaxation, "weights_changed", None)
        if changed is not None:
            changed(group)

    def on_reward_groups(self, sim, groups, delta, step, reset):
        """:meth:`on_reward` for each of ``groups`` in turn, each trace cleared after when ``reset``:
        in one compiled call when the relaxation offers it (``reinforce_groups``, the same bits) and
        :meth:`on_reward` is this class's own."""
        together = getattr(sim.relaxation, "reinforce_groups", None)
        if together is not None and type(self).on_reward is MapProp.on_reward and together(groups, delta, step, reset):
            return
        for group in groups:
            self.on_reward(sim, group, delta, step, reset)
            if reset:
                group.E[...] = 0.0
