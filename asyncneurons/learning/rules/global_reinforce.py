"""Global REINFORCE: every unit is a REINFORCE agent on the same broadcast TD error δ.

    E^l ← λγ E^l + g^l ⊗ h^{l-1}          (at each sample of the unit)
    W^l ← W^l + Adam(E^l · δ)              (when δ lands on the unit)

By the coagent policy gradient theorem this follows an unbiased estimate of the gradient of the
expected return (algorithms.md §2.5, §9). Symbols: g the score of the unit's sample (see
:mod:`asyncneurons.learning.units`), h its inputs as held when it sampled, λ the actor trace parameter.
"""

from __future__ import annotations

from asyncneurons.learning import traces
from asyncneurons.learning.rules.base import Rule, register, reinforce_update


@register
class GlobalReinforce(Rule):
    name = "global_reinforce"

    def on_reward(self, sim, group, delta, step, reset):
        reinforce_update(group, delta, sim.lr(group.layer, step), sim.adam, traces.at_landing(group, sim))
