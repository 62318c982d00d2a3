"""One run of one scenario: the SimPy environment, the unit processes and the environment process.

The graph is compiled into groups (:mod:`asyncneurons.engine.network`); each group is served by one
SimPy process, woken when its firing policy says so:

``on_input``  once per instant at which any value arrives;
``on_all``    when every incoming synapse holds a value of a wave newer than the last one it
              answered (the layered limit); a *wave* is everything that descends from one
              observation, and every value carries the wave of the oldest observation it reflects;
``clock``     on the unit's own clock (a phase, a period, jitter per tick), with whatever it holds;
``poisson``   at exponential intervals, with whatever it holds (:mod:`asyncneurons.engine.clocks`).

A refractory period defers an event-triggered sample to its end and skips clock ticks inside it.
Values travel along synapses as :class:`~asyncneurons.engine.events.Signal` events after the edge's
delay; the environment process (:mod:`asyncneurons.engine.environment`) emits observations, steps the
gymnasium task and broadcasts the TD error, which reaches each unit after its reward delay.
The order of events within one instant is defined in :mod:`asyncneurons.engine.events`.
"""

from __future__ import annotations

import numpy as np

from asyncneurons.engine import clocks, error_landing, events, interrupts, jitter
from asyncneurons.model import delays
from asyncneurons.learning import streams, traces
from asyncneurons import tasks
from asyncneurons.engine.chain import make_cascade, make_chain
from asyncneurons.learning.critic_choice import make_critic
from asyncneurons.errors import DivergenceError, GraphError, ScenarioError
from asyncneurons.model.graph import layered, validate
from asyncneurons.learning.kernels import potential, sum_by_sender
from asyncneurons.engine.instant import Instant
from asyncneurons.engine.instant import applies as instant_applies
from asyncneurons.engine.landings import Landings
from asyncneurons.model.limits import check_network
from asyncneurons.engine.network import compile_groups
from asyncneurons.engine.map_fire import fire_one, fires_in_one_call
from asyncneurons.learning.optim import AdamConfig, linear_schedule
from asyncneurons.engine.relaxation import make_relaxation
from asyncneurons.engine.retrograde import RetroQueue, fusing_graph
from asyncneurons.engine.retrograde import applies as retro_queue_applies
from asyncneurons.learning.rules import RULES
from asyncneurons.engine.transmission import Transmission, send_plan, write
from asyncneurons.learning.rules.base import Rule
from asyncneurons.learning.rules.global_reinforce import GlobalReinforce
from asyncneurons.learning.units import FUSED_KINDS, LayerParams, sample_and_trace
from asyncneurons.engine.windows import Windows
from asyncneurons.engine.windows import applies as windows_apply
from asyncneurons.engine.history_kernels import trace_at_landing
from asyncneurons.engine.relaxation_kernels import EXP


def run_seed(seed: int, run: int) -> int:
    """The seed of run ``run`` of an experiment seeded ``seed``."""
    return streams.seed_of(seed, "run", run)


def _per_layer(values, layer: int, key: str):
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if len(values) == 1:
        return float(values[0])
    if not 1 <= layer <= len(values):
        raise GraphError(f"layer {layer}: {key} gives {len(values)} values, one per layer 1…{len(values)}")
    return float(values[layer - 1])


def build_graph(scenario, n_obs: int, action, seed: int):
    """The scenario's connectivity with delays assigned, validated against the task."""
    net, timing = scenario.network, scenario.timing
    if net.graph:
        from asyncneurons.model.graphio import load_graph
        g = load_graph(net.graph)
    else:
        if action[0] == "discrete":
            out_kind = net.output or "softmax"
            if out_kind == "bernoulli" and action[1] != 2:
                raise ScenarioError(f"network.output: a bernoulli output encodes two actions; "
                                    f"{scenario.env.id} has {action[1]}")
            if out_kind == "linear_gaussian":
                raise ScenarioError(f"network.output: {scenario.env.id} has discrete actions; "
                                    f"use softmax or categorical")
            n_out = {"softmax": action[1] - 1, "categorical": action[1]}.get(out_kind, 1 if action[1] == 2 else action[1])
        else:
            out_kind = net.output or "linear_gaussian"
            if out_kind != "linear_gaussian":
                raise ScenarioError(f"network.output: {scenario.env.id} has continuous actions; "
                                    f"use linear_gaussian")
            n_out = action[1]
        check_network([n_obs, *net.hidden, n_out])
        g = layered(n_obs, net.hidden, n_out, hidden_kind=net.unit, output_kind=out_kind)
    try:
        delays.assign_delays(g, timing.synapse_delay, timing.retro_delay, seed,
                             velocity=timing.conduction_velocity, offset=timing.synaptic_offset)
    except GraphError as e:
        raise GraphError(f"{net.graph}: {e}" if net.graph else str(e)) from None
    validate(g)
    RULES[scenario.learning.rule].check(g)
    n_in = sum(1 for _, r in g.nodes(data="role") if r == "input")
    if n_in != n_obs:
        raise GraphError(f"the graph has {n_in} input units but {scenario.env.id} observations have {n_obs} components")
    return g


class Simulation:
    """One run: build, compile and simulate; report each episode through ``on_episode``.

    ``fuse`` overrides ``[engine] fuse``; ``max_ticks`` stops after that many environment steps
    (used by tests); ``transmission`` (``auto``, ``eager`` or ``lazy``) chooses how values reach
    ``on_all`` and ``clock`` receivers (:mod:`asyncneurons.engine.transmission`), never the results;
    so does ``[engine] windows`` (:mod:`asyncneurons.engine.windows`). ``on_event(time_ms, unit, kind,
    value, wave)`` receives every event when given. ``relaxation`` (``history`` or ``events``)
    chooses how MAP Propagation relaxes (:mod:`asyncneurons.engine.relaxation`): ``events`` is the test
    oracle, and runs with eager transmission. In the synchronous limit each instant's events are
    direct calls (:mod:`asyncneurons.engine.instant`) unless ``synchronous`` is False (the event engine,
    its oracle); neither changes a result.
    """

    def __init__(self, scenario, run: int = 0, *, fuse: bool | None = None, on_episode=None,
                 on_event=None, max_ticks: int | None = None, transmission: str = "auto", resume=None,
                 relaxation: str = "history", synchronous: bool = True):
        s = self.scenario = scenario
        self.run_index = run
        self.seed = run_seed(s.experiment.seed, run)
        self.env = events.Environment()
        self.task = tasks.make_env(s.env.id, s.env.max_episode_steps)
        self.action_spec = tasks.action_spec(self.task)
        n_obs = int(np.prod(self.task.observation_space.shape))
        self.graph = build_graph(s, n_obs, self.action_spec, self.seed)
        hidden_and_out = [n for n, r in self.graph.nodes(data="role") if r != "input"]
        self.reward_delays = delays.reward_delays(self.graph, s.timing.reward_delay, self.seed)
        L = s.learning
        self.adam = AdamConfig(L.adam_beta1, L.adam_beta2, L.adam_eps, L.bias_correction_steps)
        self.n_layers = max(a["layer"] for _, a in self.graph.nodes(data=True))
        self._lr = [(_per_layer(L.lr, l, "learning.lr"),
                     _per_layer(L.lr_end if L.lr_end is not None else L.lr, l, "learning.lr_end"))
                    for l in range(1, self.n_layers + 1)]
        rule_cls = RULES[L.rule]
        use_windows = windows_apply(s, self.graph, rule_cls)
        if resume is not None:  # a run continues in the mode it was saved in (older checkpoints: without)
            use_windows = bool(resume[0].get("windows"))
        # a unit the TD error never reaches (a hidden unit under Weight Max) fuses whatever its reward delay
        roles = dict(self.graph.nodes(data="role"))
        fusing_delays = {n: d if rule_cls.broadcast_to_hidden or roles[n] == "output" else 0.0
                         for n, d in self.reward_delays.items()}
        # on windows, δ landing on each unit at its own time is applied to its row inside the layer
        # pass (asyncneurons.engine.landings): a layer stays one group whatever its units' reward delays
        # (with reward jitter each unit hears δ at an instant of its own per step: those stay events)
        per_unit = (use_windows and rule_cls.broadcast_to_hidden and rule_cls.on_reward is GlobalReinforce.on_reward
                    and delays.is_zero(s.timing.reward_jitter))
        if per_unit:
            fusing_delays = {n: 0.0 for n in fusing_delays}
        timed = s.timing.firing in ("clock", "poisson")
        self.layer_of = {n: self.graph.nodes[n]["layer"] for n in hidden_and_out}
        self.clocks = clocks.unit_clocks(self.layer_of, s.timing, self.seed, self.graph) if timed else None
        fusing_clocks = {n: clocks.fusing_key(n, self.layer_of[n], self.clocks[n], s.timing, self.graph)
                         for n in hidden_and_out} if timed else None
        # jitter per broadcast: every unit the TD error reaches hears it at its own instant
        self.reward_jitter = None if delays.is_zero(s.timing.reward_jitter) else s.timing.reward_jitter
        alone = frozenset(n for n in hidden_and_out if rule_cls.broadcast_to_hidden or roles[n] == "output") \
            if self.reward_jitter is not None else frozenset()
        # jitter per retrograde send: every unit retrograde signals reach hears each at its own instant
        self.retro_jitter = None if delays.is_zero(s.timing.retro_jitter) or not rule_cls.uses_retro \
            else s.timing.retro_jitter
        # on windows, Weight Max's retrograde signals landing at instants of their own go through a
        # queue drained by a compiled loop (asyncneurons.engine.retrograde): each row learns alone, so a
        # layer stays one group whatever its retrograde delays and jitter
        retro_queue = retro_queue_applies(s, self.graph, rule_cls, use_windows)
        if resume is not None:  # a checkpoint restores into the grouping it was saved with
            retro_queue = resume[0].get("retrograde") is not None
        if self.retro_jitter is not None and not retro_queue:
            alone = alone | {u for u, v in self.graph.edges if roles[u] != "input"}
        if not delays.is_zero(s.timing.synapse_jitter) and not use_windows:
            # jitter per send: each unit's synapses deliver at instants of their own, so units
            # with the same senders and delays no longer fire together (firing windows time
            # each unit on its own whatever its group)
            alone = alone | frozenset(hidden_and_out)
        self.input_group, self.groups = compile_groups(
            fusing_graph(self.graph) if retro_queue else self.graph,
            seed=self.seed, fuse=s.engine.fuse if fuse is None else fuse, across_delays=use_windows,
            reward_delays=fusing_delays, retro=RULES[L.rule].uses_retro, bias_init=s.network.bias_init,
            clocks=fusing_clocks, refractory=delays.refractory_periods(self.graph, s.timing.refractory),
            alone=alone,
            layer_params=lambda l: LayerParams(_per_layer(s.network.temperature, l, "network.temperature"),
                                               _per_layer(s.network.variance, l, "network.variance")))
        for grp in self.groups:
            traces.configure(grp, L, s.env.gamma)
            # a group's units share one clock (a population's is its first unit's)
            grp.clock = clocks.Clocks(s.timing, self.seed, grp.names[:1], self.clocks, self.layer_of,
                                      self.graph) if timed else None
        self.rule = RULES[L.rule](s)
        self.relaxation = (make_relaxation(self, relaxation, L.map_steps, L.map_step_size, s.timing.relax_period)
                           if L.rule == "map_prop" else None)
        self._map_hist = self.relaxation is not None and self.relaxation.reads_histories
        if self.relaxation is not None and not self._map_hist:
            transmission = "eager"  # the oracle answers every sample that lands (see _deliver)
        self.critic = make_critic(s, n_obs, self.seed, self.adam)
        self.max_rank = max(g.rank for g in self.groups)
        self._plan_transmission("lazy" if use_windows else transmission)
        self._plan_retro()
        if self.retro_jitter is not None and not retro_queue:
            self._plan_retro_jitter()
        self.landings = Landings(self, self.groups, self.reward_delays) if per_unit else None
        self.windows = Windows(self) if use_windows else None
        self.checkpoint = None  # called by the environment when a new episode's first step is due
        self.on_episode = on_episode
        self.on_event = on_event
        if self.landings is not None and on_event is not None:
            self.on_event = self.landings.ordered(on_event)
        self.retro = RetroQueue(self) if retro_queue else None
        self._landing_now = None  # while a group learns from retrograde signals, the signals it sends on at once
        self.max_ticks = max_ticks
        self.output = next(g for g in self.groups if g.role == "output")
        self._broadcast_batches = self._batch_by_reward_delay()
        for grp in self.groups:
            grp.reward_held, grp.reward_stale = -1, 0  # the newest agent step whose TD error landed
        self.instant = Instant() if synchronous and instant_applies(
            self, on_event=on_event, windows=use_windows, resume=resume) else None
        receivers = [grp for _, gs in self._broadcast_batches for grp in gs]
        self._reward_late = (receivers, jitter.Broadcast(self.reward_jitter, jitter.unit_keys(
            self.seed, [grp.names[0] for grp in receivers]))) if self.reward_jitter is not None else None
        self.done = self.env.event()
        from asyncneurons.engine.environment import EnvironmentProcess
        self.environment = EnvironmentProcess(self)
        if resume is not None:  # (state, arrays) of a checkpoint (asyncneurons.engine.checkpoint)
            from asyncneurons.engine.checkpoint import restore
            restore(self, *resume)
        if self.instant is not None:  # senders each group waits for in an instant (asyncneurons.engine.instant)
            for grp in self.groups:
                grp.senders = 0
            for grp in [self.input_group, *self.groups]:
                for _, eager in grp.plan:
                    for b in eager:
                        b.target.senders += 1
            for grp in self.groups:
                grp.missing = grp.senders
        self.chain = make_chain(self) if self.instant is not None else None
        # on windows, Weight Max's cascade after the TD error lands, when it takes no time (asyncneurons.engine.chain)
        self.cascade = make_cascade(self) if use_windows and self.instant is None else None
        # with δ landing per unit, backprop's errors of an instant in one call (asyncneurons.engine.error_landing)
        self.error_landing = error_landing.plan(self)
        for grp in self.groups:
            grp.process = None if use_windows or self.instant is not None else self.env.process(self._unit_process(
                grp, getattr(grp, "restored_first", None), getattr(grp, "restored_phase", None)))
        self.env.process(self.environment.run(resumed=resume is not None))

    # ------------------------------------------------------------------ set-up helpers
    def _plan_transmission(self, transmission: str) -> None:
        """Choose eager or lazy transmission per receiving group; batch sends per delay."""
        incoming: dict = {}
        for grp in [self.input_group, *self.groups]:
            for b in grp.buckets:
                incoming[b.target.gid] = incoming.get(b.target.gid, 0) + 1
        # firing windows read every synapse from its sender's history, whatever the firing policy
        if not delays.is_zero(self.scenario.timing.synapse_jitter):
            transmission = "lazy"  # every synapse has its own arrival per send (asyncneurons.engine.jitter)
        can_wait = self.scenario.timing.firing in ("on_all", "clock", "poisson") or transmission == "lazy"
        for grp in self.groups:
            # lazy transmission pays off when many separate deliveries reach a group per wave
            grp.lazy = can_wait and (transmission == "lazy" or
                                     (transmission == "auto" and incoming.get(grp.gid, 0) > 2))
        self.input_group.lazy = False
        self.transmission = Transmission(self)
        for grp in [self.input_group, *self.groups]:
            grp.plan = send_plan(grp.buckets)

    def _plan_retro(self) -> None:
        """Retrograde sends batched per (delay, receiving rank): one event each."""
        for grp in self.groups:
            plan: dict = {}
            for b in grp.retro_buckets:
                key = (b.delay, events.retro_arrival(b.target.rank, self.max_rank))
                plan.setdefault(key, []).append(b)
            grp.retro_plan = [(d, prio, bs) for (d, prio), bs in plan.items()]

    def _plan_retro_jitter(self) -> None:
        """Every retrograde synapse of every group, one by one (jitter per retrograde send): its
        row and column in the signals ``C``, the receiving group and position, its delay and key,
        and its index among the receiver's retrograde synapses (``retro_held``: newest send landed)."""
        for grp in self.groups:
            grp.retro_held, grp.retro_stale = np.zeros(0, dtype=np.int64), 0
        for grp in self.groups:
            grp.retro_sent = np.zeros(grp.size, dtype=np.int64)
            rows, cols, targets, pos, delay, local, names = [], [], [], [], [], [], []
            for b in grp.retro_buckets:
                sg = b.target
                for r in (range(grp.size) if b.rows is None else b.rows.tolist()):
                    for c, p in zip(b.cols.tolist(), b.pos.tolist()):
                        u, v = sg.names[p], grp.names[r]
                        if not self.graph.has_edge(u, v):
                            continue
                        rows.append(r), cols.append(c), targets.append(sg), pos.append(p), delay.append(b.delay)
                        local.append(len(sg.retro_held))
                        sg.retro_held = np.append(sg.retro_held, -1)
                        names.append((delays.node_key(u), delays.node_key(v)))
            keys = jitter.edge_keys(self.seed, [n[0] for n in names], [n[1] for n in names], jitter.RETRO_JITTER)
            grp.retro_edges = (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), targets,
                               np.array(pos, dtype=np.int64), np.array(delay, dtype=float), keys,
                               np.array(local, dtype=np.int64))

    def _batch_by_reward_delay(self):
        batches: dict = {}
        for grp in self.groups:
            if self.landings is not None or (grp.role != "output" and not self.rule.broadcast_to_hidden):
                continue
            batches.setdefault(grp.reward_delay, []).append(grp)
        return [(d, sorted(gs, key=lambda g: -g.rank)) for d, gs in sorted(batches.items())]

    def lr(self, layer: int, step: int) -> float:
        """The learning rate of ``layer`` at agent step ``step`` (linear schedule)."""
        return linear_schedule(*self._lr[layer - 1], self.scenario.learning.lr_steps, step)

    # ------------------------------------------------------------------ running
    def run(self):
        """Simulate until the scenario's episodes (or ``max_ticks`` steps) are done.

        Floating-point overflow is not reported as it happens: a value that becomes infinite or
        NaN is caught at the next episode end (or at once in the TD error) and stops the run with
        a :class:`DivergenceError` naming the unit, the time and the key at fault.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), interrupts.between_events():
            events.run_until(self.env, self.done, interrupts.pending)
            if interrupts.pending():
                return self  # the interrupt is raised on leaving the block, between two events
            self.settle()
        return self

    def settle(self) -> None:
        """Apply (and record) every learning signal that has landed by now but is still kept per
        unit (:mod:`asyncneurons.engine.landings`), so that the weights are those of this instant."""
        if self.landings is not None:
            self.landings.settle()
            if self.on_event is not None:
                self.landings.emit()
        if self.retro is not None:
            self.retro.settle()

    # ------------------------------------------------------------------ unit processes
    def _unit_process(self, grp, first=None, phase=None):
        """A group's process. ``first`` and ``phase`` place a restored process where it was: waiting
        on a clock tick or the end of a refractory period (``first``; ``phase`` "woken" when an
        arrival during that period has already woken it), or on its wake-up."""
        policy = self.scenario.timing.firing
        refractory = grp.refractory
        prio = events.FIRE + grp.rank
        env = self.env
        if policy in ("clock", "poisson"):
            clock, here = grp.clock, np.zeros(1, dtype=np.int64)
            while True:
                if first is not None:
                    yield first
                    first = None
                else:  # the next tick, at the time the clock gives (asyncneurons.engine.clocks)
                    yield env.schedule_at(events.Signal.__new__(events.Signal), prio, float(clock.at[0]))
                clock.advance(here)
                if env.now - grp.last_fire >= refractory:
                    self.fire(grp)
        else:
            # (set before a restored refractory period ends: an arrival during it wakes the unit)
            grp.wake = events.done(env) if phase == "woken" else events.pending(env)
            if first is not None:
                yield first  # the end of a refractory period
            while True:
                yield grp.wake
                grp.wake = events.pending(env)
                self.fire(grp)
                if refractory > 0:
                    yield events.Signal(env, refractory, prio)

    def fire(self, grp, wave: int | None = None):
        """The group samples from what it holds, records its trace and sends its values on, tagged
        with the oldest wave it holds (``wave`` when the caller knows it)."""
        if wave is None and self.on_event is None:  # a MAP unit under delays: in one compiled call
            fast = grp.__dict__.get("map_fires")
            if fast is None:
                fast = fires_in_one_call(self, grp)
            if fast and fire_one(self, grp):
                return
        now = self.env.now
        if grp.lazy:
            self.transmission.flush(grp)
        drawn = self.relaxation.before_fire(grp) if self._map_hist else None
        kind = grp.kind
        plain = self.__dict__.get("_plain_trace_rule")
        if plain is None:
            plain = self._plain_trace()
        if plain and kind.name in FUSED_KINDS:  # one compiled pass (same bits)
            values, aux, g = sample_and_trace(kind, grp.P, grp.H, grp.E, grp.keys1, grp.counters, grp.lp,
                                              traces.record_decay(grp, now))
            grp.values, grp.aux, grp.last_fire = values, aux, now
        else:
            if drawn is not None:  # drawn with what it holds, in one compiled call
                values, aux, pot, held_wave = drawn
                wave = held_wave if wave is None else wave
            else:
                pot = potential(grp.P, grp.H)
                u1 = streams.uniforms(grp.keys1, grp.counters)
                u2 = streams.uniforms(grp.keys2, grp.counters) if kind.gaussian else None
                values, aux = kind.sample(pot, grp.lp, u1, u2)
            g = kind.score(values, pot, aux, grp.lp) if self.rule.scores_samples else None
            grp.values, grp.aux, grp.last_fire = values, aux, now
            self.rule.on_sample(self, grp, values, aux, g)
            grp.counters += 1
        if wave is None:
            wave = int(grp.T.min())
        grp.last_wave = wave
        if grp.lazy:
            self.transmission.after_fire(grp)
        if self.on_event is not None:
            for name, v in zip(grp.names, values):
                self.on_event(now, name, "sample", float(v), wave)
        self.send(grp, values, wave)
        if grp.role == "output":
            self.environment.receive_action(kind.action(values, aux), wave)

    @staticmethod
    def decayed_trace(E, stamps, now, tau):
        """The exponential trace ``E`` (rows stamped ``stamps``) decayed to a landing at ``now``, as
        :func:`asyncneurons.learning.traces.at_landing` computes it, in one compiled call
        (:func:`~asyncneurons.engine.history_kernels.trace_at_landing`): the same bits. None where
        it does not apply (:func:`~asyncneurons.learning.traces.decays_in_one_call`)."""
        if traces.decays_in_one_call(E, stamps, now):
            return trace_at_landing(E, stamps, float(now), float(tau), EXP)
        return None

    @property
    def now(self):
        """The time (ms) of what is being computed: the engine's clock, or inside a firing window
        each sampling unit's own time (an array, one per row; :mod:`asyncneurons.engine.windows`)."""
        w = self.windows
        if w is not None and w.row_times is not None:
            return w.row_times
        return self.env.now

    def _plain_trace(self) -> bool:
        """True when the rule's sampling records only the plain trace (``Rule.on_sample``)."""
        plain = self.__dict__.get("_plain_trace_rule")
        if plain is None:
            plain = self._plain_trace_rule = type(self.rule).on_sample is Rule.on_sample
        return plain

    def send(self, grp, values, wave: int) -> None:
        """Send values down every outgoing synapse: one event per delay for eager receivers, the
        sender's sample history for lazy ones (:mod:`asyncneurons.engine.transmission`)."""
        if self.windows is not None:  # only the input group sends from outside a window
            self.windows.post_input(values, wave)
            return
        instant = self.instant
        if instant is not None and self.chain is not None and grp is self.input_group:
            instant.at(events.DELIVER, self.chain.fire, (values, wave))  # the chain's firing (asyncneurons.engine.chain)
            return
        if instant is not None:  # zero delays, every receiver eager: deliveries of this instant
            for _, eager in grp.plan:
                instant.at(events.DELIVER, self._delivery, (eager, values, wave))
            return
        if self._map_hist and grp is self.input_group:
            self.relaxation.inputs_sent(values)
        env = self.env
        for delay, eager in grp.plan:
            events.Signal(env, delay, events.DELIVER, (eager, values, wave), self._deliver)
        if len(grp.out_edges) or grp.lazy:
            self.transmission.post(grp, values, wave)

    def _deliver(self, event):
        buckets, values, wave = event._value
        on_input = self.scenario.timing.firing == "on_input"
        for b in buckets:
            tg = b.target
            write(tg, b, values, wave)
            if self.relaxation is not None and not self._map_hist:
                self.relaxation.sample_landed(tg)
            if tg.wake is not None and (on_input or tg.T.min() > tg.last_wave):
                events.trigger(tg.wake, events.FIRE + tg.rank)

    def _delivery(self, payload) -> None:
        """:meth:`_deliver` in the synchronous limit. Every group fires once per instant there
        (:mod:`asyncneurons.engine.instant`), so a receiver holds a new value on every synapse
        (``T.min() > last_wave``, ``on_all``) exactly when the last of its senders has delivered:
        it is then queued to fire (its wake-up), with the wave it holds."""
        buckets, values, wave = payload
        for b in buckets:
            tg = b.target
            write(tg, b, values, wave)
            tg.missing -= 1
            if not tg.missing:
                tg.missing = tg.senders
                self.instant.at(events.FIRE + tg.rank, self._wakes, (tg, wave))

    def _wakes(self, payload) -> None:
        """A group queued in the instant fires (the body of :meth:`_unit_process`)."""
        self.fire(*payload)

    # ------------------------------------------------------------------ learning signals
    def broadcast(self, delta: float, step: int, reset: bool) -> None:
        """Send the TD error of agent step ``step`` to every group, after its reward delay."""
        env = self.env
        if self.reward_jitter is not None:  # each unit at its own (now + delay) + j(unit, step)
            receivers, late = self._reward_late
            now = env.now
            for grp, j in zip(receivers, late(step)):
                env.schedule_at(events.Signal.__new__(events.Signal), events.LEARN, (now + grp.reward_delay) + j,
                                (delta, step, reset, [grp]), self._reward_lands)
            return
        instant = self.instant
        if instant is not None and self.chain is not None and self.chain.learns:
            instant.at(events.LEARN, self.chain.learn, (delta, step, reset))  # its cascade (asyncneurons.engine.chain)
            return
        for d, groups in self._broadcast_batches:
            if instant is not None:  # every delay 0
                instant.at(events.LEARN, self._reward_landing, (delta, step, reset, groups))
            else:
                events.Signal(env, d, events.LEARN, (delta, step, reset, groups), self._reward_lands)
        if self.landings is not None:
            self.landings.broadcast(delta, step, reset)

    def _reward_lands(self, event):
        cascade = self.cascade
        if cascade is not None:
            queue = self.env._queue
            if not queue or queue[0][0] != self.env.now or queue[0][1] >= events.DELIVER:
                # no other learning signal in this instant: the cascade as one kernel (asyncneurons.engine.chain)
                delta, step, reset, _ = event._value
                out = self.output
                if step < out.reward_held:  # a newer TD error landed first: newest wins (asyncneurons.engine.jitter)
                    out.reward_stale += 1
                    return
                out.reward_held = step
                cascade.learn((delta, step, reset))
                return
        self._reward_landing(event._value)

    def _reward_landing(self, payload) -> None:
        delta, step, reset, groups = payload
        rule = self.rule
        together = getattr(rule, "on_reward_groups", None)
        if together is not None and self.on_event is None:  # the groups' learning in one call
            live = []
            for grp in groups:
                if step < grp.reward_held:  # a newer TD error landed first: newest wins (asyncneurons.engine.jitter)
                    grp.reward_stale += 1
                    continue
                grp.reward_held = step
                live.append(grp)
            together(self, live, delta, step, reset)
            return
        for grp in groups:
            if step < grp.reward_held:  # a newer TD error landed first: newest wins (asyncneurons.engine.jitter)
                grp.reward_stale += 1
                continue
            grp.reward_held = step
            rule.on_reward(self, grp, delta, step, reset)
            if reset:
                grp.E[...] = 0.0
            if self.on_event is not None:
                for name in grp.names:
                    self.on_event(self.env.now, name, "reward", delta, step)

    def send_retro(self, grp, C: np.ndarray, step: int, reset: bool, at: float | None = None) -> None:
        """Send per-synapse signals ``C`` (units × sources) back to the presynaptic units.

        One event per (retrograde delay, receiving rank) carries, for each presynaptic group, the
        block of ``C`` that concerns it, with the senders' unit ids so that the receiver sums in
        a fixed order. Inside a firing window the signals leave at the sampling unit's own time
        (``at``, by default the window's). The output's error under the backprop baselines, where
        it lands in one call, is kept until the window is done, without blocks (:meth:`ErrorLanding.send
        <asyncneurons.engine.error_landing.ErrorLanding.send>`).
        """
        env = self.env
        if at is None and self.windows is not None:
            at = self.windows.now
        if grp.errors_out is not None and at is not None and self.on_event is None and step == -1 and not reset:
            self.error_landing.send(grp, C, at)
            return
        if self.retro is not None:  # into the queue of retrograde signals (asyncneurons.engine.retrograde)
            self.retro.send(grp, C, step, reset, env.now if at is None else at)
            return
        if self.retro_jitter is not None:
            self._send_retro_jittered(grp, C, step, reset, env.now if at is None else at)
            return
        for delay, priority, buckets in grp.retro_plan:
            blocks = []
            for b in buckets:
                if b.rows is None:
                    blocks.append((b.target, grp.uids, b.pos, C[:, b.span if b.span is not None else b.cols]))
                else:
                    blocks.append((b.target, grp.uids[b.rows], b.pos, C[np.ix_(b.rows, b.cols)]))
            if self.instant is not None:  # every delay 0
                self.instant.at(priority, self._retro_landing, (blocks, step, reset))
            elif at is None and delay == 0.0 and self._landing_now is not None:  # sent while a group learns from
                self._landing_now.append((priority, (blocks, step, reset)))  # retrograde signals: see _retro_applying
            elif at is None:
                events.Signal(env, delay, priority, (blocks, step, reset), self._retro_lands)
            else:
                env.schedule_at(events.Signal.__new__(events.Signal), priority, at + delay, (blocks, step, reset),
                                self._retro_lands)

    def _send_retro_jittered(self, grp, C, step: int, reset: bool, t0: float) -> None:
        """Each retrograde synapse's signal lands on its own at (t0 + delay) + j(synapse, n), n the
        sending unit's count of retrograde sends (:mod:`asyncneurons.engine.jitter`)."""
        rows, cols, targets, pos, delay, keys, local = grp.retro_edges
        n = grp.retro_sent[rows]
        late = jitter.draw(self.retro_jitter, keys, n)
        at = (t0 + delay) + late
        env = self.env
        for i, sg in enumerate(targets):
            r, c = int(rows[i]), int(cols[i])
            block = ((sg, grp.uids[r:r + 1], pos[i:i + 1], np.array([[C[r, c]]]), int(local[i]), int(n[i])),)
            env.schedule_at(events.Signal.__new__(events.Signal), events.retro_arrival(sg.rank, self.max_rank),
                            float(at[i]), (list(block), step, reset), self._retro_lands)
        grp.retro_sent += 1

    def _retro_lands(self, event):
        self._retro_landing(event._value)

    def _retro_landing(self, payload) -> None:
        blocks, step, reset = payload
        applying = []  # groups whose learning from this instant's signals is due next, in order
        for item in blocks:
            sg, uids, pos, block = item[:4]
            if len(item) > 4:  # jitter per retrograde send: newest wins on each synapse
                e, n = item[4], item[5]
                if n < sg.retro_held[e]:
                    sg.retro_stale += 1
                    continue
                sg.retro_held[e] = n
            if not sg.retro_in:
                if self.instant is not None:
                    self.instant.at(events.retro_apply(sg.rank, self.max_rank), self._retro_applying, (sg, step))
                else:
                    applying.append(sg)
            sg.retro_in.append((uids, pos, block))
            sg.retro_reset = sg.retro_reset or reset
        for sg in applying:
            priority = events.retro_apply(sg.rank, self.max_rank)
            if len(applying) == 1 and self._comes_next(priority):  # the event would be the next one: no event
                self._retro_applying((sg, step))
            else:
                events.Signal(self.env, 0.0, priority, (sg, step), self._retro_apply)

    def _comes_next(self, priority: int, at: float | None = None) -> bool:
        """Whether an event scheduled now (or at ``at``, an instant not yet reached) with ``priority``
        would be the next one SimPy processes (everything in its queue comes later), so that calling
        its callback at once is the same run."""
        queue = self.env._queue
        if not queue:
            return True
        t, p = queue[0][0], queue[0][1]
        now = self.env.now if at is None else at
        return t > now or (t == now and p > priority)

    def _retro_apply(self, event):
        self._retro_applying(event._value)

    def _retro_applying(self, payload) -> None:
        sg, step = payload
        if sg.errors_at_once is not None and self.on_event is None and sg.errors_at_once.lands(sg):
            return  # δ settled and the errors applied, here and below, in one call (the same bits)
        blocks, sg.retro_in = sg.retro_in, []
        reset, sg.retro_reset = sg.retro_reset, False
        if self.landings is not None:  # δ that has landed on the units first (landings are LEARN's first class)
            self.landings.settle(sg)
        self._landing_now, landing = [], self._landing_now
        # the rule applies the blocks itself in one compiled call when it can (the same bits), else
        # they are summed by sender (the sum reads only the blocks: it may come after the landings)
        if self.on_event is not None or not self.rule.on_retro_blocks(self, sg, blocks, step, reset):
            R = sum_by_sender(blocks, sg.size)
            if self.on_event is not None:
                for name, r in zip(sg.names, R):
                    self.on_event(self.env.now, name, "retro", float(r), step)
            self.rule.on_retro(self, sg, R, step, reset)
        if reset:
            sg.E[...] = 0.0
        self._landing_now, now = landing, self._landing_now
        for priority, payload in now:  # the signals sent on with no delay: they land at once when theirs
            if len(now) == 1 and self._comes_next(priority):  # is the one event that would come next
                self._retro_landing(payload)
            else:
                events.Signal(self.env, 0.0, priority, payload, self._retro_lands)

    # ------------------------------------------------------------------ checks and state
    def check_finite(self, step: int) -> None:
        """Raise :class:`DivergenceError` naming the first unit whose weights are not finite."""
        self.settle()
        for grp in self.groups:
            if not np.isfinite(grp.P).all():
                row = int(np.argwhere(~np.isfinite(grp.P))[0][0])
                raise DivergenceError(
                    f"unit {grp.names[row]} (layer {grp.layer}) has a non-finite weight at "
                    f"t = {self.env.now:.3f} ms, agent step {step}; "
                    f"the learning rate learning.lr is the most likely cause")
        if self.critic is not None and not all(np.isfinite(p).all() for p in self.critic.P):
            raise DivergenceError(f"the critic has a non-finite weight at t = {self.env.now:.3f} ms, "
                                  f"agent step {step}; the learning rate learning.critic_lr is the most likely cause")

    def weights(self) -> dict:
        """Every unit's incoming weights and bias, by unit name: ``{name: {source: w, "bias": b}}``."""
        out = {}
        for grp in self.groups:
            for r, name in enumerate(grp.names):
                row = {s: float(grp.P[r, c]) for c, s in enumerate(grp.sources) if self.graph.has_edge(s, name)}
                row["bias"] = float(grp.P[r, -1])
                out[name] = row
        return out

    def layer_matrices(self) -> dict:
        """Parameters per layer as (units × (inputs + 1)) arrays in unit-index order (layered graphs)."""
        by_layer: dict = {}
        for grp in self.groups:
            for r, name in enumerate(grp.names):
                by_layer.setdefault(grp.layer, []).append((self.graph.nodes[name]["index"], grp.P[r]))
        return {l: np.stack([row for _, row in sorted(rows, key=lambda x: x[0])]) for l, rows in by_layer.items()}


__all__ = ["Simulation", "build_graph", "run_seed"]
