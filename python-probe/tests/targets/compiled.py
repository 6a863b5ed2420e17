"""A function probed inside torch.compile'd callers (imported as a module: function targets need one)."""

import torch


def probed(x):
    return torch.sin(x) * 2 + 1


def probed_twice(x):
    return probed(x) + probed(x * 3)


def with_graph_break(x):
    y = probed(x)
    torch._dynamo.graph_break()
    return probed(y) - y
