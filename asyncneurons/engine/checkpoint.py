"""Checkpoints: the whole state of a run at an episode boundary, written atomically, restored
exactly.

A checkpoint is taken when the first step of a new episode is due (the environment process
calls :meth:`Simulation.checkpoint`). It holds every group's parameters, held inputs, traces,
optimizer moments and counters (the positions of the keyed random streams), the critic, the
transmission histories, the environment process's counters, and every event still in SimPy's
queue, with the unit processes' places in their loops. The task itself needs no saving: a new
episode starts from ``reset(seed)`` with a seed derived from the run and episode.

Two files per run: ``run-R.npz`` (arrays; loaded with pickles refused) and ``run-R.json``
(everything else; written last, it commits the checkpoint). Restoring rebuilds the simulation
from the scenario, then puts the state back: the run continues exactly as if never stopped.

The JSON carries a hash of the resolved scenario, of the graph file's content, and digests of
itself and of the arrays: a checkpoint that is truncated, edited, or belongs to another scenario
or another graph is refused in one line, never half-restored.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time as time_module
import zipfile
from pathlib import Path

import numpy as np

from asyncneurons.engine import events
from asyncneurons.errors import UserInputError

FORMAT = 1

_CALLBACKS = {
    "deliver": ("sim", "_deliver"), "reward": ("sim", "_reward_lands"), "retro": ("sim", "_retro_lands"),
    "retro_apply": ("sim", "_retro_apply"), "timer": ("transmission", "_timer"),
    "arrival": ("transmission", "_arrival"),
    "relax": ("relaxation", "_relax"), "relaxed_value": ("relaxation", "_value_lands"),
    "error": ("relaxation", "_error"), "error_lands": ("relaxation", "_error_lands"),
    "record": ("relaxation", "_record"), "window": ("windows", "_wake"),
    "retro_wake": ("retro", "_wake"), "relax_wake": ("relaxation", "_wake"),
}
_GROUP_ARRAYS = ("P", "H", "E", "M", "V", "T", "counters", "values")
_GROUP_VALUES = ("t", "last_wave", "last_fire", "relax_gen", "frozen_action", "retro_reset",
                 "error_pending", "wake_token")
_TRANSMISSION = ("HT", "HV", "HW", "HN", "head", "e_sat", "e_done", "missing", "latest", "last_wave")
_ENV_VALUES = ("k", "episode", "prev_end", "boundary", "action", "action_wave", "wave", "ep", "v_prev", "grads")


def _function(callback):
    return getattr(callback, "__func__", callback)


class CheckpointError(UserInputError):
    """A checkpoint cannot be read or does not belong to this run."""


class _Values:
    """Plain values to JSON: numbers, strings, None, tuples, lists and dicts as themselves (non-finite
    floats spelled out), arrays by reference into ``self.arrays`` (saved as one .npz)."""

    def __init__(self):
        self.arrays: dict = {}

    def encode(self, x):
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, (int, np.integer)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            x = float(x)
            return x if math.isfinite(x) else {"float": repr(x)}
        if isinstance(x, np.ndarray):
            key = f"a{len(self.arrays)}"
            self.arrays[key] = x
            return {"array": key}
        if isinstance(x, tuple):
            return {"tuple": [self.encode(v) for v in x]}
        if isinstance(x, list):
            return [self.encode(v) for v in x]
        if isinstance(x, dict):
            return {"dict": [[self.encode(k), self.encode(v)] for k, v in x.items()]}
        return self.encode_other(x)

    def encode_other(self, x):
        raise TypeError(f"cannot checkpoint a {type(x).__name__}")

    def decode(self, x, arrays):
        if isinstance(x, list):
            return [self.decode(v, arrays) for v in x]
        if not isinstance(x, dict):
            return x
        if "float" in x:
            return float(x["float"])
        if "array" in x:
            return arrays[x["array"]]
        if "tuple" in x:
            return tuple(self.decode(v, arrays) for v in x["tuple"])
        if "dict" in x:
            return {self.decode(k, arrays): self.decode(v, arrays) for k, v in x["dict"]}
        return self.decode_other(x)

    def decode_other(self, x):
        raise CheckpointError(f"unknown entry {sorted(x)}")


class _Codec(_Values):
    """Turns the state into JSON plus named arrays, and back, with references to the run's
    groups and buckets instead of copies."""

    def __init__(self, sim):
        super().__init__()
        self.sim = sim
        self.groups = {g.gid: g for g in [sim.input_group, *sim.groups]}
        self.bucket_ref, self.buckets = {}, {}
        for g in self.groups.values():
            for kind, lst in (("b", g.buckets), ("r", getattr(g, "retro_buckets", []))):
                for i, b in enumerate(lst):
                    self.bucket_ref[id(b)] = [kind, g.gid, i]
                    self.buckets[(kind, g.gid, i)] = b
        self.callback_name = {}
        for name, (owner, attr) in _CALLBACKS.items():
            obj = sim if owner == "sim" else getattr(sim, owner)
            if obj is not None and hasattr(obj, attr):  # the MAP relaxation from histories has no messages
                self.callback_name[_function(getattr(obj, attr))] = name

    def encode_other(self, x):
        if hasattr(x, "gid") and x.gid in self.groups and self.groups[x.gid] is x:
            return {"group": x.gid}
        if id(x) in self.bucket_ref:
            return {"bucket": self.bucket_ref[id(x)]}
        return super().encode_other(x)

    def decode_other(self, x):
        if "group" in x:
            return self.groups[x["group"]]
        if "bucket" in x:
            return self.buckets[tuple(x["bucket"])]
        return super().decode_other(x)


def _critic_state(c, enc):
    """The critic's parameters, traces, moments and counters (None without a critic)."""
    if c is None:
        return None
    return {"P": enc(c.P), "Z": enc(c.Z), "M": enc(c.M), "V": enc(c.V), "t": c.t,
            "count": enc(getattr(c, "count", 0))}


def _restore_critic(c, cs, dec) -> None:
    if cs is None:
        return
    c.P, c.Z, c.M, c.V = ([np.array(a) for a in dec(cs[k])] for k in ("P", "Z", "M", "V"))
    c.t = cs["t"]
    if hasattr(c, "count"):
        c.count = dec(cs["count"])


def save(sim, env_proc, folder: Path, run: int) -> None:
    """Write the checkpoint of ``sim`` (the environment process ``env_proc`` about to step)."""
    sim.settle()  # δ that has landed on units that keep it per unit (asyncneurons.engine.landings)
    codec = _Codec(sim)
    enc = codec.encode
    groups = {}
    for g in sim.groups:
        state = {a: enc(getattr(g, a)) for a in _GROUP_ARRAYS}
        state.update({a: enc(getattr(g, a, None)) for a in _GROUP_VALUES})
        state["aux"] = enc(g.aux)
        state["td_store"] = [codec.bucket_ref[key] + [enc(v)] for key, v in g.td_store.items()]
        state["retro_in"] = enc(g.retro_in)
        state["clock"] = enc(g.clock.state()) if getattr(g, "clock", None) is not None else None
        for extra in ("sample_H", "sample_slope", "trace_time", "reward_held", "reward_stale", "retro_held",
                      "retro_stale", "retro_sent"):
            if hasattr(g, extra):
                state[extra] = enc(getattr(g, extra))
        proc = g.process
        state["phase"] = "none" if proc is None else ("wake" if proc._target is g.wake else "event")
        if state["phase"] == "event" and g.wake is not None and g.wake.triggered:
            state["phase"] = "woken"  # inside a refractory period, woken by an arrival: samples at its end
        groups[str(g.gid)] = state
    tr = sim.transmission
    transmission = {a: enc(getattr(tr, a)) for a in (*_TRANSMISSION, *tr.jitter_arrays)}
    transmission.update({"depth": tr.depth, "serial": tr.serial})
    critic = _critic_state(sim.critic, enc)
    env_state = {a: enc(getattr(env_proc, a)) for a in _ENV_VALUES if hasattr(env_proc, a)}
    env_state["ep"] = enc({k: v for k, v in env_proc.ep.items() if k != "wall"})
    queue = []
    owner = {id(g.process._target): g.gid for g in sim.groups
             if g.process is not None and g.process._target is not g.wake}
    for time, priority, eid, event in sorted(sim.env._queue, key=lambda q: q[2]):
        if id(event) in owner:
            queue.append({"time": enc(time), "priority": priority, "process": owner[id(event)]})
            continue
        callbacks = event.callbacks or []
        if len(callbacks) != 1 or _function(callbacks[0]) not in codec.callback_name:
            raise CheckpointError(f"an event in the queue cannot be checkpointed: {event!r}")
        queue.append({"time": enc(time), "priority": priority,
                      "callback": codec.callback_name[_function(callbacks[0])], "value": enc(event._value)})
    state = {"format": FORMAT, "run": run, "scenario": scenario_hash(sim.scenario), "graph": graph_hash(sim.scenario),
             "now": enc(sim.env.now), "episode": env_proc.episode,
             "groups": groups, "transmission": transmission, "critic": critic, "env": env_state,
             "queue": queue, "windows": None if sim.windows is None else enc(sim.windows.state()),
             "landings": None if sim.landings is None else enc(sim.landings.state()),
             "retrograde": None if sim.retro is None else enc(sim.retro.state()),
             "relaxation": enc(sim.relaxation.state()) if hasattr(sim.relaxation, "state") else None}
    _commit(Path(folder), f"run-{run}", f"episode-{env_proc.episode}", state, codec.arrays)


def _commit(folder: Path, name: str, tag: str, state: dict, arrays: dict) -> None:
    """Write ``name-tag.npz`` (the arrays), then ``name.json`` (the state, naming the arrays and
    carrying digests of both), each atomically; the JSON commits the checkpoint, and the arrays
    it replaced are removed. Links in the folder are replaced or refused, never followed."""
    from asyncneurons.study.folders import subdir, write_atomic

    folder = subdir(Path(folder).parent, Path(folder).name)
    npz = folder / f"{name}-{tag}.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    write_atomic(npz, data, binary=True)
    state["arrays"] = npz.name
    state["arrays_digest"] = _digest(data)
    state["digest"] = _state_digest(state)
    meta = folder / f"{name}.json"
    try:
        old = json.loads(meta.read_text()).get("arrays") if meta.is_file() and not meta.is_symlink() else None
    except (OSError, ValueError, AttributeError):
        old = None
    write_atomic(meta, json.dumps(state))
    if isinstance(old, str) and old != npz.name and "/" not in old and (folder / old).is_file():
        (folder / old).unlink()


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _state_digest(state: dict) -> str:
    return _digest(json.dumps({k: v for k, v in state.items() if k != "digest"}, sort_keys=True).encode())


def _read(meta: Path):
    """(state, arrays) of the checkpoint ``meta`` names, None if there is none; arrays are loaded
    with pickles refused. A checkpoint whose state or arrays do not match the digests it was
    written with (truncated, edited, half-copied) is refused."""
    if not os.path.lexists(meta):
        return None
    try:
        if meta.is_symlink():
            raise CheckpointError(f"{meta}: is a link; a checkpoint must be a file of its run folder")
        state = json.loads(meta.read_text())
        if not isinstance(state, dict) or not isinstance(state.get("arrays"), str):
            raise ValueError("not a checkpoint")
        if state.get("digest") != _state_digest(state):
            raise ValueError("its state does not match its digest: edited or damaged")
        npz = meta.parent / state["arrays"]
        if npz.parent != meta.parent or npz.is_symlink():
            raise ValueError(f"its arrays {state['arrays']!r} are not a file beside it")
        data = npz.read_bytes()
        if state.get("arrays_digest") != _digest(data):
            raise ValueError(f"its arrays {npz.name} do not match its digest: edited or damaged")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta}: unreadable checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                              f"remove the checkpoints folder to start the run again") from None
    return state, arrays


def restoring(build, state, folder):
    """``build()`` (which restores the checkpoint ``state``), with a checkpoint whose content does
    not fit the network it is restored into refused in one line."""
    if state is None:
        return build()
    try:
        return build()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{folder}: a checkpoint that does not fit this run's network "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                              f"remove the checkpoints folder to start the run again") from None


def graph_hash(scenario) -> str | None:
    """A short hash of the content of the scenario's graph file (None without one): a graph file
    edited between a kill and ``--resume`` would resume into a different network."""
    path = getattr(scenario.network, "graph", None)
    if path is None:
        return None
    try:
        return _digest(Path(path).read_bytes())
    except OSError:
        return "unreadable"


def _check_owner(meta: Path, state: dict, scenario, what: str) -> None:
    if state.get("graph") != graph_hash(scenario):  # (first: the scenario hash covers it too)
        raise CheckpointError(f"{meta}: the graph file {scenario.network.graph} changed since this "
                              f"checkpoint; restore it, or remove the checkpoints folder to start the "
                              f"{what} again")
    if state.get("scenario") != scenario_hash(scenario):
        raise CheckpointError(f"{meta}: a checkpoint of another scenario (the scenario was changed); "
                              f"remove the checkpoints folder to start the {what} again")


def scenario_hash(scenario) -> str:
    """A short hash of the resolved scenario, less ``[engine]`` (how a run is executed never
    changes its numbers): a checkpoint belongs to exactly one scenario. A graph file counts by
    its content, not its place, so that a run folder can move."""
    from asyncneurons.model.scenario import to_toml
    update = {"engine": type(scenario.engine)()}
    if scenario.network.graph is not None:
        digest = hashlib.blake2b(Path(scenario.network.graph).read_bytes(), digest_size=16).hexdigest()
        update["network"] = scenario.network.model_copy(update={"graph": f"blake2b:{digest}"})
    text = to_toml(scenario.model_copy(update=update))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def load(folder: Path, run: int, scenario=None):
    """The checkpoint of ``run`` in ``folder`` (JSON state, arrays), or None if there is none.

    With ``scenario``, a checkpoint of any other scenario is refused.
    """
    meta = Path(folder) / f"run-{run}.json"
    found = _read(meta)
    if found is None:
        return None
    state, arrays = found
    if state.get("format") != FORMAT or state.get("run") != run:
        raise CheckpointError(f"{meta}: not a checkpoint of run {run} in format {FORMAT}")
    if scenario is not None:
        _check_owner(meta, state, scenario, "run")
    return state, arrays


def restore(sim, state: dict, arrays: dict) -> None:
    """Put a checkpoint's state into a freshly built (not yet started) simulation."""
    codec = _Codec(sim)
    dec = lambda x: codec.decode(x, arrays)  # noqa: E731
    env = sim.env
    env._now = dec(state["now"])
    by_gid = {g.gid: g for g in sim.groups}
    for gid, gs in state["groups"].items():
        g = by_gid[int(gid)]
        for a in _GROUP_ARRAYS:
            setattr(g, a, np.array(dec(gs[a])))
        for a in _GROUP_VALUES:
            setattr(g, a, dec(gs[a]))
        g.aux = dec(gs["aux"])
        g.td_store = {id(codec.buckets[(ref[0], ref[1], ref[2])]): dec(ref[3]) for ref in gs["td_store"]}
        g.retro_in = dec(gs["retro_in"])
        for extra in ("sample_H", "sample_slope", "trace_time", "reward_held", "reward_stale", "retro_held",
                      "retro_stale", "retro_sent"):
            if extra in gs:
                setattr(g, extra, np.array(dec(gs[extra])))  # a fresh array the run may write into
        g.restored_phase = gs["phase"]
        if gs.get("clock") is not None:
            g.clock.restore(dec(gs["clock"]))
    if state.get("windows") is not None:
        sim.windows.restore(dec(state["windows"]))
    if sim.retro is not None:  # after the groups: their arrays become views of the queue's again
        sim.retro.restore(dec(state["retrograde"]))
    if sim.landings is not None:
        if state.get("landings") is None:  # its TD error is in the queue as events, one per reward delay
            raise CheckpointError("a checkpoint written before firing windows kept the TD error per unit; "
                                  "remove the checkpoints folder to start the run again")
        sim.landings.restore(dec(state["landings"]))
    if state.get("relaxation") is not None:
        sim.relaxation.restore(dec(state["relaxation"]))
    tr = sim.transmission
    for a in (*_TRANSMISSION, *tr.jitter_arrays):
        setattr(tr, a, np.array(dec(state["transmission"][a])))
    tr.depth, tr.serial = state["transmission"]["depth"], state["transmission"]["serial"]
    _restore_critic(sim.critic, state["critic"], dec)
    proc = sim.environment
    for a, v in state["env"].items():
        setattr(proc, a, dec(v))
    proc.ep["wall"] = time_module.perf_counter()
    if not proc.prev_end:  # no dummy step: the episode began with a reset that the task must see again
        proc._reset(proc.episode)
    firsts, first_times = {}, {}
    for item in state["queue"]:
        time, priority = dec(item["time"]), item["priority"]
        if "process" in item:
            ev = events.Signal.__new__(events.Signal)
            env.schedule_at(ev, priority, time)
            firsts[item["process"]] = ev
            first_times[item["process"]] = time
        else:
            owner, attr = _CALLBACKS[item["callback"]]
            obj = sim if owner == "sim" else getattr(sim, owner)
            env.schedule_at(events.Signal.__new__(events.Signal), priority, time, dec(item["value"]), getattr(obj, attr))
    for g in sim.groups:
        g.restored_first = firsts.get(g.gid)
        if g.restored_first is not None and g.clock is not None and state["groups"][str(g.gid)].get("clock") is None:
            g.clock.c[:] = g.clock.at[:] = first_times[g.gid]  # saved before clocks had a state: fixed period


# ------------------------------------------------------------------------------------------------
# Replicas (asyncneurons.engine.replicas): R runs simulated together take one checkpoint, at the top of
# their step loop. Every replica may be in the middle of an episode, so each task is brought back
# by replaying, from the reset that began its episode, the actions it has been given since.

#: Layer entries fixed when the replicas are built (the rest is state).
_LAYER_CONSTANTS = ("layer", "names", "kind", "retro_buckets", "decay", "tau", "role", "keys1", "keys2", "lp", "lr")


def replicas_name(runs) -> str:
    return "replicas-" + "-".join(str(r) for r in runs)


def save_replicas(rep, loop: dict, folder: Path) -> None:
    """Write the checkpoint of the replicas ``rep`` whose step loop is at ``loop`` (its variables)."""
    codec = _Values()
    enc = codec.encode
    layers = [{k: enc(v) for k, v in vars(lay).items() if k not in _LAYER_CONSTANTS} for lay in rep.layers]
    critic = _critic_state(rep.critic, enc)
    replay = [enc(np.array(actions)) for actions in rep.replay]
    state = {"format": FORMAT, "runs": list(rep.runs), "scenario": scenario_hash(rep.scenario),
             "graph": graph_hash(rep.scenario),
             "layers": layers, "critic": critic, "loop": enc(loop), "replay": replay}
    _commit(Path(folder), replicas_name(rep.runs), f"step-{loop['k']}", state, codec.arrays)


def load_replicas(folder: Path, runs, scenario):
    """The checkpoint of the replicas of ``runs`` of ``scenario`` in ``folder``, or None."""
    meta = Path(folder) / f"{replicas_name(runs)}.json"
    found = _read(meta)
    if found is None:
        return None
    state, arrays = found
    if state.get("format") != FORMAT or state.get("runs") != list(runs):
        raise CheckpointError(f"{meta}: not a checkpoint of runs {list(runs)} in format {FORMAT}")
    _check_owner(meta, state, scenario, "runs")
    return state, arrays


def restore_replicas(rep, state: dict, arrays: dict) -> dict:
    """Put a checkpoint's state into freshly built replicas; return the step loop's variables
    (the tasks are replayed by :meth:`Replicas.run`)."""
    codec = _Values()
    dec = lambda x: codec.decode(x, arrays)  # noqa: E731
    for lay, saved in zip(rep.layers, state["layers"]):
        for k, v in saved.items():
            setattr(lay, k, _writable(dec(v)))
    _restore_critic(rep.critic, state["critic"], dec)
    rep.replay = [list(dec(a)) for a in state["replay"]]
    return _writable(dec(state["loop"]))


def _writable(x):
    """Arrays read from an .npz, as fresh arrays the run may write into."""
    if isinstance(x, np.ndarray):
        return np.array(x)
    if isinstance(x, tuple):
        return tuple(_writable(v) for v in x)
    if isinstance(x, list):
        return [_writable(v) for v in x]
    if isinstance(x, dict):
        return {k: _writable(v) for k, v in x.items()}
    return x
