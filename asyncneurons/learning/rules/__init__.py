"""Learning rules, looked up by name (``[learning] rule``).

A rule says what a group of units does when a learning signal lands on it. The engine calls
:meth:`Rule.on_reward` when the broadcast TD error δ reaches a group, and
:meth:`Rule.on_retro` when retrograde signals (sent back along synapses) land. The mathematics
lives in small pure functions; the rule objects only decide which of them to call.
"""

from __future__ import annotations

from asyncneurons.learning.rules.base import RULES, Rule, register  # noqa: F401
from asyncneurons.learning.rules import (backprop, global_reinforce,  # noqa: F401  (register themselves)
                                         map_prop, weight_max)
