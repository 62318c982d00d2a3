"""Firing windows: units that fire at different instants, served by one pass per layer.

With every synapse on its own continuous delay no two units fire at the same instant, so fusion
(:mod:`asyncneurons.engine.network`) cannot serve a layer by one process: the event engine would fire
the units one by one, a few dozen small NumPy calls each. Yet between two events that can
change what a unit computes, the network's firing is a pure function of what it holds. This
module uses that, conservatively, so that the results stay those of the event engine bit for
bit.

**The window.** When a firing is due, let (t_q, p_q) be the time and priority class of the next
event in SimPy's queue. Under the conditions below, no event inside [now, t_q) can change a
weight, a trace other than by sampling, or an observation: every learning signal and every
environment step that lands before t_q is already in the queue, and a sample creates no event
(the output's action is only held until the environment steps). So every firing due before
(t_q, p_q) is computed at once, layer by layer in topological order, each unit at its own time.

**When a unit is due** (``on_all``). Every incoming synapse e must carry a value of a wave newer
than the last one the unit answered. With a_e the arrival time on e of the first such value, the
unit is due at ``max_e a_e``. It samples from the latest value that has arrived on each synapse by
then (values travel in order along a synapse, whose delay is fixed; with ``synapse_jitter`` the
latest *send* that has arrived, :mod:`asyncneurons.engine.jitter`), with its keyed uniforms at
its own counter; its trace records; its sample joins its sender history (:mod:`asyncneurons.engine.transmission`)
stamped with its own time. a_e is kept per synapse exactly as the event engine keeps it: set when
a sender's newer value is sent, recomputed from the sender's history when the unit samples. A
population (softmax, categorical or linear-Gaussian output) is due and samples as one.

**Order.** A firing at (t, FIRE + rank) happens inside the window when it precedes (t_q, p_q) in
SimPy's order, so learning signals at the same instant still come first, and the environment's
step after. Units of one layer never read each other, and a layer is computed after every layer
that feeds it, so computing a layer's firings together in one call changes nothing they see.
Recorded events (``on_event``) are emitted in time order at the end of each window.

**Backprop.** Its output sends its error back when it samples, at t_out; the error lands at
t_out + r (r the smallest retrograde delay) and changes hidden traces from then on. So the
window is cut there: every hidden firing and every further output firing must precede the
landing. When a hidden firing computed in the window does not, the window is computed again
from a copy of its state with that limit (the output's time depends on hidden firing times
only, so it does not move). Under ``on_all`` without jitter a lower bound on the output's time
is known before anything fires (:func:`~asyncneurons.engine.history_kernels.earliest_next`): the hidden
firings before the cut it implies are computed first and never undone, and only the rest is
computed from a copy, taken as each group first fires.

**Firing policies.** ``on_all``: due at max_e a_e (above), and not before the end of the
refractory period after its last sample. ``on_input``: due at the first arrival on any synapse
after its last sample (under jitter the first that is not stale), and not before the refractory
period's end (arrivals during it are answered at its end, as the event engine's unit process does). ``clock`` and ``poisson``: due
at its next tick (below); a tick inside the refractory period is skipped. A synapse on which
nothing has arrived yet keeps what it held. ``on_input`` without a refractory period: each
arrival instant is a sample, so a layer's pass walks each unit's arrivals in time order in one
compiled call (:meth:`Windows._every_arrival`), where :func:`_answers_every_arrival` says so;
otherwise it stays with the event engine (one layer pass per sample costs more than one event
per arrival).

**Clocks.** Under ``clock`` and ``poisson`` firing each unit (or population) is due at its next
tick, kept per set in one :class:`~asyncneurons.engine.clocks.Clocks` and moved on as a unit process
moves its own, so units of one layer on different phases, periods or jitters fire at their own
ticks within one pass.

**Wait pacing.** The output's current action makes the environment step at the output's own
time; nothing may fire later in the window, which is cut there as for backprop.

**Conditions** (:func:`applies`): an acyclic graph, one output group that samples as one, forward
delays that differ or jitter per send (otherwise fusion serves each layer already), and a rule whose sampling only
records the unit's own trace (Global REINFORCE, Weight Maximization) or whose output alone sends
signals when it samples (backprop, STE backprop); MAP Propagation relaxes after every sample and
stays with the event engine. Every firing policy, refractory period and pacing is served. Units
are grouped by layer, kind, rank, reward delay, refractory period and retrograde delays, whatever their forward
delays, so learning signals that land together are applied to a layer in one call as in the
synchronous limit. Under Global REINFORCE and backprop the TD error is not an event at all: it
lands on each unit's row at the unit's own time, inside the layer pass, so units are grouped
whatever their reward delays (:mod:`asyncneurons.engine.landings`).
A layer of Bernoulli units or a softmax or categorical population, under a rule whose sampling
records only the plain trace, fires in one compiled call, NumPy's own ``exp`` loop inside
(:meth:`Windows._fire_compiled`); so does it under a rule that says what its sampling does
besides (``Rule.records_at_sample``, ``Rule.sampled``, called on the call's samples: STE
backprop's hidden units keep their inputs and slope, its output records its trace and sends its
error). Weight Maximization's learning after the TD error lands is one call when it takes no
time (:func:`asyncneurons.engine.chain.make_cascade`). Where every layer fires by such a call and
needs no Python of its own (no landings, no rule's part, no recorded events, every
population an output), a window's layers are one call too
(:func:`~asyncneurons.engine.history_kernels.window_layers_any`, :meth:`Windows._pass`; under
exponential traces each firing's decay factors there too, NumPy's ``exp``; under clock and
Poisson firing each set's clock moved on there, ticks inside the refractory period dropped),
back in Python only for deeper rings, jitters of a law other than the uniform one drawn ahead,
the clocks' blocks of draws and the output's action; where the output's sample may cut
the window (wait pacing), the hidden layers up to the earliest cut are one call and the output
another; under ``on_all`` without jitter the whole window is one call
(:func:`~asyncneurons.engine.history_kernels.wait_window_at`): the lower bound on the output's
next sample is taken again after the hidden layers have fired up to it, until no hidden group may
fire before the limit or the bound no longer moves (then the rest from a copy, in Python). Those calls read the arrays from a table of their addresses (the window keeps them,
:meth:`Windows._addresses`). An observation is taken in by one call too
(:func:`~asyncneurons.engine.history_kernels.observation_sent`), under every firing policy and
with synaptic jitter. An ``on_all`` set's due
time is kept as its synapses change: how many still wait for a newer wave, and the latest
arrival of the others (:func:`~asyncneurons.engine.history_kernels.due_on_all`).
``[engine] windows = false`` turns the mode off; tests hold both modes equal.
"""

from __future__ import annotations

import heapq
import math

import networkx as nx
import numpy as np

from asyncneurons.model import delays
from asyncneurons.engine import events
from asyncneurons.learning import streams, traces
from asyncneurons.engine.clocks import Clocks
from asyncneurons.engine.history_kernels import (A_CLOCK_AT, A_MAX_DELAY, answered, array_addresses, bernoulli_fire_any,
                                                 bernoulli_fire_at, categorical_fire_any, categorical_fire_at,
                                                 due_clock, due_on_all, due_on_input, due_on_input_jittered,
                                                 earliest_next_at, group_addresses, layer_constants, layer_topology,
                                                 mark_sent, observation_sent_at, observation_sent_jittered, on_input_layer, read_sets,
                                                 scratch_lengths, wait_window_at, window_layers, window_layers_jittered)
from asyncneurons.engine.relaxation_kernels import EXP
from asyncneurons.learning.kernels import NO_DECAYS, potential
from asyncneurons.learning.rules.base import Rule
from asyncneurons.learning.units import FUSED_KINDS, sample_and_trace


def applies(scenario, graph, rule) -> bool:
    """Whether a scenario's runs can be served by firing windows (see the module docstring)."""
    if not scenario.engine.windows:
        return False
    from asyncneurons.model.delays import refractory_periods
    t = scenario.timing
    if t.firing == "on_input" and min(refractory_periods(graph, t.refractory).values()) == 0 \
            and not _answers_every_arrival(scenario, graph, rule):
        # every arrival is a sample: a unit answers thousands of arrivals per step, and outside the
        # compiled pass through them one layer pass each costs more than the event engine's one
        # event per arrival instant (performance.md)
        return False
    if not (rule.samples_locally or rule.output_sends) or not nx.is_directed_acyclic_graph(graph):
        return False
    outputs = [a["kind"] for _, a in graph.nodes(data=True) if a["role"] == "output"]
    from asyncneurons.learning.units import UNIT_KINDS
    if len(outputs) > 1 and not UNIT_KINDS[outputs[0]].population:
        return False
    # worth it only when forward arrivals differ: otherwise fusion serves each layer already
    return (len({d for _, _, d in graph.edges(data="delay")}) > 1
            or not delays.is_zero(scenario.timing.synapse_jitter))


def _answers_every_arrival(scenario, graph, rule) -> bool:
    """Whether ``on_input`` units without a refractory period can be served by the compiled pass
    through their arrivals (:func:`~asyncneurons.engine.history_kernels.on_input_layer`): fixed delays,
    clock pacing, a rule whose sampling records only the plain per-sample trace and whose TD error
    reaches the output alone (Weight Maximization), units the engine samples in compiled kernels."""
    from asyncneurons.learning.units import FUSED_KINDS
    kinds = {a["kind"] for _, a in graph.nodes(data=True) if a["role"] != "input"}
    return (delays.is_zero(scenario.timing.synapse_jitter) and scenario.env.pacing == "clock"
            and scenario.learning.trace == "per_sample" and kinds <= set(FUSED_KINDS)
            and rule.samples_locally and not rule.output_sends and not rule.broadcast_to_hidden
            and rule.on_sample is Rule.on_sample and rule.on_sample_rows is Rule.on_sample_rows)


def _copy(v):
    return v.copy() if isinstance(v, np.ndarray) else v


def _holds(held):
    """A function of no argument telling whether some ``obj.name`` of ``held`` (obj, name, value)
    no longer holds its ``value`` (the same object): one expression, ``o0.P is not v0 or …``,
    a third of the time of a loop over the attributes, asked once per window."""
    names = {}
    terms = []
    for i, (obj, name, value) in enumerate(held):
        if not name.isidentifier():
            raise ValueError(f"not an attribute name: {name!r}")
        names[f"o{i}"], names[f"v{i}"] = obj, value
        terms.append(f"o{i}.{name} is not v{i}")
    exec(f"def replaced():\n    return {' or '.join(terms) or 'False'}\n", names)
    return names["replaced"]


class Windows:
    """Serves every group of a simulation by firing windows instead of one process per group."""

    arrival_buffer = 4096  # samples an on_input layer pass without refractory period hands back per call

    def __init__(self, sim):
        self.sim = sim
        tr = self.tr = sim.transmission
        order = nx.DiGraph()
        order.add_nodes_from(g.gid for g in sim.groups)
        by_gid = {g.gid: g for g in sim.groups}
        for g in sim.groups:
            for b in g.buckets:
                order.add_edge(g.gid, b.target.gid)
        self.order = [by_gid[i] for i in nx.lexicographical_topological_sort(order)]
        for i, g in enumerate(self.order):
            g.oi = i  # its place in the order, and in due_at and stale
        # each group's next due time (∞ if never, as things stand), and whether it must select again
        # because it or a group feeding it fired since (a group's due times change only then)
        self.due_at = np.full(len(self.order), math.inf)
        self.stale = np.ones(len(self.order), dtype=np.int64)
        self.classes = [events.FIRE + g.rank for g in self.order]
        for g in sim.groups:
            g.targets = sorted({b.target.gid for b in g.buckets})
        self.by_gid = by_gid
        base = 0
        for g in sim.groups:
            g.n_sets = 1 if g.kind.population else g.size
            g.set_of_row = np.zeros(g.size, dtype=np.int64) if g.kind.population else np.arange(g.size)
            g.set_base = base
            base += g.n_sets
        self.set_wave = np.full(base, -1, dtype=np.int64)  # the wave each unit (or population) last answered
        t = sim.scenario.timing
        self.policy = t.firing
        self.timed = self.policy in ("clock", "poisson")
        self.on_all = self.policy == "on_all"
        # the selection a compiled firing ends with (0: the caller's, as under jitter with on_input)
        self.select_mode = 0 if self.timed else (1 if self.on_all else 2)
        self.wait = sim.scenario.env.pacing == "wait"
        self.last = np.full(base, -math.inf)  # the time each set last sampled
        # clock and Poisson firing: each set's next tick, on the clock of its (first) unit, advanced
        # as a unit process's clock is (asyncneurons.engine.clocks)
        self.clocks = Clocks(t, sim.seed, [n for g in sim.groups for n in (g.names[:1] if g.kind.population else g.names)],
                             sim.clocks, sim.layer_of, sim.graph) if self.timed else None
        # a_e: arrival of the first newer-wave value on e; then, per set, the latest of them and how
        # many are still ∞, −1 until counted (history_kernels.due_on_all)
        self.n_edges = len(tr.e_src)
        self.first = self._first(np.full(self.n_edges, math.inf), base)
        tset = np.zeros(len(tr.e_src), dtype=np.int64)
        for g in sim.groups:
            e = g.in_edges
            tset[e] = g.set_base + g.set_of_row[tr.e_row[e]]
        self.e_tset = tset
        self.e_int = np.ascontiguousarray(np.stack([tset, tr.e_src]).astype(np.int64))  # packed for compiled firings
        for g in sim.groups:
            local = tset[g.in_edges] - g.set_base
            # by set, then input row and column: a unit's synapses then fill a run of its inputs
            # in order, which a read takes as one gather (history_kernels.read_sets); under jitter,
            # which reads synapse by synapse, by set in the synapses' own order (their per-send
            # jitters, rows of EJ by synapse, are then read in order)
            srt = (np.argsort(local, kind="stable") if tr.jitter is not None
                   else np.lexsort((tr.e_col[g.in_edges], tr.e_row[g.in_edges], local)))
            g.w_edges = g.in_edges[srt]
            g.w_src, g.w_delay = tr.e_src[g.w_edges], np.ascontiguousarray(tr.e_delay[g.w_edges])
            g.w_row, g.w_col, g.w_set = tr.e_row[g.w_edges], tr.e_col[g.w_edges], local[srt]
            # set st's synapses are w_*[w_ptr[st]:w_ptr[st + 1]]
            g.w_ptr = np.concatenate([[0], np.cumsum(np.bincount(g.w_set, minlength=g.n_sets))]).astype(np.int64)
            if self.timed:
                self.due_at[g.oi] = float(self.clocks.at[g.set_base:g.set_base + g.n_sets].min())
            g.aux = None
            g.due_sets, g.due_times = np.empty(g.n_sets, dtype=np.int64), np.empty(g.n_sets)  # a pass's scratch
            g.scratch = np.zeros_like(g.E)  # the trace the compiled sampling computes when the rule keeps its own
        for g in sim.groups:
            g.target_groups = [by_gid[t] for t in g.targets]
        for g in [sim.input_group, *sim.groups]:
            g.n_rows = g.size
            g.all_rows = np.arange(g.size)
            out_row = tr.e_src[g.out_edges] - g.dense[0]  # dense indices of a group are consecutive
            srt = np.argsort(out_row, kind="stable")
            # row r's outgoing synapses are out_sorted[out_ptr[r]:out_ptr[r + 1]]
            g.out_sorted = g.out_edges[srt].astype(np.int64)
            g.out_ptr = np.concatenate([[0], np.cumsum(np.bincount(out_row, minlength=g.size))]).astype(np.int64)
        self.fed_by_input = [by_gid[t] for t in sorted({int(t) for t in tr.e_tgt[sim.input_group.out_edges]})]
        n_in = sim.input_group.size
        self.input_times, self.input_waves = np.empty(n_in), np.empty(n_in, dtype=np.int64)  # an observation's
        self.wakeup = events.WakeUp(sim.env, self._wake)  # at the earliest due firing
        self.recorded: list = []
        self.now = None  # inside a window: the time of the firing being computed
        self.row_times = None  # and the time of each row that samples (what its trace records at)
        self.output = next(g for g in sim.groups if g.role == "output")
        self.hidden = [g for g in self.order if g is not self.output]
        self.retro_min = min((d for _, _, d in sim.graph.edges(data="retro_delay")), default=0.0)
        # (time, class) of the latest hidden firing in the current window kept from a copy (those before
        # the earliest cut never reach it)
        self.latest = (-math.inf, 0)
        rule = type(sim.rule)
        self.plain_trace = rule.on_sample is Rule.on_sample and rule.on_sample_rows is Rule.on_sample_rows
        self.rule_sampled = rule.sampled is not Rule.sampled  # the rule's part of a compiled firing (_sampled)
        self.cut = sim.rule.output_sends or self.wait  # an output's sample may cut the window (advance)
        self.jittered = tr.jitter is not None
        if self.jittered and self.policy == "on_input":
            self.select_mode = 0  # the first arrival that is not stale (due_on_input_jittered)
        for g in sim.groups:  # fired by one compiled call (_fire_compiled)
            g.compiled_fire = ((self.plain_trace or self.rule_sampled) and g.kind.name in FUSED_KINDS
                               and all(a.flags.c_contiguous for a in (g.P, g.H, g.E, g.T)))
            g.keeps_trace = sim.rule.records_at_sample(g)  # else a compiled firing's trace goes to g.scratch
            g.temperature = float(g.lp.temperature)
            g.n_logits = g.size + 1 if g.kind.name == "softmax" else g.size
            g.marks = bool(len(g.out_edges)) and self.on_all
            g.per_sample = getattr(g, "tau", None) is None
            g.decay_value = float(g.decay) if g.per_sample else 0.0
            # what a compiled firing needs that never changes, packed (history_kernels.layer_topology)
            g.topo = layer_topology((g.w_ptr, g.w_edges, g.w_src, g.w_row, g.w_col, g.out_ptr, g.out_sorted, g.dense),
                                    g.set_base, g.marks, self.select_mode, self.on_all)
            g.exponential = not g.per_sample and g.keeps_trace  # its trace's own factor per record, at its time
            g.consts = layer_constants(g.temperature, g.refractory, g.decay_value if g.keeps_trace else 0.0, g.w_delay,
                                       g.tau if g.exponential else 0.0)
            g.fire_values, g.fire_waves = np.empty(g.size), np.empty(g.size, dtype=np.int64)  # a firing's scratch
            # on_input without refractory period: the compiled pass through each unit's arrivals
            g.every_arrival = (self.policy == "on_input" and g.refractory == 0.0 and not self.jittered
                               and g.compiled_fire and g.per_sample and g.keeps_trace and sim.landings is None)
            if g.every_arrival:
                m = g.size if g.kind.population else 1
                g.arrival_z = np.empty(g.n_logits if g.kind.population else 0)
                cap = self.arrival_buffer
                g.arrival_rec = (np.empty(cap), np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64),
                                 np.empty((cap, m)), np.empty(cap, dtype=np.int64))
        self.no_jitter = np.zeros((1, 1))  # stands for the per-send jitters when there are none
        self.no_stamps = np.zeros(0)  # stands for the time stamps of per-sample traces (window_layers)
        # the compiled firings' scratch (history_kernels._scratch_at), sized by _addresses
        self.scratch_ints, self.scratch_reals = np.empty(0, dtype=np.int64), np.empty(0)
        # clock or Poisson firing, Poisson, with draws (history_kernels._clock_views)
        self.clock_flags = np.array([self.timed, self.timed and self.clocks.poisson,
                                     self.timed and self.clocks.spec is not None], dtype=np.int64)
        self.saved = None  # inside a window an output's sample may cut: what it changed (_save)
        self.kept = ("H", "T", "E", "trace_time", "counters", "values")  # a group's arrays a firing changes
        if sim.landings is not None:  # the TD error lands on rows as they fire (asyncneurons.engine.landings)
            self.kept += ("P", "M", "V", "t", "landed")
        # on_all without jitter: every set's synapses and units in topological order, for a lower
        # bound on the output's next sample (earliest_next)
        self.bounded = self.cut and self.on_all and not self.jittered
        if self.bounded:
            sets = [(g, st) for g in self.order for st in range(g.n_sets)]
            self.b_ptr = np.concatenate([[0], np.cumsum([g.w_ptr[st + 1] - g.w_ptr[st] for g, st in sets])]).astype(np.int64)
            self.b_edges = np.concatenate([g.w_edges for g in self.order]).astype(np.int64)
            self.b_src, self.b_delay = tr.e_src[self.b_edges], tr.e_delay[self.b_edges]
            self.b_set = np.array([g.set_base + st for g, st in sets], dtype=np.int64)
            self.b_refractory = np.array([g.refractory for g, _ in sets], dtype=np.float64)
            members = [g.dense[g.set_of_row == st] for g, st in sets]
            self.b_rptr = np.concatenate([[0], np.cumsum([len(m) for m in members])]).astype(np.int64)
            self.b_rows = np.concatenate(members).astype(np.int64)
            self.b_lb = np.full(len(tr.HT), -math.inf)
            self.b_inputs = sim.input_group.dense
        # every layer fires by a compiled call and needs no Python of its own: a window's layers in
        # one call (window_layers, _pass); in a window the output's sample may cut (wait pacing), the
        # hidden layers up to the earliest cut in one call and the output in another (advance)
        compiled = ((self.timed or self.select_mode != 0) and sim.landings is None
                    and not self.rule_sampled and not any(g.every_arrival for g in sim.groups)
                    and all(g.compiled_fire and (g is self.output or not g.kind.population) for g in sim.groups))
        self.one_call = compiled and not self.cut
        self.cut_calls = compiled and self.cut and not self.timed
        # wait pacing alone, with the output's next sample bounded: a window in one call where it can (_wait_window)
        self.wait_call = self.cut_calls and self.wait and self.bounded and not sim.rule.output_sends
        # an observation taken in by one call (post_input; False: in Python, step by step)
        self.input_call = True
        self._one_call_layout()
        self.input_marks = bool(len(sim.input_group.out_edges)) and self.on_all
        self.fed_oi = np.array([g.oi for g in self.fed_by_input], dtype=np.int64)
        self._addresses()

    def _one_call_layout(self) -> None:
        """The window's fixed integers and reals and every group's scratch in two arrays ``wi`` and
        ``wf`` (the groups' ``topo``, ``consts``, ``due_sets`` … become views of them), each
        group's place in them a row of ``info``, and ``links``: the groups each feeds, then the
        orders :meth:`_pass` takes (all groups, the hidden ones, the output)
        (:func:`~asyncneurons.engine.history_kernels.window_layers_any`). :meth:`post_input`
        reads the groups an observation feeds there too
        (:func:`~asyncneurons.engine.history_kernels.observation_sent`)."""
        ints, reals, rows = [], [], []
        n_int = n_real = 0

        def place(parts, arr, dtype):
            nonlocal n_int, n_real
            if dtype is np.int64:
                at, n_int = n_int, n_int + len(arr)
                ints.append(np.asarray(arr, dtype=np.int64))
            else:
                at, n_real = n_real, n_real + len(arr)
                reals.append(np.asarray(arr, dtype=np.float64))
            parts.append(at)
            return at

        links = []
        targets = []
        for g in self.order:
            tg = [self.by_gid[t].oi for t in g.targets]
            targets.append((len(links), len(tg)))
            links.extend(tg)
        self.every = (len(links), len(links) + len(self.order))  # every group, in order
        links.extend(g.oi for g in self.order)
        self.hidden_span = (len(links), len(links) + len(self.hidden))  # the hidden ones, in order
        links.extend(g.oi for g in self.hidden)
        self.output_span = (len(links), len(links) + 1)  # the output
        links.append(self.output.oi)
        spans = []
        for g in self.order:
            parts = []
            place(parts, g.topo, np.int64)
            place(parts, g.consts, np.float64)
            for arr, dtype in ((g.due_sets, np.int64), (g.fire_waves, np.int64), (np.empty(g.n_sets), np.int64),
                               (g.due_times, np.float64), (g.fire_values, np.float64), (np.empty(g.n_sets), np.float64),
                               (np.empty(g.size), np.float64), (np.empty(g.n_logits), np.float64)):
                place(parts, np.zeros(len(arr)), dtype)
            spans.append(parts)
            rows.append([events.FIRE + g.rank, int(g.kind.population), int(g is self.output), *parts, g.n_sets,
                         g.size, g.n_logits,
                         *targets[g.oi], parts[0] + len(g.topo), parts[1] + len(g.consts)])
        wi, wf = np.concatenate(ints), np.concatenate(reals)
        for g, parts in zip(self.order, spans):
            wi[parts[0]:parts[0] + len(g.topo)] = g.topo
            wf[parts[1]:parts[1] + len(g.consts)] = g.consts
            g.topo, g.consts = wi[parts[0]:parts[0] + len(g.topo)], wf[parts[1]:parts[1] + len(g.consts)]
            g.due_sets, g.fire_waves = wi[parts[2]:parts[2] + g.n_sets], wi[parts[3]:parts[3] + g.size]
            g.sets_buf = wi[parts[4]:parts[4] + g.n_sets]
            g.due_times, g.fire_values = wf[parts[5]:parts[5] + g.n_sets], wf[parts[6]:parts[6] + g.size]
            g.times_buf, g.z_buf = wf[parts[7]:parts[7] + g.n_sets], wf[parts[9]:parts[9] + g.n_logits]
        self.wi, self.wf = wi, wf
        self.info = np.array(rows, dtype=np.int64)
        self.links = np.array(links, dtype=np.int64)
        self.groups = None  # the groups' arrays by address (_addresses)

    # ------------------------------------------------------------------ state of the synapses
    def select(self, g, lt: float, inclusive: bool) -> int:
        """The sets of group ``g`` due before ``lt`` (at ``lt`` too when ``inclusive``), written to
        ``g.due_sets`` and ``g.due_times``; returns their number, and sets ``g.lowest`` to the
        earliest due time (∞ if none is due, as things stand). A set is due:

        ``on_all``    at max_e a_e over its synapses, and not before the refractory period's end;
        ``on_input``  at the first arrival on any synapse after its last sample, and not before the
                      refractory period's end (arrivals during it are answered at its end);
        ``clock``     at its next tick (a tick inside the refractory period is skipped by the caller).
        """
        if self.timed:
            n, g.lowest = due_clock(self.clocks.at, g.set_base, g.n_sets, lt, inclusive, g.due_sets, g.due_times)
        elif self.on_all:
            n, g.lowest = due_on_all(self.first, g.w_edges, g.w_ptr, self.last, g.set_base, g.refractory, lt,
                                     inclusive, g.due_sets, g.due_times)
        elif self.jittered:
            tr = self.tr
            n, g.lowest = due_on_input_jittered(tr.HT, tr.HN, tr.head, tr.EJ, tr.ES, g.w_src, g.w_edges, g.w_delay,
                                                g.w_ptr, self.last, g.set_base, g.refractory, lt, inclusive,
                                                g.due_sets, g.due_times)
        else:
            tr = self.tr
            n, g.lowest = due_on_input(tr.HT, tr.HN, tr.head, g.w_src, g.w_delay, g.w_ptr, self.last, g.set_base,
                                       g.refractory, lt, inclusive, g.due_sets, g.due_times)
        return n

    def next_due(self, g) -> float:
        """When the first set of group ``g`` is next due (∞ if never, as things stand)."""
        self.select(g, -math.inf, False)
        return g.lowest

    def _post(self, g, rows, times, values, waves, whole: bool) -> None:
        """Rows ``rows`` of ``g`` (``whole``: all of them) sampled at ``times``: record them; mark
        the synapses they complete."""
        tr = self.tr
        tr.record(g.dense if whole else g.dense[rows], times, values, waves, self.sim.env.now)
        if len(g.out_edges) and self.on_all:
            mark_sent(self.first, g.out_ptr, g.out_sorted, rows, times, waves, self.set_wave, self.e_tset, tr.e_delay,
                      tr.EJ if self.jittered else self.no_jitter, self.jittered, tr.head, tr.e_src)

    def post_input(self, values, wave: int) -> None:
        """The environment emitted an observation (wave ``wave``) now. Without synaptic jitter,
        under ``on_all`` and ``on_input``, in one compiled call
        (:func:`~asyncneurons.engine.history_kernels.observation_sent`)."""
        g = self.sim.input_group
        if self.input_call:
            tr = self.tr
            values = np.ascontiguousarray(values, dtype=np.float64)
            if self.replaced_input():  # the arrays a run may have replaced since the last call
                self._addresses()
            now = float(self.sim.env.now)
            while True:
                if self.jittered:
                    code = observation_sent_jittered(self.tab, self.jtab, self.ctab, values, now, int(wave), tr.serial,
                                                     self.input_marks)
                else:
                    code = observation_sent_at(self.tab, self.ctab, values, now, int(wave), tr.serial,
                                               self.input_marks)
                if not code:
                    break
                self._make_room(code, g.dense)
                self._addresses()
            tr.serial += 1
            self.rearm()
            return
        times, waves = self.input_times, self.input_waves
        times.fill(self.sim.env.now)
        waves.fill(wave)
        self._post(g, g.all_rows, times, np.asarray(values, dtype=np.float64), waves, True)
        for tg in self.fed_by_input:
            self.due_at[tg.oi] = self.next_due(tg)
            self.stale[tg.oi] = 1
        self.rearm()

    # ------------------------------------------------------------------ the window
    def rearm(self) -> None:
        """Schedule the wake-up at the earliest due firing, unless one as early is armed."""
        due = self.due_at.tolist()
        best = min(due)
        if best < math.inf:  # the least (time, class), as min over the pairs finds it
            self.wakeup.arm(best, min(c for t, c in zip(due, self.classes) if t == best))

    def _wake(self, event):
        if not self.wakeup.current(event):
            return  # superseded by an earlier wake-up
        queue = self.sim.env._queue
        while queue and self._superseded(queue[0][3]):  # a no-op: it would only cut the window
            heapq.heappop(queue)
        limit = queue[0][:2] if queue else (math.inf, math.inf)
        self.advance(limit)
        self.rearm()
        landing = self.sim.error_landing
        if landing is not None and landing.pending is not None:  # the output's error (engine.error_landing)
            landing.after_window()

    def _superseded(self, event) -> bool:
        """Whether a queued event is a wake-up of this window that an earlier one replaced."""
        cb = event.callbacks
        return cb is not None and len(cb) == 1 and cb[0] == self._wake and event._value != self.wakeup.token

    def advance(self, limit) -> None:
        """Fire, layer by layer, every set due before ``limit`` = (time, priority class).

        Two things an output's sample can cause cut the window where they happen. Under a rule
        whose output sends retrograde signals when it samples (backprop), those signals land at
        t_out + retrograde delay, where t_out is the output's first firing in the window: every
        hidden firing must precede that instant, and the output's own firings too (except the
        first). Under ``wait`` pacing the environment steps at t_out, after every firing of that
        instant: nothing may fire later. When some hidden firing computed in the window lies
        beyond the cut, the window is computed again up to it from a copy of its state (the
        output's time depends on hidden firing times before it only, so it does not move). The
        hidden firings before a lower bound of the cut (:meth:`_earliest_cut`) come first and
        need no copy; the copy is taken as each group first fires after them (:meth:`_keep`).
        """
        rule = self.sim.rule
        if not (rule.output_sends or self.wait):
            if self.one_call and self.sim.on_event is None:
                self._pass(limit)
            else:
                for g in self.order:
                    self._layer(g, limit)
        else:
            self.latest = (-math.inf, 0)
            out_class = events.FIRE + self.output.rank
            if self.timed:
                # the output's next tick is known before anything fires: cut there at once (with
                # nothing queued, hidden clocks would otherwise tick forever)
                due = self.next_due(self.output)
                limit = min(limit, (due, events.ENV) if self.wait else self._landing(due, out_class))
            calls = self.cut_calls and self.sim.on_event is None
            if calls and self.wait_call:
                self._wait_window(limit)
            else:
                # hidden firings before the earliest possible cut are never undone: computed first,
                # with nothing kept; the rest from a copy kept as they fire (_keep)
                bound = limit if self.timed else min(limit, self._earliest_cut(out_class))
                if calls:
                    self._pass(bound, self.hidden_span)
                else:
                    for g in self.hidden:
                        self._layer(g, bound)
                self._after_hidden(limit, bound, out_class, calls)
        if self.recorded:
            rec, self.recorded = sorted(self.recorded, key=lambda r: r[:3]), []
            for t, _, _, name, v, w in rec:
                self.sim.on_event(t, name, "sample", v, w)

    def _wait_window(self, limit) -> None:
        """:meth:`advance` under ``wait`` pacing where every layer fires by a compiled call and a
        lower bound on the output's next sample is known: the bound, the hidden groups up to it,
        the cut and the output in one compiled call
        (:func:`~asyncneurons.engine.history_kernels.wait_window_at`), back in Python for deeper
        rings, the output's action, and hidden groups that may still fire beyond the bound
        (:meth:`_after_hidden`, from a copy)."""
        tr, sim = self.tr, self.sim
        if self.replaced():  # the arrays a run may have replaced since the last call
            self._addresses()
        status, pos, pending, serial, action, m, phase, ct, cp = wait_window_at(
            self.tab, self.b_tab, self.groups, *self.hidden_span, *self.output_span, float(limit[0]), float(limit[1]),
            self.output.set_base, float(sim.env.now), tr.serial, EXP, float(events.ENV))
        tr.serial = serial
        if phase == 1:
            if status == 3 and pos == self.output_span[1]:  # the output fired once: its action, and done
                self._act(m, action)
            elif status:
                self._pass((ct, cp), (pos, self.output_span[1]), (status, pos, pending, serial, action, m))
            return
        bound = (ct, cp)
        if status:
            self._pass(bound, (pos, self.hidden_span[1]), (status, pos, pending, serial, action, m))
        self._after_hidden(limit, bound, events.FIRE + self.output.rank, True)

    def _after_hidden(self, limit, bound, out_class: int, calls: bool) -> None:
        """The rest of a window an output's sample may cut (:meth:`advance`), once the hidden groups
        have fired up to ``bound``: those that may fire beyond it, from a copy; the cut; the output."""
        rule = self.sim.rule
        saved = None
        if bound < limit and self._due_before(self.hidden, limit):  # else nothing more fires, nothing to keep
            self.saved = self._save()
            for g in self.hidden:
                self._layer(g, limit)
            saved, self.saved = self.saved, None
        due = self.next_due(self.output)
        if (due, out_class) < limit:
            cut, out_limit = limit, limit
            if rule.output_sends:
                cut = min(cut, self._landing(due, out_class))
                out_limit = min(out_limit, self._landing(due, out_class))
            if self.wait:
                cut = min(cut, (due, events.ENV))
                out_limit = min(out_limit, (due, events.ENV))
            if self.latest >= cut:
                self._load(saved)
                for g in self.hidden:
                    self._layer(g, min(limit, cut))
            limit = min(limit, out_limit)
        if calls:
            self._pass(limit, self.output_span)
        else:
            self._layer(self.output, limit)

    def _due_before(self, groups, limit) -> bool:
        """Whether some group of ``groups`` may fire before ``limit``: it must select again, or its
        next firing precedes the limit (what :meth:`_layer` asks first). Read as Python numbers
        (``tolist``: the same floats, fewer NumPy scalars)."""
        stale, due = self.stale.tolist(), self.due_at.tolist()
        for g in groups:
            if stale[g.oi] or (due[g.oi], events.FIRE + g.rank) < limit:
                return True
        return False

    def _earliest_cut(self, out_class: int):
        """A lower bound on where an output's sample may cut the window (see :meth:`advance`),
        as (time, priority): from a lower bound on the output's next sample under ``on_all``
        without jitter (:func:`~asyncneurons.engine.history_kernels.earliest_next`), else (−∞, 0). Under
        ``clock`` and ``poisson`` firing the cut is placed before anything fires."""
        if not self.bounded:
            return (-math.inf, 0)
        if self.replaced_input():  # the arrays a run may have replaced since the last call
            self._addresses()
        lb = earliest_next_at(self.tab, self.b_tab, self.output.set_base, float(self.sim.env.now))
        cuts = []
        if self.sim.rule.output_sends:
            cuts.append(self._landing(lb, out_class))
        if self.wait:
            cuts.append((lb, events.ENV))
        return min(cuts)

    def _landing(self, due: float, out_class: int):
        """Where the retrograde signals of an output firing at ``due`` land, as (time, priority).

        After a positive delay they land at ``due + d`` before anything fires there. Without
        delay they land within the output's own instant, right after its firing: every hidden
        firing of that instant (a lower rank) precedes them, and so does the output's.
        """
        landing = due + self.retro_min
        return (landing, events.LEARN) if landing > due else (due, out_class + 1)

    def _layer(self, g, limit) -> None:
        lt, lp = limit
        if not self.stale[g.oi] and not (float(self.due_at[g.oi]), events.FIRE + g.rank) < limit:
            return  # nothing it reads has changed since its next firing was found to lie beyond the limit
        inclusive = events.FIRE + g.rank < lp  # a firing at the limit's instant precedes it
        if g.every_arrival:
            self._every_arrival(g, lt, inclusive)
            return
        n = self.select(g, lt, inclusive)
        while n:
            sets, times = g.due_sets[:n].copy(), g.due_times[:n].copy()
            if self.saved is not None:
                self._keep(g)
            if self.timed:
                self.clocks.advance(g.set_base + sets)
                if g.refractory > 0.0:
                    awake = times - self.last[g.set_base + sets] >= g.refractory
                    sets, times = sets[awake], times[awake]
                    if not len(sets):
                        n = self.select(g, lt, inclusive)
                        continue
            n = self.fire(g, sets, times, lt, inclusive)
            if n is None:
                n = self.select(g, lt, inclusive)
        self.due_at[g.oi] = g.lowest
        self.stale[g.oi] = 0

    def _pass(self, limit, span=None, result=None) -> None:
        """:meth:`_layer` for every group in order, in one compiled call
        (:func:`~asyncneurons.engine.history_kernels.window_layers_any`) that comes back only for
        what Python does: deeper rings or jitters drawn ahead (:meth:`_make_room`), and the
        output's action (:meth:`_fired`). The same operations in the same order, so the same
        bits. ``span``: the groups to take (positions in ``links``), every group by default; in a
        window an output's sample may cut, :meth:`advance` takes the hidden ones up to the
        earliest cut, then the output.) ``result``: what such a call at ``span``'s start returned
        already (:meth:`_wait_window`), taken first."""
        tr, sim = self.tr, self.sim
        lt, lp = limit
        lt, lp = float(lt), float(lp)
        start, stop = self.every if span is None else span
        pending = -1
        if self.replaced():  # the arrays a run may have replaced since the last call
            self._addresses()
        while True:
            if result is not None:
                status, start, pending, serial, action, m = result
                result = None
            elif self.jittered:
                status, start, pending, serial, action, m = window_layers_jittered(
                    self.tab, self.jtab, self.ctab, self.groups, start, stop, pending, lt, lp, sim.env.now, tr.serial,
                    EXP)
            else:
                status, start, pending, serial, action, m = window_layers(
                    self.tab, self.ctab, self.groups, start, stop, pending, lt, lp, sim.env.now, tr.serial, EXP)
            tr.serial = serial
            if status == 0:
                break
            if status == 3:  # the output fired m rows: its action
                self._act(m, action)
                if start == stop:
                    break
            elif status == 4:  # a clock's next draws (action: the clock): every clock's that needs them
                self.clocks.fill_due()
            else:
                g = self.order[self.links[start]]
                sets = g.due_sets[:pending] if pending >= 0 else g.sets_buf[:-2 - pending]  # ticked already
                self._make_room(status, g.dense if g.kind.population else g.dense[sets])
                if self.replaced():  # deeper rings
                    self._addresses()

    def _act(self, m: int, action: int) -> None:
        """The output's compiled firing of ``m`` rows (``action``: a population's sampled index)
        handed to the environment as its action."""
        g = self.output
        if g.kind.population:
            aux = g.aux = (g.z_buf.copy(), int(action))
        else:
            aux = None
        self.sim.environment.receive_action(g.kind.action(g.fire_values[:m], aux), int(g.fire_waves[0]),
                                            float(g.times_buf[0]))

    def _addresses(self) -> None:
        """What the compiled calls are passed: the addresses of the window's arrays in ``tab``
        (:func:`~asyncneurons.engine.history_kernels.array_addresses`; under synaptic jitter the
        jitters' in ``jtab``) and of each group's arrays and fixed parts in ``groups``
        (:func:`~asyncneurons.engine.history_kernels.group_addresses`), the arrays kept alive in
        ``held_arrays``; and whether the attributes that hold them still hold what they held
        (:func:`_holds`), asked before each call: :meth:`replaced` (all), ``replaced_input`` (the
        window's), ``replaced_in[g.oi]`` (the window's and group g's). A run replaces some
        (deeper rings, a restored state, a cut window's copy loaded)."""
        tr = self.tr
        g = self.sim.input_group
        held = [(tr, "HT"), (tr, "HV"), (tr, "HW"), (tr, "HN"), (tr, "head"), (self, "first"), (self, "set_wave"),
                (self, "last"), (tr, "max_delay"), (self, "e_int"), (tr, "e_delay"), (self, "wi"), (self, "wf"),
                (self, "info"), (self, "links"), (self, "stale"), (self, "due_at"), (g, "dense"), (g, "out_ptr"),
                (g, "out_sorted"), (self, "fed_oi"), (self.clocks, "at") if self.timed else (self, "no_stamps"),
                (self, "no_jitter"), (self, "scratch_ints"), (self, "scratch_reals"), (self, "input_times"),
                (self, "input_waves"), (g, "all_rows")]
        n_ints, n_reals = scratch_lengths(max(g.size for g in self.order), len(tr.HT),
                                          max(g.P.shape[1] for g in self.order))
        if len(self.scratch_ints) < n_ints or len(self.scratch_reals) < n_reals:  # made once, grown when short
            self.scratch_ints, self.scratch_reals = np.empty(n_ints, dtype=np.int64), np.empty(n_reals)
        arrays = [getattr(o, name) for o, name in held]
        self.tab = array_addresses(arrays)
        clocks = self._clock_rows()
        self.ctab = array_addresses([getattr(o, name) for o, name in clocks]) if self.timed else None
        if self.bounded:  # earliest_next's, made once
            self.b_tab = array_addresses([self.b_ptr, self.b_edges, self.b_src, self.b_delay, self.b_set,
                                          self.b_refractory, self.b_rptr, self.b_rows, self.b_lb, self.b_inputs])
        # the arrays a run may replace (the others are made once, with the window)
        held = [(o, name, a) for (o, name), a in zip(held, arrays)]
        held = held[:A_MAX_DELAY] + ([held[A_CLOCK_AT], *((o, name, getattr(o, name)) for o, name in clocks)]
                                     if self.timed else [])
        jittered = []
        if self.jittered:  # window_layers_jittered's and observation_sent_jittered's
            jitters = [(tr, "EJ"), *((tr, name) for name in ("HA", "ES", "stale", "src_ptr", "by_src", "JT", "jt_base",
                                                            "sent", "e_key", "jt_law"))]
            self.jtab = array_addresses([getattr(o, name) for o, name in jitters])
            jittered = [(o, name, getattr(o, name)) for o, name in jitters]
            arrays = arrays + [getattr(o, name) for o, name in jitters]
        self.replaced_input = _holds(held + jittered)
        groups, parts, by_group = [], [], []
        for g in self.order:
            if not g.compiled_fire:
                groups.append(None)
                parts.append(None)
                by_group.append(self.replaced_input)
                continue
            aux = g.aux
            if g.kind.population:
                aux = g.z_buf
            elif not (isinstance(aux, np.ndarray) and aux.dtype == np.float64 and aux.flags.c_contiguous):
                aux = g.aux = np.zeros(g.n_rows) if aux is None else np.array(aux, dtype=np.float64)
            groups.append((g.P, g.H, g.E if g.keeps_trace else g.scratch, g.T, g.keys1, g.counters, g.values, aux,
                           g.trace_time if g.exponential else self.no_stamps))
            parts.append((g.topo, g.consts, g.fire_values, g.fire_waves, g.due_sets, g.due_times))
            names = ("P", "H", "T", "counters", "values", *(("E",) if g.keeps_trace else ()),
                     *(() if g.kind.population else ("aux",)), *(("trace_time",) if g.exponential else ()))
            own = [(g, name, getattr(g, name)) for name in names]
            by_group.append(_holds(held[:A_MAX_DELAY + int(self.timed)] + own))
            held.extend(own)
        held.extend(jittered)
        self.replaced = _holds(held)
        self.replaced_in = by_group  # per group: the window's arrays and the group's
        self.held_arrays = (arrays, groups, parts)
        self.groups = group_addresses(groups, parts)

    def _clock_rows(self) -> list:
        """Where the clocks' arrays are under clock and Poisson firing (rows
        :data:`~asyncneurons.engine.history_kernels.C_K` … ``C_FLAGS`` of the clocks' table
        ``ctab``, None when firing is not on clocks; each set's next tick is row ``A_CLOCK_AT`` of
        the window's): k, c, the period (c under Poisson firing), the blocks of draws and their
        indices, and the flags."""
        ck = self.clocks
        if not self.timed:
            return []
        return [(ck, "k"), (ck, "c"), (ck, "c" if ck.poisson else "period"), (ck, "block"), (ck, "block_of"),
                (self, "clock_flags")]

    def _every_arrival(self, g, lt: float, inclusive: bool) -> None:
        """The layer pass of ``on_input`` units without refractory period: every sample before
        ``lt`` (at it, ``inclusive``), unit by unit in time order, in compiled calls
        (:func:`~asyncneurons.engine.history_kernels.on_input_layer`); then what :meth:`_fired` does."""
        tr, sim = self.tr, self.sim
        population = g.kind.population
        if population:
            aux = np.zeros(0)  # σ per row is a Bernoulli layer's; a population's aux is (π, action)
        else:
            if not (isinstance(g.aux, np.ndarray) and g.aux.dtype == np.float64 and g.aux.flags.c_contiguous):
                g.aux = np.zeros(g.n_rows) if g.aux is None else np.array(g.aux, dtype=np.float64)
            aux = g.aux
        rec_t, rec_set, rec_wave, rec_v, rec_action = g.arrival_rec
        while True:
            code, n, tr.serial = on_input_layer(
                tr.HT, tr.HV, tr.HW, tr.HN, tr.head, tr.max_delay, g.topo, g.consts, g.P, g.H, g.E, g.T, g.keys1,
                g.counters, g.values, aux, g.arrival_z, self.last, self.set_wave, lt, inclusive, sim.env.now,
                tr.serial, EXP, rec_t, rec_set, rec_wave, rec_v, rec_action)
            if n:
                for tg in g.target_groups:
                    self.stale[tg.oi] = 1
                if sim.on_event is not None:
                    for i in range(n):
                        t, w = float(rec_t[i]), int(rec_wave[i])
                        rows = g.all_rows if g.kind.population else (int(rec_set[i]),)
                        for q, r in enumerate(rows):
                            self.recorded.append((t, g.rank, int(g.uids[r]), g.names[r], float(rec_v[i, q]), w))
                if population:
                    g.aux = (g.arrival_z.copy(), int(rec_action[n - 1]))
                if g is self.output:  # held until the environment's next step (clock pacing)
                    sim.environment.receive_action(g.kind.action(g.values, g.aux), int(rec_wave[n - 1]),
                                                   float(rec_t[n - 1]))
            if code == 0:
                break
            if code == 1:
                tr._grow()
        self.select(g, lt, inclusive)
        self.due_at[g.oi] = g.lowest
        self.stale[g.oi] = 0

    def _save(self) -> dict:
        """What a window changes before its output samples, kept as it changes: each hidden
        group's due state now, and at the first firing of the window (:meth:`_keep`) a copy of
        the window's arrays and of each group that fires, before it does."""
        return {"due": (self.due_at.copy(), self.stale.copy()), "groups": {}}

    def _keep(self, g) -> None:
        """Copy, into the window's saved state, what firing group ``g`` is about to change."""
        saved = self.saved
        if "tr" not in saved:
            tr = self.tr
            saved.update({"first": self.first.copy(), "set_wave": self.set_wave.copy(), "last": self.last.copy(),
                          "clock": self._clock_state(), "recorded": len(self.recorded),
                          "tr": {a: getattr(tr, a).copy() for a in ("HT", "HV", "HW", "HN", "head", *tr.jitter_arrays)}
                          | {"depth": tr.depth, "serial": tr.serial}})
        if g.gid not in saved["groups"]:
            saved["groups"][g.gid] = (g, {a: getattr(g, a).copy() for a in self.kept if hasattr(g, a)},
                                      {a: _copy(getattr(g, a, None)) for a in ("aux", "sample_H", "sample_slope")})

    def _load(self, saved: dict) -> None:
        hidden = [g.oi for g in self.hidden]
        self.due_at[hidden], self.stale[hidden] = saved["due"][0][hidden], saved["due"][1][hidden]
        for g, arrays, extra in saved["groups"].values():
            for a, v in arrays.items():
                setattr(g, a, v)
            for a, v in extra.items():
                if v is not None:
                    setattr(g, a, v)
                elif hasattr(g, a) and a != "aux":
                    delattr(g, a)
            g.aux = extra["aux"]
        self.stale[self.output.oi] = 1
        if "tr" not in saved:
            return  # nothing fired
        self.first, self.set_wave = saved["first"], saved["set_wave"]
        self.last = saved["last"]
        if self.timed:
            self.clocks.restore(saved["clock"])
        del self.recorded[saved["recorded"]:]
        for a, v in saved["tr"].items():
            setattr(self.tr, a, v)

    def fire(self, g, sets, times, lt: float = -math.inf, inclusive: bool = False):
        """Sets ``sets`` of ``g`` sample, each at its own time ``times`` (see the module docstring).
        A compiled firing (:meth:`_fire_compiled`) under ``on_all`` or ``on_input``, or on clocks
        without synaptic jitter, returns the number of sets then due before ``lt`` (:meth:`select`);
        otherwise None."""
        tr, sim, kind = self.tr, self.sim, g.kind
        if g.compiled_fire:
            n = self._fire_compiled(g, sets, times, lt, inclusive)
            return None if self.select_mode == 0 and not (self.timed and not self.jittered) else n
        if kind.population:  # one set: every row at its time
            rows, row_t = g.all_rows, times[g.set_of_row]
        else:
            rows, row_t = sets, times
        whole = len(rows) == g.n_rows
        if sim.landings is not None:  # δ landed on each unit by its own time
            sim.landings.land(g, rows, row_t)
        # the latest value that has arrived on each incoming synapse at the unit's time (under
        # jitter the newest send that has, asyncneurons.engine.jitter)
        EJ = tr.EJ if self.jittered else self.no_jitter
        read_sets(tr.HT, tr.HN, tr.HV, tr.HW, tr.head, EJ, self.jittered, sets, times, g.w_ptr, g.w_edges, g.w_src,
                  g.w_delay, g.w_row, g.w_col, g.H, g.T)
        if whole:
            P, H, keys, counters = g.P, g.H, g.keys1, g.counters
        else:
            P, H, keys, counters = g.P[rows], g.H[rows], g.keys1[rows], g.counters[rows]
        if self.plain_trace and kind.name in FUSED_KINDS:  # the compiled firing (same bits)
            if whole:
                decay = traces.record_decay(g, row_t)
                values, aux, score = sample_and_trace(kind, P, H, g.E, keys, counters, g.lp, decay)
            else:
                decay = traces.record_decay(g, row_t, rows)
                E = g.E[rows]
                values, aux, score = sample_and_trace(kind, P, H, E, keys, counters, g.lp, decay)
                g.E[rows], g.counters[rows] = E, counters
        else:
            if kind.name in FUSED_KINDS:  # the compiled sampling (same bits); its trace goes to scratch
                values, aux, score = sample_and_trace(kind, P, H, g.scratch[:len(rows)], keys, counters.copy(), g.lp,
                                                      0.0)
            else:
                pot = potential(P, H)
                u1 = streams.uniforms(keys, counters)
                u2 = streams.uniforms(g.keys2[rows], counters) if kind.gaussian else None
                values, aux = kind.sample(pot, g.lp, u1, u2)
                score = kind.score(values, pot, aux, g.lp)
            self.now = float(row_t[0])  # a rule that sends signals when sampling sends them from here
            self.row_times = row_t
            sim.rule.on_sample_rows(sim, g, rows, values, aux, score, H)
            self.now = self.row_times = None
            g.counters[rows] += 1
        if kind.population:
            g.values[:] = values
            g.aux = aux
        else:
            if g.aux is None:
                g.aux = np.zeros(g.n_rows)
            if whole:
                g.values[:] = values
                g.aux[:] = aux
            else:
                g.values[rows] = values
                g.aux[rows] = aux
        # the waves answered, the sample times, and (on_all) the first arrival of a newer wave on
        # each synapse of the sets that sampled
        waves = np.empty(len(rows), dtype=np.int64)
        answered(g.T, rows, kind.population, sets, times, g.set_base, self.set_wave, self.last, waves, self.on_all,
                 tr.HT, tr.HW, tr.head, EJ, self.jittered, g.w_ptr, g.w_edges, g.w_src, g.w_delay, self.first)
        self._post(g, rows, row_t, values, waves, whole)
        self._fired(g, kind, rows, row_t, values, aux, waves)

    def _fired(self, g, kind, rows, row_t, values, aux, waves) -> None:
        """What follows a layer's samples: its targets must read again, the window's cut moves
        on, recorded events are kept, and the output's samples are the action."""
        sim = self.sim
        for tg in g.target_groups:
            self.stale[tg.oi] = 1
        if self.saved is not None and g is not self.output:  # only those may lie beyond the cut (_after_hidden)
            self.latest = max(self.latest, (float(row_t.max()), events.FIRE + g.rank))
        if sim.on_event is not None:
            for r, t, v, w in zip(rows.tolist(), row_t.tolist(), values.tolist(), waves.tolist()):
                self.recorded.append((t, g.rank, int(g.uids[r]), g.names[r], float(v), int(w)))
        if g is self.output:
            # under clock pacing the action is held until the next step, which the window never
            # passes; under wait pacing a current action makes the environment step at t_out
            sim.environment.receive_action(kind.action(values, aux), int(waves[0]), float(row_t[0]))

    def _fire_compiled(self, g, sets, times, lt: float, inclusive: bool) -> int:
        """:meth:`fire` in one compiled call (:func:`~asyncneurons.engine.history_kernels.bernoulli_fire`
        or :func:`~asyncneurons.engine.history_kernels.categorical_fire`), for a rule whose sampling
        records the plain trace and a kind sampled in compiled kernels: the same operations on the
        same values. The call also does the layer's next :meth:`select` up to ``lt``
        (``inclusive``) under ``on_all`` and ``on_input``: returns the number of sets it found due."""
        tr, sim = self.tr, self.sim
        population = g.kind.population
        if population:  # one set: every row at its time
            rows, row_t = g.all_rows, times[g.set_of_row]
        else:
            rows, row_t = sets, times
        m = len(rows)
        if sim.landings is not None:  # δ landed on each unit by its own time
            sim.landings.land(g, rows, row_t)
        E = g.E if g.keeps_trace else g.scratch  # a trace the rule does not record at sampling is dropped
        if g.per_sample or not g.keeps_trace:  # λγ (asyncneurons.learning.traces.record_decay), in g.consts
            decays = NO_DECAYS
        else:
            decay = traces.record_decay(g, row_t) if m == g.n_rows else traces.record_decay(g, row_t, rows)
            decays = np.ascontiguousarray(decay, dtype=np.float64).reshape(m)
        now = sim.env.now
        jittered = self.jittered
        if population:
            z = np.empty(g.n_logits)
            while True:
                if jittered:
                    a, n_next, lowest = categorical_fire_any(
                        tr.HT, tr.HV, tr.HW, tr.HN, tr.head, tr.EJ, True, self._jitter_arrays(), self.first,
                        self.set_wave, self.last, tr.max_delay, self.e_int, tr.e_delay, g.topo, g.consts, g.P, g.H,
                        E, g.T, g.keys1, g.counters, g.values, z, decays, sets, times, row_t, g.fire_values,
                        g.fire_waves, lt, inclusive, now, tr.serial, EXP, g.due_sets, g.due_times)
                else:
                    if self.replaced_in[g.oi]():  # the arrays a run may have replaced since the last call
                        self._addresses()
                    a, n_next, lowest = categorical_fire_at(self.tab, self.groups, g.oi, z, decays, sets, times, row_t,
                                                            lt, inclusive, now, tr.serial, EXP, self.timed)
                if a >= 0:
                    break
                self._make_room(-a, g.dense)
            aux = g.aux = (z, int(a))
        else:
            if not (isinstance(g.aux, np.ndarray) and g.aux.dtype == np.float64 and g.aux.flags.c_contiguous):
                g.aux = np.zeros(g.n_rows) if g.aux is None else np.array(g.aux, dtype=np.float64)
            while True:
                if jittered:
                    code, n_next, lowest = bernoulli_fire_any(
                        tr.HT, tr.HV, tr.HW, tr.HN, tr.head, tr.EJ, True, self._jitter_arrays(), self.first,
                        self.set_wave, self.last, tr.max_delay, self.e_int, tr.e_delay, g.topo, g.consts, g.P, g.H,
                        E, g.T, g.keys1, g.counters, g.values, g.aux, decays, sets, times, g.fire_values,
                        g.fire_waves, lt, inclusive, now, tr.serial, EXP, g.due_sets, g.due_times)
                else:
                    if self.replaced_in[g.oi]():  # the arrays a run may have replaced since the last call
                        self._addresses()
                    code, n_next, lowest = bernoulli_fire_at(self.tab, self.groups, g.oi, decays, sets, times, lt,
                                                             inclusive, now, tr.serial, EXP, self.timed)
                if not code:
                    break
                self._make_room(code, g.dense[rows])
            aux = None  # σ of each row is in g.aux; only an output's aux is read (_fired)
        tr.serial += 1
        if self.rule_sampled and not sim.rule.sampled_in_place(sim, g, rows, row_t):
            self._sampled(g, rows, row_t, aux, m)
        if g is self.output or sim.on_event is not None:  # what _fired reads of the samples
            self._fired(g, g.kind, rows, row_t, g.fire_values[:m], aux, g.fire_waves[:m])
        else:
            self._fired(g, g.kind, rows, row_t, None, aux, None)
        g.lowest = lowest
        return n_next

    def _sampled(self, g, rows, row_t, aux, m: int) -> None:
        """The rule's part of a compiled firing of ``m`` rows ``rows`` (:meth:`Rule.sampled
        <asyncneurons.learning.rules.base.Rule.sampled>`), given what :meth:`fire` gives
        ``on_sample_rows``: the samples, σ per row (or the population's (π, a)), the scores
        ``(h − σ)/T`` or ``(onehot − π)/T`` with the operations of the compiled sampling, and the
        inputs the rows read."""
        values = g.fire_values[:m].copy()
        if g.kind.population:
            probs = aux[0][:m]
        else:
            aux = probs = g.aux[rows]
        score = (values - probs) / g.temperature
        H = g.H if m == g.n_rows else g.H[rows]
        self.now, self.row_times = float(row_t[0]), row_t  # a signal sent now leaves at the unit's own time
        self.sim.rule.sampled(self.sim, g, rows, values, aux, score, H)
        self.now = self.row_times = None

    def _jitter_arrays(self) -> tuple:
        """What a compiled firing's sends need under synaptic jitter."""
        tr = self.tr
        return (tr.HA, tr.ES, tr.stale, tr.src_ptr, tr.by_src, tr.JT, tr.jt_base, tr.sent, tr.e_key, tr.jt_law)

    def _make_room(self, code: int, idx) -> None:
        """Before a compiled firing's sends: deeper rings (``code`` 1) or the senders' next jitters drawn (2)."""
        if code == 1:
            self.tr._grow()  # the oldest sample may still be on its way somewhere: keep more
        else:
            self.tr._draw_ahead(idx)

    # ------------------------------------------------------------------ checkpoints
    def _clock_state(self):
        return None if self.clocks is None else {k: v.copy() for k, v in self.clocks.state().items()}

    @staticmethod
    def _first(arrivals, n_sets: int):
        """``first``: the synapses' ``arrivals``, then per set a max and a count not known yet
        (:func:`~asyncneurons.engine.history_kernels.due_on_all`)."""
        return np.concatenate([arrivals, np.full(n_sets, math.inf), np.full(n_sets, -1.0)])

    def state(self) -> dict:
        return {"set_wave": self.set_wave, "first": self.first[:self.n_edges], **self.wakeup.state(),
                "last": self.last, "clock": self._clock_state(),
                "next_due": [float(self.due_at[g.oi]) for g in self.sim.groups]}

    def restore(self, state: dict) -> None:
        self.set_wave = np.array(state["set_wave"], dtype=np.int64)
        self.first = self._first(np.array(state["first"], dtype=float), len(self.set_wave))
        self.wakeup.restore(state)
        if "last" in state:  # checkpoints written before every firing policy had windows: on_all only
            self.last = np.array(state["last"], dtype=float)
        if state.get("clock") is not None:
            self.clocks.restore(state["clock"])
        elif self.timed and "tick" in state:  # written before units had their own clocks: a fixed period
            self.clocks.c = np.array(state["tick"], dtype=float)
            self.clocks.at = self.clocks.c.copy()
        for g, d in zip(self.sim.groups, state["next_due"]):
            self.due_at[g.oi] = d
