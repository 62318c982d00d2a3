"""MAP Propagation under delays: the relaxation read from histories equals the message engine.

The engine relaxes each group with one event per step and reads what it holds, and each
downstream unit's error term, from histories (:class:`~asyncneurons.engine.relaxation.HistoryRelaxation`).
The message engine (:class:`~asyncneurons.engine.relaxation.EventRelaxation`, ``relaxation="events"``)
sends every relaxed value and every error term as events; a unit sends its error term whenever
its state changes. The two must give the same runs to the last bit.
"""


import networkx as nx
import numpy as np
import pytest

from asyncneurons.model.graphio import save_graph
from asyncneurons.learning.kernels import potential, sigmoid, softplus
from asyncneurons.engine.relaxation_kernels import row_potential
from asyncneurons.engine.simulation import Simulation

from conftest import SMALL_CARTPOLE

MAP = {"network": {"hidden": [8, 4], "unit": "gaussian", "output": "categorical", "temperature": [1.0, 1.0, 2.0],
                   "variance": [0.03, 0.1, 0.1], "bias_init": 0.0},
       "learning": {"rule": "map_prop", "lambda": 0.95, "lr": [0.05, 1e-3, 1e-4], "lr_end": None,
                    "critic": "map_prop", "critic_hidden": [8, 4], "critic_variance": [0.03, 0.1, 0.1],
                    "critic_lr": [0.02, 2e-4, 2e-5], "critic_lr_end": None, "map_steps": 6, "map_step_size": 0.5}}
CLOCK = {"pacing": "clock", "period": 20.0}
UNIFORM = {"dist": "uniform", "low": 0.0, "high": 5.0}


def _run(s, mode, ticks):
    rows = []
    sim = Simulation(s, relaxation=mode, on_episode=rows.append, max_ticks=ticks).run()
    return sim, [(r["episode"], r["return"], r["length"], r["sim_time_ms"]) for r in rows]


def _assert_same(s, ticks):
    a, rows_a = _run(s, "history", ticks)
    b, rows_b = _run(s, "events", ticks)
    assert rows_a == rows_b
    for ga, gb in zip(a.groups, b.groups):
        for name in ("P", "E", "M", "V", "values"):  # H: each engine refreshes it when it looks
            np.testing.assert_array_equal(getattr(ga, name), getattr(gb, name), err_msg=f"{ga.names[0]} {name}")
    return a


@pytest.mark.parametrize("timing", [
    pytest.param({"synapse_delay": UNIFORM, "retro_delay": UNIFORM, "relax_period": 0.25}, id="uniform"),
    pytest.param({"synapse_delay": {"dist": "lognormal", "mu": 0.0, "sigma": 1.0},
                  "retro_delay": {"dist": "exponential", "mean": 1.0}, "relax_period": 0.25}, id="heavy-tailed"),
    pytest.param({"synapse_delay": {"dist": "uniform", "low": 1.0, "high": 6.0},
                  "retro_delay": {"dist": "uniform", "low": 0.5, "high": 3.0}, "relax_period": 0.25},
                 id="longer-than-a-period"),
    pytest.param({"synapse_delay": UNIFORM, "retro_delay": UNIFORM, "relax_period": 0.0}, id="period-0"),
    pytest.param({"synapse_delay": UNIFORM, "retro_delay": 0.0, "relax_period": 1.0}, id="no-retro-delay"),
])
@pytest.mark.parametrize("critic", ["map_prop", "mlp"])
def test_histories_equal_messages_under_delays(scenario, timing, critic):
    s = scenario(**MAP, timing={"reward_delay": 10.0, **timing}, env=CLOCK)
    s = s.model_copy(update={"learning": s.learning.model_copy(update={"critic": critic})})
    sim = _assert_same(s, ticks=40)
    assert any(g.E.any() for g in sim.groups)  # traces were recorded at relaxed states


def test_histories_equal_messages_with_wait_pacing_and_constant_delays(scenario):
    """Constant delays put arrivals, relaxation steps and environment steps at the same instants:
    the order within an instant decides, and both engines follow it."""
    s = scenario(**MAP, timing={"synapse_delay": 0.5, "retro_delay": 0.25, "relax_period": 0.25,
                                "reward_delay": 0.5})
    _assert_same(s, ticks=40)


def test_zero_delay_relaxation_is_the_message_engines(scenario):
    """At zero delay every step happens within one instant, wave after wave (the published
    synchronous iterations, tests/test_oracle.py): the histories give the same bits."""
    _assert_same(scenario(**MAP), ticks=60)


def test_row_potential_adds_in_numpys_order():
    rng = np.random.default_rng(0)
    for n in (1, 5, 8, 33, 65, 129, 300, 1025):
        P, H = rng.normal(size=(20, n)), rng.normal(size=(20, n)) * 10 ** rng.uniform(-3, 3, size=(20, n))
        got = [row_potential(np.ascontiguousarray(P[i] * H[i])) for i in range(20)]
        np.testing.assert_array_equal(got, potential(P, H))


# ------------------------------------------------------------------------------------------------
# A timeline computed by hand (docs/model-of-time.md, "MAP Propagation: a timeline").

def _chain(path):
    """in0 → a, in0 → b; a → j, b → j; j → out (a categorical output of two units)."""
    g = nx.DiGraph()
    g.add_node("in0", role="input", kind="input", layer=0, index=0)
    for i in range(1, 4):
        g.add_node(f"in{i}", role="input", kind="input", layer=0, index=i)
    g.add_node("a", role="hidden", kind="gaussian", layer=1, index=0)
    g.add_node("b", role="hidden", kind="gaussian", layer=1, index=1)
    g.add_node("j", role="hidden", kind="gaussian", layer=2, index=0)
    g.add_node("o0", role="output", kind="categorical", layer=3, index=0)
    g.add_node("o1", role="output", kind="categorical", layer=3, index=1)
    for i in range(4):
        g.add_edge(f"in{i}", "a", delay=0.5, retro_delay=0.0)
        g.add_edge(f"in{i}", "b", delay=1.0, retro_delay=0.0)
    g.add_edge("a", "j", delay=0.5, retro_delay=1.0)
    g.add_edge("b", "j", delay=2.0, retro_delay=1.0)
    g.add_edge("j", "o0", delay=0.25, retro_delay=0.25)
    g.add_edge("j", "o1", delay=0.25, retro_delay=0.25)
    save_graph(g, path)


def test_a_sample_landing_changes_the_error_read_below_at_once(scenario, tmp_path):
    """The timeline of docs/model-of-time.md, computed by hand from the run's own values.

    Observations at 0 and 20 ms (clock pacing). a hears them after 0.5 ms, b after 1 ms; a → j takes
    0.5 ms, b → j 2 ms, j → outputs 0.25 ms; errors go back in 1 ms (j → a, b) and 0.25 ms. Every
    unit relaxes 8 steps, one every 0.5 ms. Wave 1: a samples at 20.5 ms; the sample reaches j at
    21 ms, while j still holds b's wave-0 value (b's wave-1 sample reaches j at 23 ms, when j
    samples). a's third step, at 22 ms, reads j's error term as of 22 − 1 = 21 ms: computed from a's
    new sample, b's last relaxed value of wave 0 and j's last relaxed value (7 ms).
    """
    _chain(tmp_path / "chain.json")
    base = {k: v for k, v in SMALL_CARTPOLE.items() if k != "network"}
    s = scenario(base=base, network={"graph": str(tmp_path / "chain.json"), "variance": [0.03, 0.1, 0.1],
                          "temperature": [1.0, 1.0, 2.0], "bias_init": 0.0},
                 learning={"rule": "map_prop", "lr": 0.01, "lr_end": None, "critic": "mlp", "map_steps": 8,
                           "map_step_size": 0.5},
                 timing={"relax_period": 0.5, "reward_delay": 50.0}, env=CLOCK, experiment={"episodes": 1000})
    log = []
    sim = Simulation(s, on_event=lambda t, u, k, v, w: log.append((t, u, k, v)))
    sim.env.run(until=22.0)  # everything strictly before 22 ms
    assert [(t, u) for t, u, k, _ in log if k == "sample"] == [
        (0.5, "a"), (1.0, "b"), (3.0, "j"), (3.25, "o0"), (3.25, "o1"), (20.5, "a"), (21.0, "b")]
    group = {g.names[0]: g for g in sim.groups}
    rel = sim.relaxation

    def sent(unit, t):
        """The value ``unit`` sent at ``t`` (its sample, or a relaxation step)."""
        u = int(group[unit].hist[0])
        return rel.V[u, [i for i in range(rel.T.shape[1]) if rel.T[u, i] == t][-1]]

    a_new, a_old = sent("a", 20.5), sent("a", 4.5)  # a's wave-1 sample; its last wave-0 value (arrived at 5)
    b_old, j_old = sent("b", 5.0), sent("j", 7.0)  # b's and j's last relaxed values of wave 0
    P = group["j"].P[0]
    col = group["j"].col

    def error_j(a_value):
        H = np.zeros(3)
        H[col["a"]], H[col["b"]], H[2] = a_value, b_old, 1.0
        pot = np.array([(P * H).sum()])
        return ((j_old - softplus(pot)) * sigmoid(pot) / 0.1)[0]

    before = sent("a", 21.5)  # a's value after its second step
    sim.env.run(until=22.0 + 1e-9)  # a's third step
    ga = group["a"]
    var = 0.03
    mu = softplus(potential(ga.P, ga.H))[0]
    expected = before + 0.5 * var * ((mu - before) / var + P[col["a"]] * error_j(a_new))
    assert ga.values[0] == expected
    # the error term j sent after a's old value landed (at 5 ms) would have moved a elsewhere
    stale = before + 0.5 * var * ((mu - before) / var + P[col["a"]] * error_j(a_old))
    assert stale != expected
