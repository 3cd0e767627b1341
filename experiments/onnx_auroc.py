"""Scores a labelled image set with exported guard pipelines in onnxruntime.

    python experiments/onnx_auroc.py MANIFEST.jsonl BATCH NAME=GRAPH.onnx [NAME=GRAPH.onnx ...]

MANIFEST is a dataset manifest (JSON lines with `image`, relative to the
manifest's folder, and `label`, "safe" or "unsafe"). Each graph reads the
images preprocessed as its metadata says (`pairguard.preprocess.*`; the
images must already be the graph's size, so the resize is the identity),
in batches of BATCH in manifest order on 2 threads, and prints one line
`NAME AUROC` with P(unsafe)'s AUROC (ties counted half). A NAME of the form
`qd:SOURCE` is onnxruntime's `quantize_dynamic` (int8 weights, the route a
deployer tries first) applied to the graph SOURCE named earlier, written
to the GRAPH path given.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def auroc(p, y):
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sorted_p = p[order]
    i = 0
    while i < len(p):
        j = i
        while j + 1 < len(p) and sorted_p[j + 1] == sorted_p[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y.sum()
    neg = len(y) - pos
    return (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg)


def main():
    manifest, batch, graphs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    root = os.path.dirname(manifest)
    rows = [json.loads(l) for l in open(manifest) if l.strip()]
    labels = {"safe": 0, "unsafe": 1}
    y = np.array([labels[r["label"]] for r in rows])
    images = []
    for r in rows:
        with Image.open(os.path.join(root, r["image"])) as im:
            images.append(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    paths = {}
    for spec in graphs:
        name, path = spec.split("=", 1)
        if name.startswith("qd:"):
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(paths[name[3:]], path, weight_type=QuantType.QInt8)
        paths[name] = path
        s = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        meta = s.get_modelmeta().custom_metadata_map
        size = int(meta["pairguard.preprocess.size"])
        mean = np.array(json.loads(meta["pairguard.preprocess.mean"]), np.float32)
        std = np.array(json.loads(meta["pairguard.preprocess.std"]), np.float32)
        for r, im in zip(rows, images):
            if im.shape[:2] != (size, size):
                sys.exit(f"{r['image']}: {im.shape[1]} x {im.shape[0]} pixels; this script takes images of the graph's size, {size} x {size}")
        x = ((np.stack(images) - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
        p = np.concatenate([s.run(["probabilities"], {s.get_inputs()[0].name: x[i : i + batch]})[0][:, 0] for i in range(0, len(x), batch)])
        print(f"{name} {auroc(p.astype(np.float64), y):.6f}")


main()
