"""Advice on scenarios that are valid but probably do not ask what their author meant.

Each check is a pure function of the resolved scenario and its graph (delays assigned) that
returns a sentence, or None. The command line prints the sentences as ``note:`` lines on
standard error before anything runs; they never stop a run.
"""

from __future__ import annotations


def blind_relaxation(scenario, graph) -> str | None:
    """MAP Propagation relaxing at the instant of each sample while messages take time.

    With ``relax_period = 0`` every relaxation step of a hidden unit happens at the instant it
    samples. If any forward or retrograde delay is positive, the output has not yet chosen the
    action at that instant (or its error has not come back), so the unit relaxes against errors
    about the previous action (docs/model-of-time.md, "Under delays, the relaxation window
    decides what the relaxation knows").
    """
    if scenario.learning.rule != "map_prop" or scenario.timing.relax_period > 0 or scenario.learning.map_steps == 0:
        return None
    delayed = [(u, v) for u, v, a in graph.edges(data=True)
               if a.get("delay", 0.0) > 0 or a.get("retro_delay", 0.0) > 0]
    if not delayed:
        return None
    return (f"timing.relax_period = 0 with map_prop, and {len(delayed)} of {graph.number_of_edges()} synapses "
            f"have a positive forward or retrograde delay: every hidden unit relaxes at the instant it "
            f"samples, before the action's error can reach it, so its relaxation explains the previous "
            f"action. Give relax_period × map_steps longer than the round trip to the output "
            f"(docs/model-of-time.md)")


CHECKS = (blind_relaxation,)


def advice(scenario, graph) -> list[str]:
    """Every piece of advice for a scenario and its graph, in a fixed order."""
    return [text for check in CHECKS if (text := check(scenario, graph)) is not None]
