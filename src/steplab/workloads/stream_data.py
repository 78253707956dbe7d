"""The data and models of the continual streams (:mod:`steplab.workloads.task_stream`), all offline.

* The digit streams use the 8x8 digits bundled with scikit-learn (Alpaydin & Kaynak 1998,
  ``sklearn.datasets.load_digits``) with ``digits-mlp``'s stratified split (397 test
  images), scaled by one scalar mean and standard deviation so that permuting and rotating
  pixels keeps the scale. ``split-digits``: classes ``(2t, 2t+1)`` for task ``t`` (the twin
  pairs a seeded permutation of the classes, on another split); ``permuted-digits``: one
  seeded pixel permutation per task (task 1 unpermuted; the twin permutes every task with
  another seed); ``rotated-digits``: task ``t`` rotated by ``t * angle`` degrees with
  bilinear interpolation (``scipy.ndimage.rotate``; the twin mirrors the digits first).
* ``charlm-shift`` reads two texts shipped with Python (:func:`lm_texts`), keeps printable
  ASCII (anything else is one out-of-vocabulary id, tabs are spaces) and holds out every
  10th block of 1000 characters, as ``charlm`` does; evaluation windows are evenly spaced
  over the held-out text.
* Models: :class:`DigitsNet` (MLP 64-128-128 with one 10-way head or a 2-way head per task)
  and ``charlm``'s one-layer character transformer.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from steplab.workloads.stream_spec import StreamSpec

__all__ = ["CODE_CHARS", "CONTEXT", "VOCAB", "DigitsNet", "StreamData", "digits_data", "lm_data", "lm_texts"]


@dataclasses.dataclass
class StreamData:
    """One stream's tensors: training examples of every task concatenated (``x``, ``y``, or
    the id stream ``ids`` of an LM stream), each task's pool of example ids and its fixed
    evaluation subset."""

    x: torch.Tensor  # classification: (N, 64) features; lm: (N,) character ids
    y: torch.Tensor  # classification: (N,) targets; lm: unused
    pools: list[torch.Tensor]
    eval_sets: list[tuple[torch.Tensor, torch.Tensor]]

    def to(self, device: torch.device) -> StreamData:
        """A copy on ``device`` (the pools of example ids stay on the CPU with the sampler)."""
        return StreamData(self.x.to(device), self.y.to(device), self.pools,
                          [(a.to(device), b.to(device)) for a, b in self.eval_sets])


def _subset(n: int, size: int, seed: int) -> torch.Tensor:
    """A fixed, seeded subset of ``range(n)`` of ``min(n, size)`` indices, sorted."""
    if size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def _digits_tasks(spec: StreamSpec) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], float, float]:
    """Per task (x_train, y_train, x_test, y_test) of raw 8x8 digits (values 0..16) plus the
    scalar mean and std used to standardize them."""
    from scipy import ndimage
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from steplab.workloads.digits import DATA_SEED, N_VALIDATION

    twin = bool(spec.get("twin"))
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=N_VALIDATION, stratify=y,
                                              random_state=DATA_SEED + (1 if twin else 0))
    mean, std = float(x_tr.mean()), float(x_tr.std())
    tasks = []
    if spec.name == "split-digits":
        order = np.random.default_rng(1).permutation(10) if twin else np.arange(10)
        local = spec.get("scenario") == "task"
        for t in range(spec.tasks):
            pair = order[2 * t: 2 * t + 2]
            tr, te = np.isin(y_tr, pair), np.isin(y_te, pair)

            def target(labels: np.ndarray, pair: np.ndarray = pair) -> np.ndarray:
                return (labels == pair[1]).astype(np.int64) if local else labels

            tasks.append((x_tr[tr], target(y_tr[tr]), x_te[te], target(y_te[te])))
    elif spec.name == "permuted-digits":
        rng = np.random.default_rng(2 if twin else 1)
        for t in range(spec.tasks):
            perm = np.arange(64) if (t == 0 and not twin) else rng.permutation(64)
            tasks.append((x_tr[:, perm], y_tr, x_te[:, perm], y_te))
    else:  # rotated-digits
        step = spec.get("angle") if spec.get("angle") is not None else 180.0 / spec.tasks

        def rotate(a: np.ndarray, degrees: float) -> np.ndarray:
            imgs = a.reshape(-1, 8, 8)
            if twin:
                imgs = imgs[:, :, ::-1]  # mirrored digits: other data, same angles
            if degrees:
                imgs = ndimage.rotate(imgs, degrees, axes=(1, 2), reshape=False, order=1, mode="constant", cval=0.0)
            return np.ascontiguousarray(imgs).reshape(-1, 64)

        for t in range(spec.tasks):
            tasks.append((rotate(x_tr, t * step), y_tr, rotate(x_te, t * step), y_te))
    return tasks, mean, std


def digits_data(spec: StreamSpec) -> StreamData:
    """The tensors of a digit stream: standardized features, targets (global classes, or
    0/1 within the task for ``scenario=task``), per-task pools and evaluation subsets
    (``eval_subset`` test images per task, a fixed seeded choice when there are more)."""
    tasks, mean, std = _digits_tasks(spec)
    xs, ys, pools, evals = [], [], [], []
    offset = 0
    for t, (x_tr, y_tr, x_te, y_te) in enumerate(tasks):
        xs.append(x_tr)
        ys.append(y_tr)
        pools.append(torch.arange(offset, offset + len(x_tr)))
        offset += len(x_tr)
        keep = _subset(len(x_te), int(spec.get("eval_subset")), 1000 + t).numpy()
        evals.append((torch.as_tensor((x_te[keep] - mean) / std, dtype=torch.float32),
                      torch.as_tensor(y_te[keep], dtype=torch.long)))
    x = torch.as_tensor((np.concatenate(xs) - mean) / std, dtype=torch.float32)
    return StreamData(x, torch.as_tensor(np.concatenate(ys), dtype=torch.long), pools, evals)


#: LM streams: characters per window (+1 target), the fixed vocabulary and text sizes
CONTEXT = 64
VOCAB = ["\n", *(chr(c) for c in range(32, 127)), "\x00"]  # printable ASCII; anything else -> "\x00"
CODE_CHARS = 300_000
BLOCK, HOLDOUT_EVERY = 1000, 10


def lm_texts(twin: bool = False) -> list[str]:
    """The two domains of ``charlm-shift``: Python source (the standard library's top-level
    ``.py`` files in sorted order, every other file, up to ``CODE_CHARS`` characters) and
    English prose (``pydoc_data.topics``, every other topic in sorted key order); the twin
    takes the other halves. Nothing is downloaded; the code text follows the Python version."""
    import sysconfig
    from pathlib import Path
    from pydoc_data.topics import topics

    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in lib.glob("*.py"))[int(twin)::2]
    code, size = [], 0
    for p in files:
        if size >= CODE_CHARS:
            break
        text = p.read_text(encoding="utf-8", errors="replace")
        code.append(text)
        size += len(text)
    prose = "\n".join(topics[k] for k in sorted(topics)[int(twin)::2])
    return ["\n".join(code)[:CODE_CHARS], prose]


def lm_data(spec: StreamSpec) -> StreamData:
    """The tensors of ``charlm-shift``: both domains' training ids concatenated, the valid
    window starts of each as its pool, ``eval_subset`` evenly spaced held-out windows each."""
    index = {c: i for i, c in enumerate(VOCAB)}
    oov = len(VOCAB) - 1
    parts, pools, evals = [], [], []
    offset = 0
    for text in lm_texts(bool(spec.get("twin"))):
        ids = torch.tensor([index.get(" " if c == "\t" else c, oov) for c in text], dtype=torch.long)
        blocks = ids.split(BLOCK)
        train = torch.cat([b for i, b in enumerate(blocks) if i % HOLDOUT_EVERY != 0])
        held = torch.cat([b for i, b in enumerate(blocks) if i % HOLDOUT_EVERY == 0])
        parts.append(train)
        pools.append(torch.arange(offset, offset + len(train) - CONTEXT - 1))
        offset += len(train)
        n = int(spec.get("eval_subset"))
        starts = torch.linspace(0, len(held) - CONTEXT - 1, n).long()
        evals.append((held[starts[:, None] + torch.arange(CONTEXT + 1)], torch.empty(0, dtype=torch.long)))
    return StreamData(torch.cat(parts), torch.empty(0, dtype=torch.long), pools, evals)


# ----------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------
class DigitsNet(nn.Module):
    """MLP 64-128-128 (ReLU) with one 10-way head, or ``heads`` 2-way heads (one per task,
    task-incremental): ``forward(x, task)`` gives each example the logits of its task's head."""

    def __init__(self, heads: int = 0, hidden: int = 128) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(hidden, 2) for _ in range(heads)]) if heads else None
        self.head = None if heads else nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        if self.heads is None:
            return self.head(h)  # type: ignore[misc]
        every = torch.stack([head(h) for head in self.heads])  # (heads, B, 2)
        return every[task, torch.arange(len(x), device=x.device)]
