"""A guard's exported image -> verdict graphs in onnxruntime: the peer for
bench_onnx.

    python benchmarks/onnxruntime_peer.py DIR BATCH BATCHES

DIR holds pixels.bin ([BATCH, 3, S, S] float32) and the graphs f32.onnx and
int8.onnx (pairguard's `export-onnx --pipeline`); qd.onnx is made once from
f32.onnx by onnxruntime's quantize_dynamic (int8 weights, the route a
deployer tries first). Each graph gets one warm-up run, then BATCHES timed
runs over the batch; its P(unsafe) column goes to ort-<graph>.bin. Prints
one line per graph: `graph=<name> images_per_s=<value>`.
"""
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

d, batch, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
threads = int(os.environ.get("PAIRGUARD_THREADS", "0"))
pixels = np.fromfile(os.path.join(d, "pixels.bin"), dtype="<f4")
size = int(round((pixels.size // (batch * 3)) ** 0.5))
x = pixels.reshape(batch, 3, size, size)
if not os.path.exists(os.path.join(d, "qd.onnx")):
    quantize_dynamic(os.path.join(d, "f32.onnx"), os.path.join(d, "qd.onnx"), weight_type=QuantType.QInt8)
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
print(f"onnxruntime {ort.__version__}, {threads or 'default'} threads")
for name in ["f32", "int8", "qd"]:
    s = ort.InferenceSession(os.path.join(d, f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: x}
    p = s.run(["probabilities"], feed)[0][:, 0]
    t = time.perf_counter()
    for _ in range(batches):
        s.run(["probabilities"], feed)
    dt = time.perf_counter() - t
    p.astype("<f4").tofile(os.path.join(d, f"ort-{name}.bin"))
    print(f"graph={name} images_per_s={batch * batches / dt}")
