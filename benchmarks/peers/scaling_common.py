"""The request loop shared by the scaling workers (see benchmarks/scaling.py); imports no ODE library.

A worker serves one configuration for the whole run. It reads one JSON request
per line on stdin and answers one JSON line on the stdout it started with
(everything else the process prints goes to stderr, so library output cannot
break the protocol):

    {"cmd": "measure", "point": "20x10x128", "npz": PATH, "reps": 5, "warmup": 1}
        -> {"times": [s, ...], "counts": {"nf": ..., "nvjp": ..., ...}, "notes": ...}
    {"cmd": "ping"} -> {"ok": true}   (answered once the imports are done)
    {"cmd": "quit"}

``setup(data, config)`` builds the gradient of one grid point once (its first
request; the warm-up calls run then) and returns ``grad()``, which computes one
gradient of sum(y(1)) with respect to y0 and the parameters and returns its
counts. ``context(config)``, if given, wraps every measurement (BLAS threads).
"""

import contextlib
import json
import os
import sys
import time
import traceback

import numpy as np


def load(path):
    """A grid point's arrays: y0 (batch, D) and W1, b1, W2, b2, W3, b3 (W as (out, in)), float32."""
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def serve(setup, extra=None, context=None):
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints (C level included) go to stderr
    sys.stdout = sys.stderr
    config = sys.argv[sys.argv.index("--config") + 1]
    cache = {}
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "quit":
            break
        try:
            if req["cmd"] == "ping":
                out = {"ok": True}
            elif req["cmd"] == "measure":
                out = measure(setup, config, cache, req, context)
            elif extra is not None and req["cmd"] in extra:
                out = extra[req["cmd"]](req)
            else:
                raise ValueError(f"unknown request {req['cmd']!r}")
        except Exception:  # noqa: BLE001 (reported to the parent, which carries on without this row)
            out = {"error": traceback.format_exc()[-3000:]}
        reply.write(json.dumps(out) + "\n")
        reply.flush()


def measure(setup, config, cache, req, context):
    with context(config) if context is not None else contextlib.nullcontext():
        if req["point"] not in cache:
            t0 = time.perf_counter()
            grad, notes = setup(load(req["npz"]), config)
            for _ in range(req.get("warmup", 1)):
                grad()
            cache[req["point"]] = (grad, notes, time.perf_counter() - t0)
        grad, notes, setup_s = cache[req["point"]]
        times, counts = [], None
        for _ in range(req["reps"]):
            t0 = time.perf_counter()
            counts = grad()
            times.append(time.perf_counter() - t0)
    return {"times": times, "counts": counts, "notes": notes, "setup_s": setup_s}
