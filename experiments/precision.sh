#!/usr/bin/env bash
# What reduced precision does to a guard: the synthetic benchmark's images
# (2,000 coarse training images, 1,000 shortcut-free test images, a faint
# cross: contrast 0.2) embedded by the fixture encoder in f32, bf16 and int8
# (the CPU paths), a linear probe trained on each precision's training
# embeddings and scored on the same precision's test embeddings. One draw
# of the benchmark is one set of images, and a difference of a few
# thousandths of AUROC moves from draw to draw, so the script repeats this
# on five draws (the preset's seed, 0, then seeds 1 to 4) and reports the
# first draw with the five draws' mean and range. Writes docs/precision.md
# (PAIRGUARD_DOCS names another folder; PAIRGUARD_RESULTS the working
# folder, where the first draw's benchmark, probes and evaluations stay for
# experiments/precision_onnx.sh). Run from anywhere; PAIRGUARD names the
# binary (default: cargo run).
set -euo pipefail
cd "$(dirname "$0")/.."
pg() { if [ -n "${PAIRGUARD:-}" ]; then "$PAIRGUARD" "$@"; else cargo run -q --bin pairguard -- "$@"; fi; }
results="${PAIRGUARD_RESULTS:-results}"
data="$results/precision-data"
docs="${PAIRGUARD_DOCS:-docs}"
encoder=crates/clip/tests/fixtures/clip/hf-quickgelu
precisions="f32 bf16 int8"
mkdir -p "$data" "$docs"
# Each command's messages go to a log, shown when one fails.
log="$data/log.txt"
: > "$log"
trap 'echo "experiments/precision.sh failed; the last messages ($log):" >&2; tail -5 "$log" >&2' ERR

# One draw in folder $1 with seed $2: writes $1/auroc-PRECISION.txt.
draw() {
  local dir=$1 seed=$2
  mkdir -p "$dir"
  pg synth --seed "$seed" --images 1000 --coarse-images 2000 --cross-contrast 0.2 --out "$dir/bench" >/dev/null 2>>"$log"
  for p in $precisions; do
    # A copy of each descriptor naming its own store, so the precisions sit side by side.
    for d in coarse-images test-shifted-images; do
      sed "0,/^name = \"\(.*\)\"/s||name = \"\1-$p\"\nembeddings = \"$d-$p.safetensors\"|" "$dir/bench/$d.toml" > "$dir/bench/$d-$p.toml"
      pg embed "$dir/bench/$d-$p.toml" --encoder "$encoder" --device cpu --precision "$p" >/dev/null 2>>"$log"
    done
    pg train --train "$dir/bench/coarse-images-$p.toml" --device cpu --out "$dir/probe-$p.safetensors" >/dev/null 2>>"$log"
    pg eval --model "$dir/probe-$p.safetensors" --data "$dir/bench/test-shifted-images-$p.toml" --device cpu --json "$dir/eval-$p.json" >/dev/null 2>>"$log"
    sed -n 's/.*"auroc": *\([0-9.]*\).*/\1/p' "$dir/eval-$p.json" | head -1 > "$dir/auroc-$p.txt"
  done
}

dirs="$data"
draw "$data" 0
for seed in 1 2 3 4; do
  draw "$data/seed-$seed" "$seed"
  dirs="$dirs $data/seed-$seed"
done
{
  echo "| precision | test AUROC | difference to f32 | five draws: mean difference [range] |"
  echo "|---|---|---|---|"
  for p in $precisions; do
    # Each draw's difference, the first draw's first.
    for d in $dirs; do echo "$(cat "$d/auroc-$p.txt") $(cat "$d/auroc-f32.txt")"; done |
      awk -v p="$p" 'function s(x) { x = sprintf("%+.4f", x); return x == "-0.0000" ? "+0.0000" : x }
        { d = $1 - $2; sum += d; if (NR == 1) { first = $1; lo = d; hi = d; first_d = d } if (d < lo) lo = d; if (d > hi) hi = d }
        END { printf "| %s | %.4f | %s | %s [%s, %s] |\n", p, first, s(first_d), s(sum / NR), s(lo), s(hi) }'
  done
} > "$data/table.md"
cp "$data/table.md" "$docs/precision.md"
echo "$docs/precision.md"
