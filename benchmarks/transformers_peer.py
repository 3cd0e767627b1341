"""transformers' CLIP ViT-B/32 image tower (random weights, fp32) as a peer
for bench_encoder on a GPU machine, where open_clip may be absent.

    python benchmarks/transformers_peer.py [batch] [batches] [cpu|cuda]
Prints `images_per_s=<value>`.
"""
import sys
import time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 32
batches = int(sys.argv[2]) if len(sys.argv) > 2 else 3
device = sys.argv[3] if len(sys.argv) > 3 else "cpu"
torch.manual_seed(0)
cfg = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       image_size=224, patch_size=32, projection_dim=512, hidden_act="quick_gelu")
model = CLIPVisionModelWithProjection(cfg).eval().to(device)
x = torch.randn(batch, 3, 224, 224, device=device)


def sync():
    if device == "cuda":
        torch.cuda.synchronize()


with torch.inference_mode():
    for _ in range(2):
        model(pixel_values=x)
    sync()
    t = time.perf_counter()
    for _ in range(batches):
        model(pixel_values=x).image_embeds.sum().item()
    sync()
    dt = time.perf_counter() - t
ips = batch * batches / dt
name = torch.cuda.get_device_name() if device == "cuda" else f"{torch.get_num_threads()} threads"
print(f"transformers (torch {torch.__version__}, {device}, {name}) batch {batch:>3}: {ips:8.2f} images/s")
print(f"images_per_s={ips}")
