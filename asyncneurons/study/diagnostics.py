"""Diagnostics: what happens inside a run, one row per episode (``[record] diagnostics = true``).

Each run writes ``diagnostics/run-R.csv`` beside its episodes, one row per finished episode:

``run``, ``episode``
    as in ``metrics.csv``;
``mean_abs_delta``
    mean |δ| over the TD errors broadcast during the episode: δ_k of every step k of the episode
    before the one that ends it (that step's δ is computed after the episode's row is written,
    and never for the last episode: the run stops there), less the masked ones (after a dummy
    step, at a time-limit end without bootstrapping); empty when there is none;
``stale_actions``
    steps at which the task received an action computed from an older observation (clock
    pacing), as in ``metrics.csv``;
``stale_synaptic``
    synaptic arrivals dropped during the episode because a later send on the same synapse had
    arrived first (``[timing] synapse_jitter``, :mod:`asyncneurons.engine.jitter`; 0 without jitter).
    An arrival is counted when the send that overtakes it leaves;
``stale_reward``
    TD errors dropped during the episode because a unit had already learned from a newer one
    (``[timing] reward_jitter``; 0 without jitter), counted when the older one lands;
``stale_retrograde``
    retrograde signals dropped during the episode because a newer one had landed on the same
    synapse (``[timing] retro_jitter``; 0 without jitter), counted when the older one lands;
``weight_norm_l{l}``
    ‖W^l‖, the Frobenius norm of layer l's weights and biases when the episode ends;
``samples_l{l}``, ``learning_events_l{l}``
    during the episode, per unit of layer l: samples drawn, and optimizer steps taken (a learning
    signal landing and changing the weights). Means over the layer's units, so fusing units into
    groups does not change them.

Everything is read from the simulation's state when an episode ends (weights, per-unit sample
counters, per-group optimizer step counts), so recording changes no result. Runs simulated
together as replicas and batched single-step tasks do not record diagnostics; a run that
records them is simulated alone.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

FOLDER = "diagnostics"


def columns(n_layers: int) -> list[str]:
    """The columns of a diagnostics file for a network of ``n_layers`` layers with weights."""
    per_layer = [f"{what}_l{l}" for what in ("weight_norm", "samples", "learning_events")
                 for l in range(1, n_layers + 1)]
    return ["run", "episode", "mean_abs_delta", "stale_actions", "stale_synaptic", "stale_reward",
            "stale_retrograde", *per_layer]


def layer_totals(groups, n_layers: int) -> dict:
    """Per layer l: ‖W^l‖ (Frobenius, biases included; an exactly rounded sum), and the running totals of samples and of
    optimizer steps per unit, Σ_g counters_g / n_l and Σ_g t_g · m_g / n_l over the layer's
    groups g (m_g units each, n_l units in the layer)."""
    squares: list = [[] for _ in range(n_layers + 1)]
    units = np.zeros(n_layers + 1)
    samples = np.zeros(n_layers + 1)
    steps = np.zeros(n_layers + 1)
    for g in groups:
        m = g.P.shape[-2]
        squares[g.layer].append(np.square(g.P).ravel())
        units[g.layer] += m
        samples[g.layer] += float(np.sum(g.counters))
        steps[g.layer] += float(np.sum(g.t)) if np.ndim(g.t) else float(g.t) * m  # t per unit or per group
    n = np.maximum(units, 1)
    # math.fsum is exactly rounded, so the norm does not depend on how units are grouped
    norm = np.array([math.sqrt(math.fsum(np.concatenate(sq))) if sq else 0.0 for sq in squares])
    return {"norm": norm, "samples": samples / n, "steps": steps / n}


class Writer:
    """Appends a run's diagnostics rows to ``folder/diagnostics/run-R.csv`` as episodes end.

    ``kept`` rows (a resumed run's, up to its checkpoint) are written first and their per-episode
    counts summed, so that the next row's counts are differences from where they left off.
    """

    def __init__(self, folder, run: int, n_layers: int, kept: int = 0):
        path = Path(folder) / FOLDER / f"run-{run}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        old = _read(path)[:kept]
        self.n_layers, self.run = n_layers, run
        self.cols = columns(n_layers)
        self.prev_samples = np.zeros(n_layers + 1)
        self.prev_steps = np.zeros(n_layers + 1)
        self.prev_stale = sum(int(row.get("stale_synaptic") or 0) for row in old)
        self.prev_reward = sum(int(row.get("stale_reward") or 0) for row in old)
        self.prev_retro = sum(int(row.get("stale_retrograde") or 0) for row in old)
        for row in old:
            for l in range(1, n_layers + 1):
                self.prev_samples[l] += float(row[f"samples_l{l}"])
                self.prev_steps[l] += float(row[f"learning_events_l{l}"])
        self.file = open(path, "w", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=self.cols)
        self.writer.writeheader()
        for row in old:
            self.writer.writerow(row)
        self.file.flush()

    def episode(self, sim, row: dict) -> None:
        """Write the diagnostics of the episode whose metrics row is ``row``."""
        totals = layer_totals(sim.groups, self.n_layers)
        n = row.get("n_delta", 0)
        out = {"run": row["run"], "episode": row["episode"], "stale_actions": row["stale_actions"],
               "mean_abs_delta": repr(row["abs_delta"] / n) if n else ""}
        stale = sim.transmission.stale_count
        out["stale_synaptic"], self.prev_stale = stale - self.prev_stale, stale
        reward = sum(g.reward_stale for g in sim.groups)
        out["stale_reward"], self.prev_reward = reward - self.prev_reward, reward
        retro = sum(getattr(g, "retro_stale", 0) for g in sim.groups)
        out["stale_retrograde"], self.prev_retro = retro - self.prev_retro, retro
        for l in range(1, self.n_layers + 1):
            out[f"weight_norm_l{l}"] = repr(float(totals["norm"][l]))
            out[f"samples_l{l}"] = _num(totals["samples"][l] - self.prev_samples[l])
            out[f"learning_events_l{l}"] = _num(totals["steps"][l] - self.prev_steps[l])
        self.prev_samples, self.prev_steps = totals["samples"], totals["steps"]
        self.writer.writerow(out)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _num(x: float) -> str:
    return str(int(round(x))) if abs(x - round(x)) < 1e-9 else repr(float(x))


def _read(path: Path) -> list:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read(folder) -> "object":
    """Every run's diagnostics of a run folder as one table (pandas), or None when there are none."""
    import pandas as pd

    files = sorted((Path(folder) / FOLDER).glob("run-*.csv"))
    frames = [pd.read_csv(f) for f in files]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None
