#!/bin/bash
# The MAP Propagation line of docs/studies/delay-tolerance.md: scenarios/studies/map-delays.toml,
# synapses uniform[0, d] ms for d = 0, 2, 5, 10, 20, five runs per point, one run folder per point.
#
#   bash scripts/map_delay_study.sh [OUT] [WORKERS]     (default runs/map-delays, 2)
#
# A MAP run under delays takes hours, so each point is an experiment folder that writes its
# episodes as it goes and checkpoints every 30 s: rerun the same command after an interruption and
# every point continues from its checkpoints (finished points are skipped). Each finished run is
# recorded in docs/studies/map-delays-runs.jsonl (scripts/map_delay_ledger.py) before and after
# each point, so that its result outlives the folders (commit the ledger).
set -euo pipefail
OUT=${1:-runs/map-delays}
W=${2:-2}
mkdir -p "$OUT"
for d in 0 2 5 10 20; do
  dir="$OUT/d-$d"
  python scripts/map_delay_ledger.py "$OUT"
  if [ -f "$dir/summary.json" ] && grep -Eq '"status": *"(complete|diverged)"' "$dir/summary.json"; then
    echo "d = $d ms: finished"
  elif [ -f "$dir/scenario.toml" ]; then
    python -m asyncneurons.cli run --resume "$dir" --workers "$W" --quiet
  else
    python -m asyncneurons.cli run scenarios/studies/map-delays.toml --out "$dir" --workers "$W" --quiet \
      --set experiment.runs=5 --set "timing.synapse_delay={dist=\"uniform\",low=0.0,high=$d.0}"
  fi
done
python scripts/map_delay_ledger.py "$OUT"
