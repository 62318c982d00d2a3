"""Scenario files: defaults, round trip, the bad-scenario corpus, overrides, fuzzing, docs."""

from __future__ import annotations

import copy
import math
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncneurons.model import scenario as sc
from asyncneurons.errors import ScenarioError
from asyncneurons.model.scenario import (Scenario, apply_override, layer_values, load_scenario,
                                         parse_scenario, to_toml)
from asyncneurons.model.scenario_docs import _EXAMPLE, schema_markdown

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "bad_scenarios"
BAD_FILES = sorted(CORPUS.glob("*.toml"))


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(ScenarioError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# --- defaults and round trip ---------------------------------------------------------------


def test_empty_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("")
    s = load_scenario(path)
    assert s == Scenario() == parse_scenario({})
    assert (s.experiment.runs, s.experiment.episodes, s.experiment.seed) == (1, 100, 0)
    assert s.env.id == "CartPole-v1" and s.env.pacing == "wait" and s.env.gamma == 0.98
    assert s.env.max_episode_steps is None and s.env.reward_clip is None
    assert s.network.hidden == [64, 32] and s.network.n_layers == 3
    assert s.network.temperature == [1.0, 1.0, 1.0] and s.network.variance == [1.0, 1.0, 1.0]
    assert s.learning.rule == "global_reinforce" and s.learning.lambda_ == 0.0
    assert s.learning.lr == [0.02, 2e-4, 2e-5] and s.learning.lr_end is None
    assert s.learning.critic_lr == [0.04, 4e-5, 4e-6]
    assert s.timing.synapse_delay == 0.0 and s.timing.firing == "on_all"
    assert s.engine.fuse is True and s.record.events is False


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[experiment]\nruns = 2\n")
    assert load_scenario(path).experiment.runs == 2


def test_values_are_resolved():
    s = parse_scenario({
        "network": {"hidden": [8], "temperature": 0.5, "variance": [1, 2]},
        "learning": {"lambda": 0.9, "lr": 0.1, "lr_end": 0, "critic_hidden": [],
                     "critic_lr": 1},
        "timing": {"synapse_delay": 2, "reward_delay": {"dist": "uniform", "low": 1, "high": 3},
                   "retro_delay": {"dist": "truncnormal", "mean": 1, "std": 0.5}},
    })
    assert s.network.temperature == [0.5, 0.5] and s.network.variance == [1.0, 2.0]
    assert s.learning.lambda_ == 0.9
    assert s.learning.lr == [0.1, 0.1] and s.learning.lr_end == [0.0, 0.0]
    assert s.learning.critic_lr == [1.0]
    assert all(type(x) is float for x in s.learning.lr + s.network.variance)
    assert s.timing.synapse_delay == 2.0 and type(s.timing.synapse_delay) is float
    assert s.timing.reward_delay == {"dist": "uniform", "low": 1.0, "high": 3.0}
    assert s.timing.retro_delay == {"dist": "truncnormal", "mean": 1.0, "std": 0.5}


def test_round_trip(tmp_path):
    data = copy.deepcopy(_EXAMPLE)
    data["env"].update(max_episode_steps=200, reward_clip=1.5, bootstrap_truncated=True)
    data["learning"].update(critic_lr_end=0.0, critic="none")
    data["timing"]["retro_delay"] = {"dist": "exponential", "mean": 2, "shift": 0.25}
    s = parse_scenario(data)
    path = tmp_path / "s.toml"
    path.write_text(to_toml(s), encoding="utf-8")
    assert load_scenario(path) == s
    assert to_toml(load_scenario(path)) == to_toml(s)


def test_graph_is_resolved_relative_to_the_scenario(tmp_path):
    (tmp_path / "nets").mkdir()
    shutil.copy(CORPUS / "tiny.graphml", tmp_path / "nets" / "g.graphml")
    path = tmp_path / "s.toml"
    path.write_text('[network]\ngraph = "nets/g.graphml"\ntemperature = 2\n\n'
                    "[learning]\nlr = [0.1, 0.2, 0.3, 0.4]\n")
    s = load_scenario(path)
    assert s.network.graph == str(tmp_path / "nets" / "g.graphml")
    assert s.network.n_layers is None
    assert s.network.temperature == 2.0 and s.learning.lr == [0.1, 0.2, 0.3, 0.4]
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "s.toml").write_text(to_toml(s))
    assert load_scenario(other / "s.toml") == s
    assert layer_values(s.network.temperature, 2, "network.temperature") == [2.0, 2.0]
    assert _error(layer_values, s.learning.lr, 2, "learning.lr") == \
        "learning.lr: 4 values given but the graph has 2 layers"


def test_input_dict_is_not_modified():
    data = {"experiment": {"runs": 2}}
    parse_scenario(data, ["experiment.seed=3", "env.pacing=clock"])
    assert data == {"experiment": {"runs": 2}}


def test_unreadable_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _error(load_scenario, "nope.toml") == \
        "nope.toml: cannot read (No such file or directory)"


# --- the corpus of bad scenarios --------------------------------------------------------------


def _expected(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    assert first.startswith("# error: "), f"{path.name}: first line must be '# error: …'"
    names = {"rules": sc._rule_names(), "envs": sc._env_ids(), "units": sc._unit_kinds()}
    text = first[len("# error: "):].replace("{dir}", str(CORPUS))
    for key, choices in names.items():
        text = text.replace("{" + key + "}", ", ".join(sorted(choices)))
    return text


def test_corpus_is_large_enough():
    assert len(BAD_FILES) >= 25


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_scenario_message(path, monkeypatch):
    monkeypatch.chdir(CORPUS)
    assert _error(load_scenario, path.name) == _expected(path)


# --- overrides ---------------------------------------------------------------------------------


def test_apply_override_parses_toml_values():
    data: dict = {"env": {"gamma": 0.9}}
    apply_override(data, "learning.lr=[0.1, 0.2, 0.3]")
    apply_override(data, "env.id = Acrobot-v1")
    apply_override(data, "env.gamma=1")
    apply_override(data, "record.events=true")
    apply_override(data, 'timing.synapse_delay={dist = "uniform", low = 0, high = 5}')
    apply_override(data, 'experiment.name="a = b"')
    assert data == {
        "env": {"gamma": 1, "id": "Acrobot-v1"},
        "learning": {"lr": [0.1, 0.2, 0.3]},
        "record": {"events": True},
        "timing": {"synapse_delay": {"dist": "uniform", "low": 0, "high": 5}},
        "experiment": {"name": "a = b"},
    }


def test_overrides_are_applied_then_validated(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[experiment]\nruns = 2\n")
    s = load_scenario(path, ["experiment.runs=4", "env.pacing=clock", "learning.lr=0.5"])
    assert s.experiment.runs == 4 and s.env.pacing == "clock" and s.learning.lr == [0.5] * 3


@pytest.mark.parametrize("override, message", [
    ("experiment.runs=0", "experiment.runs: must be an integer ≥ 1 (got 0)"),
    ("env.pacing=wiat", 'env.pacing: must be one of "wait", "clock" (got "wiat"; did you mean '
                        '"wait"?)'),
    ("timing.synapse_dela=1", 'timing.synapse_dela: unknown key (did you mean "synapse_delay"?)'),
    ("env.gamma=true", "env.gamma: must be a number in [0, 1] (got true)"),
    ("env.gamma=nan", "env.gamma: must be a number in [0, 1] (got nan)"),
    ("learning.lr=[1, 2]", "learning.lr: 2 values given but the network has 3 layers "
                           "(hidden [64, 32] + output)"),
    ('timing.synapse_delay={dist = "uniform", low = 5, high = 1}',
     "timing.synapse_delay.high: must be ≥ low (got high = 1, low = 5)"),
    ("experiment.runs.x=1", "experiment.runs: is 2, not a table, so experiment.runs.x cannot "
                            "be set"),
    ("nosuch.key=3", "nosuch: unknown table; known: experiment, env, network, learning, "
                     "timing, engine, record"),
    ("experiment.runs", '"experiment.runs": an override has the form key.path=value'),
    ("=3", '"=3": empty key in override; the form is key.path=value'),
    ("experiment..runs=3", '"experiment..runs=3": empty key in override; the form is '
                           "key.path=value"),
])
def test_bad_override(tmp_path, override, message):
    path = tmp_path / "s.toml"
    path.write_text("[experiment]\nruns = 2\n")
    assert _error(load_scenario, path, [override]) == message


# --- fuzzing -----------------------------------------------------------------------------------

_KEYS = {section: [f.alias or n for n, f in info.annotation.model_fields.items()]
         for section, info in Scenario.model_fields.items()}
_WORDS = [*_KEYS, *(k for keys in _KEYS.values() for k in keys), "dist", "low", "high", "mean",
          "std", "value", "shift", "mu", "sigma", "lambda_", "", "uniform", "truncnormal"]
_NAMES = ["CartPole-v1", "wait", "clock", "bernoulli", "softmax", "gaussian", "on_input",
          "none", "mlp", "global_reinforce", "uniform", "exponential", "lognormal"]

_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-3, max_value=70000),
    st.integers(),
    st.sampled_from([10**9 + 1, 2**63 - 1, 2**63, -2**63 - 1, 10**30, 10**400]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, 5e-324]),
    st.text(max_size=12),
    st.sampled_from(_NAMES),
    st.datetimes(),
)
_keys = st.one_of(st.sampled_from(_WORDS), st.text(max_size=8))
_nested = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=8,
)
_values = st.one_of(_scalars, _scalars, st.lists(_scalars, max_size=4), _nested)
_delays = st.fixed_dictionaries(
    {"dist": st.sampled_from([*sc.delays.DISTRIBUTIONS, "unifrom"])},
    optional={k: st.one_of(st.floats(min_value=-1, max_value=10), _scalars)
              for k in ("value", "low", "high", "mean", "std", "shift", "mu", "sigma", "hihg")})


def _typo(word: str, data) -> str:
    if not word:
        return "x"
    i = data.draw(st.integers(0, len(word) - 1))
    return data.draw(st.sampled_from([word[:i] + word[i + 1:], word[:i] + "x" + word[i:],
                                      word.upper(), word + "_"]))


def _tables(data_dict) -> list:
    """Every dict below the root of the scenario (sections, delay tables, nested junk)."""
    out = []
    for value in data_dict.values():
        if isinstance(value, dict):
            out += [value, *_tables(value)]
    return out


def _mutate(base: dict, data) -> dict:
    """1-4 random edits: the root is edited one time in six, tables below it otherwise."""
    for _ in range(data.draw(st.integers(1, 4))):
        tables = _tables(base)
        root = not tables or data.draw(st.integers(0, 5)) == 0
        table = base if root else data.draw(st.sampled_from(tables))
        op = data.draw(st.sampled_from(["delete", "insert", "typo", "replace", "delay"]))
        keys = sorted(table, key=str)
        if op == "insert" or not keys:
            table[data.draw(_keys)] = data.draw(_values)
        elif op == "delay":
            timing = base.setdefault("timing", {})
            if isinstance(timing, dict):
                timing[data.draw(st.sampled_from(["synapse_delay", "reward_delay",
                                                  "retro_delay"]))] = data.draw(_delays)
        else:
            key = data.draw(st.sampled_from(keys))
            if op == "delete":
                del table[key]
            elif op == "typo":
                table[_typo(key, data)] = table.pop(key)
            else:
                table[key] = data.draw(_values)
    return base


_BASES = [{}, tomllib.loads(to_toml(parse_scenario(_EXAMPLE))), copy.deepcopy(_EXAMPLE),
          {"network": {"hidden": [4]}, "learning": {"lr": 0.1, "critic_hidden": [8, 8, 8],
                                                    "critic_lr": [1, 1, 1, 1]}}]


_SEGMENT = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*")'
_PATH = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT}|\[\d+\])*: \S")


def _check_message(message: str) -> None:
    """One line that starts with a dotted key path, and nothing of pydantic's."""
    assert "\n" not in message and len(message.splitlines()) == 1, message
    assert _PATH.match(message), message
    for leak in ("pydantic", "http", "Traceback", "Input should", "validation error"):
        assert leak not in message, message


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(_BASES), data=st.data())
def test_mutated_scenarios_load_or_fail_cleanly(base, data):
    mutated = _mutate(copy.deepcopy(base), data)
    try:
        s = parse_scenario(mutated)
    except ScenarioError as e:
        _check_message(str(e))
        return
    assert parse_scenario(tomllib.loads(to_toml(s))) == s


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20),
                          st.builds("{}={}".format, st.sampled_from(_WORDS + ["env.gamma",
                                                                              "timing.firing"]),
                                    st.text(max_size=12))), max_size=3))
def test_random_overrides_load_or_fail_cleanly(overrides):
    try:
        parse_scenario({}, overrides)
    except ScenarioError as e:
        _check_message(str(e))


# --- documentation -----------------------------------------------------------------------------


def test_docs_are_generated_from_the_models():
    docs = ROOT / "docs" / "scenarios.md"
    assert docs.read_text(encoding="utf-8") == schema_markdown(), (
        "docs/scenarios.md is stale: python -m asyncneurons.model.scenario_docs --docs > docs/scenarios.md")


def test_docs_name_every_key_and_the_example_loads():
    text = schema_markdown()
    for section, keys in _KEYS.items():
        assert f"## `[{section}]`" in text
        for key in keys:
            assert f"| `{key}` |" in text
    example = re.search(r"```toml\n(.*?)```", text, re.S)[1]
    assert parse_scenario(tomllib.loads(example)) == parse_scenario(_EXAMPLE)


def test_docs_command_prints_the_docs():
    out = subprocess.run([sys.executable, "-m", "asyncneurons.model.scenario_docs", "--docs"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out == schema_markdown()
