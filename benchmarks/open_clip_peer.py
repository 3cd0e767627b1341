"""open_clip's image tower (ViT-B-32 or ViT-L-14, random weights, QuickGELU
as OpenAI's checkpoints) on the CPU: the peer for bench_encoder.

    python benchmarks/open_clip_peer.py [batch] [batches] [fp32|bf16] [ViT-B-32|ViT-L-14]
bf16 casts the weights and the input, as a torch user would.
Prints `images_per_s=<value>` for the caller to parse.
"""
import os
import sys
import time

import open_clip
import torch

# The thread count the caller pins both sides to (bench_* --threads).
if "PAIRGUARD_THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["PAIRGUARD_THREADS"]))

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 32
batches = int(sys.argv[2]) if len(sys.argv) > 2 else 3
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[sys.argv[3] if len(sys.argv) > 3 else "fp32"]
name = sys.argv[4] if len(sys.argv) > 4 else "ViT-B-32"
torch.manual_seed(0)
model = open_clip.create_model(name, pretrained=None, force_quick_gelu=True).visual.eval().to(dtype)
x = torch.randn(batch, 3, 224, 224).to(dtype)
with torch.inference_mode():
    model(x)
    t = time.perf_counter()
    for _ in range(batches):
        model(x)
    dt = time.perf_counter() - t
ips = batch * batches / dt
print(f"open_clip {open_clip.__version__} {name} (torch {torch.__version__}, {torch.get_num_threads()} threads, {dtype}) batch {batch:>3}: {ips:7.2f} images/s")
print(f"images_per_s={ips}")
