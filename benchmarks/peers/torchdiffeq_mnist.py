"""torchdiffeq on the comparison workload (one configuration per process; see benchmarks/workload.py).

    python -m benchmarks.peers.torchdiffeq_mnist --data DATA.npz --out RESULT.json --config adjoint
    python -m benchmarks.peers.torchdiffeq_mnist overhead --batch 32 128 1024 8192

dopri5 (torchdiffeq has no Tsit5 on PyPI), rtol = atol = 1e-3, t = [0, 1],
final state only, the batch as one (B, 20) state (torchdiffeq always shares
the steps). ``adjoint``: ``odeint_adjoint`` (BacksolveAdjoint); ``direct``:
``odeint`` with autograd through the solver. 2 torch threads.

NFE: the vector field counts its own calls, split by phase: forward (the
training forward pass) and backward (calls made during ``loss.backward()``,
i.e. the adjoint's augmented dynamics; 0 for ``direct``, whose backward pass
replays the recorded graph without calling the vector field).
"""

import sys
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchdiffeq  # noqa: E402

from benchmarks import workload as wl  # noqa: E402
from benchmarks.peers.torch_common import accuracy, load_weights  # noqa: E402

CONFIGS = ("adjoint", "direct")


class ODEFunc(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = torch.nn.Linear(20, 10), torch.nn.Linear(10, 10), torch.nn.Linear(10, 20)
        self.phase = None
        self.calls = {"fwd": 0, "bwd": 0}

    def forward(self, t, y):
        if self.phase is not None:
            self.calls[self.phase] += 1
        return torch.tanh(self.l3(torch.tanh(self.l2(torch.tanh(self.l1(y))))))


class Model(torch.nn.Module):
    def __init__(self, adjoint):
        super().__init__()
        self.dense = torch.nn.Linear(784, 20)
        self.func = ODEFunc()
        self.head = torch.nn.Linear(20, 10)
        self.odeint = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
        self.register_buffer("t", torch.tensor([0.0, 1.0]))

    def forward(self, x):
        h = torch.tanh(self.dense(x))
        kw = {"adjoint_params": tuple(self.func.parameters())} if self.odeint is torchdiffeq.odeint_adjoint else {}
        h = self.odeint(self.func, h, self.t, rtol=wl.RTOL, atol=wl.ATOL, method="dopri5", **kw)[-1]
        return self.head(h)


def train(args):
    torch.set_num_threads(2)
    rec = wl.Recorder(
        "torchdiffeq",
        args.config,
        T_START,
        wl.versions_of("torch", "torchdiffeq"),
        notes=f"dopri5, {'odeint_adjoint' if args.config == 'adjoint' else 'odeint'}, "
        f"{torch.get_num_threads()} threads",
    )
    d = wl.load(args.data)
    x_train, y_train = torch.from_numpy(wl.images_to_float(d["x_train"])), torch.from_numpy(d["y_train"]).long()
    x_test, y_test = torch.from_numpy(wl.images_to_float(d["x_test"])), torch.from_numpy(d["y_test"]).long()
    model = Model(args.config == "adjoint")
    load_weights(model, d)
    opt = torch.optim.Adam(model.parameters(), lr=wl.LR)
    func = model.func
    for epoch in range(args.epochs):
        func.calls = {"fwd": 0, "bwd": 0}
        losses = []
        t0 = time.perf_counter()
        for idx in wl.epoch_batches(len(y_train), epoch):
            idx = torch.from_numpy(idx)
            func.phase = "fwd"
            loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            func.phase = "bwd"
            loss.backward()
            opt.step()
            losses.append(loss.item())
        elapsed = time.perf_counter() - t0
        func.phase = None
        rec.epoch(
            epoch + 1,
            elapsed,
            np.mean(losses),
            accuracy(model, x_train, y_train),
            accuracy(model, x_test, y_test),
            func.calls["fwd"],
            func.calls["bwd"],
        )
    rec.write(args.out, nfe_method="counted: calls of the vector field in the forward pass / during backward()")


# ----------------------------------------------------------------------------- solver overhead


def overhead(argv):
    from benchmarks.timing import overhead_row, print_table

    args = wl.overhead_args(argv)
    torch.set_num_threads(2)
    model = Model(adjoint=False)
    load_weights(model, wl.load(args.data))
    func = model.func
    t = torch.tensor([0.0, 1.0])
    rows = []
    for batch in args.batch:
        y0 = torch.from_numpy(wl.overhead_state(batch))
        with torch.no_grad():
            func.phase, func.calls = "fwd", {"fwd": 0, "bwd": 0}
            torchdiffeq.odeint(func, y0, t, rtol=wl.RTOL, atol=wl.ATOL, method="dopri5")
            nf = func.calls["fwd"]
            func.phase = None

            def solve(y0=y0):
                torchdiffeq.odeint(func, y0, t, rtol=wl.RTOL, atol=wl.ATOL, method="dopri5")

            rows.append(overhead_row(batch, nf, solve, lambda y0=y0: func(0.0, y0), args.repeat))
    print_table("torchdiffeq dopri5 (odeint, no_grad)", rows, args.json)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "overhead":
        overhead(sys.argv[2:])
    else:
        train(wl.worker_args(configs=CONFIGS))
