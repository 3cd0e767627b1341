"""The operations of bench_encoder_ops in torch, on the CPU, same shapes.

    python benchmarks/torch_ops_peer.py
"""
import os
import time

import torch

# The thread count the caller pins both sides to (bench_* --threads).
if "PAIRGUARD_THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["PAIRGUARD_THREADS"]))

ROWS, HIDDEN, MLP = 32 * 50, 768, 3072


def time_ms(f):
    f()
    t = time.perf_counter()
    for _ in range(5):
        f()
    return (time.perf_counter() - t) * 1e3 / 5


def report(name, ms, flops=0.0):
    rate = f"  {flops / ms / 1e6:6.1f} GFLOP/s" if flops else ""
    print(f"torch {name:<28} {ms:8.2f} ms{rate}")


torch.manual_seed(0)
x, h = torch.randn(ROWS, HIDDEN), torch.randn(ROWS, MLP)
total = 0.0
with torch.inference_mode():
    for name, a, k, n in [
        ("qkv_proj 1600x768x2304", x, HIDDEN, 3 * HIDDEN),
        ("out_proj 1600x768x768", x, HIDDEN, HIDDEN),
        ("fc1 1600x768x3072", x, HIDDEN, MLP),
        ("fc2 1600x3072x768", h, MLP, HIDDEN),
    ]:
        w = torch.randn(k, n)
        ms = time_ms(lambda: a @ w)
        report(name, ms, 2.0 * ROWS * k * n)
        total += ms
    ms = time_ms(lambda: h * torch.sigmoid(1.702 * h))
    report("quick_gelu 1600x3072", ms)
    total += ms
    bias = torch.randn(MLP)
    report("bias add 1600x3072", time_ms(lambda: h + bias))
    gamma, beta = torch.randn(HIDDEN), torch.randn(HIDDEN)
    ms = time_ms(lambda: torch.nn.functional.layer_norm(x, (HIDDEN,), gamma, beta))
    report("layer_norm 1600x768", ms)
    total += 2 * ms
    qkv = torch.randn(32, 50, 3, 12, 64)

    def attention():
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        s = (q * 0.125) @ k.transpose(2, 3)
        return (s.softmax(-1) @ v).transpose(1, 2).reshape(ROWS, HIDDEN)

    ms = time_ms(attention)
    report("attention core (12 heads)", ms)
    total += ms
print(f"torch layer (main operations)      {total:8.2f} ms  -> about {32 / (12 * total / 1e3):.2f} images/s for 12 layers "
      f"({torch.get_num_threads()} threads, torch {torch.__version__})")
