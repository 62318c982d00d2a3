#!/bin/bash
# The sweeps, tables and figures of docs/studies/autonomous-units.md.
#
#   bash scripts/autonomous_units_study.sh [OUT] [WORKERS]     (default runs/autonomous-units, 2)
#
# Every sweep resumes where it stopped: rerun the same command after an interruption. Runs go
# seed by seed, so a partial sweep covers every point.
set -euo pipefail
OUT=${1:-runs/autonomous-units}
W=${2:-2}
U='{dist="uniform",'
SWEEP="asyncneurons sweep --seeds 5 --workers $W --quiet"
RULES='learning.rule=weight_max,ste_backprop,global_reinforce'

# (a) phase spread and tick jitter at a fixed rate (one tick per unit per environment step)
$SWEEP scenarios/studies/autonomous-units.toml --out "$OUT/a-clocks" \
  --grid "timing.firing_phase=[5.0,10.0,15.0],[${U}low=0.0,high=10.0},${U}low=5.0,high=15.0},${U}low=10.0,high=20.0}],[${U}low=0.0,high=20.0}]" \
  --grid "timing.firing_jitter=0.0,${U}low=0.0,high=5.0}" --grid "$RULES"

# (b) per-event synaptic jitter (no jitter: the first point of (a))
$SWEEP scenarios/studies/autonomous-units.toml --out "$OUT/b-jitter" \
  --grid "timing.synapse_jitter=${U}low=0.0,high=3.0},${U}low=0.0,high=10.0}" --grid "$RULES"

# (c) trace time constant against reward delay, Weight Max
$SWEEP scenarios/studies/autonomous-units.toml --out "$OUT/c-per-sample" --set learning.rule=weight_max \
  --grid 'timing.reward_delay=10.0,40.0,80.0'
$SWEEP scenarios/studies/autonomous-units.toml --out "$OUT/c-exponential" --set learning.rule=weight_max \
  --set 'learning.trace="exponential"' --grid 'learning.trace_tau=40.0,160.0' --grid 'timing.reward_delay=10.0,40.0,80.0'

# (c, jittered ticks) where units sample irregularly: the exponential trace against the per-sample
# one (the latter is (a)'s pipeline point with tick jitter)
$SWEEP scenarios/studies/autonomous-units.toml --out "$OUT/c-jittered" --set learning.rule=weight_max \
  --set "timing.firing_jitter=${U}low=0.0,high=5.0}" --set 'learning.trace="exponential"' --grid 'learning.trace_tau=40.0,82.0'

# (d) depth, with and without skip edges (graph files from scripts/depth_graphs.py)
for d in 2 4; do
  $SWEEP scenarios/studies/autonomous-depth-$d.toml --out "$OUT/d-depth-$d" \
    --grid "network.graph=\"graphs/depth-$d.json\",\"graphs/depth-$d-skip.json\"" --grid "$RULES"
done
# control: four hidden layers whose answer fits in one step (3 ms per synapse, a tick every 3 ms down the pipeline)
$SWEEP scenarios/studies/autonomous-depth-4.toml --out "$OUT/d-depth-4-in-time" \
  --set timing.synapse_delay=3.0 --set 'timing.firing_phase=[3.0,6.0,9.0,12.0,15.0]' --grid "$RULES"
