"""``plasticity``: dead units, effective rank and weight magnitude of any run (Dohare et al.
2024, "Loss of plasticity in deep continual learning", Nature 632, Extended Data Figs 3-4).

On the fixed probe batches, through the training loss's own forward pass (forward hooks on
every activation module: ``nn.ReLU``, ``nn.Tanh``... see
:data:`steplab.workloads.plasticity_metrics.ACTIVATIONS`), the hidden representation of each
activation layer is collected (examples x units, the batches concatenated) and reported as in
:func:`steplab.workloads.plasticity_metrics.probe_metrics`:

* ``plasticity/dead_fraction/layer{l}`` (ReLU-type: exactly 0 on every probe example) or
  ``plasticity/saturated_fraction/layer{l}`` (tanh, sigmoid: within 1% of the range of a
  bound on every example), and their unit-weighted mean ``plasticity/dead_fraction``;
* ``plasticity/erank/layer{l}`` (Roy & Vetterli 2007) and their mean ``plasticity/erank``;
* ``plasticity/weight_magnitude`` (mean ``|w|`` of the ``nn.Linear``/``nn.Conv`` weights) and
  per layer.

A model whose nonlinearities are functions (``F.relu``) rather than modules has no hidden
layer to hook: only the weight magnitude is reported. The long streams
(:mod:`steplab.workloads.long_streams`) measure the same numbers on each new task's data.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from steplab.monitors.base import Monitor, MonitorError, Probe
from steplab.workloads.plasticity_metrics import hidden_activations, layer_metrics, weight_metrics


@dataclasses.dataclass
class Plasticity(Monitor):
    """Dead units, effective rank, weight magnitude on the probe batches; see the module docstring."""

    name: ClassVar[str] = "plasticity"
    #: probe batches to concatenate (Dohare et al. use 2000 examples)
    batches: int = 4

    def __post_init__(self) -> None:
        if self.batches < 1:
            raise ValueError(f"batches must be >= 1, got {self.batches}")

    def __call__(self, probe: Probe) -> dict[str, float]:
        if len(probe.batches) < self.batches:
            raise MonitorError(f"plasticity needs {self.batches} probe batches, the run has {len(probe.batches)}")
        model = probe.model
        # one pass per batch, then the layers' activations concatenated over batches
        per_batch = [hidden_activations(model, lambda b=b: probe.loss(model, b)) for b in probe.batches[:self.batches]]
        layers = list(zip(*per_batch, strict=True)) if per_batch and per_batch[0] else []
        stacked = [(group[0][0], torch.cat([a for _, a in group])) for group in layers]
        return {**layer_metrics(stacked, "plasticity/"), **weight_metrics(model, "plasticity/")}
