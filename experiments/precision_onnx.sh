#!/usr/bin/env bash
# The guards of experiments/precision.sh as onnxruntime runs them: the
# probe trained on f32 embeddings exported whole (`export-onnx --pipeline`)
# in f32, the probe trained on int8 embeddings exported in int8, and
# onnxruntime's own `quantize_dynamic` applied to the f32 export, each
# scoring the same 1,000 test images in batches of 32. Runs precision.sh
# first, then writes docs/precision-onnx.md (PAIRGUARD_DOCS, PAIRGUARD_RESULTS
# and PAIRGUARD as there). Needs PAIRGUARD_PYTHON (default python3) with
# onnxruntime, onnx, numpy and Pillow.
set -euo pipefail
cd "$(dirname "$0")/.."
pg() { if [ -n "${PAIRGUARD:-}" ]; then "$PAIRGUARD" "$@"; else cargo run -q --bin pairguard -- "$@"; fi; }
python="${PAIRGUARD_PYTHON:-python3}"
results="${PAIRGUARD_RESULTS:-results}"
data="$results/precision-data"
docs="${PAIRGUARD_DOCS:-docs}"
encoder=crates/clip/tests/fixtures/clip/hf-quickgelu
"$python" -c "import onnxruntime, onnx, numpy, PIL" || { echo "experiments/precision_onnx.sh: $python needs onnxruntime, onnx, numpy and Pillow" >&2; exit 1; }
bash experiments/precision.sh >/dev/null
log="$data/onnx-log.txt"
: > "$log"
trap 'echo "experiments/precision_onnx.sh failed; the last messages ($log):" >&2; tail -5 "$log" >&2' ERR
pg export-onnx --model "$data/probe-f32.safetensors" --pipeline --encoder "$encoder" --out "$data/f32.onnx" >/dev/null 2>>"$log"
pg export-onnx --model "$data/probe-int8.safetensors" --pipeline --encoder "$encoder" --precision int8 --out "$data/int8.onnx" >/dev/null 2>>"$log"
# An int8 graph quantises each product's input over the whole batch, so its
# scores depend on the batch: scored in batches of 32 and one image at a time.
for batch in 32 1; do
  "$python" experiments/onnx_auroc.py "$data/bench/test-shifted-images.jsonl" "$batch" \
    "f32=$data/f32.onnx" "int8=$data/int8.onnx" "qd:f32=$data/qd.onnx" > "$data/onnx-auroc-$batch.txt" 2>>"$log"
done
f32_auroc=$(sed -n 's/.*"auroc": *\([0-9.]*\).*/\1/p' "$data/eval-f32.json" | head -1)
{
  echo "| graph in onnxruntime | test AUROC, batches of 32 | difference to pairguard's f32 | one image at a time | difference |"
  echo "|---|---|---|---|---|"
  paste -d' ' "$data/onnx-auroc-32.txt" "$data/onnx-auroc-1.txt" | while read -r name a32 _ a1; do
    case "$name" in
      f32) label="f32 export" ;;
      int8) label="int8 export" ;;
      qd:f32) label="\`quantize_dynamic\` of the f32 export" ;;
    esac
    awk -v l="$label" -v a="$a32" -v c="$a1" -v b="$f32_auroc" 'function d(x) { x = sprintf("%+.4f", x - b); return x == "-0.0000" ? "+0.0000" : x }
      BEGIN { printf "| %s | %.4f | %s | %.4f | %s |\n", l, a, d(a), c, d(c) }'
  done
} > "$docs/precision-onnx.md"
echo "$docs/precision-onnx.md"
