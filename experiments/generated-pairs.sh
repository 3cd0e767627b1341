#!/usr/bin/env bash
# Makes the data of experiments/generated-pairs.toml and given-image-pairs.toml
# and runs both sweeps: the synthetic benchmark's images with a faint cross,
# embedded by the fixture encoder, 500 coarse images edited into pairs by the
# built-in editor and verified by a guard trained on the coarse images.
# Run from the repository root; PAIRGUARD names the binary (default: cargo run).
set -euo pipefail
cd "$(dirname "$0")/.."
pg() { if [ -n "${PAIRGUARD:-}" ]; then "$PAIRGUARD" "$@"; else cargo run -q -p pairguard-cli -- "$@"; fi; }
out=results/generated-pairs-data
encoder=crates/clip/tests/fixtures/clip/hf-quickgelu
pg synth --images 1000 --coarse-images 2000 --cross-contrast 0.2 --out "$out/bench" >/dev/null
for d in coarse-images images test-shifted-images; do
  pg embed "$out/bench/$d.toml" --encoder "$encoder" --device cpu >/dev/null
done
pg train --train "$out/bench/coarse-images.toml" --device cpu --out "$out/verifier.safetensors" >/dev/null
pg pairs generate --data "$out/bench/coarse-images.toml" --policy "$out/bench/policy.toml" --editor synthetic \
  --verifier "$out/verifier.safetensors" --sources 500 --device cpu --out "$out/pairs" >/dev/null
pg embed "$out/pairs/pairs.toml" --encoder "$encoder" --device cpu >/dev/null
pg sweep experiments/generated-pairs.toml --device cpu
pg sweep experiments/given-image-pairs.toml --device cpu
