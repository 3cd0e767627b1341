#!/usr/bin/env bash
# A vision-language judge beside trained guards on the synthetic benchmark's
# images, as UnsafeBench sets them side by side. The judge is simulated
# (experiments/simulated_judge.py, which reads the cross from the pixels and
# speaks `pairguard judge`'s command protocol): no real VLM is reachable
# where these figures are made. Makes the benchmark's images with a faint
# cross (contrast 0.2) and the coarse data's scene shortcut, embeds them with
# the fixture encoder, judges the shortcut-free test images, trains a probe
# on coarse images and one on the given image pairs, and writes
#   docs/judge/compare.{md,csv}, roc.png, f1-by-category.png: every guard on one page;
#   docs/judge/sweep.md, sweep-shifted-auroc.png: the sample-efficiency sweep
#     of experiments/generated-pairs.toml on the given pairs, with the judge's line.
# (PAIRGUARD_RESULTS and PAIRGUARD_DOCS name other folders.) Needs python3.
# Run from anywhere; PAIRGUARD names the binary (default: cargo run).
set -euo pipefail
cd "$(dirname "$0")/.."
pg() { if [ -n "${PAIRGUARD:-}" ]; then "$PAIRGUARD" "$@"; else cargo run -q --bin pairguard -- "$@"; fi; }
results="${PAIRGUARD_RESULTS:-results}"
data="$results/judge-data"
docs="${PAIRGUARD_DOCS:-docs}/judge"
encoder=crates/clip/tests/fixtures/clip/hf-quickgelu
mkdir -p "$data" "$docs"

pg synth --images 1000 --coarse-images 2000 --cross-contrast 0.2 --out "$data/bench" >/dev/null
for d in coarse-images images test-shifted-images; do
  pg embed "$data/bench/$d.toml" --encoder "$encoder" --device cpu >/dev/null
done
printf 'kind = "command"\ncommand = ["python3", "%s"]\ntimeout_s = 60\n' "$PWD/experiments/simulated_judge.py" > "$data/judge.toml"
pg judge --data "$data/bench/test-shifted-images.toml" --policy "$data/bench/policy.toml" --judge "$data/judge.toml" \
  --out "$data/judged" --cache "$data/cache" >/dev/null
pg train --train "$data/bench/coarse-images.toml" --device cpu --out "$data/probe-on-coarse-images.safetensors" >/dev/null
pg train --train "$data/bench/images.toml" --device cpu --out "$data/probe-on-image-pairs.safetensors" >/dev/null
pg compare --data "$data/bench/test-shifted-images.toml" \
  --model "$data/probe-on-coarse-images.safetensors" --model "$data/probe-on-image-pairs.safetensors" \
  --scores "simulated judge=$data/judged/scores.jsonl" --device cpu --out "$docs" >/dev/null

# The sweep of experiments/generated-pairs.toml on the given image pairs,
# with the judge's line.
mkdir -p "$data/experiments"
sed -e "s|\.\./results/generated-pairs-data/|../|" -e "s|^pairs = .*|pairs = \"../bench/images.toml\"|" -e "s|^name = .*|name = \"judge\"|" \
  experiments/generated-pairs.toml > "$data/experiments/sweep.toml"
printf '\n[[baselines]]\nkind = "scores"\nname = "simulated judge"\nscores = "../judged/scores.jsonl"\ntest = "shifted"\n' >> "$data/experiments/sweep.toml"
pg sweep "$data/experiments/sweep.toml" --device cpu --out "$results/judge-sweep" >/dev/null
sed -n '/^## Baselines/,/^## Test set `shifted`/p' "$results/judge-sweep/report.md" | sed '$d' > "$docs/sweep.md"
cp "$results/judge-sweep/plots/shifted_auroc.png" "$docs/sweep-shifted-auroc.png"
echo "$docs/compare.md"
