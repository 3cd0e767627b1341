#!/usr/bin/env bash
# One core's peak rate of f32 FMAs, bf16 dot products and int8 dot
# products (512-bit), which bound what `--precision bf16` and `int8` can
# gain over f32 on this CPU. Needs gcc 10 or later and a CPU with AVX-512
# BF16 and VNNI; prints the CPU first:
#
#   bash benchmarks/dot_products.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(mktemp -d)/dot_products"
trap 'rm -rf "$(dirname "$bin")"' EXIT
gcc -O2 -mavx512f -mavx512bw -mavx512vnni -mavx512bf16 -o "$bin" "$here/dot_products.c"
family=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -1)
model=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1) (family $family, model $model), one core; gcc $(gcc -dumpfullversion)"
"$bin"
