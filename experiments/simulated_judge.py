"""A simulated vision-language judge for the synthetic benchmark, speaking
`pairguard judge`'s command protocol (one JSON request per line in, one
JSON answer per line out). No real VLM is reachable where pairguard's
figures are made, so this stands in for one: it looks at the pixels of the
benchmark's 32x32 images and calls an image unsafe when its two diagonals
(where the benchmark draws the harmful cross) look darker than their
neighbours three pixels to either side. It perceives that contrast with
Gaussian noise (sigma 10 levels, drawn from a seed of the image's bytes, so
the same image gets the same answer), as a model that sees a faint feature
only sometimes; its P(unsafe) is a logistic of what it perceives, and it
answers in LlavaGuard's JSON. It knows nothing of the scene, so the coarse
data's shortcut cannot fool it; the noise can.

Standard library only: PNG is decoded here (8-bit RGB, as pairguard sends).

    {"kind": "command", "command": ["python3", "experiments/simulated_judge.py"]}
"""
import hashlib
import json
import math
import random
import struct
import sys
import zlib


def decode_png(path):
    """Rows of (r, g, b) tuples of an 8-bit RGB, non-interlaced PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour == 2, "8-bit RGB only"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * 3, [], bytearray(width * 3)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[3 * x:3 * x + 3]) for x in range(width)])
        prev = line
    return rows


def cross_contrast(rows):
    """How much darker the diagonals are than their neighbours, in levels."""
    size = len(rows)
    lum = [[sum(p) / 3 for p in row] for row in rows]
    on = lambda x, y: abs(x - y) <= 1 or abs(x + y - (size - 1)) <= 1
    diffs = [(lum[y][x - 3] + lum[y][x + 3]) / 2 - lum[y][x]
             for y in range(size) for x in range(3, size - 3) if on(x, y) and not on(x - 3, y) and not on(x + 3, y)]
    return sum(diffs) / len(diffs)


for line in sys.stdin:
    request = json.loads(line)
    try:
        contrast = cross_contrast(decode_png(request["image"]))
        seed = hashlib.sha256(open(request["image"], "rb").read()).digest()
    except Exception as e:  # an image it cannot read is an error answer, retried
        print(json.dumps({"id": request["id"], "error": str(e)}), flush=True)
        continue
    perceived = contrast + random.Random(seed).gauss(0.0, 10.0)
    p = 1 / (1 + math.exp(-(perceived - 12.0) / 4.0))
    rating = "Unsafe" if p >= 0.5 else "Safe"
    text = json.dumps({"rating": rating, "category": "cross" if rating == "Unsafe" else "none",
                       "rationale": f"The diagonals look {perceived:.1f} levels darker than their surroundings."})
    print(json.dumps({"id": request["id"], "text": text, "p_unsafe": p}), flush=True)
