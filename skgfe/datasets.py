"""Loaders for the data sets used in the skgfe examples and benchmarks.

Nothing is downloaded at run time: the loaders read files that are already on
disk, for instance those installed by a system package.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

import gzip
import math
import numbers
import os
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._manifold_data import (
    make_blob_images,
    make_cylinder,
    make_flat_torus,
    make_swiss_roll_manifold,
)
from ._sparse_data import make_sparse_gaussian, make_sparse_rademacher

__all__ = [
    "load_fashion_mnist",
    "make_blob_images",
    "make_cylinder",
    "make_flat_torus",
    "make_sparse_gaussian",
    "make_sparse_rademacher",
    "make_swiss_roll_manifold",
]

_ENV_VAR = "SKGFE_FASHION_MNIST"
# Where the Debian package ``dataset-fashion-mnist`` installs the gzipped files.
_DEFAULT_DATA_HOME = Path("/usr/share/datasets/fashion-mnist")

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SUBSETS = ("train", "test", "all")

# IDX magic numbers: two zero bytes, the type code 0x08 (unsigned byte), then
# the number of dimensions.
_LABELS_MAGIC = 0x00000801
_IMAGES_MAGIC = 0x00000803
_IMAGE_SHAPE = (28, 28)

_TARGET_NAMES = np.array(
    [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
)

_DESCR = """\
Fashion-MNIST
-------------

Zalando's article images: 70,000 grayscale images of 28x28 pixels (60,000 in
the training set, 10,000 in the test set), each labelled with one of 10
clothing classes. Pixel values are scaled to [0, 1].

Source: https://github.com/zalandoresearch/fashion-mnist (MIT license).
Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.
"""


def _read_idx(path):
    """Read an unsigned-byte IDX file, plain or gzipped.

    Parameters
    ----------
    path : str or path-like
        The file to read; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    array : ndarray of dtype uint8
        The array stored in the file, with the shape given by its header.

    Raises
    ------
    ValueError
        If the file is not a valid IDX file of labels (magic number
        ``0x00000801``) or images (``0x00000803``), or if its size does not
        match the shape given by its header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path} is not a valid gzip file: {exc}") from exc

    if len(raw) < 4:
        raise ValueError(
            f"{path} is not an IDX file: it has {len(raw)} bytes, fewer than "
            "the 4 bytes of the magic number."
        )
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (_LABELS_MAGIC, _IMAGES_MAGIC):
        raise ValueError(
            f"{path} has magic number 0x{magic:08X}; expected "
            f"0x{_LABELS_MAGIC:08X} (labels) or 0x{_IMAGES_MAGIC:08X} (images)."
        )

    ndim = magic & 0xFF
    offset = 4 * (1 + ndim)
    if len(raw) < offset:
        raise ValueError(
            f"{path} is truncated: its header needs {offset} bytes, the file "
            f"has {len(raw)}."
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    n_bytes = len(raw) - offset
    if n_bytes != math.prod(shape):
        raise ValueError(
            f"{path} holds {n_bytes} data bytes but its header announces shape "
            f"{shape}, i.e. {math.prod(shape)} bytes."
        )
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(shape)


def _resolve_data_home(data_home):
    """Return the folder to search and a phrase saying where it came from.

    Raises a TypeError if ``data_home`` is not a path, and a ValueError if
    the folder chosen is a file.
    """
    if data_home is not None:
        if not isinstance(data_home, (str, os.PathLike)):
            raise TypeError(
                "data_home must be None, a str or a path-like object naming a "
                f"folder, got {type(data_home).__name__}: {data_home!r}."
            )
        folder, origin = Path(data_home).expanduser(), "the data_home argument"
    elif os.environ.get(_ENV_VAR):
        folder, origin = Path(os.environ[_ENV_VAR]).expanduser(), f"${_ENV_VAR}"
    else:
        folder, origin = _DEFAULT_DATA_HOME, "the default location"
    if folder.is_file():
        raise ValueError(
            f"{folder} (from {origin}) is a file; data_home and ${_ENV_VAR} "
            "must name the folder holding the Fashion-MNIST IDX files."
        )
    return folder, origin


def _find_file(folder, name):
    """Return the shallowest ``name`` or ``name.gz`` under ``folder``, or None.

    The search is recursive so that both a flat folder and one holding the
    files in a subfolder work; a plain file wins over a gzipped one at the same
    depth because it is faster to read.
    """
    matches = [
        p
        for pattern in (name, name + ".gz")
        for p in folder.rglob(pattern)
        if p.is_file()  # not a folder that happens to have the name
    ]
    if not matches:
        return None
    return min(matches, key=lambda p: (len(p.parts), p.suffix == ".gz", str(p)))


def _not_found_error(folder, origin, missing):
    """Build the error telling where the files were looked for and how to get them."""
    all_names = ", ".join(name for pair in _FILES.values() for name in pair)
    files = f"{', '.join(missing)} (plain or with a .gz suffix)"
    if folder.is_dir():
        searched = f"searched {folder} and its subfolders (from {origin}) for {files}"
    else:
        searched = f"the folder {folder} (from {origin}) does not exist, so {files}"
        searched += " could not be read"
    return FileNotFoundError(
        f"Fashion-MNIST not found: {searched}. The folder is, in order of "
        "precedence: the data_home argument, the environment variable "
        f"{_ENV_VAR}, then {_DEFAULT_DATA_HOME}. To get the data, run "
        "`apt-get install dataset-fashion-mnist`, which installs it into "
        f"{_DEFAULT_DATA_HOME}, or set {_ENV_VAR} or pass data_home to a "
        f"folder holding the four IDX files {all_names}."
    )


def _locate(folder, origin, subsets):
    """Return the paths of the image and label files of each subset."""
    names = [name for subset in subsets for name in _FILES[subset]]
    paths = {name: _find_file(folder, name) for name in names}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise _not_found_error(folder, origin, missing)
    return [(paths[_FILES[s][0]], paths[_FILES[s][1]]) for s in subsets]


def _load_pair(images_path, labels_path):
    """Read one images file and its labels file and check they agree."""
    images = _read_idx(images_path)
    labels = _read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE:
        raise ValueError(
            f"{images_path} should hold images of shape {_IMAGE_SHAPE}; its "
            f"header gives shape {images.shape}."
        )
    if labels.ndim != 1:
        raise ValueError(f"{labels_path} should hold labels, not images.")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} "
            f"holds {len(labels)} labels."
        )
    if labels.size and labels.max() >= len(_TARGET_NAMES):
        raise ValueError(
            f"{labels_path} holds label {labels.max()}; Fashion-MNIST labels "
            f"are 0 to {len(_TARGET_NAMES) - 1}."
        )
    return images, labels


def _check_params(subset, n_samples, return_X_y):
    """Raise a ValueError or TypeError naming the first invalid parameter."""
    # isinstance first: ``in`` on an array would compare element-wise.
    if not isinstance(subset, str) or subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}, got {subset!r}.")
    is_int = isinstance(n_samples, numbers.Integral) and not isinstance(n_samples, bool)
    if n_samples is not None and not (is_int and n_samples >= 1):
        raise ValueError(f"n_samples must be None or an int >= 1, got {n_samples!r}.")
    if not isinstance(return_X_y, (bool, np.bool_)):
        raise TypeError(f"return_X_y must be True or False, got {return_X_y!r}.")


def load_fashion_mnist(
    data_home=None, *, subset="train", n_samples=None, return_X_y=False
):
    """Load the Fashion-MNIST data set from local IDX files.

    The four IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or
    with a ``.gz`` suffix, are looked for in one folder and its subfolders.
    That folder is ``data_home`` if given, else the environment variable
    ``SKGFE_FASHION_MNIST`` if set, else ``/usr/share/datasets/fashion-mnist``,
    where the Debian package ``dataset-fashion-mnist`` installs them. Nothing
    is downloaded.

    =================   ==============
    Classes                         10
    Samples total                70000
    Samples (train)              60000
    Samples (test)               10000
    Dimensionality                 784
    Features              real, [0, 1]
    =================   ==============

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the IDX files. If None, the environment variable
        ``SKGFE_FASHION_MNIST`` is used if set, else
        ``/usr/share/datasets/fashion-mnist``.

    subset : {"train", "test", "all"}, default="train"
        Which part to load: the 60,000 training images, the 10,000 test
        images, or both, training images first.

    n_samples : int, default=None
        If given, keep only the first ``n_samples`` rows of the subset (all
        of them if the subset is smaller).

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 784), dtype float32
            The flattened images, pixel values divided by 255.
        target : ndarray of shape (n_samples,), dtype int64
            The class labels, 0 to 9.
        images : ndarray of shape (n_samples, 28, 28), dtype float32
            The same pixels as ``data``, as images.
        target_names : ndarray of shape (10,)
            The class names, indexed by label.
        DESCR : str
            A description of the data set.
        subset : str
            The subset that was loaded.

    (data, target) : tuple if ``return_X_y`` is True
        The ``data`` and ``target`` arrays described above.

    Raises
    ------
    FileNotFoundError
        If the IDX files of the subset are not in the folder searched; the
        message says how to get them.
    TypeError
        If ``data_home`` is not None, a str or a path-like object, or if
        ``return_X_y`` is not a bool.
    ValueError
        If ``subset`` or ``n_samples`` is invalid, if the folder to search is
        a file, or if an IDX file is malformed (the message names the file).

    Notes
    -----
    Valid IDX files that hold no images give empty arrays of shape
    ``(0, 784)``, ``(0,)`` and ``(0, 28, 28)`` rather than an error, as
    :func:`sklearn.datasets.load_svmlight_file` does for an empty file; with
    ``subset="all"`` the other subset's rows are still returned.

    Examples
    --------
    >>> from skgfe.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y.dtype  # doctest: +SKIP
    ((10000, 784), dtype('float32'), dtype('int64'))
    """
    _check_params(subset, n_samples, return_X_y)
    folder, origin = _resolve_data_home(data_home)
    subsets = ["train", "test"] if subset == "all" else [subset]
    pairs = [_load_pair(*paths) for paths in _locate(folder, origin, subsets)]

    pixels = np.concatenate([pixels for pixels, _ in pairs])[:n_samples]
    target = np.concatenate([labels for _, labels in pairs])[:n_samples]
    images = np.divide(pixels, 255, dtype=np.float32)
    # Not reshape(len, -1): with zero images the -1 is ambiguous and fails.
    data = images.reshape(len(images), math.prod(_IMAGE_SHAPE))
    target = target.astype(np.int64)

    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=images,
        target_names=_TARGET_NAMES.copy(),
        DESCR=_DESCR,
        subset=subset,
    )
