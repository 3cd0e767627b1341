#!/usr/bin/env bash
# Generated pairs against given ones, and what verification is worth when
# the editor is imperfect. Makes the synthetic benchmark's images with a
# faint cross, embedded by the fixture encoder; trains a verifier on the
# coarse images; edits 500 coarse images into pairs with the built-in editor
# at five settings (an oracle; moderate, severe and broken: 40%, 80% and
# 100% of edits with a defect; severe without a mask); and runs experiments/generated-pairs.toml once per pair pool: the
# benchmark's given pairs, and each editor's verified and unverified pairs.
# Writes results/generated-pairs/ and, for the README, docs/generated-pairs/
# (PAIRGUARD_RESULTS and PAIRGUARD_DOCS name other folders for them).
# Run from anywhere; PAIRGUARD names the binary (default: cargo run).
set -euo pipefail
cd "$(dirname "$0")/.."
pg() { if [ -n "${PAIRGUARD:-}" ]; then "$PAIRGUARD" "$@"; else cargo run -q --bin pairguard -- "$@"; fi; }
results="${PAIRGUARD_RESULTS:-results}"
data="$results/generated-pairs-data"
out="$results/generated-pairs"
docs="${PAIRGUARD_DOCS:-docs}/generated-pairs"
encoder=crates/clip/tests/fixtures/clip/hf-quickgelu
mkdir -p "$data/editors" "$data/experiments" "$out" "$docs"

pg synth --images 1000 --coarse-images 2000 --cross-contrast 0.2 --out "$data/bench" >/dev/null
for d in coarse-images images test-shifted-images; do
  pg embed "$data/bench/$d.toml" --encoder "$encoder" --device cpu >/dev/null
done
pg train --train "$data/bench/coarse-images.toml" --device cpu --out "$data/verifier.safetensors" >/dev/null

# The editors: each edit draws at most one defect (see `Realism`).
editor() {
  printf 'kind = "synthetic"\ntruth = "../bench/images-truth.json"\nrealism = { %s }\n' "$2" > "$data/editors/$1.toml"
}
editor oracle ""
editor moderate "fail = 0.1, partial = 0.1, outside = 0.1, resize = 0.1"
editor severe "fail = 0.3, partial = 0.2, outside = 0.2, resize = 0.1"
editor severe-no-mask "fail = 0.3, partial = 0.2, outside = 0.2, resize = 0.1, mask = false"
editor broken "fail = 0.7, partial = 0.3"
editors="oracle moderate severe severe-no-mask broken"
for e in $editors; do
  pg pairs generate --data "$data/bench/coarse-images.toml" --policy "$data/bench/policy.toml" --editor "$data/editors/$e.toml" \
    --verifier "$data/verifier.safetensors" --sources 500 --device cpu --out "$data/pairs-$e" >/dev/null
  for set in pairs pairs-unverified; do
    pg embed "$data/pairs-$e/$set.toml" --encoder "$encoder" --device cpu >/dev/null
  done
done

# experiments/generated-pairs.toml with another pair pool (a path under $data).
sweep() {
  sed -e "s|\.\./results/generated-pairs-data/|../|" -e "s|^pairs = .*|pairs = \"../$2\"|" -e "s|^name = .*|name = \"generated-pairs-$1\"|" \
    experiments/generated-pairs.toml > "$data/experiments/$1.toml"
  pg sweep "$data/experiments/$1.toml" --device cpu --out "$out/$1" >/dev/null
}
sweep given bench/images.toml
for e in $editors; do
  sweep "$e-verified" "pairs-$e/pairs.toml"
  sweep "$e-unverified" "pairs-$e/pairs-unverified.toml"
done

pg overlay --test shifted --metric auroc --out "$docs" \
  --title "Generated pairs from imperfect editors, verified or not" \
  --curve "coarse data only=$out/given:coarse" \
  --curve "given pairs=$out/given:ratio-0.5" \
  --curve "moderate editor, verified=$out/moderate-verified:ratio-0.5" \
  --curve "moderate editor, unverified=$out/moderate-unverified:ratio-0.5" \
  --curve "severe editor, verified=$out/severe-verified:ratio-0.5" \
  --curve "severe editor, unverified=$out/severe-unverified:ratio-0.5" \
  --curve "broken editor, verified=$out/broken-verified:ratio-0.5" \
  --curve "broken editor, unverified=$out/broken-unverified:ratio-0.5" >/dev/null
# What the README quotes: each editor's verification against the truth, and
# each sweep's report (curves with intervals, budgets to reach AUROC 0.9).
for e in $editors; do
  sed -n '/^Verification against/,/^The pair set/p' "$data/pairs-$e/report.md" | sed '$d' > "$docs/verification-$e.md"
done
for run in given $(for e in $editors; do echo "$e-verified $e-unverified"; done); do
  sed -n '/^## Sample efficiency/,$p' "$out/$run/report.md" > "$docs/sweep-$run.md"
done
echo "$docs/overlay.png"
