"""Write this folder's checkpoint with the tree on PYTHONPATH (README.md gives the command):
run scenario.toml, save a checkpoint at every episode boundary and stop once episode 3 is due,
then print the episodes finished before and how many landings the checkpoint holds pending."""

import sys
from pathlib import Path

from asyncneurons.engine import checkpoint
from asyncneurons.engine.simulation import Simulation
from asyncneurons.model.scenario import load_scenario

HERE = Path(__file__).resolve().parent
STOP = 3


class Stop(Exception):
    pass


def main(out: Path) -> None:
    s = load_scenario(HERE / "scenario.toml")
    rows = []
    sim = Simulation(s, on_episode=rows.append)

    def save(proc):
        checkpoint.save(sim, proc, out, 0)
        if proc.episode == STOP:
            raise Stop
    sim.checkpoint = save
    try:
        sim.run()
    except Stop:
        pass
    state, arrays = checkpoint.load(out, 0, s)
    relax = dict(state["relaxation"]["dict"])
    print("episodes:", [(r["episode"], r["return"], r["length"], r["sim_time_ms"]) for r in rows])
    print("landings pending per read unit:", arrays[relax["psize"]["array"]].tolist())


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
