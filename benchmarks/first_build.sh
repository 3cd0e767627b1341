#!/usr/bin/env bash
# The first build a newcomer waits for: the README's first command
# (`cargo run -p pairguard-cli -- sweep experiments/demo.toml`) from a fresh
# clone into an empty target folder, then the demo sweep itself, then
# `cargo install` of the binary and the tests' build on top. Prints the
# CPU, the build's wall time, its compile time summed over units, and the
# slowest units from cargo's timings report, as Markdown for
# docs/benchmarks.md:
#
#   bash benchmarks/first_build.sh [REV] > first-build.txt   # REV defaults to HEAD
#
# Nothing else should run on the machine meanwhile: the build uses every core.
# The clone and its target folder are removed afterwards; the timings report
# is kept in results/first-build-timings.html.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rev="${1:-HEAD}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

git clone -q "$repo" "$work/clone"
git -C "$work/clone" checkout -q "$(git -C "$repo" rev-parse "$rev")"
cd "$work/clone"
export CARGO_TARGET_DIR="$work/target" CARGO_INCREMENTAL=0
# Every crate downloaded first, so that the figure is compiling alone.
cargo fetch --locked -q

start=$(date +%s)
cargo build -p pairguard-cli --locked --timings 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
build=$(( $(date +%s) - start ))
start=$(date +%s)
cargo run -q -p pairguard-cli --locked -- sweep experiments/demo.toml --device cpu --out "$work/demo" >/dev/null
sweep=$(( $(date +%s) - start ))
# The README's route to a `pairguard` on the PATH (with --path, cargo uses
# the workspace's target folder, here CARGO_TARGET_DIR).
start=$(date +%s)
cargo install -q --locked --offline --path crates/cli --profile dev --root "$work/bin"
install=$(( $(date +%s) - start ))
# The README's second command builds the tests on top.
start=$(date +%s)
cargo test -q --workspace --locked --no-run 2>"$work/tests.log" || { cat "$work/tests.log" >&2; exit 1; }
tests=$(( $(date +%s) - start ))
mkdir -p "$repo/results"
cp "$CARGO_TARGET_DIR"/cargo-timings/cargo-timing.html "$repo/results/first-build-timings.html"

echo "- commit: $(git rev-parse --short HEAD)"
family=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -1)
model=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1) (family $family, model $model), $(nproc) cores; rustc $(rustc --version | cut -d' ' -f2)"
echo "- build (\`cargo build -p pairguard-cli\`, what \`cargo run\` builds): $((build / 60)) min $((build % 60)) s of wall time"
echo "- the demo sweep afterwards: ${sweep} s"
echo "- then \`cargo install --locked --path crates/cli --profile dev\` into the same target folder: ${install} s"
echo "- then the tests' build (\`cargo test --workspace --no-run\`): $((tests / 60)) min $((tests % 60)) s"
python3 - "$CARGO_TARGET_DIR/cargo-timings/cargo-timing.html" <<'EOF'
import json, re, sys
html = open(sys.argv[1]).read()
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S).group(1))
print(f"- {len(units)} units, {sum(u['duration'] for u in units):,.0f} s of compiling summed over them")
print()
print("| # | unit | kind | seconds |")
print("|---|---|---|---|")
for i, u in enumerate(sorted(units, key=lambda u: -u["duration"])[:20], 1):
    kind = "build script (run)" if u["mode"] == "run-custom-build" else u["target"].strip() or "lib"
    print(f"| {i} | {u['name']} {u['version']} | {kind} | {u['duration']:.1f} |")
EOF
