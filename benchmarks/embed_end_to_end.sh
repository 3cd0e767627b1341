#!/usr/bin/env bash
# `pairguard embed` end to end, whole process (start, weights, decoding,
# preprocessing, the encoder, the store), against what a torch user writes
# (benchmarks/embed_peer.py: open_clip's eval transform in a DataLoader, the
# image tower in fp32 or bf16), on the same JPEGs and the same seeded random
# weights, taking turns round by round:
#
#   bash benchmarks/embed_end_to_end.sh [ViT-B-32|ViT-L-14] [images] [rounds]
#
# (defaults: ViT-B-32, 320 images, 3 rounds). Prints each run's wall time
# and peak memory (GNU time), then per side the median images/s with its
# per-round range, the ratio to open_clip's fastest, and each side's worst
# cosine to open_clip fp32's embeddings. Both sides run on every core:
# pairguard's rayon pool and decoding workers; torch's threads, OpenMP and
# the DataLoader's workers. Allocators: pairguard's mimalloc keeping freed
# pages; glibc malloc for the peer, told to keep them as in the other
# benchmarks. Needs PAIRGUARD_PYTHON (default python3) with torch,
# open_clip_torch, safetensors and Pillow; PAIRGUARD names the binary
# (default: $CARGO_TARGET_DIR/debug/pairguard, built by
# `cargo build --workspace --all-targets`).
set -euo pipefail
model="${1:-ViT-B-32}"
images="${2:-320}"
rounds="${3:-3}"
cd "$(dirname "$0")/.."
python="${PAIRGUARD_PYTHON:-python3}"
pg="${PAIRGUARD:-${CARGO_TARGET_DIR:-target}/debug/pairguard}"
[ -x "$pg" ] || { echo "$pg: not built (cargo build --workspace --all-targets, or set PAIRGUARD)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is needed for peak memory" >&2; exit 1; }
threads=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PAIRGUARD_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads RAYON_NUM_THREADS=$threads
peer_malloc="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=68719476736:glibc.malloc.top_pad=67108864"

echo "embed end to end: $model, $images JPEGs of 480-800 px, batch 32, rounds: $rounds"
echo "CPU: $("$pg" devices 2>/dev/null | sed -n 's/^ *cpu: *//p' | head -1) ($threads cores; lscpu: $(lscpu | sed -n 's/^Model name: *//p'))"
echo "threads: $threads on both sides; allocators: pairguard mimalloc keeping freed pages, the peer glibc malloc keeping them (GLIBC_TUNABLES=$peer_malloc)"
"$python" -c "import torch, open_clip; print(f'peer: torch {torch.__version__}, open_clip {open_clip.__version__}')"
"$python" benchmarks/embed_peer.py setup "$work" "$model" "$images"

# One run of a side: wall seconds and peak resident MiB.
run() {
  local side=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2> "$work/err" || { echo "$side failed:" >&2; tail -5 "$work/err" >&2; exit 1; }
  read -r secs kib < "$work/time"
  awk -v s="$side" -v t="$secs" -v k="$kib" -v n="$images" -v r="$round" \
    'BEGIN { printf "round %d: %-16s %7.2f s %8.2f images/s  peak %6.0f MiB\n", r, s, t, n / t, k / 1024 }' | tee -a "$work/runs"
}

sides="pairguard-f32 pairguard-bf16 pairguard-int8 open_clip-fp32 open_clip-bf16"
for round in $(seq 1 "$rounds"); do
  for side in $sides; do
    # Each run starts afresh (a store or parts folder left would be resumed).
    rm -rf "$work/$side".*
    case "$side" in
      pairguard-*)
        p=${side#pairguard-}
        run "$side" "$pg" embed "$work/images.toml" --encoder "$work/$model" --device cpu --precision "$p" --out "$work/$side.safetensors"
        ;;
      open_clip-*)
        p=${side#open_clip-}
        run "$side" env GLIBC_TUNABLES="$peer_malloc" "$python" benchmarks/embed_peer.py embed "$work" "$model" "$p" "$work/$side.npy"
        ;;
    esac
  done
done

# Per side: "median min max" of its rounds' images/s.
declare -A spread
for side in $sides; do
  spread[$side]=$(awk -v s="$side" '$3 == s { print $6 }' "$work/runs" | sort -g |
    awk '{ v[NR] = $1 } END { print ((NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }')
done
fastest_peer=$(for side in $sides; do case "$side" in open_clip-*) echo "${spread[$side]%% *}" ;; esac; done | sort -g | tail -1)

echo
for side in $sides; do
  read -r median low high <<< "${spread[$side]}"
  memory=$(awk -v s="$side" '$3 == s { print $9 }' "$work/runs" | sort -g | tail -1)
  case "$side" in
    pairguard-*) store="$work/$side.safetensors" ;;
    open_clip-*) store="$work/$side.npy" ;;
  esac
  cos=$("$python" benchmarks/embed_peer.py cosine "$work/open_clip-fp32.npy" "$store")
  awk -v s="$side" -v m="$median" -v lo="$low" -v hi="$high" -v f="$fastest_peer" -v mem="$memory" -v c="$cos" \
    'BEGIN { printf "%s median [range] %.2f [%.2f, %.2f] images/s (%.2fx open_clip'"'"'s fastest), peak memory up to %s MiB; against open_clip fp32: %s\n", s, m, lo, hi, m / f, mem, c }'
done
