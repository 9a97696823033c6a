"""Image folders, as Keras's ``image_dataset_from_directory`` reads them.

Files: the class names are the sorted sub-folder names (or ``class_names``, in its order);
each class folder is walked with its sub-folders sorted and its files sorted, keeping the
extensions Keras keeps (``.bmp .gif .jpeg .jpg .png``, any case); the classes follow one
another. With ``shuffle`` the paths and the labels are each shuffled by
``numpy.random.RandomState(seed)`` (the same permutation); ``validation_split`` then keeps
the first ``n - int(split * n)`` files for ``training`` and the rest for ``validation``.

Pixels: Pillow decodes a file (a GIF's first frame) and converts it as Keras's Pillow path
does (``L`` for grayscale unless already 8/16/32-bit gray, ``RGB``, ``RGBA``); the float32
image is resized like ``keras.ops.image.resize`` (``antialias=False``): per axis a weight
matrix of the interpolation kernel at half-pixel centres, normalised, zero where the sample
falls outside the image, an axis of unchanged size left alone. Images of one size are resized
together, a product per image and channel.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from kconf.data.problem import DataProblem, DataWarning, shown_path
from kconf.data.stream import RowSource, fingerprint
from kconf.engine.backend import floatx

FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
MISSING_PILLOW = "image folders need Pillow: pip install -e '.[images]'"


def _pillow(path: tuple):
    try:
        from PIL import Image
    except ImportError:
        raise DataProblem(MISSING_PILLOW, path) from None
    return Image


# --- the files, in Keras's order ---------------------------------------------------------

def index_directory(folder: Path, class_names: list[str] | None, follow_links: bool,
                    path: tuple) -> tuple[list[Path], np.ndarray, list[str]]:
    """Every image file below ``folder`` and its class, in Keras's (unshuffled) order.

    Raises:
        DataProblem: a missing folder, no class folders, a named class that is not a
            sub-folder, a class folder without images.
    """
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "not found"
        raise DataProblem(f"image folder {what}: {shown_path(folder)}", (*path, "path"))
    subdirs = sorted(e.name for e in os.scandir(folder)
                     if e.is_dir() and not e.name.startswith("."))
    if class_names is not None:
        unknown = [c for c in class_names if c not in subdirs]
        if unknown:
            raise DataProblem(f"class_names {unknown} are not sub-folders of "
                              f"{shown_path(folder)}; it has {subdirs}", (*path, "class_names"))
        subdirs = list(class_names)
    if not subdirs:
        raise DataProblem(f"{shown_path(folder)} has no class sub-folders: put the images of "
                          "each class in a folder of its own", (*path, "path"))
    files: list[Path] = []
    labels: list[int] = []
    empty = []
    for label, name in enumerate(subdirs):
        found = list(_walk(folder / name, follow_links))
        if not found:
            empty.append(name)
        files += found
        labels += [label] * len(found)
    if empty:
        raise DataProblem(f"class folder{'s' if len(empty) > 1 else ''} without images "
                          f"({', '.join(FORMATS)}): "
                          f"{', '.join(shown_path(folder / e) for e in empty)}", (*path, "path"))
    return files, np.asarray(labels, dtype=np.int32), subdirs


def _walk(folder: Path, follow_links: bool):
    """Image files below one class folder: folders in sorted order, files sorted in each."""
    for root, _, names in sorted(os.walk(folder, followlinks=follow_links), key=lambda w: w[0]):
        for name in sorted(names):
            if name.lower().endswith(FORMATS):
                yield Path(root) / name


def keras_order(files: list[Path], labels: np.ndarray, shuffle: bool, seed: int,
                validation_split: float | None, subset: str | None):
    """The files and labels Keras keeps for ``subset``, in its order (shuffled by seed).

    Returns:
        ``{subset name: (files, labels)}``: one item, or ``training`` and ``validation``
        for ``subset: both``.
    """
    files = list(files)
    labels = labels.copy()
    if shuffle:
        np.random.RandomState(seed).shuffle(files)
        np.random.RandomState(seed).shuffle(labels)
    if not validation_split:
        return {"training": (files, labels)}
    n_val = int(validation_split * len(files))
    parts = {"training": (files[:len(files) - n_val], labels[:len(files) - n_val]),
             "validation": (files[len(files) - n_val:], labels[len(files) - n_val:])}
    return parts if subset == "both" else {subset: parts[subset]}


# --- pixels ------------------------------------------------------------------------------

def decode(file: Path, channels: int) -> np.ndarray:
    """One image file as float32 (height, width, channels), converted as Keras does.

    Raises:
        OSError, ValueError, SyntaxError: not a readable image (Pillow's errors).
    """
    from PIL import Image

    with Image.open(file) as img:
        if channels == 1:
            if img.mode not in ("L", "I;16", "I"):
                img = img.convert("L")
        elif channels == 4:
            if img.mode != "RGBA":
                img = img.convert("RGBA")
        elif img.mode != "RGB":
            img = img.convert("RGB")
        pixels = np.asarray(img, dtype=np.float32)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _keys_cubic(x):
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = np.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return np.where(x >= 2.0, 0.0, out)


def _lanczos(radius: float):
    def kernel(x):
        y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(x > 1e-3, y / np.where(x != 0, np.pi ** 2 * x ** 2, 1), 1.0)
        return np.where(x > radius, 0.0, out)
    return kernel


KERNELS = {
    "bilinear": lambda x: np.maximum(0.0, 1.0 - np.abs(x)),
    "bicubic": _keys_cubic,
    "lanczos3": _lanczos(3.0),
    "lanczos5": _lanczos(5.0),
}


def weight_matrix(m: int, n: int, interpolation: str) -> np.ndarray:
    """(m, n) float32 weights taking an axis of m pixels to n (``antialias=False``)."""
    f32 = np.float32
    inv_scale = f32(1.0 / (n / m))
    sample = (np.arange(n, dtype=f32) + f32(0.5)) * inv_scale - f32(0.5)
    x = np.abs(sample[None, :] - np.arange(m, dtype=f32)[:, None])
    weights = KERNELS[interpolation](x).astype(f32)
    total = weights.sum(axis=0, keepdims=True, dtype=f32)
    weights = np.where(np.abs(total) > f32(1000 * np.finfo(np.float32).eps),
                       weights / np.where(total != 0, total, f32(1)), f32(0))
    inside = (sample >= -0.5) & (sample <= f32(m - 0.5))
    return np.where(inside[None, :], weights, f32(0)).astype(f32)


def _nearest(m: int, n: int) -> np.ndarray:
    """Source pixel of each of n output pixels (jax's nearest: floor((i + 0.5) * m / n))."""
    f32 = np.float32
    return np.floor((np.arange(n, dtype=f32) + f32(0.5)) * f32(m) / f32(n)).astype(np.int64)


def crop_box(height: int, width: int, size: tuple[int, int]) -> tuple[slice, slice]:
    """The centred window of ``size``'s aspect ratio (Keras's ``crop_to_aspect_ratio``)."""
    th, tw = size
    ch = max(min(height, int(float(width * th) / tw)), 1)
    cw = max(min(width, int(float(height * tw) / th)), 1)
    top, left = int(float(height - ch) / 2), int(float(width - cw) / 2)
    return slice(top, top + ch), slice(left, left + cw)


def resize(images: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """A batch (N, h, w, c) of float32 images resized to ``size``, as Keras's
    ``ops.image.resize`` (``antialias=False``)."""
    (h, w), (th, tw) = images.shape[1:3], size
    if interpolation == "nearest":
        if h != th:
            images = images[:, _nearest(h, th)]
        if w != tw:
            images = images[:, :, _nearest(w, tw)]
        return images
    if (h, w) == (th, tw):
        return images
    # One product per image and channel (matmul over stacked matrices calls BLAS for each
    # with the same shapes), so an image's pixels do not depend on the batch it is read in:
    # a product over the whole batch is blocked by its length, and rounds differently.
    planes = images.transpose(0, 3, 1, 2)
    if h != th:
        planes = weight_matrix(h, th, interpolation).T @ planes
    if w != tw:
        planes = planes @ weight_matrix(w, tw, interpolation)
    return np.ascontiguousarray(planes.transpose(0, 2, 3, 1))


# --- the rows of a split ----------------------------------------------------------------

class ImageRows(RowSource):
    """The images of a split, decoded and resized when read (a batch at a time)."""

    def __init__(self, files: list[Path], size: tuple[int, int], color_mode: str,
                 interpolation: str, crop: bool, path: tuple):
        super().__init__()
        self.paths = [str(f) for f in files]
        self.size = tuple(size)
        self.channels = CHANNELS[color_mode]
        self.interpolation = interpolation
        self.crop = crop
        self.config_path = path
        self.shape = (len(files), *self.size, self.channels)
        self.dtype = np.dtype(floatx)
        self.files = {p: fingerprint(Path(p)) for p in self.paths}

    def _read(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), *self.size, self.channels), dtype=floatx)
        by_size: dict[tuple, list[tuple[int, np.ndarray]]] = {}
        for i, k in enumerate(index):
            image = self._decode(self.paths[k])
            if self.crop:
                image = image[crop_box(*image.shape[:2], self.size)]
            by_size.setdefault(image.shape, []).append((i, image))
        for group in by_size.values():  # images of one size are resized together
            slots = np.array([i for i, _ in group])
            out[slots] = resize(np.stack([im for _, im in group]), self.size,
                                self.interpolation)
        return out

    def nonfinite(self) -> tuple[int, int | None]:
        """Decoded pixels are always finite: nothing to scan."""
        return 0, None

    def _decode(self, file: str) -> np.ndarray:
        try:
            return decode(Path(file), self.channels)
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataProblem(f"cannot read the image {shown_path(Path(file))}: {exc}",
                              (*self.config_path, "path")) from None


def readable(files: list[Path], on_bad_file: str, path: tuple) -> np.ndarray:
    """Which files Pillow can open and verify; bad ones are errors or skipped with a
    ``DataWarning`` naming each.

    Returns:
        A boolean mask over ``files``.

    Raises:
        DataProblem: bad files with ``on_bad_file: error``, each named.
    """
    Image = _pillow(path)
    ok = np.ones(len(files), dtype=bool)
    bad = []
    for i, file in enumerate(files):
        try:
            with Image.open(file) as img:
                img.verify()
        except Exception as exc:  # Pillow raises many kinds for a corrupt file
            ok[i] = False
            bad.append(f"{shown_path(file)} is not a readable image "
                       f"({type(exc).__name__}: {exc})")
    if bad and on_bad_file == "error":
        at = (*path, "path")
        raise DataProblem(bad[0] + " (on_bad_file: skip leaves such files out)", at,
                          [(b, at) for b in bad[1:]])
    for message in bad:
        warnings.warn(f"skipped: {message}", DataWarning, stacklevel=2)
    return ok


def load_images(args, seed: int, path: tuple) -> dict[str, tuple[list, list]]:
    """The splits of an ``images`` source.

    Args:
        args: the source's ``ImagesArgs`` (``path`` already resolved against the config's
            folder by the caller).
        seed: the shuffle's seed (``args.seed``, else the config's).
        path: the config path of the source.

    Returns:
        ``{"training" | "validation": (xs, ys)}``: one ``ImageRows`` (or, without
        ``stream``, its decoded array), and the labels as ``label_mode`` says.

    Raises:
        DataProblem: see ``index_directory`` and ``readable``; binary labels need 2 classes.
    """
    _pillow(path)
    if args.label_mode is None:
        raise DataProblem("label_mode: null gives images without labels; training needs "
                          "label_mode int, categorical or binary", (*path, "label_mode"))
    files, labels, classes = index_directory(Path(args.path), args.class_names,
                                             args.follow_links, path)
    if args.label_mode == "binary" and len(classes) != 2:
        raise DataProblem(f"label_mode: binary needs exactly 2 classes; the folder has "
                          f"{len(classes)} ({', '.join(classes)})", (*path, "label_mode"))
    ok = readable(files, args.on_bad_file, path)
    files = [f for f, good in zip(files, ok) if good]
    labels = labels[ok]
    out = {}
    parts = keras_order(files, labels, args.shuffle, seed, args.validation_split, args.subset)
    for name, (part_files, part_labels) in parts.items():
        if not part_files:
            raise DataProblem(f"no {name} images: {len(files)} files and validation_split "
                              f"{args.validation_split:g} leave none", (*path, "validation_split"))
        rows = ImageRows(part_files, args.image_size, args.color_mode, args.interpolation,
                         args.crop_to_aspect_ratio, path)
        rows.shuffle_buffer = args.shuffle_buffer
        x = rows if args.stream else rows.materialize()
        out[name] = ([x], [_labels(part_labels, args.label_mode, len(classes))])
    return out


def _labels(labels: np.ndarray, mode: str, classes: int) -> np.ndarray:
    """Keras's label encodings: int32 (N,), one-hot float32 (N, C), binary float32 (N, 1)."""
    if mode == "categorical":
        return np.eye(classes, dtype=floatx)[labels]
    if mode == "binary":
        return labels.astype(floatx).reshape(-1, 1)
    return labels
