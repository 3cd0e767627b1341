"""FGSM and PGD-10 in torch on open_clip's ViT-B/32 tower with a linear guard
on the unit-length embedding: the peer for bench_attack. Written from
foolbox 3's definitions with plain autograd (foolbox adds only bookkeeping):
cross-entropy of the logits [0, z], signed steps, projection to the L-inf
ball, clipping to (-3, 3); the final evaluation pass is timed too.

    python benchmarks/torch_attack_peer.py [batch]
Prints `fgsm_images_per_s=` and `pgd10_images_per_s=` for the caller to parse.
"""
import os
import sys
import time

import open_clip
import torch

# The thread count the caller pins both sides to (bench_* --threads).
if "PAIRGUARD_THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["PAIRGUARD_THREADS"]))

EPS = 0.01
batch = int(sys.argv[1]) if len(sys.argv) > 1 else 8
torch.manual_seed(0)
tower = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True).visual.eval()
for p in tower.parameters():
    p.requires_grad_(False)
w = torch.tensor([((i * 7919 % 101) / 101.0 - 0.5) * 4.0 for i in range(512)])


def logits(x):
    e = tower(x)
    z = (e / e.norm(dim=-1, keepdim=True)) @ w
    return torch.stack([torch.zeros_like(z), z], dim=-1)


def gradient(x, y):
    x = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(logits(x), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    return g


def attack(x0, y, steps, random_start):
    x = (x0 + torch.empty_like(x0).uniform_(-EPS, EPS)).clamp(-3, 3) if random_start else x0
    for _ in range(steps):
        x = x + (EPS if steps == 1 else EPS * 0.01 / 0.3) * gradient(x, y).sign()
        x = (x0 + (x - x0).clamp(-EPS, EPS)).clamp(-3, 3)
    with torch.no_grad():
        return logits(x).argmax(-1) != y


x0 = torch.tensor([((i % 251) / 125.0) - 1.0 for i in range(batch * 3 * 224 * 224)]).reshape(batch, 3, 224, 224)
with torch.no_grad():
    y = logits(x0).argmax(-1)
attack(x0, y, 1, False)  # warm-up: one FGSM pass over the full batch, as pairguard's


def rate(steps, random_start):
    t = time.perf_counter()
    attack(x0, y, steps, random_start)
    return batch / (time.perf_counter() - t)


fgsm, pgd = rate(1, False), rate(10, True)
print(f"torch {torch.__version__} + open_clip {open_clip.__version__} ({torch.get_num_threads()} threads)")
print(f"fgsm_images_per_s={fgsm}")
print(f"pgd10_images_per_s={pgd}")
