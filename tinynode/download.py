"""Downloads: each file from the first mirror that works, checked by its published SHA-256, atomic.

A file lands in the cache complete and verified, or not at all
(:func:`download_file`); :func:`tinynode.data.load_mnist` decides when to download.
"""

import hashlib
import os
import sys

from .errors import DataError
from .fileio import atomic_file

__all__ = ["CHECKSUMS", "TIMEOUT", "cache_dir", "download_file"]

#: The published SHA-256 of every downloadable file. A download must match
#: exactly; a file missing from this table is never downloaded, since it could
#: not be checked. (HTTP mirrors are safe to use because of this check.)
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

#: Seconds a mirror may stay silent before we give up on it and try the next.
TIMEOUT = 10.0


def cache_dir(name="mnist"):
    """The download cache of a dataset: ``$XDG_CACHE_HOME/tinynode/<name>``
    (``~/.cache/tinynode/<name>`` when XDG_CACHE_HOME is not set)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tinynode", name)


def download_file(url, path, sha256, timeout=None):
    """Download ``url`` to ``path`` and check its SHA-256; atomic.

    The body goes to a temporary file next to ``path`` and is renamed over it
    only once it has fully arrived and its checksum matches. On a failure
    (HTTP error, timeout, connection closed early, wrong checksum) the
    temporary file is deleted and :class:`~tinynode.errors.DataError` is
    raised; on Ctrl-C it is deleted too. No partial or unverified file is
    ever left behind.
    """
    import http.client  # imported here, not at the top: with ssl they add ~20 ms to
    import urllib.request  # every "import tinynode.data", and most runs never download

    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout or TIMEOUT) as response, atomic_file(path) as f:
            while chunk := response.read(1 << 16):
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            # http.client returns a short body without complaint when the server
            # closes early, so compare with the announced length ourselves.
            announced = response.headers.get("Content-Length")
            if announced is not None and size != int(announced):
                raise DataError(f"download of {url} was interrupted: got {size} of {announced} bytes")
            if digest.hexdigest() != sha256:
                raise DataError(
                    f"{url} has SHA-256 {digest.hexdigest()}, expected {sha256}: the download "
                    "is corrupt or the file changed upstream; nothing was saved"
                )
    except (OSError, http.client.HTTPException) as e:  # URLError, HTTPError, timeouts are OSErrors
        raise DataError(f"could not download {url}: {e}") from None


def _fetch(name, filename, directory, mirrors, quiet):
    """Download one file of dataset ``name`` into ``directory`` from the first mirror that works."""
    sha256 = CHECKSUMS[name].get(filename)
    if sha256 is None:
        raise DataError(
            f"no known SHA-256 for {name}/{filename}, so it is not downloaded "
            "(it could not be checked); add it to tinynode.data.CHECKSUMS"
        )
    failures = []
    for base in mirrors:
        if not quiet:
            print(
                f"tinynode: downloading {base.rstrip('/')}/{filename} (--offline to skip)", file=sys.stderr, flush=True
            )
        try:
            download_file(base.rstrip("/") + "/" + filename, os.path.join(directory, filename), sha256)
            return
        except DataError as e:
            failures.append(str(e))
    raise DataError("; ".join(failures) or f"no mirror is configured for {name}")


# ----------------------------------------------------------------------------- loading
