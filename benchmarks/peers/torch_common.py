"""What the torch-based workers share: loading the workload's weights and measuring accuracy."""

import torch

from benchmarks import workload as wl


def load_weights(model, d):
    """The workload's initial weights into ``model.dense``, ``model.func.l1..l3`` and ``model.head``."""
    layers = [model.dense, model.func.l1, model.func.l2, model.func.l3, model.head]
    with torch.no_grad():
        for i, lin in enumerate(layers):
            lin.weight.copy_(torch.from_numpy(d[f"W{i}"]))
            lin.bias.copy_(torch.from_numpy(d[f"b{i}"]))


def accuracy(model, x, y):
    """The fraction of ``x`` that ``model`` classifies as ``y``, in evaluation batches, without gradients."""
    correct = 0
    with torch.no_grad():
        for rows in wl.eval_batches(len(y)):
            correct += int((model(x[rows]).argmax(-1) == y[rows]).sum())
    return correct / len(y)
