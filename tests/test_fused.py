"""The fused GPU kernels (tinynode.fused): their CUDA code compiles, and the CPU never uses them.

Running them needs a GPU (tests/test_gpu.py compares each with its NumPy
sequence there). Here, where CUDA's compiler is installed, each kernel body is
compiled inside a small harness shaped like the code CuPy generates around it
(the parameters as typed references, ``T`` a template type), for float32 and
float64: a typo or a type error in the CUDA code fails here, not on a user's GPU.
"""

import os
import shutil
import subprocess

import numpy as np
import pytest

from tinynode import fused


def test_numpy_never_takes_the_fused_path(monkeypatch):
    assert not fused.enabled(np)
    import fakecupy

    assert not fused.enabled(fakecupy.install(monkeypatch))  # the CPU stand-in has no kernels either


def test_the_switch_turns_fusion_off(monkeypatch):
    class FakeCupy:
        ElementwiseKernel = object

    assert fused.enabled(FakeCupy)
    monkeypatch.setenv("TINYNODE_FUSED", "0")
    assert not fused.enabled(FakeCupy)


def _harness():
    parts = [
        "#include <math.h>",
        fused.NORM_PREAMBLE,
        "template <typename T> __global__ void norm(const T* e_, const T* y_, const T* yn_, double rtol,"
        " double atol, double* out) {",
        "  int i = threadIdx.x; const T e = e_[i]; const T y = y_[i]; const T yn = yn_[i];",
        f"  double a = {fused.NORM_MAP}; atomicAdd(out, a);",
        "}",
        "template <typename T> __global__ void adam(const T* g_, double b1, double b2, double step,"
        " double v_scale, double eps, T* p_, T* m_, T* v_) {",
        "  int i = threadIdx.x; const T g = g_[i]; T& p = p_[i]; T& m = m_[i]; T& v = v_[i];",
        fused.ADAM_BODY,
        "}",
    ]
    inst = []
    for T in ("float", "double"):
        inst += [
            f"template __global__ void norm<{T}>(const {T}*, const {T}*, const {T}*, double, double, double*);",
            f"template __global__ void adam<{T}>(const {T}*, double, double, double, double, double, {T}*, "
            f"{T}*, {T}*);",
        ]
    for name, (forward, backward) in fused.ACTIVATION_CODE.items():
        parts += [
            f"template <typename T> __global__ void bias_{name}(const T* b_, T* z_, int m) {{",
            "  int i = threadIdx.x; const T b = b_[i % m]; T& z = z_[i];",
            f"  z = z + b; z = {forward};",
            "}",
            f"template <typename T> __global__ void vjp_{name}(const T* y_, const T* g_, T* gz_) {{",
            "  int i = threadIdx.x; const T y = y_[i]; const T g = g_[i]; T& gz = gz_[i];",
            f"  gz = {backward};",
            "}",
        ]
        for T in ("float", "double"):
            inst += [
                f"template __global__ void bias_{name}<{T}>(const {T}*, {T}*, int);",
                f"template __global__ void vjp_{name}<{T}>(const {T}*, const {T}*, {T}*);",
            ]
    return "\n".join(parts + inst) + "\n"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="CUDA's compiler (nvcc) is not installed")
def test_every_kernel_body_compiles_with_nvcc(tmp_path):
    src = tmp_path / "kernels.cu"
    src.write_text(_harness())
    res = subprocess.run(
        ["nvcc", "-arch=sm_80", "-c", str(src), "-o", os.devnull], capture_output=True, text=True, timeout=240
    )
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.parametrize("name", sorted(fused.ACTIVATION_CODE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_activations_are_the_layers_activations(name, dtype):
    """Each CUDA expression, evaluated as Python over NumPy, against the one definition in
    tinynode.nn.ACTIVATIONS (forward and derivative), over the whole range including extremes."""
    from tinynode.nn import ACTIVATIONS

    forward, backward = fused.ACTIVATION_CODE[name]
    functions = {f: getattr(np, f) for f in ("tanh", "exp", "log1p", "expm1", "fabs", "fmax")}
    z = np.concatenate([np.linspace(-30, 30, 601), [-1e4, -50.0, 0.0, 50.0, 1e4]]).astype(dtype)
    g = np.random.default_rng(0).standard_normal(z.shape).astype(dtype)
    act = ACTIVATIONS[name]
    with np.errstate(over="ignore"):
        y_kernel = eval(forward, functions, {"z": z})
    y_layer = act.forward(np, z.copy())
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y_kernel, y_layer, rtol=tol, atol=tol)
    gz_kernel = eval(backward, functions, {"y": y_layer, "g": g}) * np.ones_like(g)
    np.testing.assert_allclose(gz_kernel, act.vjp(np, y_layer, g), rtol=tol, atol=tol)
