"""diffrax's worker for the scaling benchmark (benchmarks/scaling.py; protocol in scaling_common.py).

    python -m benchmarks.peers.scaling_diffrax --config recursive|backsolve

Tsit5, ``PIDController(rtol=1e-3, atol=1e-3)``, ``dt0=None``,
``SaveAt(t1=True)``, with ``RecursiveCheckpointAdjoint()`` (diffrax's
default) or ``BacksolveAdjoint()``; the gradient of sum(y(1)) with respect to
y0 and ``args`` (the weights) is one ``jax.jit``, timed in steady state (after
the warm-up call that compiles it). JAX on the CPU, float32. Counts: nf = 6 x
num_steps + 1 from ``sol.stats`` (diffrax does not count evaluations); the
backward pass is not reported (None).
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import diffrax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.peers.scaling_common import serve  # noqa: E402

KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")


def vf(t, y, p):
    h = jnp.tanh(y @ p["W1"].T + p["b1"])
    h = jnp.tanh(h @ p["W2"].T + p["b2"])
    return jnp.tanh(h @ p["W3"].T + p["b3"])


def setup(d, config):
    adjoint = diffrax.BacksolveAdjoint() if config == "backsolve" else diffrax.RecursiveCheckpointAdjoint()
    p = {k: jnp.asarray(d[k]) for k in KEYS}
    y0 = jnp.asarray(d["y0"])

    def loss(y0, p):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf),
            diffrax.Tsit5(),
            0.0,
            1.0,
            None,
            y0,
            args=p,
            stepsize_controller=diffrax.PIDController(rtol=1e-3, atol=1e-3),
            saveat=diffrax.SaveAt(t1=True),
            adjoint=adjoint,
        )
        return sol.ys[-1].sum(), sol.stats["num_steps"]

    g = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))

    def grad():
        grads, nsteps = g(y0, p)
        jax.block_until_ready(grads)
        return {"nf": 6 * int(nsteps) + 1, "nvjp": None, "num_steps": int(nsteps)}

    notes = f"Tsit5, PIDController, {type(adjoint).__name__}, jit, {jax.default_backend()}"
    return grad, notes


if __name__ == "__main__":
    serve(setup)
