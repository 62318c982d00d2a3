"""Shared helpers: scenarios built from small dicts, runs collected in memory."""

from __future__ import annotations

import copy

import pytest

from asyncneurons.model.scenario import parse_scenario

SMALL_CARTPOLE = {
    "experiment": {"name": "test", "episodes": 5, "seed": 7},
    "env": {"id": "CartPole-v1", "gamma": 0.98},
    "network": {"hidden": [64, 32], "unit": "bernoulli"},
    "learning": {"rule": "global_reinforce", "lambda": 0.8, "lr": [0.02, 2e-4, 2e-5],
                 "lr_end": [2e-4, 2e-6, 2e-7], "lr_steps": 50000, "critic_lambda": 0.8,
                 "critic_lr": [0.04, 4e-5, 4e-6], "critic_lr_end": [0.004, 4e-5, 4e-6]},
}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for section, values in over.items():
        out.setdefault(section, {}).update(values)
    return out


@pytest.fixture
def scenario():
    """``scenario(section={...}, ...)`` → a validated Scenario derived from SMALL_CARTPOLE."""
    def make(base=SMALL_CARTPOLE, base_dir=None, **over):
        return parse_scenario(merge(base, over), base_dir=base_dir)
    return make


def stop_at_checkpoint(s, folder, episode: int, **simulation) -> list:
    """Run ``s`` saving a checkpoint into ``folder`` at every episode boundary, and stop it (as a
    kill would) once episode ``episode`` is due; return the episode rows finished before.
    ``simulation``: keyword arguments of the :class:`Simulation` (e.g. ``synchronous``)."""
    from asyncneurons.engine import checkpoint
    from asyncneurons.engine.simulation import Simulation

    class Stop(Exception):
        pass

    sim, rows = Simulation(s, **simulation), []
    sim.on_episode = rows.append

    def save(proc):
        checkpoint.save(sim, proc, folder, 0)
        if proc.episode == episode:
            raise Stop
    sim.checkpoint = save
    with pytest.raises(Stop):
        sim.run()
    return rows


def resumed_equals_whole(s, folder, episode: int):
    """Run ``s`` whole, and again stopped at ``episode`` and resumed from the checkpoint it left in
    ``folder``: the two give the same episodes and the same final weights. Return (whole, resumed)."""
    import numpy as np

    from asyncneurons.engine import checkpoint
    from asyncneurons.engine.simulation import Simulation

    whole_rows, rows_b = [], []
    whole = Simulation(s, on_episode=whole_rows.append).run()
    rows_a = stop_at_checkpoint(s, folder, episode)
    second = Simulation(s, on_episode=rows_b.append, resume=checkpoint.load(folder, 0, s)).run()
    key = lambda r: (r["episode"], r["return"], r["length"], r["sim_time_ms"])  # noqa: E731
    assert [key(r) for r in rows_a[:episode] + rows_b] == [key(r) for r in whole_rows]
    for layer, m in whole.layer_matrices().items():
        np.testing.assert_array_equal(second.layer_matrices()[layer], m)
    return whole, second
