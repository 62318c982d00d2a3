"""Fuzz the command line: generated cases over every surface a careless or hostile user touches.

Surfaces: command-line flags (every option of run, validate, sweep, plot, with good, bad and
absurd values), scenario files, run folders damaged before ``--resume`` (files truncated, bytes
flipped, files deleted or swapped for folders or links, checkpoints edited, episode rows
garbled), and graph files shaped as yEd, Gephi, NetworkX and our own writer produce them, then
damaged.

Each case calls the CLI's ``main`` in this process with stderr captured, and checks what is
promised (docs/reliability.md):

* no Python traceback: the command ends with an exit status, never an exception;
* the exit status is 0, 1 or 2, and a failure ends in one ``error:`` line (or click's usage
  error);
* a refused ``--resume`` (status 2) leaves the folder byte for byte as it was;
* a file outside the folder that a link inside it points to is never written.

Every ``--spot``-th case is also run as a real ``python -m asyncneurons.cli`` process.

    PYTHONPATH=. python scripts/fuzz.py --cases 10000 --seed 0 [--spot 500] [--report out.json]

Prints counts per surface and every failing case (its argv and the end of its stderr); exits 1
if any case failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = """[experiment]
name = "fuzz"
episodes = {episodes}
runs = {runs}
seed = 0

[env]
max_episode_steps = 10

[network]
{network}

[learning]
lambda = 0.8
lr = {lr}
"""
LAYERED = "hidden = [4]"
GOOD_KEYS = ["experiment.episodes", "experiment.runs", "experiment.seed", "experiment.name",
             "timing.reward_delay", "timing.synapse_delay", "timing.retro_delay", "timing.firing",
             "timing.refractory", "env.pacing", "env.period", "env.id", "env.gamma", "network.hidden",
             "network.unit", "network.output", "learning.rule", "learning.lr", "learning.lambda",
             "learning.critic_hidden", "engine.replicas", "engine.fuse", "record.events"]
VALUES = ["0", "1", "2", "-1", "0.5", "1e309", "-1e309", "nan", "inf", "true", "false", '"x"', "[]",
          "[1, 2]", "[0.1, 0.01]", "{}", '{dist = "uniform", low = 0, high = 2}', '"on_all"', '"clock"',
          '"weight_max"', '"map_prop"', '"CartPole-v1"', '"Nope-v0"', "[4, 4]", "1000000000000",
          "", "=", "'unterminated", "\"../../x\"", "1_000", "0x10", "[[1]]", '"softmax"', '"bernoulli"']
JUNK = ["", " ", "abc", "-1", "0", "1e999", "nan", "/", "..", "\x7f", "ü", "a" * 300, "--", "-h"]


# ------------------------------------------------------------------------------------------------
# Assets: a finished and an interrupted run folder, and graph files as tools write them


def make_assets(root: Path) -> dict:
    from asyncneurons.study.runner import run_experiment
    from asyncneurons.model.scenario import load_scenario

    assets = {}
    for name, runs in (("finished", 1), ("interrupted", 2)):
        s_path = root / f"{name}.toml"
        s_path.write_text(BASE.format(episodes=4, runs=runs, network=LAYERED, lr="[0.01, 0.001]"))
        s = load_scenario(s_path)
        out = root / name
        seen = []

        def stop(row, seen=seen, name=name):
            seen.append(row)
            if name == "interrupted" and len(seen) == 3:
                raise KeyboardInterrupt
        with contextlib.suppress(KeyboardInterrupt):
            run_experiment(s, out, workers=1, progress=stop, checkpoint_seconds=0.0)
        assets[name] = out
    assets["victim"] = root / "victim.txt"
    assets["victim"].write_text("precious\n")
    return assets


def graph_text(rng: random.Random, tool: str, n_out: int = 1, kind: str = "softmax") -> tuple[str, str]:
    """(extension, text) of a small CartPole graph written as ``tool`` writes it."""
    units = [(f"in{i}", "input", "input", 0, i) for i in range(4)]
    units += [(f"h{j}", "hidden", rng.choice(["bernoulli", "bernoulli", "gaussian"]), 1, j) for j in range(3)]
    units += [(f"out{k}", "output", kind, 2, k) for k in range(n_out)]
    edges = [(u[0], v[0]) for u in units for v in units if v[3] == u[3] + 1]
    if tool == "json":
        doc = {"directed": True, "multigraph": False, "graph": {},
               "nodes": [{"id": n, "role": r, "kind": k, "layer": l, "index": i} for n, r, k, l, i in units],
               "links": [{"source": u, "target": v, "delay": rng.choice([0.0, 0.5, 2.0])} for u, v in edges]}
        return "json", json.dumps(doc)
    if tool == "networkx":
        import networkx as nx
        g = nx.DiGraph()
        for n, r, k, l, i in units:
            g.add_node(n, role=r, kind=k, layer=l, index=i, label=n)
        for u, v in edges:
            g.add_edge(u, v, delay=1.0)
        buf = io.BytesIO()
        nx.write_graphml(g, buf, encoding=rng.choice(["utf-8", "iso-8859-1", "utf-16"]),
                         named_key_ids=rng.random() < 0.5)
        data = buf.getvalue()
        enc = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "iso-8859-1" if b"iso-8859-1" in data[:100] else "utf-8"
        return "graphml", data.decode(enc)
    ids = {u[0]: (f"n{i}" if tool == "yed" else str(i)) for i, u in enumerate(units)}
    keys = ('<key attr.name="role" attr.type="string" for="node" id="d4"/>'
            '<key attr.name="kind" attr.type="string" for="node" id="d5"/>'
            '<key attr.name="layer" attr.type="int" for="node" id="d11"/>'
            '<key attr.name="index" attr.type="int" for="node" id="d12"/>'
            '<key attr.name="delay" attr.type="double" for="edge" id="d9"/>')
    if tool == "yed":
        keys += ('<key for="node" id="d6" yfiles.type="nodegraphics"/><key for="graphml" id="d7" '
                 'yfiles.type="resources"/><key for="port" id="d1" yfiles.type="portgraphics"/>')
        extra = '<data key="d6"><y:ShapeNode><y:Geometry x="0" y="0"/></y:ShapeNode></data>'
    else:
        keys += ('<key attr.name="label" attr.type="string" for="node" id="label"/>'
                 '<key attr.name="x" attr.type="float" for="node" id="x"/>')
        extra = '<data key="x">1.5</data>'
    nodes = "".join(f'<node id="{ids[n]}"><data key="d4">{r}</data><data key="d5">{k}</data>'
                    f'<data key="d11">{l}</data><data key="d12">{i}</data>{extra}</node>'
                    for n, r, k, l, i in units)
    links = "".join(f'<edge id="e{j}" source="{ids[u]}" target="{ids[v]}"><data key="d9">1.0</data></edge>'
                    for j, (u, v) in enumerate(edges))
    return "graphml", ('<?xml version="1.0" encoding="UTF-8"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
                       'xmlns:y="http://www.yworks.com/xml/graphml">' + keys +
                       f'<graph edgedefault="directed">{nodes}{links}</graph></graphml>')


def damage_text(rng: random.Random, text: str) -> str:
    """One random edit of a text: cut, flip, duplicate, replace a token, insert junk."""
    if not text:
        return rng.choice(JUNK)
    i = rng.randrange(len(text))
    op = rng.randrange(8)
    if op == 0:
        return text[:i]
    if op == 1:
        return text[:i] + chr(rng.randrange(1, 0x2FF)) + text[i + 1:]
    if op == 2:
        j = min(len(text), i + rng.randrange(1, 80))
        return text[:j] + text[i:j] + text[j:]
    if op == 3:
        j = min(len(text), i + rng.randrange(1, 40))
        return text[:i] + text[j:]
    if op == 4:
        for a, b in (("delay", "dealy"), ("role", "rol"), ("layer", "layr"), ("index", "idx"),
                     ("softmax", "softmx"), ("input", "hidden"), ('"1"', '"9"'), (">1<", ">-1<"),
                     (">2<", ">5<"), ("0.5", "nan"), ("1.0", "-3"), ("h0", "h1")):
            if a in text and rng.random() < 0.5:
                return text.replace(a, b, rng.choice([1, -1]))
        return text
    if op == 5:
        return text[:i] + rng.choice(["<!DOCTYPE x [<!ENTITY a 'b'>]>", "<node id='zz'/>", "\x00", "]]>",
                                      '{"id": 1}', "<edge source='out0' target='h0'/>", "&a;"]) + text[i:]
    if op == 6:
        return text.replace("<graph ", '<graph edgedefault="undirected" ', 1) if rng.random() < 0.3 else text + text
    return text


# ------------------------------------------------------------------------------------------------
# Cases: each returns (surface, argv, folder whose bytes a refusal must not change or None)


def case_flags(rng, work: Path, assets: dict):
    cmd = rng.choice(["run", "validate", "sweep", "plot", "bogus", "--version", "--help"])
    scen = work / "s.toml"
    scen.write_text(BASE.format(episodes=rng.choice([1, 2]), runs=1, network=LAYERED, lr="[0.01, 0.001]"))
    argv = [cmd]
    if cmd in ("run", "validate", "sweep"):
        argv.append(rng.choice([str(scen)] * 6 + [str(work / "missing.toml"), str(work), "", str(assets["victim"])]))
    if cmd == "plot":
        argv.append(rng.choice([str(assets["finished"]), str(assets["interrupted"]), str(work), str(work / "nope")]))
    opts = {"run": ["--out", "--set", "--workers", "--checkpoint-every", "--quiet", "--resume"],
            "validate": ["--set"],
            "sweep": ["--grid", "--seeds", "--out", "--set", "--workers", "--scheduler", "--quiet"],
            "plot": ["--out", "--smooth", "--x", "--lines", "--window", "--where"]}.get(cmd, ["--x"])
    for _ in range(rng.randrange(0, 4)):
        opt = rng.choice(opts)
        argv.append(opt)
        if opt == "--quiet":
            continue
        if opt in ("--set", "--where"):
            key = rng.choice(GOOD_KEYS + ["experiment.episode", "nope", "a.b.c", "", "=", "learning"])
            argv.append(f"{key}={rng.choice(VALUES)}" if rng.random() < 0.9 else key)
        elif opt == "--grid":
            key = rng.choice(GOOD_KEYS[:8] + ["nope.key", ""])
            argv.append(f"{key}={','.join(rng.choice(VALUES[:10]) for _ in range(rng.randrange(0, 3)))}")
        elif opt in ("--out", "--resume"):
            argv.append(rng.choice([str(work / "out"), str(assets["victim"]), str(assets["victim"] / "x"),
                                    str(work / "a" / ".." / ".." / "out2"), "/proc/version", "", " ", str(work),
                                    "rel-out"]))
        elif opt == "--scheduler":
            argv.append(rng.choice(["nonsense", "tcp://[x", "tcp://h:999999", "", "http://a b", "tcp://"]))
        else:
            argv.append(rng.choice(["1", "2", "0", "-3", "abc", "1.5", "nan", "inf", "1e400", "", "0,5",
                                    "5,0", "a,b", "learning.rule", "10,20,30"]))
    if cmd == "run" and "--workers" not in argv:
        argv += ["--workers", "1"]
    if cmd == "sweep":
        argv += ["--workers", "1"] if "--workers" not in argv and "--scheduler" not in argv else []
        if "--out" not in argv:
            argv += ["--out", str(work / "sw")]
    if cmd == "run" and "--out" not in argv and "--resume" not in argv:
        argv += ["--out", str(work / "out")]
    return "flags", argv, None


def case_scenario(rng, work: Path, assets: dict):
    text = BASE.format(episodes=rng.choice([1, 2]), runs=rng.choice([1, 1, 2]), network=LAYERED,
                       lr=rng.choice(["[0.01, 0.001]", "0.01", "[0.1]", "[1, 2, 3]"]))
    for _ in range(rng.randrange(1, 4)):
        text = damage_text(rng, text)
    path = work / "s.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if rng.random() < 0.9 else os.urandom(64))
    cmd = rng.choice(["validate", "validate", "run"])
    argv = [cmd, str(path)] + (["--out", str(work / "out"), "--quiet", "--workers", "1"] if cmd == "run" else [])
    return "scenario files", argv, None


def case_graph(rng, work: Path, assets: dict):
    tool = rng.choice(["yed", "gephi", "networkx", "json"])
    ext, text = graph_text(rng, tool, n_out=rng.choice([1, 1, 1, 2]), kind=rng.choice(["softmax"] * 4 + ["categorical", "bernoulli"]))
    for _ in range(rng.randrange(0, 3)):
        text = damage_text(rng, text)
    g = work / f"net.{ext}"
    g.write_bytes(text.encode("utf-16" if 'encoding="utf-16"' in text[:80] else "utf-8", "surrogatepass")
                  if rng.random() < 0.95 else os.urandom(200))
    s = work / "s.toml"
    s.write_text(BASE.format(episodes=1, runs=1, network=f'graph = "{g.name}"',
                             lr=rng.choice(["0.01", "[0.01, 0.001]", "[0.1, 0.01, 0.001]"])))
    cmd = rng.choice(["validate"] * 4 + ["run"])
    argv = [cmd, str(s)] + (["--out", str(work / "out"), "--quiet", "--workers", "1"] if cmd == "run" else [])
    return "graph files", argv, None


def case_folder(rng, work: Path, assets: dict):
    src = rng.choice([assets["interrupted"]] * 3 + [assets["finished"]])
    folder = work / "run"
    shutil.copytree(src, folder, symlinks=True)
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != ".lock"]
    for _ in range(rng.randrange(1, 4)):
        if not files:
            break
        f = rng.choice(files)
        if f.is_symlink() or not f.is_file():
            continue  # (already replaced by a link or a folder: the fuzzer never writes through it)
        op = rng.randrange(9)
        try:
            if op == 0:
                data = f.read_bytes()
                f.write_bytes(data[: rng.randrange(len(data) + 1)])
            elif op == 1:
                data = bytearray(f.read_bytes())
                if data:
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                f.write_bytes(bytes(data))
            elif op == 2:
                f.unlink()
            elif op == 3:
                f.unlink()
                f.mkdir()
            elif op == 4:
                f.unlink()
                f.symlink_to(assets["victim"])
            elif op == 5 and f.suffix in (".csv", ".toml", ".json"):
                f.write_text(damage_text(rng, f.read_text(errors="replace")))
            elif op == 6 and f.suffix == ".csv":
                lines = f.read_text().splitlines(keepends=True)
                rng.shuffle(lines[1:]) if len(lines) > 2 else None
                extra = rng.choice(["0,9,1.0,3,1.0,0.1,0\n", "garbage\n", "0,1,nan,1,1,1,1\n", lines[-1] * 2])
                f.write_text("".join(lines) + extra)
            elif op == 7 and f.suffix == ".json" and f.parent.name == "checkpoints":
                state = json.loads(f.read_text())
                if isinstance(state, dict) and state:
                    k = rng.choice(list(state))
                    state[k] = rng.choice([None, 0, -1, "x", [], {}, 1e308, state.get("episode", 0)])
                    f.write_text(json.dumps(state))
            elif op == 8:
                d = folder / rng.choice(["episodes", "checkpoints"])
                if d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d)
                    d.write_text("not a folder")
        except (OSError, ValueError):
            pass
    argv = ["run", "--resume", str(folder), "--quiet", "--workers", rng.choice(["1", "1", "1", "2"])]
    if rng.random() < 0.1:
        argv = ["plot", str(folder), "--out", str(work / "fig")]
    return "run folders", argv, folder


SURFACES = [(case_flags, 0.3), (case_scenario, 0.2), (case_graph, 0.25), (case_folder, 0.25)]


# ------------------------------------------------------------------------------------------------
# Running a case


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def snapshot(folder):
    if folder is None or not folder.exists():
        return None
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.name == ".lock":
            continue
        if p.is_symlink():
            out[str(p)] = ("link", os.readlink(p))
        elif p.is_file():
            out[str(p)] = p.read_bytes()
        else:
            out[str(p)] = "dir"
    return out


def in_process(argv: list, timeout: float) -> tuple[int | str, str]:
    from asyncneurons.cli import main
    err = io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main.main(args=argv, prog_name="asyncneurons", standalone_mode=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Hang:
        code = "hang"
    except BaseException as e:  # noqa: BLE001 - what the fuzzer hunts
        import traceback
        code = "traceback"
        err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(e)[-3:]))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return code, err.getvalue()


def as_process(argv: list, timeout: float) -> tuple[int | str, str]:
    try:
        r = subprocess.run([sys.executable, "-m", "asyncneurons.cli", *argv], capture_output=True, text=True,
                           timeout=timeout * 3)
    except subprocess.TimeoutExpired:
        return "hang", ""
    return r.returncode, r.stderr


def judge(code, err: str, before, after, victim_ok: bool) -> str:
    """'' when the case kept every promise, else what it broke."""
    if code in ("traceback", "hang"):
        return code
    if "Traceback" in err:
        return "traceback in stderr"
    if code not in (0, 1, 2):
        return f"exit status {code}"
    if code != 0:
        last = [line for line in err.strip().splitlines() if line.strip()]
        if not last or not (last[-1].startswith("error:") or last[-1].startswith("Error:")
                            or any(line.startswith("Error:") for line in last)):
            return "no one-line error"
    if code == 2 and before is not None and after != before:
        return "a refused command changed the folder"
    if not victim_ok:
        return "a file outside the folder was written through a link"
    return ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spot", type=int, default=500, help="every N-th case also as a real process (0: none)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a case counts as hung")
    ap.add_argument("--report", default=None, help="write the counts and failures to this JSON file")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="asyncneurons-fuzz-"))
    counts: dict = {}
    failures = []
    start = time.time()
    here = os.getcwd()
    os.chdir(root)  # whatever a case writes relative to the current folder stays in the fuzz folder
    try:
        assets = make_assets(root)
        for n in range(args.cases):
            work = root / f"case-{n}"
            work.mkdir()
            make = rng.choices([s for s, _ in SURFACES], [w for _, w in SURFACES])[0]
            surface, argv_, folder = make(random.Random(rng.random()), work, assets)
            before = snapshot(folder)
            spot = args.spot and n % args.spot == 0
            code, err = (as_process if spot else in_process)(argv_, args.timeout)
            after = snapshot(folder)
            broken = judge(code, err, before, after, assets["victim"].read_text() == "precious\n")
            c = counts.setdefault(surface, {"cases": 0, "exit 0": 0, "exit 1": 0, "exit 2": 0, "failed": 0,
                                            "real processes": 0})
            c["cases"] += 1
            c["real processes"] += bool(spot)
            if broken:
                c["failed"] += 1
                failures.append({"case": n, "surface": surface, "argv": argv_, "broke": broken,
                                 "stderr": err[-1500:]})
                assets["victim"].write_text("precious\n")
            elif f"exit {code}" in c:
                c[f"exit {code}"] += 1
            shutil.rmtree(work, ignore_errors=True)
            if (n + 1) % 500 == 0:
                print(f"{n + 1} cases, {len(failures)} failed, {time.time() - start:.0f} s", file=sys.stderr,
                      flush=True)
    finally:
        os.chdir(here)
        shutil.rmtree(root, ignore_errors=True)
    total = sum(c["cases"] for c in counts.values())
    print(f"{total} cases in {time.time() - start:.0f} s (seed {args.seed}):")
    for surface, c in counts.items():
        print(f"  {surface:>14}: " + ", ".join(f"{v} {k}" for k, v in c.items()))
    for f in failures[:50]:
        print(f"FAILED case {f['case']} ({f['surface']}, {f['broke']}): {f['argv']}\n    "
              + f["stderr"].strip().replace("\n", "\n    ")[-800:])
    if args.report:
        Path(args.report).write_text(json.dumps({"seed": args.seed, "cases": total, "counts": counts,
                                                 "failures": failures}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
