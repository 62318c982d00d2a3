"""The synchronous limit served without SimPy (asyncneurons.engine.instant, asyncneurons.engine.chain) gives the
event engine's numbers bit for bit: episodes, every group's weights, traces and moments, the
critic; checkpoints pass between the two."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import stop_at_checkpoint

from asyncneurons.engine import checkpoint
from asyncneurons.engine.environment import task_stepper
from asyncneurons.engine.simulation import Simulation
from asyncneurons.tasks import make_env

WEIGHT_MAX = {"learning": {"rule": "weight_max", "norm_power": 2.0}}


def _run(s, synchronous, **kw):
    rows = []
    sim = Simulation(s, synchronous=synchronous, on_episode=rows.append, **kw).run()
    return sim, [(r["episode"], r["return"], r["length"], r["abs_delta"], r["stale_actions"], r["sim_time_ms"])
                 for r in rows]


def _state(sim) -> list:
    arrays = [a for g in sim.groups for a in (g.P, g.E, g.M, g.V, g.H, g.T, g.counters)]
    if sim.critic is not None:
        arrays += [np.asarray(a) for a in (*sim.critic.P, *sim.critic.Z, *sim.critic.M, *sim.critic.V)]
    return [a.tobytes() for a in arrays]


def assert_same_as_events(s, *, chain=None, learns=None, **kw):
    fast, rows_fast = _run(s, True, **kw)
    oracle, rows_oracle = _run(s, False, **kw)
    assert fast.instant is not None and oracle.instant is None
    if chain is not None:
        assert (fast.chain is not None) == chain
    if learns is not None:
        assert fast.chain.learns == learns
    assert rows_fast == rows_oracle and len(rows_fast) > 0
    assert _state(fast) == _state(oracle)
    assert [g.t for g in fast.groups] == [g.t for g in oracle.groups]


def test_weight_max_chain_equals_the_event_engine(scenario):
    s = scenario(**WEIGHT_MAX, experiment={"episodes": 12})
    assert_same_as_events(s, chain=True, learns=True)


def test_weight_max_with_a_bernoulli_output_and_a_deeper_chain(scenario):
    s = scenario(learning={"rule": "weight_max", "norm_power": 2.0, "lr": [0.02, 2e-3, 2e-4, 2e-5],
                           "lr_end": [2e-4, 2e-5, 2e-6, 2e-7]},
                 network={"hidden": [16, 8, 8], "output": "bernoulli"}, experiment={"episodes": 8})
    assert_same_as_events(s, chain=True, learns=True)


def test_global_reinforce_fires_as_a_chain_and_learns_by_events(scenario):
    assert_same_as_events(scenario(experiment={"episodes": 8}), chain=True, learns=False)


def test_ste_backprop_keeps_its_events(scenario):
    s = scenario(learning={"rule": "ste_backprop"}, experiment={"episodes": 8})
    assert_same_as_events(s, chain=False)


def test_weight_max_exact_and_other_powers_keep_their_events(scenario):
    assert_same_as_events(scenario(learning={"rule": "weight_max_exact"}, experiment={"episodes": 6}), learns=False)
    assert_same_as_events(scenario(learning={"rule": "weight_max", "norm_power": 3.0}, experiment={"episodes": 6}),
                          learns=False)


def test_units_one_by_one_with_eager_deliveries(scenario):
    s = scenario(**WEIGHT_MAX, network={"hidden": [6, 5]}, engine={"fuse": False}, experiment={"episodes": 6})
    assert_same_as_events(s, chain=False, transmission="eager")


def test_without_dummy_step_and_with_a_short_time_limit(scenario):
    s = scenario(**WEIGHT_MAX, env={"dummy_step": False, "max_episode_steps": 30}, experiment={"episodes": 12})
    assert_same_as_events(s, chain=True)


def test_clock_pacing_and_exponential_traces(scenario):
    s = scenario(env={"pacing": "clock", "period": 20.0}, experiment={"episodes": 6},
                 learning={"rule": "weight_max", "trace": "exponential", "trace_tau": 30.0})
    assert_same_as_events(s, chain=True, learns=False)  # traces decay with time: the cascade stays events


def test_acrobot_softmax_output(scenario):
    s = scenario(**WEIGHT_MAX, env={"id": "Acrobot-v1", "max_episode_steps": 60}, experiment={"episodes": 4})
    assert_same_as_events(s, chain=True, learns=True)


def test_where_the_instant_does_not_apply(scenario):
    s = scenario(**WEIGHT_MAX)
    assert Simulation(s, max_ticks=2, on_event=lambda *a: None).instant is None  # records keep the engine's order
    assert Simulation(scenario(**WEIGHT_MAX, timing={"synapse_delay": 1.0}), max_ticks=2).instant is None
    assert Simulation(scenario(**WEIGHT_MAX, timing={"retro_delay": 0.5}), max_ticks=2).instant is None
    assert Simulation(scenario(**WEIGHT_MAX, timing={"firing": "on_input"}), max_ticks=2).instant is None
    assert Simulation(scenario(**WEIGHT_MAX, timing={"refractory": 1.0}), max_ticks=2).instant is None
    assert Simulation(scenario(**WEIGHT_MAX, engine={"fuse": False}), max_ticks=2).instant is None  # lazy receivers
    assert Simulation(s, max_ticks=2).instant is not None


@pytest.mark.parametrize("saved_by, resumed_by", [(True, False), (False, True)])
def test_checkpoints_pass_between_the_instant_and_the_event_engine(scenario, tmp_path, saved_by, resumed_by):
    s = scenario(**WEIGHT_MAX, experiment={"episodes": 7})
    whole, whole_rows = _run(s, False)
    rows_a = stop_at_checkpoint(s, tmp_path, 4, synchronous=saved_by)
    rows_b = []
    second = Simulation(s, synchronous=resumed_by, on_episode=rows_b.append, resume=checkpoint.load(tmp_path, 0, s))
    assert (second.instant is not None) == resumed_by
    second.run()
    key = lambda r: (r["episode"], r["return"], r["length"], r["abs_delta"])  # noqa: E731
    assert [key(r) for r in rows_a[:4] + rows_b] == [(r[0], r[1], r[2], r[3]) for r in whole_rows]
    assert _state(second) == _state(whole)


def test_the_task_stepper_steps_as_the_wrapped_task():
    """Stepping past the wrappers gives the wrapped task's results, the time limit's truncation
    included, and leaves the wrappers as they would be (reset, then steps again)."""
    a, b = make_env("CartPole-v1", 25), make_env("CartPole-v1", 25)
    step = task_stepper(b)
    rng = np.random.default_rng(3)
    for episode in range(6):
        oa, _ = a.reset(seed=episode)
        ob, _ = b.reset(seed=episode)
        np.testing.assert_array_equal(oa, ob)
        for _ in range(40):
            action = int(rng.integers(2))
            ra, rb = a.step(action), step(action)
            np.testing.assert_array_equal(ra[0], rb[0])
            assert ra[1:4] == rb[1:4]
            if ra[2] or ra[3]:
                break
        assert a._elapsed_steps == b._elapsed_steps


def test_the_task_stepper_leaves_other_wrappers_to_the_task():
    env = gym.wrappers.RecordEpisodeStatistics(make_env("CartPole-v1"))
    assert task_stepper(env) == env.step


def test_a_step_given_to_the_task_is_the_one_that_runs():
    task = make_env("CartPole-v1")
    step = task_stepper(task)
    task.reset(seed=0)
    task.step(0)
    task.step(1)  # the checker has checked everything
    task.step = lambda action: ("patched", 0.0, False, False, {})
    assert step(0)[0] == "patched"


def test_an_interrupt_stops_a_synchronous_run_between_two_steps(scenario, monkeypatch):
    """Under wait pacing the instant never waits on an event; an interrupt that is waiting makes
    the environment process wait on one, and the run stops there with every step whole."""
    import signal
    import os

    from asyncneurons.engine import interrupts

    sim = Simulation(scenario(**WEIGHT_MAX, experiment={"episodes": 1000}))
    assert sim.instant is not None
    step = sim.environment.step_task
    count = []

    def stepping(action):
        count.append(sim.environment.k)
        if len(count) == 40:
            os.kill(os.getpid(), signal.SIGINT)
        return step(action)
    sim.environment.step_task = stepping
    with interrupts.interruptible(), pytest.raises(KeyboardInterrupt):
        sim.run()
    at = count[-1]  # the agent step during which the interrupt came
    assert len(count) == 40 and sim.environment.k == at
    assert sim.environment.action_wave == sim.environment.wave == at  # the network answered that step


def test_a_graph_with_skip_connections(scenario, tmp_path):
    """Groups fed by several senders (inputs to the second layer, first layer to the output) fire
    when the last of them has delivered, in the event engine's order of learning."""
    import networkx as nx

    g = nx.DiGraph()
    for i in range(4):
        g.add_node(f"in{i}", role="input", kind="input", layer=0, index=i)
    for j in range(5):
        g.add_node(f"a{j}", role="hidden", kind="bernoulli", layer=1, index=j)
    for j in range(3):
        g.add_node(f"b{j}", role="hidden", kind="bernoulli", layer=2, index=j)
    g.add_node("out0", role="output", kind="softmax", layer=3, index=0)
    edges = [(f"in{i}", f"a{j}") for i in range(4) for j in range(5)] + \
            [(f"a{j}", f"b{k}") for j in range(5) for k in range(3)] + [(f"b{k}", "out0") for k in range(3)] + \
            [(f"in{i}", f"b{k}") for i in (0, 2) for k in range(3)] + [(f"a{j}", "out0") for j in (1, 4)]
    for u, v in edges:
        g.add_edge(u, v, delay=0.0, retro_delay=0.0)
    path = tmp_path / "skip.graphml"
    nx.write_graphml(g, path)
    from conftest import SMALL_CARTPOLE
    base = {k: v for k, v in SMALL_CARTPOLE.items() if k != "network"}
    for rule in ("weight_max", "global_reinforce"):
        s = scenario(base=base, network={"graph": str(path)}, experiment={"episodes": 8},
                     learning={"rule": rule, "lr": [0.02, 2e-3, 2e-4], "lr_end": None})
        assert_same_as_events(s, chain=False, transmission="eager")
