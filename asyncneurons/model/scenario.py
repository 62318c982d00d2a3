"""The scenario file: one TOML file describing an experiment, validated when it is loaded.

A scenario has seven tables, ``[experiment]``, ``[env]``, ``[network]``, ``[learning]``,
``[timing]``, ``[engine]`` and ``[record]``; every key has a default, so an empty file is a
valid scenario. The models below are the single source of truth: their field descriptions and
constraints generate ``docs/scenarios.md`` (``python -m asyncneurons.model.scenario_docs --docs``).

Every mistake raises :class:`~asyncneurons.errors.ScenarioError` with one line that starts
with the dotted key path at fault, for example ``timing.synapse_delay.high: must be ≥ low (got
high = 1, low = 5)``. Types are strict: no booleans for numbers, no strings for numbers, and
no NaN or infinity anywhere.

After validation

* a delay (``timing.*_delay``) is a float (ms) or a plain dict ``{"dist": name, param:
  float, ...}`` holding the parameters given, ready for :func:`asyncneurons.model.delays.draw`;
* a per-layer value (``network.temperature``, ``network.variance``, ``learning.lr``,
  ``learning.lr_end``, ``learning.critic_lr``, ``learning.critic_lr_end``) is a list of floats,
  one per layer (critic layers for the ``critic_*`` keys). With ``network.graph`` the number of
  actor layers is unknown until the graph is read: those keys then stay as given (a float or
  a list) and :func:`layer_values` resolves them.
"""

from __future__ import annotations

import copy
import inspect
import math
import operator
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PlainValidator,
                      ValidationError, ValidationInfo, field_validator, model_validator)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from asyncneurons.model import delays
from asyncneurons.errors import ScenarioError, did_you_mean

INT64_MAX = 2**63 - 1


# ---------------------------------------------------------------------------------------------
# Formatting values and key paths for messages


def _quote(text: str, limit: int = 60) -> str:
    """A string as a one-line, double-quoted literal (escaped, shortened when long)."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _fmt(value: Any) -> str:
    """A value as the user wrote it in TOML, on one short line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        digits = str(value)
        return digits if len(digits) <= 24 else f"{digits[:12]}…({len(digits.lstrip('-'))} digits)"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_fmt(v) for v in value[:8]) + (", …]" if len(value) > 8 else "]")
        return text if len(text) <= 80 else f"a list of {len(value)} values"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return _quote(repr(value))


def _path(loc) -> str:
    """A dotted key path: ``timing.synapse_delay.high``, ``network.hidden[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
            continue
        part = str(part)
        key = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else _quote(part, 40)
        out += ("." if out else "") + key
    return out or "scenario"


def _unknown(name: str, choices, what: str) -> str:
    known = ", ".join(sorted(choices))
    return f"unknown {what} {_fmt(name)}{did_you_mean(name, choices)}; known: {known}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------------------------------------
# Custom checks. They raise PydanticCustomError; _translate turns it into a ScenarioError.


def _fail(msg: str, *sub) -> typing.NoReturn:
    """A problem at the current key (or at ``sub`` below it), with a complete message."""
    raise PydanticCustomError("scenario", "{msg}", {"msg": msg, "sub": sub})


def _bad() -> typing.NoReturn:
    """The value at the current key is not of the expected form: "must be … (got …)"."""
    raise PydanticCustomError("expect", "bad value")


def _number(value) -> float | None:
    """``value`` as a finite float, or None (booleans, non-numbers, NaN, ±inf, overflow)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        x = float(value)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def _fits_int64(value: int) -> int:
    if abs(value) > INT64_MAX:
        _fail(f"too large (got {_fmt(value)}; integers must fit in 64 bits)")
    return value


Int64 = AfterValidator(_fits_int64)


def _layer_check(limit: str):
    """A validator for per-layer values: a number or a non-empty list of numbers ``limit``."""
    ok = {"> 0": lambda x: x > 0, "≥ 0": lambda x: x >= 0}[limit]

    def check(value):
        if value is None:
            return None
        if isinstance(value, list):
            xs = [_number(v) for v in value]
            if not xs or any(x is None or not ok(x) for x in xs):
                _bad()
            return xs
        x = _number(value)
        if x is None or not ok(x):
            _bad()
        return x

    return PlainValidator(check)


_LAYERS_POS = "a number > 0 or a list of them, one per layer"
_LAYERS_NONNEG = "a number ≥ 0 or a list of them, one per layer"
PerLayer = Annotated[float | list[float], _layer_check("> 0")]
PerLayerNonNeg = Annotated[float | list[float], _layer_check("≥ 0")]

# Conditions on delay parameters, by distribution: (comparison, bound) where the bound is a
# number or the name of another parameter. Parameters not listed need only be finite.
_DELAY_LIMITS = {
    "constant": {"value": ("≥", 0)},
    "uniform": {"low": ("≥", 0), "high": ("≥", "low")},
    "truncnormal": {"std": (">", 0), "low": ("≥", 0), "high": (">", "low")},
    "exponential": {"mean": (">", 0), "shift": ("≥", 0)},
    "lognormal": {"sigma": ("≥", 0)},
}
_OPS = {"≥": operator.ge, ">": operator.gt}
_DELAY_EXPECT = "a number ≥ 0 (ms) or a table with dist"


def _delay_defaults(dist) -> dict:
    """Defaults of a distribution's optional parameters, read from its inverse CDF."""
    params = inspect.signature(dist.inverse_cdf).parameters
    return {k: params[k].default for k in dist.optional if k in params}


def _check_delay(value):
    """A delay: a finite number ≥ 0 (ms), or a table ``{dist = NAME, params…}``."""
    if not isinstance(value, dict):
        x = _number(value)
        if x is None or x < 0:
            _bad()
        return x
    known = delays.DISTRIBUTIONS
    if "dist" not in value:
        _fail(f"missing (a delay table names its distribution: one of {', '.join(known)})",
              "dist")
    name = value["dist"]
    if not isinstance(name, str):
        _fail(f"must be a distribution name (got {_fmt(name)})", "dist")
    if name not in known:
        _fail(_unknown(name, known, "distribution"), "dist")
    dist = known[name]
    allowed = (*dist.required, *dist.optional)
    for key in value:
        if key != "dist" and key not in allowed:
            _fail(f'unknown parameter of dist "{name}"{did_you_mean(key, allowed)}; '
                  f"allowed: {', '.join(allowed)}", key)
    for key in dist.required:
        if key not in value:
            _fail(f'missing (dist "{name}" needs {", ".join(dist.required)})', key)
    params = {}
    for key in allowed:
        if key in value:
            params[key] = _number(value[key])
            if params[key] is None:
                _fail(f"must be a finite number (got {_fmt(value[key])})", key)
    defaults = _delay_defaults(dist)
    for key, (op, bound) in _DELAY_LIMITS.get(name, {}).items():
        if key not in params:
            continue
        if isinstance(bound, str):
            other = params.get(bound, defaults.get(bound))
            shown = _fmt(value[bound]) if bound in value else f"{_fmt(other)} by default"
            got = f"{key} = {_fmt(value[key])}, {bound} = {shown}"
        else:
            other, got = bound, _fmt(value[key])
        if not _OPS[op](params[key], other):
            _fail(f"must be {op} {bound} (got {got})", key)
    if name == "truncnormal":
        from scipy.special import ndtr

        p = {**defaults, **params}
        mass = ndtr((p["high"] - p["mean"]) / p["std"]) - ndtr((p["low"] - p["mean"]) / p["std"])
        if not mass > 0:
            shown = {k: _fmt(value.get(k, p[k])) for k in ("mean", "std", "low", "high")}
            _fail("a normal with mean = {mean}, std = {std} has no probability between "
                  "low = {low} and high = {high}".format(**shown))
    return {"dist": name, **params}


Delay = Annotated[float | dict[str, Any], PlainValidator(_check_delay)]


def _check_period(value):
    """A period: a delay (number or distribution) whose smallest possible value is > 0."""
    spec = _check_delay(value)
    if not isinstance(spec, dict):
        if spec <= 0:
            _bad()
        return spec
    low = delays.smallest(spec)
    if not low > 0:
        _fail(f'dist "{spec["dist"]}" can draw a period of {low:g} ms; its smallest value must be > 0')
    return spec


Period = Annotated[float | dict[str, Any], PlainValidator(_check_period)]


def _each_layer(check, expect: str):
    """A validator for a value that may be given per layer: ``check`` on a value or on each item
    of a non-empty list, an error naming the item (``timing.firing_period[1]``)."""
    def validate(value):
        if not isinstance(value, list):
            return check(value)
        if not value:
            _fail(f"must be {expect}, or a non-empty list of them, one per layer (got [])")
        out = []
        for i, item in enumerate(value):
            try:
                out.append(check(item))
            except PydanticCustomError as e:
                if e.type == "scenario":
                    raise PydanticCustomError("scenario", "{msg}", {"msg": e.context["msg"],
                                                                   "sub": (i, *e.context["sub"])}) from None
                _fail(f"must be {expect} (got {_fmt(item)})", i)
        return out
    return PlainValidator(validate)


def _check_rate(value):
    x = _number(value)
    if x is None or not x > 0:
        _bad()
    return x


_PERIOD_EXPECT = "a number > 0 (ms) or a table with dist whose smallest value is > 0"
_PER_LAYER = ", or a list of them, one per layer"
LayerPeriod = Annotated[float | dict[str, Any] | list, _each_layer(_check_period, _PERIOD_EXPECT)]
LayerDelay = Annotated[float | dict[str, Any] | list, _each_layer(_check_delay, _DELAY_EXPECT)]
LayerRate = Annotated[float | list, _each_layer(_check_rate, "a number > 0")]


def _check_nonneg(value):
    x = _number(value)
    if x is None or not x >= 0:
        _bad()
    return x


LayerNonNeg = Annotated[float | list, _each_layer(_check_nonneg, "a number ≥ 0 (ms)")]


# ---------------------------------------------------------------------------------------------
# Registries of names, owned by other modules and imported when first needed


def _rule_names():
    from asyncneurons.plugins import load
    from asyncneurons.learning.rules import RULES

    load()
    return RULES


def _unit_kinds():
    from asyncneurons.plugins import load
    from asyncneurons.learning.units import UNIT_KINDS

    load()
    return UNIT_KINDS


def _env_ids():
    from asyncneurons.tasks import known_env_ids

    return list(known_env_ids())


_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _check_imports(value):
    """``env.import``: a module name or a list of them, normalized to a list."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and _MODULE.fullmatch(n) for n in names):
        _bad()
    return list(names)


def _check_unit(name: str, role: str) -> str:
    kinds = _unit_kinds()
    if name not in kinds:
        _fail(_unknown(name, kinds, "unit kind"))
    fit = sorted(k for k, kind in kinds.items() if role in kind.roles)
    if role not in kinds[name].roles:
        _fail(f"{_fmt(name)} cannot be {'a hidden' if role == 'hidden' else 'an output'} unit; "
              f"{role} kinds: {', '.join(fit)}")
    return name


# ---------------------------------------------------------------------------------------------
# The models


def _key(default, description: str, expect: str | None = None, **kwargs):
    """A scenario key: its default, one-line meaning and, for custom types, its form."""
    extra = {"expect": expect} if expect else None
    if callable(default):
        return Field(default_factory=default, description=description,
                     json_schema_extra=extra, **kwargs)
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ExperimentConfig(_Table):
    """What to run: how many independent runs of how many episodes, and the master seed."""

    name: str = _key("experiment", "name of the experiment, used for its run folder",
                     min_length=1)
    runs: Annotated[int, Int64] = _key(1, "independent runs; run k's seed is derived from seed",
                                       ge=1)
    episodes: Annotated[int, Int64] = _key(100, "episodes per run", ge=1)
    seed: Annotated[int, Int64] = _key(0, "master seed: every random number derives from it",
                                       ge=0)


class EnvConfig(_Table):
    """The task: a gymnasium environment and how it meets the network's clock. Any registered id
    with Discrete or Box spaces is accepted; [tasks.md](tasks.md) says how observations and actions
    map to units and how to add a task of one's own."""

    import_: Annotated[list[str], PlainValidator(_check_imports)] = _key(
        list, "modules to import before env.id is looked up, so that they register their tasks; "
        "found on Python's path or in the scenario's folder", "a module name or a list of them",
        alias="import")
    id: str = _key("CartPole-v1", "gymnasium environment id: any registered id with Discrete or Box "
                   "spaces (shipped and tested: the ids listed below)")
    pacing: Literal["wait", "clock"] = _key(
        "wait", "wait: step as soon as the action arrives; clock: step every period ms with "
        "the latest action")
    period: float = _key(20.0, "ms between environment steps under clock pacing", gt=0)
    gamma: float = _key(0.98, "discount factor γ per environment step", ge=0, le=1)
    max_episode_steps: Annotated[int, Int64] | None = _key(
        None, "steps before an episode is truncated (absent: the registered time limit)", ge=1)
    bootstrap_truncated: bool = _key(
        False, "bootstrap the TD error at a time-limit end instead of zeroing it "
        "(published: zero)")
    dummy_step: bool = _key(
        True, "after an episode ends, pass its terminal observation through the network once "
        "more and reset on the next step (published behaviour)")
    reward_clip: float | None = _key(
        None, "clip the reward used in the TD error to ±reward_clip (never the logged return; "
        "absent: no clipping)", gt=0)
    action_map: Literal["clip", "affine"] = _key(
        "clip", "continuous actions: clip the output to the action box, or affine: clip(a·(high − "
        "low) − low) as the published MAP Propagation code maps them (2a + 1 on [−1, 1])")

    @field_validator("import_")
    @classmethod
    def _import_modules(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from asyncneurons.tasks import import_modules
        try:
            import_modules(value, (info.context or {}).get("base_dir") or os.getcwd())
        except ScenarioError as e:
            _fail(str(e).split(": ", 1)[1])
        return value

    @field_validator("id")
    @classmethod
    def _known_env(cls, value: str) -> str:
        from asyncneurons.tasks import check_registered
        try:
            check_registered(value)
        except ScenarioError as e:
            _fail(str(e).split(": ", 1)[1])
        return value


class NetworkConfig(_Table):
    """The actor network: layered (hidden, unit, output) or read from a graph file
    ([graph-files.md](graph-files.md): the formats, every node and edge attribute, every unit
    kind)."""

    hidden: list[Annotated[int, Int64, Field(ge=1)]] = _key(
        lambda: [64, 32], "hidden layer widths, input side first (may be empty)")
    unit: str = _key("bernoulli", "unit kind of the hidden layers (a kind allowed as hidden)")
    output: str | None = _key(
        None, "unit kind of the output layer (absent: chosen from the action space)")
    graph: str | None = _key(
        None, "GraphML or node-link JSON file, relative to the scenario file; replaces hidden, "
        "unit and output", "a file path")
    temperature: PerLayer = _key(
        1.0, "temperature T of each layer [l1, …, output]; one number applies to all",
        _LAYERS_POS)
    variance: PerLayer = _key(
        1.0, "variance σ² of each layer's Gaussian units [l1, …, output]; one number applies "
        "to all", _LAYERS_POS)
    bias_init: float = _key(1e-3, "biases start uniform in ±bias_init (published: 1e-3 for "
                            "Weight Max, 0 for MAP Propagation)", ge=0)

    @property
    def n_layers(self) -> int | None:
        """Layers with weights (hidden layers + output); None when a graph file defines them."""
        return None if self.graph is not None else len(self.hidden) + 1

    @field_validator("unit")
    @classmethod
    def _hidden_kind(cls, value: str) -> str:
        return _check_unit(value, "hidden")

    @field_validator("output")
    @classmethod
    def _output_kind(cls, value: str | None) -> str | None:
        return None if value is None else _check_unit(value, "output")

    @field_validator("graph")
    @classmethod
    def _graph_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        base = (info.context or {}).get("base_dir") or os.getcwd()
        path = os.path.abspath(os.path.join(base, os.path.expanduser(value)))
        if not value or not os.path.isfile(path):
            _fail(f"no such file {_fmt(path)}")
        return path

    @model_validator(mode="after")
    def _layers(self):
        if self.graph is not None:
            for key in ("hidden", "unit", "output"):
                if key in self.model_fields_set:
                    _fail("cannot be given with network.graph (the graph file defines the "
                          "layers and their unit kinds)", key)
        _resolve_layers(self, ("temperature", "variance"), self.n_layers, "network",
                        f"hidden {_fmt(self.hidden)} + output")
        return self


class LearningConfig(_Table):
    """How units learn: the rule for hidden units, the actor's rates and the critic."""

    rule: str = _key("global_reinforce", "learning rule of the hidden units (one of the rules "
                     "listed below)")
    lambda_: float = _key(0.0, "actor trace parameter λ (per-sample traces decay by λγ per step)", ge=0,
                          le=1, alias="lambda")
    trace: Literal["per_sample", "exponential"] = _key(
        "per_sample", "actor traces in time: per_sample decays them by λγ at each record "
        "(published); exponential by exp(−Δt/τ) over the time Δt elapsed, τ = trace_tau, and a "
        "learning signal uses the trace decayed to the instant it lands (λ unused)")
    trace_tau: float | None = _key(
        None, "time constant τ of exponential traces (ms; trace = \"exponential\" only, where it "
        "is required)", gt=0)
    lr: PerLayer = _key(lambda: [0.02, 2e-4, 2e-5],
                        "actor learning rate of each layer at step 0", _LAYERS_POS)
    lr_end: PerLayerNonNeg | None = _key(
        None, "actor learning rate of each layer reached after lr_steps (absent: constant)",
        _LAYERS_NONNEG)
    lr_steps: Annotated[int, Int64] = _key(50000, "agent steps of the linear learning-rate "
                                           "schedule", ge=1)
    critic: Literal["mlp", "map_prop", "none"] = _key(
        "mlp", "mlp: TD error from a deterministic softplus critic trained by TD(λ); map_prop: "
        "from a stochastic Gaussian critic trained by MAP Propagation with the gate; none: the "
        "reward itself is the learning signal (single-step tasks)")
    critic_hidden: list[Annotated[int, Int64, Field(ge=1)]] = _key(
        lambda: [64, 32], "hidden layer widths of the critic (softplus units)")
    critic_lambda: float = _key(0.8, "critic trace parameter λ_c", ge=0, le=1)
    critic_variance: PerLayer = _key(
        0.1, "variance σ² of each critic layer's Gaussian units (critic = "
        "map_prop only; len(critic_hidden) + 1 values)", _LAYERS_POS.replace("layer", "critic layer"))
    critic_lr: PerLayerNonNeg = _key(
        lambda: [0.04, 4e-5, 4e-6], "critic learning rate of each layer at step 0 "
        "(len(critic_hidden) + 1 values)", _LAYERS_NONNEG.replace("layer", "critic layer"))
    critic_lr_end: PerLayerNonNeg | None = _key(
        None, "critic learning rate of each layer reached after lr_steps (absent: constant)",
        _LAYERS_NONNEG.replace("layer", "critic layer"))
    adam_beta1: float = _key(0.9, "Adam first-moment decay β1", ge=0, lt=1)
    adam_beta2: float = _key(0.999, "Adam second-moment decay β2", ge=0, lt=1)
    adam_eps: float = _key(1e-8, "Adam ε added to the root of the second moment", gt=0)
    bias_correction_steps: Annotated[int, Int64] = _key(
        1000, "Adam steps during which moments are bias-corrected (published: 1000)", ge=0)
    norm_power: float = _key(2.0, "norm power p of Weight Maximization's hidden reward", ge=1)
    batch: Annotated[int, Int64] = _key(
        1, "single-step supervised tasks: samples drawn together per update, the update being their "
        "mean (published MAP Propagation: 128); needs critic = none and rule map_prop or global_reinforce",
        ge=1, le=100_000)
    target_signal: bool = _key(
        False, "regression: learn from δ = y − μ_MAP with every score gated by 1/(v − μ_MAP), as the "
        "published MAP Propagation regression does, instead of from the reward")
    map_steps: Annotated[int, Int64] = _key(
        20, "MAP Propagation: relaxation steps of each hidden unit after every sample", ge=0)
    map_step_size: float = _key(
        0.5, "MAP Propagation: relaxation step of a layer as a multiple of its variance "
        "(α = map_step_size · σ²)", gt=0)

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        rules = _rule_names()
        if value not in rules:
            _fail(_unknown(value, rules, "rule"))
        return value

    @model_validator(mode="after")
    def _batch_needs_no_critic(self):
        if self.batch > 1 and self.critic != "none":
            _fail("batches serve single-step supervised tasks: set learning.critic = \"none\"", "batch")
        if self.batch > 1 and self.rule not in ("map_prop", "global_reinforce"):
            _fail(f"rule {self.rule} learns one sample at a time: batches of samples serve map_prop and "
                  "global_reinforce only", "batch")
        return self

    @model_validator(mode="after")
    def _trace_time_constant(self):
        if self.trace == "exponential" and self.trace_tau is None:
            _fail('missing (trace = "exponential" needs its time constant in ms, > 0)', "trace_tau")
        if self.trace != "exponential" and self.trace_tau is not None:
            _fail('only with trace = "exponential" (per-sample traces decay by λγ at each record)', "trace_tau")
        return self

    @model_validator(mode="after")
    def _critic_layers(self):
        _resolve_layers(self, ("critic_lr", "critic_lr_end", "critic_variance"), len(self.critic_hidden) + 1,
                        "critic", f"critic_hidden {_fmt(self.critic_hidden)} + output")
        return self


TIMING_PER_LAYER = ("synapse_delay", "retro_delay", "reward_delay", "refractory",
                    "firing_period", "firing_phase", "firing_jitter", "firing_rate")
_BY_TARGET = "; given per layer, a synapse takes the value of its target unit's layer"


class TimingConfig(_Table):
    """Time in the network: conduction delays, the reward broadcast and when units fire."""

    synapse_delay: LayerDelay = _key(0.0, "forward delay of every synapse (ms), drawn once per edge" + _BY_TARGET,
                                     _DELAY_EXPECT + _PER_LAYER)
    reward_delay: LayerDelay = _key(0.0, "delay of the broadcast TD error to each unit (ms), drawn "
                                    "once per unit", _DELAY_EXPECT + _PER_LAYER)
    retro_delay: LayerDelay = _key(0.0, "delay of retrograde signals along each synapse (ms), drawn "
                                   "once per edge" + _BY_TARGET, _DELAY_EXPECT + _PER_LAYER)
    conduction_velocity: float | None = _key(
        None, "distance units per ms: a synapse the graph file gives no delay takes distance / velocity + "
        "synaptic_offset, the distance between its units' positions x, y, z (its retrograde delay too)", gt=0)
    synaptic_offset: float = _key(0.0, "ms added to every delay computed from conduction_velocity", ge=0)
    synapse_jitter: Delay = _key(0.0, "lateness added to synapse_delay on every send (ms), drawn per synapse "
                                 "and send; a later send may arrive first: the newest is held, an older "
                                 "arrival is dropped and counted (under on_input it is no sample)",
                                 _DELAY_EXPECT)
    reward_jitter: Delay = _key(0.0, "lateness added to reward_delay on every broadcast (ms), drawn per unit "
                                "and agent step; a unit learns from the newest TD error that reached it, an "
                                "older one arriving later is dropped and counted", _DELAY_EXPECT)
    retro_jitter: Delay = _key(0.0, "lateness added to retro_delay on every retrograde send (ms), drawn per "
                               "synapse and send; an older signal arriving after a newer one on the same "
                               "synapse is dropped and counted", _DELAY_EXPECT)
    firing: Literal["on_input", "on_all", "clock", "poisson"] = _key(
        "on_all", "when a unit samples: on_input (any input arrived), on_all (every input of "
        "the wave arrived), clock (every firing_period ms, on the unit's own clock), poisson "
        "(exponential intervals at firing_rate)")
    firing_period: LayerPeriod = _key(1.0, "ms between a unit's ticks under clock firing, drawn once per unit",
                                      _PERIOD_EXPECT + _PER_LAYER)
    firing_phase: LayerDelay | None = _key(None, "time of a unit's first tick under clock firing (ms), drawn "
                                           "once per unit (default: one period)", _DELAY_EXPECT + _PER_LAYER)
    firing_jitter: LayerDelay = _key(0.0, "lateness added to each clock tick (ms), drawn per unit and tick; "
                                     "a tick is never earlier than the one before", _DELAY_EXPECT + _PER_LAYER)
    firing_rate: LayerRate = _key(1.0, "ticks per ms of each unit under poisson firing",
                                  "a number > 0" + _PER_LAYER)
    refractory: LayerNonNeg = _key(0.0, "ms after a sample during which a unit does not sample",
                                   "a number ≥ 0 (ms)" + _PER_LAYER)
    relax_period: float = _key(0.0, "MAP Propagation: ms between a unit's relaxation steps (0: "
                               "all steps within the instant of its sample)", ge=0)


class EngineConfig(_Table):
    """How the simulation is executed; never changes results."""

    fuse: bool = _key(True, "serve units that fire at the same instant by one vectorized "
                      "process (never changes results)")
    windows: bool = _key(True, "when synapses have different delays, fire every unit due before the next "
                         "learning signal or environment step in one pass per layer, each at its own time "
                         "(every firing policy and pacing; on_input without a refractory period only "
                         "under Weight Max with fixed delays and clock pacing; Global "
                         "REINFORCE, Weight Max and backprop; "
                         "never changes results)")
    replicas: Annotated[int, Int64] = _key(
        1, "simulate up to this many runs together with a batch axis when the scenario is in the "
        "synchronous limit (zero delays, on_all, wait; never changes results)", ge=1, le=1000)


class RecordConfig(_Table):
    """What a run writes besides its metrics and summary."""

    events: bool = _key(False, "write every event to events.csv (large)")
    diagnostics: bool = _key(
        False, "write diagnostics/run-R.csv: per episode, mean |δ|, stale actions, and per layer the "
        "weight norm, samples and learning events per unit (never changes results; runs are then "
        "simulated one by one, not as replicas)")


class Scenario(_Table):
    """A whole scenario: one table per concern."""

    experiment: ExperimentConfig = _key(ExperimentConfig, "runs, episodes and seed")
    env: EnvConfig = _key(EnvConfig, "the environment and its pacing")
    network: NetworkConfig = _key(NetworkConfig, "the actor network")
    learning: LearningConfig = _key(LearningConfig, "learning rule, rates and critic")
    timing: TimingConfig = _key(TimingConfig, "delays and firing policy")
    engine: EngineConfig = _key(EngineConfig, "execution")
    record: RecordConfig = _key(RecordConfig, "what is written")

    @model_validator(mode="after")
    def _diagnostics_need_time(self):
        if self.record.diagnostics and self.learning.batch > 1:
            _fail("batched single-step tasks (learning.batch > 1) record no diagnostics", "record", "diagnostics")
        return self

    @model_validator(mode="after")
    def _jitter_needs_histories(self):
        if self.learning.rule == "map_prop" and not delays.is_zero(self.timing.retro_jitter):
            _fail("is not available with MAP Propagation (its relaxation messages keep fixed delays)",
                  "timing", "retro_jitter")
        if delays.is_zero(self.timing.synapse_jitter):
            return self
        if self.learning.rule == "map_prop":
            _fail("is not available with MAP Propagation (its relaxation reads fixed-delay histories)",
                  "timing", "synapse_jitter")
        return self

    @model_validator(mode="after")
    def _actor_layers(self):
        _resolve_layers(self.learning, ("lr", "lr_end"), self.network.n_layers, "network",
                        f"hidden {_fmt(self.network.hidden)} + output", ("learning",))
        n = self.network.n_layers
        for key in TIMING_PER_LAYER:  # checked, not expanded: a value for every layer stays one value
            value = getattr(self.timing, key)
            if n is not None and isinstance(value, list) and len(value) not in (1, n):
                _fail(f"{_plural(len(value), 'value')} given but the network has {_plural(n, 'layer')} "
                      f"(hidden {_fmt(self.network.hidden)} + output)", "timing", key)
        return self

    @model_validator(mode="after")
    def _positions_need_a_graph(self):
        if self.timing.conduction_velocity is not None and self.network.graph is None:
            _fail("needs unit positions (node attributes x, y, z) from a graph file: give network.graph",
                  "timing", "conduction_velocity")
        return self


def _resolve_layers(table, keys, n: int | None, what: str, detail: str, prefix=()) -> None:
    """Turn each per-layer key of ``table`` into a list of ``n`` floats (in place)."""
    if n is None:
        return
    for key in keys:
        value = getattr(table, key)
        if value is None:
            continue
        if not isinstance(value, list):
            value = [value] * n
        elif len(value) != n:
            given = (f"{_plural(len(value), 'value')} given but" if key in table.model_fields_set
                     else f"the default {_fmt(value)} has {_plural(len(value), 'value')} but")
            _fail(f"{given} the {what} has {_plural(n, 'layer')} ({detail})", *prefix, key)
        table.__dict__[key] = value


def layer_values(value, n_layers: int, key: str, detail: str = "the graph") -> list[float] | None:
    """A per-layer value resolved for a network of ``n_layers`` (for graph-defined networks).

    ``value`` is a float (the same for every layer), a list, or None (returned as is); ``key``
    is the dotted path named in the error, e.g. ``"learning.lr"``.
    """
    if value is None:
        return None
    if not isinstance(value, list):
        return [float(value)] * n_layers
    if len(value) != n_layers:
        raise ScenarioError(f"{key}: {_plural(len(value), 'value')} given but {detail} has "
                            f"{_plural(n_layers, 'layer')}")
    return [float(v) for v in value]


# ---------------------------------------------------------------------------------------------
# Errors: pydantic's ValidationError → one-line ScenarioError


def _field_info(loc):
    """The FieldInfo at ``loc`` (a section or a section's key) and its model, or None."""
    model, info = Scenario, None
    for part in loc:
        info = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if info is None:
            return None, None
        model = info.annotation if isinstance(info.annotation, type) else None
        if model is None or not issubclass(model, BaseModel):
            return info, None
    return info, model


def _expect(info) -> str:
    """What a key must be, in words: from its explicit form or from its type and bounds."""
    extra = info.json_schema_extra or {}
    if "expect" in extra:
        return extra["expect"]
    return _describe(info.annotation, info.metadata)


def _describe(tp, metadata=()) -> str:
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin is Annotated:
        extra = [m for a in args[1:] for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
        return _describe(args[0], [*metadata, *extra])
    if origin in (typing.Union, types.UnionType):
        return _describe(next(a for a in args if a is not type(None)), metadata)
    if origin is Literal:
        return "one of " + ", ".join(f'"{a}"' for a in args)
    if origin is list:
        return "a list of " + _describe(args[0], metadata).split(" ", 1)[1].replace(
            "integer", "integers").replace("number", "numbers")
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a non-empty string" if any(hasattr(m, "min_length") for m in metadata) \
            else "a string"
    bounds = {k: getattr(m, k) for m in metadata for k in ("ge", "gt", "le", "lt")
              if getattr(m, k, None) is not None}
    text = "an integer" if tp is int else "a number"
    low = ("[", bounds["ge"]) if "ge" in bounds else ("(", bounds["gt"]) if "gt" in bounds \
        else None
    high = ("]", bounds["le"]) if "le" in bounds else (")", bounds["lt"]) if "lt" in bounds \
        else None
    if low and high:
        return f"{text} in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{text} {'≥' if low[0] == '[' else '>'} {low[1]}"
    return text


def _raw(data, loc):
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _message(err: dict, data) -> str:
    loc, kind, ctx = tuple(err["loc"]), err["type"], err.get("ctx") or {}
    if kind == "scenario":
        return f"{_path(loc + tuple(ctx['sub']))}: {ctx['msg']}"
    if kind == "extra_forbidden":
        _, model = _field_info(loc[:-1])
        keys = [f.alias or n for n, f in (model or Scenario).model_fields.items()]
        what = "table" if len(loc) == 1 else "key"
        hint = did_you_mean(loc[-1], keys) or f"; known: {', '.join(keys)}"
        return f"{_path(loc)}: unknown {what}{hint}"
    info, model = _field_info(loc[:2])
    if info is None:  # the scenario itself is not a table
        return f"{_path(loc)}: must be a table (got {_fmt(err['input'])})"
    raw = _raw(data, loc[:2])
    if model is not None:
        return f"{_path(loc[:1])}: must be a table (got {_fmt(raw)})"
    got = _fmt(raw)
    if typing.get_origin(info.annotation) is Literal and isinstance(raw, str):
        hint = did_you_mean(raw, typing.get_args(info.annotation))
        got += "; " + hint[2:-1] if hint else ""
    return f"{_path(loc[:2])}: must be {_expect(info)} (got {got})"


def _translate(error: ValidationError, data) -> ScenarioError:
    return ScenarioError(_message(error.errors(include_url=False)[0], data))


# ---------------------------------------------------------------------------------------------
# Loading, overrides, writing


def apply_override(data: dict, override: str) -> dict:
    """Set ``key.path=value`` in the raw scenario ``data`` (in place; also returned).

    The value is read as a TOML value (``3``, ``0.5``, ``true``, ``[1, 2]``, ``{dist =
    "uniform", low = 0, high = 5}``), or taken as a plain string when it is not one
    (``env.id=CartPole-v1``). Missing tables are created.
    """
    text = str(override)
    if "=" not in text:
        raise ScenarioError(f"{_quote(text)}: an override has the form key.path=value")
    key, _, value_text = text.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not all(parts):
        raise ScenarioError(f"{_quote(text)}: empty key in override; the form is "
                            f"key.path=value")
    try:
        parsed = tomllib.loads("v = " + value_text.strip())
        value = parsed["v"] if list(parsed) == ["v"] else value_text.strip()
    except tomllib.TOMLDecodeError:
        value = value_text.strip()
    table = data
    for i, part in enumerate(parts[:-1]):
        if part not in table:
            table[part] = {}
        elif not isinstance(table[part], dict):
            raise ScenarioError(f"{_path(parts[: i + 1])}: is {_fmt(table[part])}, not a table, "
                                f"so {_path(parts)} cannot be set")
        table = table[part]
    table[parts[-1]] = value
    return data


def parse_scenario(data: dict, overrides=(), base_dir=None) -> Scenario:
    """Validate a scenario given as a dict (as read from TOML), after applying ``overrides``.

    ``base_dir`` is the folder relative paths (``network.graph``) are resolved against
    (default: the current directory). ``data`` is not modified.
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario: must be a table (got {_fmt(data)})")
    data = copy.deepcopy(data)
    for override in (overrides,) if isinstance(overrides, str) else overrides:
        apply_override(data, override)
    try:
        return Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as e:
        raise _translate(e, data) from None


def load_scenario(path, overrides=()) -> Scenario:
    """Read, parse and validate the scenario file ``path`` (UTF-8 TOML), with ``overrides``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ScenarioError(f"{path}: line {line}, column {column}: not UTF-8 text "
                            f"(byte 0x{raw[e.start]:02x})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", msg, re.S)
        where = f"line {m[2]}, column {m[3]}: " if m else ""
        what = (m[1] if m else msg).replace("\n", " ")
        raise ScenarioError(f"{path}: {where}invalid TOML: {what[:1].lower()}{what[1:]}") from None
    return parse_scenario(data, overrides, base_dir=os.path.abspath(path.parent))


def _toml_value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return tomli_w.dumps({"v": value})[4:].rstrip("\n")


def to_toml(scenario: Scenario) -> str:
    """The fully resolved scenario as TOML: every key, defaults filled in, absent keys omitted.

    Loading the text again gives an equal :class:`Scenario`.
    """
    lines = []
    for section in Scenario.model_fields:
        table = getattr(scenario, section)
        lines.append(f"[{section}]")
        for name, info in type(table).model_fields.items():
            value = getattr(table, name)
            if value is None or (name == "import_" and not value) or (section == "network" and table.graph is not None
                                 and name in ("hidden", "unit", "output")):
                continue
            lines.append(f"{info.alias or name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Documentation
