"""Replicas on the chain path (every layer fired in compiled kernels over all replicas' rows,
Weight Maximization's cascade in one kernel) give the per-layer path's numbers and each run's
alone, on the instant and on the event engine, bit for bit: episodes, weights, traces, moments,
sample counters and the critic, with episodes ending at different steps in different replicas;
a checkpoint taken mid-run on either path resumes on the other to the uninterrupted numbers."""

from __future__ import annotations

import numpy as np
import pytest

from asyncneurons.engine import checkpoint
from asyncneurons.engine.replicas import Replicas
from asyncneurons.engine.simulation import Simulation

RUNS = [0, 1, 2]
TICKS = 240


def _key(rows):
    return sorted((r["run"], r["episode"], r["return"], r["length"]) for r in rows)


def _replicas(s, chain: bool, ticks: int = TICKS):
    rows = []
    rep = Replicas(s, RUNS, chain=chain, on_episode=rows.append, max_ticks=ticks).run()
    return rep, _key(rows)


def _replica_state(rep, r: int) -> dict:
    """Replica r's arrays by layer: weights, traces, moments, sample counters; the critic's."""
    out = {(lay.layer, name): getattr(lay, name)[r] for lay in rep.layers for name in ("P", "E", "M", "V", "count")}
    if rep.critic is not None:
        for name in ("P", "Z", "M", "V"):
            for l, a in enumerate(getattr(rep.critic, name)):
                out[("critic", l, name)] = a[r]
    return out


def _alone_state(sim) -> dict:
    """The same arrays of a run alone, its groups' rows put back in each layer's unit order."""
    by_layer: dict = {}
    for g in sim.groups:
        for row, unit in enumerate(g.names):
            by_layer.setdefault(g.layer, []).append((sim.graph.nodes[unit]["index"], g, row))
    out = {}
    for layer, rows in by_layer.items():
        rows.sort(key=lambda x: x[0])
        for name in ("P", "E", "M", "V"):
            out[(layer, name)] = np.stack([getattr(g, name)[row] for _, g, row in rows])
        out[(layer, "count")] = np.array([g.counters[row] for _, g, row in rows])
    if sim.critic is not None:
        for name in ("P", "Z", "M", "V"):
            for l, a in enumerate(getattr(sim.critic, name)):
                out[("critic", l, name)] = np.asarray(a)
    return out


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes(), k


def assert_chain_equals_per_layer_and_alone(s, *, learns: bool):
    chain, rows_chain = _replicas(s, True)
    per_layer, rows_per_layer = _replicas(s, False)
    assert chain._chain is not None and chain._chain.learns == learns and per_layer._chain is None
    assert rows_chain == rows_per_layer and len(rows_chain) > 0
    for synchronous in (True, False):  # each run alone on the instant and on the event engine
        alone_rows = []
        for i, r in enumerate(RUNS):
            _same(_replica_state(chain, i), _replica_state(per_layer, i))
            sim = Simulation(s, r, synchronous=synchronous, on_episode=alone_rows.append, max_ticks=TICKS).run()
            assert (sim.instant is not None) == synchronous
            _same(_replica_state(chain, i), _alone_state(sim))
        assert _key(alone_rows) == rows_chain
    lengths = {row[3] for row in rows_chain}
    assert len(lengths) > 1  # episodes end at different steps in different replicas


SHORT = {"experiment": {"episodes": 1000}, "env": {"max_episode_steps": 25}, "network": {"hidden": [12, 6]}}
CRITICS = {
    "none": {"critic": "none"},
    "mlp": {"critic": "mlp", "critic_hidden": [12, 6]},
    "map_prop": {"critic": "map_prop", "critic_hidden": [12, 6], "critic_variance": [0.03, 0.1, 0.1], "map_steps": 4},
}


@pytest.mark.parametrize("dummy_step", [True, False])
@pytest.mark.parametrize("critic", sorted(CRITICS))
def test_weight_max_replicas_on_the_chain_equal_the_per_layer_path_and_each_run_alone(scenario, critic, dummy_step):
    s = scenario(experiment=SHORT["experiment"], network=SHORT["network"],
                 env={**SHORT["env"], "dummy_step": dummy_step},
                 learning={"rule": "weight_max", "lambda": 0.8, **CRITICS[critic]})
    assert_chain_equals_per_layer_and_alone(s, learns=True)


@pytest.mark.parametrize("over, learns", [
    ({"network": {"hidden": [12, 6, 6], "output": "bernoulli"},
      "learning": {"rule": "weight_max", "lambda": 0.8, "lr": [0.02, 2e-3, 2e-4, 2e-5],
                   "lr_end": [2e-4, 2e-5, 2e-6, 2e-7]}}, True),
    ({"network": {"hidden": [12, 6], "output": "categorical", "temperature": [1.0, 1.0, 2.0]},
      "learning": {"rule": "weight_max", "lambda": 0.8}}, True),
    ({"learning": {"rule": "global_reinforce", "lambda": 0.8}}, False),
    ({"learning": {"rule": "weight_max_exact", "lambda": 0.8}}, False),
    ({"learning": {"rule": "weight_max", "trace": "exponential", "trace_tau": 20.0}}, False),
])
def test_every_rule_the_chain_fires_for_equals_the_per_layer_path_and_each_run_alone(scenario, over, learns):
    base = {"experiment": dict(SHORT["experiment"]), "env": dict(SHORT["env"]), "network": dict(SHORT["network"])}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    assert_chain_equals_per_layer_and_alone(scenario(**base), learns=learns)


def test_replicas_of_a_network_the_kernels_do_not_fire_keep_the_per_layer_path(scenario):
    s = scenario(**{**SHORT, "network": {"hidden": [12, 6], "unit": "softplus", "output": "categorical"},
                    "learning": {"rule": "backprop", "lambda": 0.9}})
    assert Replicas(s, RUNS, max_ticks=5).run()._chain is None


class _Stop(Exception):
    pass


@pytest.mark.parametrize("critic", ["mlp", "none"])
@pytest.mark.parametrize("first, then", [(True, False), (False, True)])
def test_a_checkpoint_mid_run_resumes_on_the_other_path_to_the_uninterrupted_numbers(scenario, tmp_path, first,
                                                                                      then, critic):
    s = scenario(experiment=SHORT["experiment"], env=SHORT["env"], network=SHORT["network"],
                 learning={"rule": "weight_max", "lambda": 0.8, **CRITICS[critic]})
    whole, whole_rows = _replicas(s, True)

    rows = []
    rep = Replicas(s, RUNS, chain=first, on_episode=rows.append, max_ticks=TICKS)

    def save_then_stop(loop):
        if loop["k"] == 101:
            checkpoint.save_replicas(rep, loop, tmp_path)
            raise _Stop
    rep.checkpoint = save_then_stop
    with pytest.raises(_Stop):
        rep.run()
    assert (rep._chain is not None) == first
    state, arrays = checkpoint.load_replicas(tmp_path, RUNS, s)
    assert any(len(arrays[a["array"]]) for a in state["replay"])  # a replica was inside an episode

    resumed = Replicas(s, RUNS, chain=then, on_episode=rows.append, max_ticks=TICKS)
    resumed.run(resume=checkpoint.restore_replicas(resumed, state, arrays))
    assert (resumed._chain is not None) == then
    assert _key(rows) == whole_rows
    for i in range(len(RUNS)):
        _same(_replica_state(resumed, i), _replica_state(whole, i))


def test_a_diverging_replica_stops_the_chunk_at_its_episode_end_naming_its_run_as_alone(scenario):
    """Each replica's weights are checked when its own episode ends, as its run alone checks
    them: the chunk stops at the agent step at which that run alone stops."""
    import re

    from asyncneurons.errors import DivergenceError

    s = scenario(experiment={"episodes": 50}, network={"hidden": [8]},
                 learning={"rule": "weight_max", "lr": [1e308, 1e308], "lr_end": None, "critic_hidden": [8],
                           "critic_lr": [1e-3, 1e-3], "critic_lr_end": None})
    with pytest.raises(DivergenceError) as err:
        Replicas(s, [4, 5]).run()
    run, step = (int(x) for x in re.match(r"run (\d+): a unit of layer \d+ \(index \d+\) has a non-finite weight "
                                          r"at agent step (\d+); the learning rate learning.lr", str(err.value)).groups())
    Replicas(s, [4, 5], max_ticks=step - 1).run()  # no replica's episode ended on non-finite weights before
    Simulation(s, run, max_ticks=step - 1).run()
    with pytest.raises(DivergenceError, match="learning.lr"):
        Simulation(s, run, max_ticks=step).run()
