"""Synthetic TaskData for the baseline and lifelong tests: cells whose class is a lit band of rows, so a tiny net can read it."""

from __future__ import annotations

import numpy as np
from ntpt_dist.experiments.tasks import SIDES, TaskData


def class_images(labels: np.ndarray, rng: np.random.Generator, noise: float = 0.1) -> np.ndarray:
    """float32 images [*labels.shape, 28, 28]: class c lights rows 4c..4c+3, plus uniform noise."""
    images = (rng.random(labels.shape + (28, 28)) * noise).astype(np.float32)
    for c in np.unique(labels):
        band = images[labels == c]
        band[:, 4 * c : 4 * c + 4, :] = 1.0
        images[labels == c] = band
    return images


def grid_task(task: str, n: int, seed: int, classes: int = 3) -> TaskData:
    """A 2x2 task on band images: ADD2x2 sums the side's two cells; APPLY2x2 answers aux[0] + class of the side's first cell."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=(n, 2, 2))
    (r1, c1), (r2, c2) = SIDES[task.partition(":")[2]]
    inputs = {"grid": class_images(labels, rng)}
    if task.startswith("APPLY2x2"):
        inputs["aux"] = rng.integers(0, 10, size=(n, 3))
        result = inputs["aux"][:, 0] + labels[:, r1, c1]
    else:
        result = labels[:, r1, c1] + labels[:, r2, c2]
    ids = np.arange(n * 4).reshape(n, 2, 2)
    return TaskData(task, "train", inputs, {"result": result.astype(np.int64)}, {"grid": labels}, {"grid": ids})


def math_task(n: int, seed: int, digits: int = 2, classes: int = 3) -> TaskData:
    """A MATH-shaped task on band images: tape d op d ...; the answer is the sum of the digits."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=(n, 2 * digits - 1))
    labels[:, 1::2] = 10  # every operator is "+" (class 10, drawn as band 5 below)
    drawn = np.where(labels == 10, 5, labels)
    result = labels[:, 0::2].sum(axis=1)
    ids = np.arange(labels.size).reshape(labels.shape)
    return TaskData("MATH", "train", {"tape": class_images(drawn, rng)}, {"result": result.astype(np.int64)}, {"tape": labels}, {"tape": ids})
