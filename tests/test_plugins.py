"""Plug-ins: the rule and the unit kind of docs/extending.md, registered through entry points
from a ``*.dist-info`` folder on the path, run; broken plug-ins stop with one line.

The plug-ins are exercised in subprocesses, so that this process's registries stay as shipped.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from asyncneurons.learning.units import LayerParams

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "extending.md").read_text()
RULE_CODE, UNIT_CODE = re.findall(r"```python\n(.*?)```", PAGE, re.S)
ENTRY_POINTS = """\
[asyncneurons.rules]
node_perturbation = myplugins.rules:NodePerturbation

[asyncneurons.units]
spin = myplugins.units:SPIN
"""
SMALL = """
[experiment]
name = "plugins"
episodes = 4

[network]
hidden = [8]

[learning]
lr = [0.01, 0.001]
"""


def _package(root: Path, entry_points: str = ENTRY_POINTS, rules: str = RULE_CODE) -> Path:
    """``myplugins`` and its dist-info (what ``pip install`` would write) in ``root``."""
    (root / "myplugins").mkdir(parents=True)
    (root / "myplugins" / "__init__.py").write_text("")
    (root / "myplugins" / "rules.py").write_text(rules)
    (root / "myplugins" / "units.py").write_text(UNIT_CODE)
    info = root / "myplugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    (root / "small.toml").write_text(SMALL)
    return root


def _cli(root: Path, *args):
    env = {"PYTHONPATH": f"{ROOT}:{root}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def _returns(folder: Path) -> list[float]:
    lines = (folder / "metrics.csv").read_text().splitlines()[1:]
    return [float(line.split(",")[2]) for line in lines]


def test_the_plugin_rule_and_unit_kind_run(tmp_path):
    root = _package(tmp_path)
    runs = {"np": ["--set", "learning.rule=node_perturbation", "--set", "network.unit=gaussian"],
            "spin": ["--set", "network.unit=spin"]}
    for name, sets in runs.items():
        r = _cli(root, "run", "small.toml", "--out", name, "--quiet", *sets)
        assert r.returncode == 0, r.stderr
        returns = _returns(root / name)
        assert len(returns) == 4 and all(np.isfinite(returns)) and all(x >= 8 for x in returns)
        again = _cli(root, "run", "small.toml", "--out", name + "-again", "--quiet", *sets)
        assert again.returncode == 0 and _returns(root / (name + "-again")) == returns
    # the rule keeps to the units it can train, like a built-in one
    r = _cli(root, "validate", "small.toml", "--set", "learning.rule=node_perturbation")
    assert r.returncode == 2
    assert r.stderr.startswith("error: network.unit: rule node_perturbation cannot train bernoulli hidden units")


def test_plugins_join_the_names_a_scenario_may_use(tmp_path):
    root = _package(tmp_path)
    r = _cli(root, "validate", "small.toml", "--set", "learning.rule=node_perturbaton")
    assert r.returncode == 2
    assert 'did you mean "node_perturbation"?' in r.stderr and "map_prop, node_perturbation, ste_backprop" in r.stderr
    r = _cli(root, "validate", "small.toml", "--set", "network.output=spin")
    assert r.returncode == 2 and '"spin" cannot be an output unit' in r.stderr


def test_the_node_perturbation_step_is_plain_gradient_ascent_on_the_trace():
    namespace: dict = {}
    exec(RULE_CODE, namespace)

    class Sim:
        def lr(self, layer, step):
            return 0.5

    class Group:
        layer = 1
        P = np.array([[1.0, 2.0]])
        E = np.array([[0.2, -0.4]])

    namespace["NodePerturbation"](None).on_reward(Sim(), Group, 3.0, 7, False)
    assert Group.P.tolist() == [[1.0 + 0.5 * 3.0 * 0.2, 2.0 - 0.5 * 3.0 * 0.4]]


def test_the_spin_units_score_is_the_gradient_of_its_log_probability(tmp_path):
    path = tmp_path / "spin_units.py"
    path.write_text(UNIT_CODE)
    spec = importlib.util.spec_from_file_location("spin_units", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lp = LayerParams(temperature=0.7)
    pot = np.array([-1.3, 0.0, 0.4, 2.1])
    h, mean = module.sample(pot, lp, np.array([0.1, 0.6, 0.9, 0.5]), None)
    assert set(h.tolist()) <= {-1.0, 1.0}

    def log_pr(p):
        return np.log(1.0 / (1.0 + np.exp(-2.0 * h * p / lp.temperature)))
    eps = 1e-6
    numeric = (log_pr(pot + eps) - log_pr(pot - eps)) / (2 * eps)
    assert np.allclose(module.score(h, pot, mean, lp), numeric, atol=1e-7)
    # Pr(h = +1) is σ(2 pot / T): the share of +1 over many uniforms
    u = np.linspace(0.0, 1.0, 10001, endpoint=False)
    share = (module.sample(np.full(u.size, 0.4), lp, u, None)[0] > 0).mean()
    assert abs(share - 1.0 / (1.0 + np.exp(-0.8 / 0.7))) < 1e-3


def test_a_broken_plugin_is_one_line(tmp_path):
    broken = _package(tmp_path / "broken", rules="raise ImportError('needs torch')\n")
    r = _cli(broken, "validate", "small.toml")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ('error: asyncneurons.rules entry point "node_perturbation" (myplugins.rules:NodePerturbation, '
                        "package myplugins): cannot be loaded: ImportError: needs torch\n")
    clash = _package(tmp_path / "clash", entry_points="[asyncneurons.units]\nbernoulli = myplugins.units:SPIN\n")
    r = _cli(clash, "validate", "small.toml")
    assert r.returncode == 2 and r.stderr.endswith(': "bernoulli" is already a built-in name\n')
    assert len(r.stderr.splitlines()) == 1
    wrong = _package(tmp_path / "wrong", entry_points="[asyncneurons.rules]\nspin = myplugins.units:SPIN\n")
    r = _cli(wrong, "validate", "small.toml")
    assert r.returncode == 2 and r.stderr.endswith(": not a subclass of asyncneurons.learning.rules.base.Rule\n")
