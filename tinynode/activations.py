"""Activations: each function and its derivative, written once.

The derivative is expressed through the OUTPUT ``y = act(z)``, so the forward
pass only keeps ``y``::

    tanh' = 1 - y^2,  sigmoid' = y (1 - y),  relu' = [y > 0],  softplus' = sigmoid(z) = 1 - exp(-y).

and so is the second derivative, which the Jacobian regulariser needs (the
derivative of a VJP, :meth:`tinynode.nn.Dense.backward_vjp`)::

    tanh'' = -2 y (1 - y^2),  sigmoid'' = y (1 - y)(1 - 2y),  relu'' = 0,
    softplus'' = s (1 - s) with s = sigmoid(z) = 1 - exp(-y).

:class:`tinynode.nn.Dense` and the MLP fast path (:mod:`tinynode.fastmlp`) use
these functions; the GPU kernels of :mod:`tinynode.fused` are tested against them.
"""

from typing import NamedTuple

__all__ = ["Activation", "ACTIVATIONS"]


def _identity(xp, z):
    return z


def _tanh(xp, z):
    return xp.tanh(z, out=z)


def _sigmoid(xp, z):
    # 1 / (1 + exp(-z)), written as 0.5 * (1 + tanh(z / 2)): no overflow for large |z|.
    z *= 0.5
    xp.tanh(z, out=z)
    z += 1
    z *= 0.5
    return z


def _relu(xp, z):
    return xp.maximum(z, 0, out=z)


def _softplus(xp, z):
    # log(1 + exp(z)) = logaddexp(0, z), stable for large |z|.
    return xp.logaddexp(0, z, out=z)


def _identity_vjp(xp, y, gy):
    return gy


def _tanh_vjp(xp, y, gy):
    gz = y * y
    xp.subtract(1, gz, out=gz)
    gz *= gy
    return gz


def _sigmoid_vjp(xp, y, gy):
    gz = 1 - y
    gz *= y
    gz *= gy
    return gz


def _relu_vjp(xp, y, gy):
    return gy * (y > 0)


def _softplus_vjp(xp, y, gy):
    gz = xp.expm1(-y)  # -(1 - exp(-y)) = -sigmoid(z), accurate when y is tiny
    gz *= gy
    xp.negative(gz, out=gz)
    return gz


def _zero_second(xp, y, g):
    return xp.zeros_like(y)  # identity and relu (almost everywhere): act'' = 0


def _tanh_second(xp, y, g):
    return -2 * y * (1 - y * y) * g


def _sigmoid_second(xp, y, g):
    return y * (1 - y) * (1 - 2 * y) * g


def _softplus_second(xp, y, g):
    e = xp.exp(-y)  # 1 - sigmoid(z)
    return -xp.expm1(-y) * e * g


class Activation(NamedTuple):
    """An activation: ``forward(xp, z)`` overwrites ``z`` with ``act(z)`` and returns it;
    ``vjp(xp, y, gy)`` returns ``gy * act'(z)`` and ``second(xp, y, g)`` returns
    ``g * act''(z)``, both from the output ``y = act(z)``."""

    name: str
    forward: object
    vjp: object
    second: object


ACTIVATIONS = {
    a.name: a
    for a in (
        Activation("identity", _identity, _identity_vjp, _zero_second),
        Activation("tanh", _tanh, _tanh_vjp, _tanh_second),
        Activation("sigmoid", _sigmoid, _sigmoid_vjp, _sigmoid_second),
        Activation("relu", _relu, _relu_vjp, _zero_second),
        Activation("softplus", _softplus, _softplus_vjp, _softplus_second),
    )
}
