#!/usr/bin/env bash
# What reduced precision does to a guard: the synthetic benchmark's images
# (2,000 coarse training images, 1,000 shortcut-free test images, a faint
# cross: contrast 0.2) embedded
# by the fixture encoder in f32, bf16 and int8 (the CPU paths), a linear
# probe trained on each precision's training embeddings and scored on the
# same precision's test embeddings. Writes docs/precision.md (PAIRGUARD_DOCS
# names another folder; PAIRGUARD_RESULTS the working folder). Run from
# anywhere; PAIRGUARD names the binary (default: cargo run).
set -euo pipefail
cd "$(dirname "$0")/.."
pg() { if [ -n "${PAIRGUARD:-}" ]; then "$PAIRGUARD" "$@"; else cargo run -q --bin pairguard -- "$@"; fi; }
results="${PAIRGUARD_RESULTS:-results}"
data="$results/precision-data"
docs="${PAIRGUARD_DOCS:-docs}"
encoder=crates/clip/tests/fixtures/clip/hf-quickgelu
mkdir -p "$data" "$docs"
# Each command's messages go to a log, shown when one fails.
log="$data/log.txt"
: > "$log"
trap 'echo "experiments/precision.sh failed; the last messages ($log):" >&2; tail -5 "$log" >&2' ERR

pg synth --images 1000 --coarse-images 2000 --cross-contrast 0.2 --out "$data/bench" >/dev/null 2>>"$log"
{
  echo "| precision | test AUROC | difference to f32 |"
  echo "|---|---|---|"
} > "$data/table.md"
for p in f32 bf16 int8; do
  # A copy of each descriptor naming its own store, so the precisions sit side by side.
  for d in coarse-images test-shifted-images; do
    sed "0,/^name = \"\(.*\)\"/s||name = \"\1-$p\"\nembeddings = \"$d-$p.safetensors\"|" "$data/bench/$d.toml" > "$data/bench/$d-$p.toml"
    pg embed "$data/bench/$d-$p.toml" --encoder "$encoder" --device cpu --precision "$p" >/dev/null 2>>"$log"
  done
  pg train --train "$data/bench/coarse-images-$p.toml" --device cpu --out "$data/probe-$p.safetensors" >/dev/null 2>>"$log"
  pg eval --model "$data/probe-$p.safetensors" --data "$data/bench/test-shifted-images-$p.toml" --device cpu --json "$data/eval-$p.json" >/dev/null 2>>"$log"
  auroc=$(sed -n 's/.*"auroc": *\([0-9.]*\).*/\1/p' "$data/eval-$p.json" | head -1)
  [ "$p" = f32 ] && f32_auroc=$auroc
  awk -v p="$p" -v a="$auroc" -v b="$f32_auroc" 'BEGIN { printf "| %s | %.4f | %+.4f |\n", p, a, a - b }' >> "$data/table.md"
done
cp "$data/table.md" "$docs/precision.md"
echo "$docs/precision.md"
