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



def relaxation_cut_short(scenario, graph) -> str | None:
    """MAP Propagation whose relaxation window, ``map_steps × relax_period``, is not shorter than
    the time between a unit's samples. A new sample restarts a unit's relaxation, and a unit
    records its trace only after its last step (docs/model-of-time.md), so a relaxation longer than
    that is always cut, and one exactly as long is cut where the rounding of the step times puts
    the last step after the sample: the actor learns little or nothing.

    The time between samples is the environment's period under ``clock`` pacing with ``on_all``
    or ``on_input`` firing (at most that under ``on_input``), the smallest ``firing_period`` under
    ``clock`` firing and the mean interval 1 / rate under ``poisson``; under ``wait`` pacing it is
    the network's own answer time, and nothing is said. A window exactly one period long still
    completes when every synaptic delay is zero under ``on_all`` or ``on_input`` firing: the
    last step and the trace come before the environment steps at that instant, and the next wave
    after it."""
    from asyncneurons.model.delays import smallest

    t, L = scenario.timing, scenario.learning
    if L.rule != "map_prop" or L.map_steps == 0 or t.relax_period <= 0:
        return None
    window = L.map_steps * float(t.relax_period)
    if t.firing == "clock":
        gap, name = min(smallest(p) for (p,) in _by_layer(t.firing_period)), "timing.firing_period"
    elif t.firing == "poisson":
        gap, name = min(1.0 / float(r) for (r,) in _by_layer(t.firing_rate)), "1 / timing.firing_rate, the mean"
    elif scenario.env.pacing == "clock":
        gap, name = float(scenario.env.period), "env.period"
    else:
        return None
    if window < gap:
        return None
    if window == gap and t.firing in ("on_all", "on_input") and graph is not None and \
            not any(a.get("delay", 0.0) > 0 for _, _, a in graph.edges(data=True)):
        return None
    return (f"learning.map_steps × timing.relax_period = {window:g} ms is not shorter than the {gap:g} ms between "
            f"a unit's samples ({name}): a new sample restarts the unit's relaxation before its last step (at "
            f"equal times, as the rounding of the step times falls), and a unit records its trace only after its "
            f"last step, so the actor learns little or nothing. Make the relaxation window shorter than the "
            f"time between samples (docs/model-of-time.md)")

def samples_per_observation(graph) -> dict:
    """Samples each unit draws per observation under ``on_input`` firing without a refractory
    period, when every arrival instant is distinct (continuous delays): one per input, and for
    a unit the sum over its presynaptic units, since it samples at every arrival of each of
    their samples: ``n(v) = Σ_{u → v} n(u)``, ``n(input) = 1``. Equal delays make arrivals
    coincide, so this is an upper bound."""
    import networkx as nx

    n: dict = {}
    for v in nx.topological_sort(graph):
        n[v] = 1 if graph.nodes[v].get("role") == "input" else sum(n[u] for u in graph.predecessors(v))
    return n


def multiplying_samples(scenario, graph) -> str | None:
    """``on_input`` firing without a refractory period: every arrival instant is a sample.

    Under continuous per-synapse delays no two of a unit's inputs arrive together, so each layer
    samples as often as all the samples of the layer before it: the count multiplies with depth.
    """
    import networkx as nx

    from asyncneurons.model.delays import refractory_periods

    t = scenario.timing
    if (t.firing != "on_input" or min(refractory_periods(graph, t.refractory).values()) > 0
            or not nx.is_directed_acyclic_graph(graph)):
        return None
    n = samples_per_observation(graph)
    units = [v for v, r in graph.nodes(data="role") if r != "input"]
    total = sum(n[v] for v in units)
    if total <= 2 * len(units):
        return None
    busiest = max(units, key=lambda v: (n[v], str(v)))
    return (f"timing.firing = \"on_input\" without a refractory period: a unit samples at every instant a "
            f"value arrives, so samples multiply layer by layer: up to {total:,} unit samples per "
            f"observation for {len(units)} units ({n[busiest]:,} by unit {busiest}). Give timing.refractory "
            f"(ms) or firing = \"on_all\" if each unit should answer each observation once")


def _largest(spec) -> float:
    """The largest value a delay spec can give (∞ for unbounded distributions)."""
    if not isinstance(spec, dict):
        return float(spec)
    return float({"constant": spec.get("value"), "uniform": spec.get("high"),
                  "truncnormal": spec.get("high", float("inf"))}.get(spec["dist"], float("inf")))


def _fmt_ms(x: float) -> str:
    return "without bound" if x == float("inf") else f"by up to {x:g} ms"


def _by_layer(*values):
    """The values of firing keys layer by layer (a key given once applies to every layer)."""
    lists = [v if isinstance(v, list) else [v] for v in values]
    n = max(len(v) for v in lists)
    return [tuple(v[i] if len(v) > 1 else v[0] for v in lists) for i in range(n)]


def reordering_ticks(scenario, graph) -> str | None:
    """Clock firing whose jitter can vary by more than the smallest period: tick k + 1 would then
    fall before tick k, and happens at tick k's instant instead (docs/model-of-time.md)."""
    from asyncneurons.model.delays import is_zero, smallest

    t = scenario.timing
    if t.firing != "clock":
        return None
    for jitter, period_spec in _by_layer(t.firing_jitter, t.firing_period):
        if is_zero(jitter):
            continue
        spread, period = _largest(jitter) - smallest(jitter), smallest(period_spec)
        if spread > period:
            return (f"timing.firing_jitter varies {_fmt_ms(spread)}, more than timing.firing_period ({period:g} ms "
                    f"at least): a tick can then be due before the one it follows, and happens at that one's "
                    f"instant instead, so the unit samples twice at once unless timing.refractory skips the "
                    f"second. Keep the jitter's spread below the period for one sample per period "
                    f"(docs/model-of-time.md)")
    return None


def phase_beyond_period(scenario, graph) -> str | None:
    """Clock firing with a phase that can exceed the period: some units stay silent for more than
    one period before their first tick, rather than being spread over one period."""
    from asyncneurons.model.delays import smallest

    t = scenario.timing
    if t.firing != "clock" or t.firing_phase is None:
        return None
    for phase_spec, period_spec in _by_layer(t.firing_phase, t.firing_period):
        phase, period = _largest(phase_spec), smallest(period_spec)
        if phase > period:
            return (f"timing.firing_phase ({_fmt_ms(phase).removeprefix('by ')}) can exceed timing.firing_period "
                    f"({period:g} ms at least): a unit's first tick may come more than a period after t = 0, so "
                    f"it misses whole periods at the start. To spread units over one period give a phase "
                    f"between 0 and the period")
    return None


def _given(table) -> set:
    """The keys of a scenario table given with a value other than their default: a run folder's
    ``scenario.toml`` writes every key, defaults included, and validating or resuming it should
    not note keys its author never set."""
    fields = type(table).model_fields
    return {k for k in table.model_fields_set if getattr(table, k) != fields[k].default}


def unused_clock_keys(scenario, graph) -> str | None:
    """Clock or Poisson keys given under a firing policy that ignores them (and retrograde jitter
    under a rule that sends no retrograde signals)."""
    from asyncneurons.model.delays import is_zero

    t = scenario.timing
    given = _given(t)
    if "retro_jitter" in given and not is_zero(t.retro_jitter) and scenario.learning.rule == "global_reinforce":
        return ('timing.retro_jitter has no effect under learning.rule = "global_reinforce" '
                "(it sends no retrograde signals)")
    unused = [k for k in ("firing_phase", "firing_jitter") if k in given and t.firing != "clock"]
    unused += ["firing_rate"] if "firing_rate" in given and t.firing != "poisson" else []
    if not unused:
        return None
    keys = ", ".join(f"timing.{k}" for k in unused)
    return f"{keys} {'has' if len(unused) == 1 else 'have'} no effect under timing.firing = \"{t.firing}\""


def overtaking_sends(scenario, graph) -> str | None:
    """Jitter per event whose spread exceeds the gap between the sends it delays: a send is then
    often overtaken by a later one, and its arrival dropped (:mod:`asyncneurons.engine.jitter`).

    For ``synapse_jitter`` the gap is the smallest firing period under ``clock`` firing, the mean
    interval 1 / rate under ``poisson``, and the environment's period under ``on_all`` with
    ``clock`` pacing (a unit sends once per wave, and a wave leaves per step), and the smallest
    refractory period under ``on_input`` (a unit sends at every arrival it answers, so without a
    refractory period its sends may follow each other as closely as its arrivals). For
    ``reward_jitter`` and ``retro_jitter`` it is the environment's period under ``clock`` pacing
    (one TD error per step; retrograde signals leave when a learning signal lands)."""
    from asyncneurons.model.delays import is_zero, smallest

    t = scenario.timing
    step = (float(scenario.env.period), "env.period") if scenario.env.pacing == "clock" else None
    for key, column in (("synapse_jitter", "stale_synaptic"), ("reward_jitter", "stale_reward"),
                        ("retro_jitter", "stale_retrograde")):
        spec = getattr(t, key)
        if is_zero(spec):
            continue
        gap = step
        if key == "synapse_jitter" and t.firing == "clock":
            gap = (min(smallest(p) for (p,) in _by_layer(t.firing_period)), "timing.firing_period")
        elif key == "synapse_jitter" and t.firing == "poisson":
            gap = (min(1.0 / float(r) for (r,) in _by_layer(t.firing_rate)), "1 / timing.firing_rate")
        elif key == "synapse_jitter" and t.firing == "on_input":
            gap = (min(float(r) for (r,) in _by_layer(t.refractory)),
                   "timing.refractory, the least time between an on_input unit's sends")
        spread = _largest(spec) - smallest(spec)
        if gap is None or spread <= gap[0]:
            continue
        return (f"timing.{key} varies {_fmt_ms(spread)}, more than the gap between the sends it delays "
                f"({gap[1]}: {gap[0]:g} ms): a send is then often overtaken by a later one and its arrival "
                f"is dropped (counted as {column} in diagnostics). Keep the jitter's spread below the gap "
                f"for most values to be used (docs/model-of-time.md)")
    return None


def distance_and_drawn_delays(scenario, graph) -> str | None:
    """Delays asked for twice: ``conduction_velocity`` gives every synapse the graph file leaves
    without a delay its delay from distance, so ``synapse_delay`` and ``retro_delay`` are then
    never drawn; and ``synaptic_offset`` without a velocity is added to nothing."""
    t = scenario.timing
    given = _given(t)
    if t.conduction_velocity is None:
        if "synaptic_offset" in given and t.synaptic_offset > 0:
            return "timing.synaptic_offset has no effect without timing.conduction_velocity"
        return None
    unused = [k for k in ("synapse_delay", "retro_delay") if k in given]
    if not unused:
        return None
    keys = " and ".join(f"timing.{k}" for k in unused)
    return (f"{keys} {'has' if len(unused) == 1 else 'have'} no effect: with timing.conduction_velocity every "
            f"synapse the graph file gives no delay takes distance / velocity + synaptic_offset, forward and "
            f"retrograde; a delay set on an edge in the file wins over both (docs/graph-files.md)")


def unused_node_timing(scenario, graph) -> str | None:
    """A graph file's node setting a clock or Poisson key its unit never uses under the scenario's
    firing policy."""
    if graph is None:
        return None
    firing = scenario.timing.firing
    used = {"clock": ("firing_period", "firing_phase", "firing_jitter"), "poisson": ("firing_rate",)}.get(firing, ())
    found: dict = {}
    for n, a in graph.nodes(data=True):
        for key in ("firing_period", "firing_phase", "firing_jitter", "firing_rate"):
            if key in a and key not in used:
                found.setdefault(key, []).append(n)
    if not found:
        return None
    parts = "; ".join(f"{key} on {len(ns)} node(s), e.g. {sorted(map(str, ns))[0]!r}" for key, ns in found.items())
    return f"the graph file sets {parts}: no effect under timing.firing = \"{firing}\""


def lambda_with_exponential_traces(scenario, graph) -> str | None:
    """``learning.lambda`` given with exponential traces, which decay by exp(−Δt/τ) and never by λγ."""
    L = scenario.learning
    if L.trace != "exponential" or "lambda_" not in _given(L):
        return None
    return (f"learning.lambda has no effect under learning.trace = \"exponential\": the actor's traces decay by "
            f"exp(−Δt/τ) with τ = learning.trace_tau = {L.trace_tau:g} ms. Units sampling every T ms decay as "
            f"with λγ = exp(−T/τ) (docs/rules.md, \"Traces in time\")")


def _one_instant(scenario, graph) -> bool:
    """True when every event of a run happens at t = 0: nothing takes time and nothing waits."""
    from asyncneurons.model.delays import is_zero

    t, env = scenario.timing, scenario.env
    if env.pacing != "wait" or t.firing not in ("on_all", "on_input") or t.relax_period > 0:
        return False
    if not (is_zero(t.reward_delay) and is_zero(t.refractory)):
        return False
    if graph is None:
        return is_zero(t.synapse_delay) and is_zero(t.retro_delay)
    return (all(a.get("delay", 0.0) == 0.0 and a.get("retro_delay", 0.0) == 0.0 for _, _, a in graph.edges(data=True))
            and all(a.get(k, 0.0) == 0.0 for _, a in graph.nodes(data=True) for k in ("reward_delay", "refractory")))


def exponential_traces_without_time(scenario, graph) -> str | None:
    """Exponential traces where time never passes (every decay factor is exp(0) = 1), or where
    there are no traces at all (batched single-step tasks)."""
    L = scenario.learning
    if L.trace != "exponential":
        return None
    if L.batch > 1:
        return ("learning.trace = \"exponential\" has no effect with learning.batch > 1: a batched single-step "
                "task keeps no traces")
    if not _one_instant(scenario, graph):
        return None
    return ("learning.trace = \"exponential\" in the synchronous limit (zero delays, on_all or on_input firing, "
            "wait pacing): every event happens at t = 0, so the traces never decay, as per-sample traces with "
            "λγ = 1. Give delays or clock firing for time to pass, or trace = \"per_sample\" with learning.lambda")


CHECKS = (blind_relaxation, relaxation_cut_short, multiplying_samples, reordering_ticks, phase_beyond_period,
          unused_clock_keys, distance_and_drawn_delays, unused_node_timing, lambda_with_exponential_traces,
          exponential_traces_without_time, overtaking_sends)


def advice(scenario, graph) -> list[str]:
    """Every piece of advice for a scenario and its graph, in a fixed order."""
    return [text for check in CHECKS if (text := check(scenario, graph)) is not None]
