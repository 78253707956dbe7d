"""The MNIST-1D model zoo (Greydanus 2020, "Scaling down deep learning", arXiv 2011.14439;
the authors' ``notebooks/models.py``), restated: logistic regression, a residual MLP and a
small 1-D CNN. They output logits (no softmax; the loss is cross-entropy) and keep PyTorch's
default initialization, as the authors' models do.

========  ===========================================================  ==========
model     architecture                                                 parameters
========  ===========================================================  ==========
logreg    Linear(40 -> 10)                                             410
mlp       h1 = relu(W1 x); h2 = h1 + relu(W2 h1); out = W3 h2, width   15,210
          100 (the notebook's ``MLPBase(40, 10)``; ``get_model_args``'
          hidden_size 256 is not what it trained)
cnn       Conv1d(1->25, k5, s2, p1), Conv1d(25->25, k3, s2, p1) twice,  5,210
          ReLU after each (lengths 40 -> 19 -> 10 -> 5), flatten 125,
          Linear(125 -> 10)
========  ===========================================================  ==========
"""

from __future__ import annotations

import torch
from torch import nn

from steplab.errors import WorkloadError

LENGTH, CLASSES = 40, 10


class LinearBase(nn.Module):
    """Multinomial logistic regression on the 40 raw values."""

    def __init__(self, length: int = LENGTH, classes: int = CLASSES) -> None:
        super().__init__()
        self.linear = nn.Linear(length, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class MLPBase(nn.Module):
    """Two ReLU layers of width ``hidden``, the second with a residual connection."""

    def __init__(self, length: int = LENGTH, classes: int = CLASSES, hidden: int = 100) -> None:
        super().__init__()
        self.linear1 = nn.Linear(length, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.linear1(x))
        h = h + torch.relu(self.linear2(h))
        return self.linear3(h)


class ConvBase(nn.Module):
    """Three strided 1-D convolutions (25 channels) and a linear read-out of the flat maps."""

    def __init__(self, classes: int = CLASSES, channels: int = 25, length: int = LENGTH) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        out = length
        for k in (5, 3, 3):  # (L + 2 * padding - kernel) // stride + 1
            out = (out + 2 - k) // 2 + 1
        self.linear = nn.Linear(channels * out, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        h = torch.relu(self.conv1(h))
        h = torch.relu(self.conv2(h))
        h = torch.relu(self.conv3(h))
        return self.linear(h.flatten(1))


MODELS: dict[str, type[nn.Module]] = {"logreg": LinearBase, "mlp": MLPBase, "cnn": ConvBase}


def build(kind: str, seed: int) -> nn.Module:
    """Model ``kind`` (``logreg``, ``mlp`` or ``cnn``) initialised from torch seed ``seed``,
    without touching the global torch generator."""
    if kind not in MODELS:
        raise WorkloadError(f"unknown MNIST-1D model {kind!r}; known: {', '.join(MODELS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[kind]()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (the authors' ``count_params``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
