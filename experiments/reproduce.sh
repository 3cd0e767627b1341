#!/usr/bin/env bash
# Regenerates every figure the README and docs/benchmarks.md quote, from
# the code, into docs/ (and their full results into results/):
#
#   bash experiments/reproduce.sh              # the experiments (a few minutes)
#   bash experiments/reproduce.sh --benchmarks # and the speed benchmarks (about 45 minutes, needs the peers' Python)
#
# - the demo (experiments/demo.toml): docs/demo-shifted-auroc.png and
#   docs/demo-shifted-robust-accuracy.png; the README's figures from it are
#   checked by crates/experiments/tests/readme.rs;
# - policy text as a guard (demo-text.toml, demo-text-as-data.toml):
#   docs/demo-text-shifted-auroc.png and docs/demo-text/;
# - generated pairs and imperfect editors (experiments/generated-pairs.sh):
#   docs/generated-pairs/, checked by tests/figures.rs;
# - a simulated judge beside trained guards (experiments/judge.sh, needs
#   python3): docs/judge/, checked by tests/figures.rs;
# - a guard on f32, bf16 and int8 embeddings (experiments/precision.sh):
#   docs/precision.md, and its f32 and int8 exports with onnxruntime's
#   quantize_dynamic in onnxruntime (experiments/precision_onnx.sh, needs
#   PAIRGUARD_PYTHON with onnxruntime, onnx and Pillow):
#   docs/precision-onnx.md, both checked by tests/figures.rs;
# - with --benchmarks, each benchmark's whole output, with its peer's, in
#   docs/benchmarks/*.txt (PAIRGUARD_PYTHON names a Python with torch,
#   open_clip_torch, numpy, scikit-learn, safetensors, onnxruntime, onnx and
#   Pillow).
# Run from anywhere; PAIRGUARD names the binary (default: built here).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/pairguard-target}"
cargo build -q --workspace --all-targets
export PAIRGUARD="${PAIRGUARD:-$CARGO_TARGET_DIR/debug/pairguard}"

echo "demo" >&2
"$PAIRGUARD" sweep experiments/demo.toml --device cpu --out results/demo >/dev/null
cp results/demo/plots/shifted_auroc.png docs/demo-shifted-auroc.png
cp results/demo/plots/shifted_robust_accuracy.png docs/demo-shifted-robust-accuracy.png

echo "policy text as a guard" >&2
mkdir -p docs/demo-text
for e in demo-text demo-text-as-data; do
  "$PAIRGUARD" sweep "experiments/$e.toml" --device cpu --out "results/$e" >/dev/null
done
# The README's table across budgets: each sweep's shifted-test tables and
# where each strategy overtakes the zero-shot guard (tests/figures.rs
# checks the README against these files).
for e in demo demo-text demo-text-as-data; do
  { sed -n '/overtakes each baseline/,/^## Test set `coarse`/p' "results/$e/report.md" | sed '$d'
    sed -n '/^## Test set `shifted`/,/^## Test set `pairs`/p' "results/$e/report.md" | sed '$d'; } > "docs/demo-text/$e.md"
done
cp results/demo-text/plots/shifted_auroc.png docs/demo-text-shifted-auroc.png

echo "generated pairs" >&2
bash experiments/generated-pairs.sh

echo "a judge beside trained guards" >&2
bash experiments/judge.sh

echo "a guard in each precision, and exported" >&2
bash experiments/precision_onnx.sh

if [ "${1:-}" = "--benchmarks" ]; then
  mkdir -p docs/benchmarks
  examples="$CARGO_TARGET_DIR/debug/examples"
  export PAIRGUARD_PYTHON="${PAIRGUARD_PYTHON:-python3}"
  for bench in "bench_probe --rounds 5" "bench_encoder 32 8 --rounds 7" "bench_encoder 8 1 --model vit-l-14 --rounds 3" "bench_encoder_ops" "bench_attack 16 --rounds 3" "bench_onnx 32 2 --rounds 5" "bench_products --rounds 3"; do
    name=${bench%% *}
    case "$bench" in *vit-l-14*) name=bench_encoder_vit-l-14 ;; esac
    echo "$name" >&2
    # shellcheck disable=SC2086 # the arguments are split on purpose
    "$examples/"$bench > "docs/benchmarks/$name.txt"
  done
  echo "embed end to end" >&2
  bash benchmarks/embed_end_to_end.sh ViT-B-32 320 3 > docs/benchmarks/embed_end_to_end.txt
  bash benchmarks/embed_end_to_end.sh ViT-L-14 48 3 > docs/benchmarks/embed_end_to_end_vit-l-14.txt
  echo "gemmkit, released and patched" >&2
  bash benchmarks/gemmkit_patch.sh 3 > docs/benchmarks/gemmkit_patch.txt
fi
