"""Handwritten operator symbols: decode the zip, group copies of one drawing, thicken strokes.

The public operator set (``mdas_symbols_v1.zip``) stores every drawing several
times, flipped and rotated, and its own train/val/test folders put copies of
one drawing in different splits. This module finds the original drawings so
``data.operators`` can split by drawing instead of by file:

1. :func:`decode_zip` reads the four operator classes straight from the zip.
2. :func:`group_drawings` puts images equal up to the 8 symmetries of the
   square in one group (exact canonical bytes), then merges groups whose closest
   symmetric copies differ by less than ``tolerance`` of their ink (a few minus
   signs are resampled copies, off by a grey level here and there).
3. :func:`mnist_like` thickens strokes with a 3x3 max-filter (mean pixel 0.055
   -> 0.13, MNIST's value) and moves the centre of mass to the image centre.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

# Folder name in the zip -> operator code (0 +, 1 -, 2 *, 3 /); the zip's
# "slash" and "dot" variants are not the paper's symbols and are skipped.
OPERATOR_FOLDERS = {
    "addition_plus": 0,
    "subtraction_minus": 1,
    "multiplication_cross": 2,
    "division_obelus": 3,
}

# Fraction of the two images' ink that may differ for two drawings to count as
# one. Measured on mdas_symbols_v1: near copies sit at 0.0003..0.01, distinct
# drawings mostly at 0.02..0.2 (only minus signs, being short lines, come close).
DEFAULT_TOLERANCE = 0.01


def symmetries(image: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations/reflections of a square image (the dihedral group D4).

    Args:
        image: array ``[..., S, S]``; the last two axes are transformed.

    Returns:
        Eight arrays, the identity first.

    Example:
        >>> len(symmetries(np.eye(3)))
        8
    """
    out = []
    for k in range(4):
        turned = np.rot90(image, k, axes=(-2, -1))
        out += [turned, turned[..., ::-1]]
    return out


def canonical_key(image: np.ndarray) -> bytes:
    """Bytes of an image that are the same for all 8 of its symmetric copies.

    Example:
        >>> a = np.arange(4, dtype=np.uint8).reshape(2, 2)
        >>> canonical_key(a) == canonical_key(a.T)
        True
    """
    return min(np.ascontiguousarray(t).tobytes() for t in symmetries(image))


def decode_zip(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read the operator PNGs of the four paper classes from the zip.

    Args:
        path: ``mdas_symbols_v1.zip``.

    Returns:
        ``(images uint8 [N, 28, 28], labels int64 [N] in 0..3, member names)``,
        in the zip's sorted member order.

    Example:
        >>> images, labels, names = decode_zip(Path("operators/mdas_symbols_v1.zip"))  # doctest: +SKIP
    """
    from PIL import Image  # torchvision's dependency; only needed here

    images, labels, names = [], [], []
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            parts = name.split("/")
            if not name.endswith(".png") or len(parts) < 3 or parts[-2] not in OPERATOR_FOLDERS:
                continue
            with Image.open(io.BytesIO(archive.read(name))) as png:
                pixels = np.asarray(png.convert("L"), dtype=np.uint8)
            assert pixels.shape == (28, 28), (name, pixels.shape)
            images.append(pixels)
            labels.append(OPERATOR_FOLDERS[parts[-2]])
            names.append(name)
    return np.stack(images), np.asarray(labels, dtype=np.int64), names


def group_drawings(images: np.ndarray, labels: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Group id of every image: images of one drawing share an id.

    Two images are one drawing if some symmetry of one is within ``tolerance``
    of the other: ``sum|a - b| / (sum a + sum b) < tolerance`` (exact copies
    give 0). Groups never span classes. Ids are ``0..G-1`` ordered by
    (class, smallest canonical key), so they do not depend on file order.

    Args:
        images: uint8 ``[N, S, S]``.
        labels: int ``[N]``.
        tolerance: see above; 0 groups exact symmetric copies only.

    Returns:
        int64 ``[N]`` group ids.

    Example:
        >>> a = np.zeros((2, 4, 4), np.uint8); a[0, 0, 1] = a[1, 1, 0] = 255
        >>> group_drawings(a, np.zeros(2, np.int64)).tolist()
        [0, 0]
    """
    import torch  # cdist keeps the pairwise L1 distances cheap in memory

    keys = [canonical_key(image) for image in images]
    exact: dict[tuple[int, bytes], list[int]] = {}
    for index, key in enumerate(keys):
        exact.setdefault((int(labels[index]), key), []).append(index)
    reps = sorted(exact)  # (class, canonical key) of each exact group
    parent = list(range(len(reps)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    if tolerance > 0:
        for cls in sorted({c for c, _ in reps}):
            members = [i for i, (c, _) in enumerate(reps) if c == cls]
            shape = images.shape[1:]
            flat = np.stack([np.frombuffer(reps[i][1], np.uint8).reshape(shape) for i in members])
            flat = torch.from_numpy(flat.astype(np.float32) / 255.0)
            base = flat.reshape(len(members), -1)
            ink = base.sum(1)
            dist = torch.full((len(members), len(members)), float("inf"))
            for sym in symmetries(flat.numpy()):
                copies = torch.from_numpy(np.ascontiguousarray(sym)).reshape(len(members), -1)
                dist = torch.minimum(dist, torch.cdist(base, copies, p=1))
            close = dist / (ink[:, None] + ink[None, :]).clamp_min(1e-6) < tolerance
            for a, b in zip(*np.nonzero(close.numpy())):
                parent[find(members[a])] = find(members[b])

    # reps are sorted, so numbering roots by first appearance orders groups by
    # (class, smallest canonical key) and keeps ids independent of file order
    group_of_root: dict[int, int] = {}
    ids = np.empty(len(images), dtype=np.int64)
    for rep_index, rep in enumerate(reps):
        gid = group_of_root.setdefault(find(rep_index), len(group_of_root))
        ids[exact[rep]] = gid
    return ids


def mnist_like(images: np.ndarray) -> np.ndarray:
    """Thicken strokes and centre the ink like MNIST; float32 in [0, 1].

    A 3x3 max-filter roughly doubles the stroke width (mean pixel 0.055 -> 0.13
    on this set; MNIST's is 0.13); then each image is shifted by whole pixels
    so its centre of mass sits at the centre, as MNIST's digits do.

    Args:
        images: uint8 or float ``[N, S, S]`` (uint8 is divided by 255).

    Returns:
        float32 ``[N, S, S]``.

    Example:
        >>> x = np.zeros((1, 5, 5), np.uint8); x[0, 0, 1] = 255
        >>> mnist_like(x)[0].astype(int)
        array([[0, 0, 0, 0, 0],
               [0, 0, 0, 0, 0],
               [0, 1, 1, 1, 0],
               [0, 1, 1, 1, 0],
               [0, 0, 0, 0, 0]])
    """
    x = images.astype(np.float32)
    if images.dtype == np.uint8:
        x /= 255.0
    n, size, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    thick = np.max([padded[:, 1 + dy : 1 + dy + size, 1 + dx : 1 + dx + size] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    out = np.zeros_like(thick)
    grid = np.arange(size, dtype=np.float32)
    centre = (size - 1) / 2
    for i in range(n):
        mass = thick[i].sum()
        if mass == 0:
            continue
        cy = (thick[i].sum(1) * grid).sum() / mass
        cx = (thick[i].sum(0) * grid).sum() / mass
        out[i] = _shift(thick[i], int(np.rint(centre - cy)), int(np.rint(centre - cx)))
    return out


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate by whole pixels, filling with 0 (no wrap-around)."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
    return out
