"""torchode on the comparison workload (one configuration per process; see benchmarks/workload.py).

    python -m benchmarks.peers.torchode_mnist --data DATA.npz --out RESULT.json --config autodiff-joint
    python -m benchmarks.peers.torchode_mnist overhead --data DATA.npz --batch 32 128 1024 8192

Tsit5 with ``IntegralController(rtol=1e-3, atol=1e-3)`` and
``AutoDiffAdjoint`` (autograd through the solver loop), eager (no
TorchScript / torch.compile). Joint batch: torchode keeps one step size per
sample, so to share the steps across the batch as the tutorial does, the
(B, 20) batch is flattened to ONE sample, a (1, 20 B) state, and the vector
field reshapes it back. 2 torch threads.

NFE: the vector field counts its own calls in the forward pass (it matches
``sol.stats["n_f_evals"]``); backward is 0 (autograd replays the recorded
graph without calling the vector field).
"""

import sys
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchode  # noqa: E402

from benchmarks import workload as wl  # noqa: E402
from benchmarks.peers.torch_common import accuracy, load_weights  # noqa: E402

CONFIGS = ("autodiff-joint",)


class ODEFunc(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = torch.nn.Linear(20, 10), torch.nn.Linear(10, 10), torch.nn.Linear(10, 20)
        self.calls = 0
        self.counting = False

    def net(self, y):
        return torch.tanh(self.l3(torch.tanh(self.l2(torch.tanh(self.l1(y))))))

    def forward(self, t, y):  # y: (1, 20 B), the batch as one joint state
        if self.counting:
            self.calls += 1
        return self.net(y.reshape(-1, 20)).reshape(1, -1)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = torch.nn.Linear(784, 20)
        self.func = ODEFunc()
        self.head = torch.nn.Linear(20, 10)
        term = torchode.ODETerm(self.func)
        step = torchode.Tsit5(term=term)
        controller = torchode.IntegralController(atol=wl.ATOL, rtol=wl.RTOL, term=term)
        self.solver = torchode.AutoDiffAdjoint(step, controller)
        self.last_stats = None

    def forward(self, x):
        h = torch.tanh(self.dense(x))
        problem = torchode.InitialValueProblem(y0=h.reshape(1, -1), t_start=torch.zeros(1), t_end=torch.ones(1))
        sol = self.solver.solve(problem)
        self.last_stats = sol.stats
        return self.head(sol.ys[:, -1].reshape(-1, 20))


def train(args):
    torch.set_num_threads(2)
    rec = wl.Recorder(
        "torchode",
        args.config,
        T_START,
        wl.versions_of("torch", "torchode"),
        notes=f"Tsit5, IntegralController, AutoDiffAdjoint, joint batch (1, 20 B), eager, "
        f"{torch.get_num_threads()} threads",
    )
    d = wl.load(args.data)
    x_train, y_train = torch.from_numpy(wl.images_to_float(d["x_train"])), torch.from_numpy(d["y_train"]).long()
    x_test, y_test = torch.from_numpy(wl.images_to_float(d["x_test"])), torch.from_numpy(d["y_test"]).long()
    model = Model()
    load_weights(model, d)
    opt = torch.optim.Adam(model.parameters(), lr=wl.LR)
    func = model.func
    for epoch in range(args.epochs):
        func.calls, stats_nf = 0, 0
        losses = []
        t0 = time.perf_counter()
        for idx in wl.epoch_batches(len(y_train), epoch):
            idx = torch.from_numpy(idx)
            func.counting = True
            loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            func.counting = False
            stats_nf += int(model.last_stats["n_f_evals"].sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        elapsed = time.perf_counter() - t0
        rec.epoch(
            epoch + 1,
            elapsed,
            np.mean(losses),
            accuracy(model, x_train, y_train),
            accuracy(model, x_test, y_test),
            func.calls,
            0,
            n_f_evals_stats=stats_nf,
        )
    rec.write(
        args.out,
        nfe_method="counted: calls of the vector field in the forward pass (also "
        "sol.stats['n_f_evals']); backward 0 (autograd through the loop)",
    )


def overhead(argv):
    from benchmarks.timing import overhead_row, print_table

    args = wl.overhead_args(argv)
    torch.set_num_threads(2)
    model = Model()
    load_weights(model, wl.load(args.data))
    func = model.func
    rows = []
    for batch in args.batch:
        h = torch.from_numpy(wl.overhead_state(batch))
        y0 = h.reshape(1, -1)
        with torch.no_grad():

            def solve(y0=y0):
                problem = torchode.InitialValueProblem(y0=y0, t_start=torch.zeros(1), t_end=torch.ones(1))
                return model.solver.solve(problem)

            nf = int(solve().stats["n_f_evals"].sum())
            rows.append(overhead_row(batch, nf, solve, lambda y0=y0: func(0.0, y0), args.repeat))
    print_table("torchode Tsit5 + IntegralController (joint (1, 20 B) state, eager, no_grad)", rows, args.json)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "overhead":
        overhead(sys.argv[2:])
    else:
        train(wl.worker_args(configs=CONFIGS))
