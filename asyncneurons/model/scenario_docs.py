"""Generate ``docs/scenarios.md`` from the scenario schema, so the documentation cannot drift.

    python -m asyncneurons.model.scenario_docs --docs > docs/scenarios.md
    python -m asyncneurons.model.scenario_docs FILE [--set KEY=VALUE]   # check a file, print it resolved
"""

from __future__ import annotations

import argparse
import inspect
import sys

from asyncneurons.model import delays
from asyncneurons.errors import ScenarioError
from asyncneurons.model.scenario import (_DELAY_LIMITS, _delay_defaults, _env_ids, _expect, _fmt, _rule_names,
                                         _toml_value, _unit_kinds, Scenario, load_scenario, parse_scenario,
                                         to_toml)

_EXAMPLE = {
    "experiment": {"name": "cartpole-delays", "runs": 5, "episodes": 1000, "seed": 1},
    "env": {"id": "CartPole-v1", "pacing": "clock", "period": 20.0},
    "network": {"hidden": [64, 32], "unit": "bernoulli", "temperature": 1.0},
    "learning": {"rule": "global_reinforce", "lr": [0.02, 2e-4, 2e-5],
                 "lr_end": [0.002, 2e-5, 2e-6]},
    "timing": {"synapse_delay": {"dist": "uniform", "low": 0.5, "high": 2.0},
               "reward_delay": {"dist": "truncnormal", "mean": 5.0, "std": 2.0},
               "firing": "on_input"},
}

_INTRO = """\
# Scenario files

A scenario is one TOML file describing one experiment: the task, the network, how its units
learn and, above all, how long every signal takes. `asyncneurons run SCENARIO` runs it and
`asyncneurons validate SCENARIO` only checks it. Every key has a default, so an empty file is a
valid scenario (CartPole, a 64-32 Bernoulli network, no delays: the synchronous limit).

A file is checked completely before anything runs. A mistake stops with one line naming the
key at fault, for example

```text
timing.synapse_dela: unknown key (did you mean "synapse_delay"?)
learning.lr: 2 values given but the network has 3 layers (hidden [64, 32] + output)
```

Types are strict: `true` is not a number, `1` is not `true`, and `nan` or `inf` are rejected
everywhere. Integers are whole numbers (`100`, not `100.0`); where a number is expected, an
integer is fine. Times are in milliseconds of simulated time.

**Overrides.** `--set key.path=value` (for example `--set learning.lr=0.01` or
`--set 'timing.synapse_delay={dist = "uniform", low = 0, high = 5}'`) changes one key before
validation. The value is read as a TOML value, or taken as a string when it is not one
(`--set env.id=Acrobot-v1`). Overrides are checked exactly like the file.

This page is generated from `asyncneurons/model/scenario.py` by
`python -m asyncneurons.model.scenario_docs --docs > docs/scenarios.md`; a test keeps the two equal.

## A complete example

Every key, with the values the example chose and defaults elsewhere (this is the form
`to_toml` writes):

"""

_LAYERS_DOC = """\
## Per-layer values

`network.temperature`, `network.variance`, `learning.lr` and `learning.lr_end` take one value
per layer with weights, input side first: `[l1, …, output]`, so `len(network.hidden) + 1`
values. `learning.critic_lr` and `learning.critic_lr_end` take one value per critic layer,
`len(learning.critic_hidden) + 1` values. A single number means the same value for every
layer. With `network.graph`, the number of layers is read from the graph when the run starts
(the `layer` attribute of its nodes), and the lengths are checked then.
"""


def _default_text(info) -> str:
    if info.default_factory is not None:
        return f"`{_toml_value(info.default_factory())}`"
    if info.default is None:
        return "absent"
    return f"`{_toml_value(info.default)}`"


def _delay_doc() -> list[str]:
    lines = [
        "## Delays", "",
        "A delay (`timing.synapse_delay`, `timing.reward_delay`, `timing.retro_delay`) is either "
        "a number of ms ≥ 0, the same everywhere, or a table naming a distribution, from which "
        "each edge (or unit) draws its own delay once, when the network is built, e.g. "
        '`synapse_delay = { dist = "exponential", mean = 2.0, shift = 0.5 }`. Draws are keyed by '
        "the edge, so they do not depend on the order edges are visited.", "",
        "Like every firing key and `timing.refractory`, a delay may be given per layer: a list of "
        "one value per layer with weights (hidden layers, then the output), e.g. "
        "`synapse_delay = [1.0, { dist = \"uniform\", low = 2, high = 4 }, 0.5]`. A synapse takes "
        "the value of the layer of its target unit (for `synapse_delay` and `retro_delay` alike), "
        "a unit that of its own layer; one value applies to all. A graph file may set a unit's "
        "own value and an edge's own delays, and with `timing.conduction_velocity` the delays "
        "of synapses follow from the units' positions ([graph-files.md](graph-files.md)).", "",
        "| `dist` | parameters (ms) | optional (default) | conditions |",
        "|---|---|---|---|",
    ]
    for name, dist in delays.DISTRIBUTIONS.items():
        defaults = _delay_defaults(dist)
        optional = ", ".join(f"`{k}` ({_fmt(defaults.get(k))})"
                             for k in dist.optional) or "—"
        conditions = ", ".join(f"{k} {op} {bound}"
                               for k, (op, bound) in _DELAY_LIMITS.get(name, {}).items())
        lines.append(f"| `{name}` | {', '.join(f'`{k}`' for k in dist.required)} | {optional} | "
                     f"{conditions or '—'} |")
    lines += ["", "Every parameter must be a finite number. `lognormal`'s `mu` and `sigma` are "
              "the mean and standard deviation of the delay's logarithm (log-ms). A "
              "`truncnormal` must have probability between `low` and `high`.", ""]
    return lines


def _names_doc() -> list[str]:
    kinds = _unit_kinds()
    by_role = {role: ", ".join(f"`{k}`" for k, kind in kinds.items() if role in kind.roles)
               for role in ("hidden", "output")}
    return [
        "## Allowed names", "",
        f"- `learning.rule`: {', '.join(f'`{r}`' for r in sorted(_rule_names()))}",
        f"- `network.unit` (hidden kinds): {by_role['hidden']}",
        f"- `network.output` (output kinds): {by_role['output']}",
        f"- `env.id`: {', '.join(f'`{e}`' for e in _env_ids())}",
        f"- delay `dist`: {', '.join(f'`{d}`' for d in delays.DISTRIBUTIONS)}", "",
    ]


def schema_markdown() -> str:
    """The text of ``docs/scenarios.md``: every table and key with its form, default, meaning."""
    example = to_toml(parse_scenario(_EXAMPLE))
    lines = [_INTRO + "```toml\n" + example + "```", ""]
    for section, sinfo in Scenario.model_fields.items():
        model = sinfo.annotation
        lines += [f"## `[{section}]`", "", inspect.getdoc(model), "",
                  "| key | type | default | meaning |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            lines.append(f"| `{info.alias or name}` | {_expect(info)} | {_default_text(info)} | "
                         f"{info.description} |")
        lines.append("")
    lines += _delay_doc() + [_LAYERS_DOC] + _names_doc()
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asyncneurons.model.scenario_docs",
                                     description="Scenario files: documentation and checks.")
    parser.add_argument("--docs", action="store_true", help="print docs/scenarios.md")
    parser.add_argument("file", nargs="?", help="a scenario to validate and print resolved")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key (repeatable)")
    args = parser.parse_args(argv)
    if args.docs:
        print(schema_markdown(), end="")
    elif args.file:
        try:
            print(to_toml(load_scenario(args.file, args.set)), end="")
        except ScenarioError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    else:
        parser.print_usage()
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
