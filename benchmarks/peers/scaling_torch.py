"""torchdiffeq's and torchode's worker for the scaling benchmark (benchmarks/scaling.py; protocol in
scaling_common.py). Imports no tinynode.

    python -m benchmarks.peers.scaling_torch --config torchdiffeq-direct|torchdiffeq-adjoint|torchode

``torchdiffeq-direct``: ``odeint`` (autograd through the solver), dopri5;
``torchdiffeq-adjoint``: ``odeint_adjoint`` (backsolve adjoint), dopri5;
``torchode``: Tsit5, ``IntegralController``, ``AutoDiffAdjoint``, eager, the
batch as ONE joint (1, D B) sample so that the steps are shared (as
benchmarks/peers/torchode_mnist.py). rtol = atol = 1e-3, float32, 2 torch
threads. Counts: the vector field counts its calls in the forward solve (nf)
and during the backward pass (nvjp: the adjoint's augmented-dynamics calls;
autograd through the solver makes none and reports None).
"""

import torch

from benchmarks.peers.scaling_common import serve

CONFIGS = ("torchdiffeq-direct", "torchdiffeq-adjoint", "torchode")


class Field(torch.nn.Module):
    def __init__(self, d, joint=False):
        super().__init__()
        self.layers = torch.nn.ModuleList()
        for i in (1, 2, 3):
            w = d[f"W{i}"]
            layer = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(w))
                layer.bias.copy_(torch.from_numpy(d[f"b{i}"]))
            self.layers.append(layer)
        self.dim = d["W1"].shape[1]
        self.joint = joint
        self.phase = None
        self.calls = {"fwd": 0, "bwd": 0}

    def forward(self, t, y):
        if self.phase is not None:
            self.calls[self.phase] += 1
        h = y.reshape(-1, self.dim) if self.joint else y
        for layer in self.layers:
            h = torch.tanh(layer(h))
        return h.reshape(1, -1) if self.joint else h


def setup(d, config):
    torch.set_num_threads(2)
    field = Field(d, joint=config == "torchode")
    params = list(field.parameters())
    y0 = torch.from_numpy(d["y0"])
    if config == "torchode":
        import torchode

        term = torchode.ODETerm(field)
        solver = torchode.AutoDiffAdjoint(
            torchode.Tsit5(term=term), torchode.IntegralController(atol=1e-3, rtol=1e-3, term=term)
        )

        def final(y):
            problem = torchode.InitialValueProblem(y0=y.reshape(1, -1), t_start=torch.zeros(1), t_end=torch.ones(1))
            return solver.solve(problem).ys[:, -1]

        notes = f"Tsit5, IntegralController, AutoDiffAdjoint, joint (1, D B) state, {torch.get_num_threads()} threads"
    else:
        import torchdiffeq

        t = torch.tensor([0.0, 1.0])
        if config == "torchdiffeq-adjoint":

            def final(y):
                return torchdiffeq.odeint_adjoint(
                    field, y, t, rtol=1e-3, atol=1e-3, method="dopri5", adjoint_params=tuple(params)
                )[-1]

        else:

            def final(y):
                return torchdiffeq.odeint(field, y, t, rtol=1e-3, atol=1e-3, method="dopri5")[-1]

        notes = f"dopri5, {config.split('-')[1]}, {torch.get_num_threads()} threads"

    def grad():
        field.calls = {"fwd": 0, "bwd": 0}
        y = y0.clone().requires_grad_(True)
        field.phase = "fwd"
        loss = final(y).sum()
        field.phase = "bwd"
        torch.autograd.grad(loss, [y, *params])
        field.phase = None
        nvjp = field.calls["bwd"] if config == "torchdiffeq-adjoint" else None
        return {"nf": field.calls["fwd"], "nvjp": nvjp}

    return grad, notes


if __name__ == "__main__":
    serve(setup)
