"""The open_clip + torch side of benchmarks/embed_end_to_end.sh, and its setup.

    python benchmarks/embed_peer.py setup DIR MODEL IMAGES
    python benchmarks/embed_peer.py embed DIR MODEL fp32|bf16 OUT.npy
    python benchmarks/embed_peer.py cosine DIR REFERENCE.npy STORE.safetensors|OTHER.npy

`setup` writes into DIR: IMAGES JPEGs of 480 to 800 pixels a side (seeded
gradients, shapes and noise, quality 90), a dataset descriptor and manifest
for `pairguard embed`, and open_clip's MODEL (ViT-B-32 or ViT-L-14, QuickGELU
as OpenAI's checkpoints) with seeded random weights, as
open_clip_model.safetensors + open_clip_config.json, the layout
`pairguard embed --encoder DIR/MODEL` reads.

`embed` is what a torch user writes: the images decoded and preprocessed by
open_clip's own eval transform in a DataLoader (PAIRGUARD_THREADS workers),
the image tower in fp32 or bf16 (weights and input cast) on
PAIRGUARD_THREADS threads, batches of 32, L2-normalised embeddings to OUT.

`cosine` prints the worst and mean cosine between two sets of embeddings.
"""
import json
import os
import sys

import numpy as np


def model_dir(d, name):
    return os.path.join(d, name)


def setup(d, name, n):
    import open_clip
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(d, "images"), exist_ok=True)
    with open(os.path.join(d, "images.jsonl"), "w") as manifest:
        for i in range(n):
            w, h = (int(v) for v in rng.integers(480, 801, 2))
            y, x = np.mgrid[0:h, 0:w].astype(np.float32)
            base = rng.uniform(0, 255, 3)
            tilt = rng.uniform(-0.3, 0.3, (2, 3))
            img = base + x[..., None] * tilt[0] + y[..., None] * tilt[1]
            for _ in range(6):
                cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 160)
                img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
            img += rng.normal(0, 12, img.shape)
            path = f"images/{i:05}.jpg"
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(d, path), quality=90)
            label = "unsafe" if i % 2 else "safe"
            manifest.write(json.dumps({"id": f"{i:05}", "image": path, "label": label, "source": "real"}) + "\n")
    with open(os.path.join(d, "images.toml"), "w") as f:
        f.write('name = "end-to-end"\nformat = "jsonl"\nmanifest = ["images.jsonl"]\nroot = "."\n\n'
                '[columns]\nid = "id"\nimage = "image"\nlabel = "label"\nsource = "source"\n')
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None, force_quick_gelu=True)
    visual = {f"visual.{k}": v.contiguous() for k, v in model.visual.state_dict().items()}
    out = model_dir(d, name)
    os.makedirs(out, exist_ok=True)
    save_file(visual, os.path.join(out, "open_clip_model.safetensors"))
    cfg = dict(open_clip.get_model_config(name))
    cfg.pop("text_cfg", None)
    cfg["quick_gelu"] = True
    with open(os.path.join(out, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": cfg}, f, indent=2)


def embed(d, name, precision, out):
    import open_clip
    import torch
    from PIL import Image
    from safetensors.torch import load_file

    threads = int(os.environ.get("PAIRGUARD_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None, force_quick_gelu=True)
    visual = model.visual
    visual.load_state_dict({k[len("visual."):]: v for k, v in load_file(os.path.join(model_dir(d, name), "open_clip_model.safetensors")).items()})
    visual = visual.eval().to(dtype)
    rows = [json.loads(l) for l in open(os.path.join(d, "images.jsonl"))]

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, i):
            with Image.open(os.path.join(d, rows[i]["image"])) as im:
                return preprocess(im.convert("RGB"))

    loader = torch.utils.data.DataLoader(Images(), batch_size=32, num_workers=threads)
    chunks = []
    with torch.inference_mode():
        for x in loader:
            e = visual(x.to(dtype)).float()
            chunks.append(torch.nn.functional.normalize(e, dim=-1).numpy())
    np.save(out, np.concatenate(chunks))


def load(path):
    if path.endswith(".npy"):
        return np.load(path)
    from safetensors.numpy import load_file

    return load_file(path)["embeddings"]


def cosine(reference, other):
    a, b = load(reference).astype(np.float64), load(other).astype(np.float64)
    if a.shape != b.shape:
        sys.exit(f"{other}: {b.shape} embeddings against {a.shape} in {reference}")
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"worst cosine {c.min():.6f}, mean {c.mean():.6f}")


command = sys.argv[1]
if command == "setup":
    setup(sys.argv[2], sys.argv[3], int(sys.argv[4]))
elif command == "embed":
    embed(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
elif command == "cosine":
    cosine(sys.argv[2], sys.argv[3])
else:
    sys.exit(f"unknown command {command!r}")
