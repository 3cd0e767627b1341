#!/usr/bin/env bash
# gemmkit's products (`bench_products`) built against the gemmkit release
# and against vendor/gemmkit (vendor/README.md), the two binaries taking
# turns round by round in one run.
#
#   bash benchmarks/gemmkit_patch.sh [ROUNDS]     # default 3
#
# Builds the release variant by removing Cargo.toml's [patch.crates-io]
# entry for the length of one `cargo build` (restored on exit, whatever
# happens), then the workspace as it is. Prints each round's figures and
# both builds' medians [range] per thread, in G multiply-adds/s.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
target=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
cp Cargo.toml Cargo.lock "$work/"
trap 'cp "$work/Cargo.toml" "$work/Cargo.lock" .; rm -rf "$work"' EXIT

sed '/^\[patch\.crates-io\]$/,/^gemmkit = /d' "$work/Cargo.toml" > Cargo.toml
grep -q 'path = "vendor/gemmkit"' Cargo.toml && { echo "error: the [patch.crates-io] entry was not removed" >&2; exit 1; }
cargo build -q --workspace --examples
cp "$target/debug/examples/bench_products" "$work/release"
cp "$work/Cargo.toml" "$work/Cargo.lock" .
cargo build -q --workspace --all-targets --locked
cp "$target/debug/examples/bench_products" "$work/patched"

"$work/patched" --rounds 1 | sed -n 2p
for round in $(seq 1 "$rounds"); do
  for build in release patched; do
    # The summary lines of a one-round run: "N thread(s): ... bf16 B [B, B], int8 I [I, I]; ..."
    "$work/$build" --rounds 1 | grep 'median \[range\]' | while read -r line; do
      threads=${line%% thread*}
      bf16=$(sed -E 's/.*bf16 ([0-9.]+) .*/\1/' <<<"$line")
      int8=$(sed -E 's/.*, int8 ([0-9.]+) \[.*/\1/' <<<"$line")
      echo "round $round: $build, $threads threads: bf16 $bf16, int8 $int8" | tee -a "$work/runs"
    done
  done
done

echo
for build in release patched; do
  for threads in $(awk '{ print $4 }' "$work/runs" | sort -u); do
    for precision in bf16 int8; do
      col=$([ "$precision" = bf16 ] && echo 7 || echo 9)
      figures=$(awk -v b="$build," -v t="$threads" -v c="$col" '$3 == b && $4 == t { print $c }' "$work/runs" | tr -d ',' | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.0f [%.0f, %.0f]", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR] }')
      echo "gemmkit $build, $threads threads, $precision: median [range] $figures G multiply-adds/s per thread"
    done
  done
done
