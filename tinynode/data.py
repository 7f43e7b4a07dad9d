"""Data: MNIST-format files, the bundled sample, and a mini-batch loader.

MNIST and Fashion-MNIST ship as IDX files: a tiny header (a magic number, the
size of each dimension) and then raw bytes. :func:`read_idx` checks every
field, so a damaged file fails here, by name, not as a puzzling shape error
deep in training. :func:`load_mnist` finds the files (its docstring gives the
search order); downloads are checked by SHA-256 and written atomically, so a
file lands in the cache complete and verified or not at all. With no files and
no network, MNIST's training split falls back to a bundled 5,000-image sample,
so the tutorial always runs. Nothing here uses pickle.
"""

import hashlib
import numbers
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import backend
from .download import CHECKSUMS, _fetch, cache_dir, download_file
from .errors import ArgumentError, DataError, ShapeError
from .fileio import atomic_file
from .idx import read_idx, write_idx

__all__ = [
    "read_idx",
    "write_idx",
    "download_file",
    "cache_dir",
    "load_mnist",
    "load_sample",
    "DataLoader",
    "train_test_split",
    "MIRRORS",
    "CHECKSUMS",
    "SYSTEM_DIRS",
    "FILES",
]

#: Base URLs each dataset is downloaded from, tried in order (a file's URL is
#: base + file name). Tests point this at a local server.
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}

#: Where system packages install a dataset (Debian: ``apt install dataset-fashion-mnist``).
SYSTEM_DIRS = {"fashion-mnist": ["/usr/share/datasets/fashion-mnist"]}

#: The (images, labels) files of each split, found with or without ``.gz``.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: After a failed download, seconds before the next run tries again (it would wait TIMEOUT per mirror).
RETRY_AFTER = 3600.0

#: The bundled sample (see ``tinynode/datasets/README.md``) and its SHA-256s.
SAMPLE_DIR = Path(__file__).resolve().parent / "datasets"
SAMPLE_FILES = ("mnist-sample-images-idx3-ubyte.gz", "mnist-sample-labels-idx1-ubyte.gz")
SAMPLE_SHA256 = {
    "mnist-sample-images-idx3-ubyte.gz": "e25c364203adfc3370742a8c92ec1c2cef838c70d06dfcf2f3bda04c46a495e5",
    "mnist-sample-labels-idx1-ubyte.gz": "e63e53e1fa87a05d22ff2b63bb1f2c1de160603d6654ea2ec39091297b918bcd",
}


def _find_files(directory, split):
    """The (images, labels) paths of ``split`` in ``directory``; None if neither is there, and a
    DataError naming the missing one if only one is (a typo would otherwise go unnoticed)."""
    paths = []
    for stem in FILES[split]:
        candidates = [os.path.join(directory, stem + suffix) for suffix in (".gz", "")]
        paths += [p for p in candidates if os.path.isfile(p)][:1]  # prefer the .gz
    if len(paths) == 1:
        missing = [stem for stem in FILES[split] if not os.path.basename(paths[0]).startswith(stem)][0]
        raise DataError(
            f"{directory} has {os.path.basename(paths[0])} but not {missing}(.gz): the {split} split needs both "
            "(check the file names)"
        )
    return paths or None


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _read_pair(images_path, labels_path, origin):
    """Read an images file and a labels file, check that they belong together; also their source record."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (len(images),):
        raise DataError(
            f"{images_path} and {labels_path} do not form an MNIST image/label pair: shapes "
            f"{images.shape} and {labels.shape}, expected (N, 28, 28) and (N,). "
            "Check that the files are not swapped or mixed from two datasets."
        )
    if labels.size and labels.max() >= 10:
        raise DataError(
            f"{labels_path} holds labels up to {labels.max()}, but MNIST-format labels are the classes 0-9: "
            "it is not a labels file of this dataset"
        )
    files = {os.path.basename(os.fspath(p)): _sha256(p) for p in (images_path, labels_path)}
    return images, labels, {"origin": origin, "files": files, "images": len(labels)}


def load_sample():
    """The bundled sample: 5,000 MNIST training images (500 per digit), shuffled once.

    About 0.8 MB inside the package, enough for the Lux tutorial (which uses
    1,500 images) with no download. Provenance: ``tinynode/datasets/README.md``.
    """
    return _read_pair(*(SAMPLE_DIR / f for f in SAMPLE_FILES), "the bundled sample")[:2]


def load_mnist(
    name="mnist",
    split="train",
    data_dir=None,
    download=True,
    subset=None,
    quiet=False,
    mirrors=None,
    *,
    with_source=False,
    sample=False,
):
    """Load MNIST or Fashion-MNIST: ``(images, labels)``, uint8 arrays of shapes (N, 28, 28) and (N,).

    ``name`` is ``"mnist"`` or ``"fashion-mnist"``; ``split`` is ``"train"``
    (60,000 images) or ``"test"`` (the 10,000 ``t10k`` images). The files
    (``train-images-idx3-ubyte[.gz]`` and so on) are looked for, in order, in:

    1. ``data_dir``, or else the directory in the ``TINYNODE_DATA`` environment
       variable: first its ``<name>/`` subdirectory, then the directory itself;
    2. (only when neither is set) system directories (:data:`SYSTEM_DIRS`, e.g. Debian's Fashion-MNIST);
    3. the cache, :func:`cache_dir` (``~/.cache/tinynode/<name>/``);
    4. a download from :data:`MIRRORS` (or ``mirrors``) into the cache, each
       file checked by SHA-256 (skipped when ``download=False``);
    5. for MNIST's training split only, the bundled 5,000-image sample
       (:func:`load_sample`), with a one-line notice on stderr unless ``quiet``.

    ``subset=N`` keeps the first N images. When nothing can serve the request,
    :class:`~tinynode.errors.DataError` says where it looked and what to do; a
    directory named by ``data_dir`` or ``TINYNODE_DATA`` that lacks the files
    is an error too (no silent fallback to the sample). With
    ``sample=True`` takes the bundled sample whatever else is there. With
    ``with_source=True`` it returns ``(images, labels, source)``, ``source``
    recording where the data came from: the dataset, the split, the
    directory (or the bundled sample), each file's SHA-256, the number of
    images, the subset, and the SHA-256 of the images and labels used (what a
    checkpoint keeps, so that ``--resume`` and ``eval`` can check they see the
    same images, whatever their files are called or however compressed).
    """
    if not isinstance(name, str) or name not in CHECKSUMS:
        raise ArgumentError(f"unknown dataset {name!r}; choose one of {sorted(CHECKSUMS)}")
    if not isinstance(split, str) or split not in FILES:
        raise ArgumentError(f"split must be 'train' or 'test', got {split!r}")
    if subset is not None and (not isinstance(subset, (int, np.integer)) or subset < 1):
        raise ArgumentError(f"subset must be a positive integer (a number of images), got {subset!r}")
    if sample and (name, split) != ("mnist", "train"):
        raise ArgumentError(f"the bundled sample holds MNIST training images only, not {name} {split}")
    if sample:  # (a checkpoint trained on it is scored on it, whatever else is installed)
        images, labels, source = _read_pair(*(SAMPLE_DIR / f for f in SAMPLE_FILES), "the bundled sample")
    else:
        images, labels, source = _locate_and_load(name, split, data_dir, download, quiet, mirrors)
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    content = hashlib.sha256(np.ascontiguousarray(images).data)
    content.update(np.ascontiguousarray(labels).data)  # the images used, however the files were compressed
    source = {"dataset": name, "split": split, **source, "subset": subset, "sha256": content.hexdigest()}
    return (images, labels, source) if with_source else (images, labels)


def _locate_and_load(name, split, data_dir, download, quiet, mirrors):
    """Steps 1-5 of :func:`load_mnist`'s search."""
    places = []
    user_dir = data_dir if data_dir is not None else os.environ.get("TINYNODE_DATA")
    if user_dir:
        if not os.path.isdir(user_dir):
            given = "data_dir" if data_dir is not None else "the TINYNODE_DATA environment variable"
            raise DataError(f"{given} names {user_dir!r}, which is not a directory")
        places += [os.path.join(user_dir, name), os.fspath(user_dir)]  # there only: the user chose it
    cache = cache_dir(name)
    places += [] if user_dir else SYSTEM_DIRS.get(name, []) + [cache]
    for directory in places:
        paths = _find_files(directory, split)
        if paths:
            return _read_pair(*paths, directory)
    if user_dir:
        raise DataError(
            f"{user_dir} (given as {'data_dir' if data_dir is not None else 'TINYNODE_DATA'}) has no {name} {split} "
            f"files ({FILES[split][0]}(.gz) and {FILES[split][1]}(.gz), there or in {name}/): check the directory"
        )

    problem = f"not found in {', '.join(places)}"
    failed_at = os.path.join(cache, ".download-failed")  # a failed download is not retried for an hour
    recent = os.path.isfile(failed_at) and time.time() - os.path.getmtime(failed_at) < RETRY_AFTER
    if download and recent and mirrors is None:
        problem += f", and the download failed less than an hour ago (delete {failed_at} to retry now)"
    elif download:
        try:
            for stem in FILES[split]:
                if not os.path.isfile(os.path.join(cache, stem + ".gz")):
                    _fetch(name, stem + ".gz", cache, MIRRORS[name] if mirrors is None else mirrors, quiet)
            return _read_pair(*(os.path.join(cache, stem + ".gz") for stem in FILES[split]), cache)
        except DataError as e:
            problem += f", and the download failed ({e})"
            if mirrors is None:  # the real mirrors (tests pass their own)
                with atomic_file(failed_at) as f:
                    f.write(str(e).encode("utf-8"))
    else:
        problem += ", and downloading is off (download=False)"

    how = (
        f"put {FILES[split][0]}.gz and {FILES[split][1]}.gz in a directory and pass data_dir= "
        "(--data-dir on the command line) or set TINYNODE_DATA to it" + ("" if download else ", or allow the download")
    )
    if name == "mnist" and split == "train":
        if not quiet:
            print(
                f"tinynode: using the bundled 5,000-image MNIST sample, since the full MNIST training set "
                f"was {problem}. For all 60,000 images, {how}.",
                file=sys.stderr,
            )
        return _read_pair(*(SAMPLE_DIR / f for f in SAMPLE_FILES), "the bundled sample")
    raise DataError(
        f"{name} {split} split: {problem}. To use it, {how}"
        + (" (Debian: apt install dataset-fashion-mnist)." if name == "fashion-mnist" else ".")
    )


# ----------------------------------------------------------------------------- batches


class DataLoader:
    """Mini-batches ``(x, y)``: x float32 in [0, 1] of shape (B, 28, 28), y int64 of shape (B,).

    The uint8 images are kept as they are (a quarter of the float32 size) and
    scaled per batch. With ``xp`` set to ``cupy`` (or ``"gpu"``) the whole
    dataset is copied to the device once, here, and batches are made there.
    The labels are checked here, where they enter: integer classes ``0..classes-1``
    (a GPU loss does not re-check them, which would cost a synchronisation per
    batch). The last partial batch is kept unless ``drop_last``. With ``shuffle``, each
    pass over the data (an epoch, counted in ``self.epoch``) uses a new
    permutation drawn from ``(seed, epoch)``: the same seed gives the same
    sequence of epochs, and setting ``epoch`` resumes it.
    """

    def __init__(self, images, labels, batch_size=128, shuffle=False, seed=0, drop_last=False, xp=np, classes=10):
        if not (hasattr(images, "shape") and hasattr(labels, "shape")):
            raise ArgumentError(
                f"DataLoader needs arrays (as load_mnist returns), got {type(images).__name__} and "
                f"{type(labels).__name__}"
            )
        if len(images) != len(labels):
            raise ShapeError(f"{len(images)} images but {len(labels)} labels")
        if images.dtype != np.uint8:
            raise ArgumentError(
                f"DataLoader expects uint8 pixels (0-255) as load_mnist returns, got "
                f"{images.dtype}; it scales them to [0, 1] itself"
            )
        if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 1:
            raise ArgumentError(f"classes must be a positive integer, got {classes!r}")
        host_labels = backend.to_host(labels)
        bad = host_labels.size and (host_labels.min() < 0 or host_labels.max() >= classes)
        if host_labels.dtype.kind not in "iu" or host_labels.ndim != 1 or bad:
            raise ArgumentError(
                f"labels must be a 1-D array of integer classes 0..{classes - 1}, got {host_labels.dtype} of shape "
                f"{host_labels.shape}" + (f" in {host_labels.min()}..{host_labels.max()}" if host_labels.size else "")
            )
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.xp = backend.get_array_module(xp) if isinstance(xp, str) else xp
        move = backend.to_host if self.xp is np else self.xp.asarray
        self.images, self.labels = move(images), move(labels)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ArgumentError(f"seed must be a non-negative integer, got {seed!r}")
        self.batch_size, self.shuffle, self.seed, self.drop_last = int(batch_size), shuffle, seed, drop_last
        self.epoch = 0

    def __len__(self):
        """The number of batches in one epoch."""
        n, b = len(self.labels), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        order = None
        if self.shuffle:
            perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels))
            order = self.xp.asarray(perm)  # one small transfer per epoch
        self.epoch += 1
        for i in range(len(self)):
            rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if order is not None:
                rows = order[rows]
            x = self.xp.true_divide(self.images[rows], 255, dtype=self.xp.float32)  # cast and scale, one pass
            yield x, self.labels[rows].astype(self.xp.int64)


def train_test_split(images, labels, at=0.9):
    """Split in order, as the Lux tutorial's ``splitobs(...; at=0.9)``: the first
    ``round(at * N)`` samples train, the rest test (1,500 images give 1,350 and 150).

    Returns ``(train_images, train_labels), (test_images, test_labels)`` (views, no copy).
    """
    if isinstance(at, bool) or not isinstance(at, numbers.Real) or not 0 < at < 1:
        raise ArgumentError(f"at must be a fraction strictly between 0 and 1, got {at!r}")
    if len(images) != len(labels):
        raise ShapeError(f"{len(images)} images but {len(labels)} labels")
    k = round(at * len(labels))
    return (images[:k], labels[:k]), (images[k:], labels[k:])
