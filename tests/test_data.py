"""The data module: IDX files, the bundled sample, the search order, downloads, batches.

No test touches the network. Downloads are tested against a local HTTP server
on 127.0.0.1 serving small fake MNIST files, and every test runs with HOME,
XDG_CACHE_HOME and TINYNODE_DATA pointing into its own temporary directory,
so the real cache is never read or written.
"""

import functools
import gzip
import hashlib
import http.server
import os
import pathlib
import threading
import time

import numpy as np
import pytest
from conftest import to_numpy

from tinynode import data, download
from tinynode.errors import ArgumentError, DataError, ShapeError, TinyNodeError
from tinynode.fileio import atomic_file

TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private HOME and cache, no TINYNODE_DATA, no system dirs, no real mirrors."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("TINYNODE_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIRS", {})
    monkeypatch.setattr(data, "MIRRORS", {"mnist": [], "fashion-mnist": []})
    monkeypatch.setattr(download, "TIMEOUT", 2.0)
    return tmp_path


def fake_mnist(directory, n, files=TRAIN, seed=0):
    """Write a fake (n, 28, 28) image file and its labels; return (images, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    data.write_idx(pathlib.Path(directory) / files[0], images)
    data.write_idx(pathlib.Path(directory) / files[1], labels)
    return images, labels


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def files_under(directory):
    return sorted(p.name for p in pathlib.Path(directory).rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- a local server


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the server's directory, plus two ways of failing mid-body:

    ``/truncated/<file>`` announces the full length and sends half, then closes;
    ``/stalled/<file>`` sends half and then goes silent (longer than the timeout).
    """

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        if kind in ("truncated", "stalled"):
            body = (pathlib.Path(self.directory) / "good" / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if kind == "stalled":
                time.sleep(4 * download.TIMEOUT)  # bounded: the client gives up long before
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(isolated, monkeypatch):
    """An HTTP server on 127.0.0.1 serving ``good/`` (fake MNIST train and test
    files, whose checksums are installed in CHECKSUMS) and ``corrupt/`` (the
    same files with one bit flipped). Yields (base URL, list of requested paths)."""
    root = isolated / "www"
    fake_mnist(root / "good", 5, TRAIN, seed=1)
    fake_mnist(root / "good", 3, TEST, seed=2)
    (root / "corrupt").mkdir()
    for name in TRAIN + TEST:  # one bit flipped near the end of each file
        good = (root / "good" / name).read_bytes()
        (root / "corrupt" / name).write_bytes(good[:-5] + bytes([good[-5] ^ 1]) + good[-4:])
    monkeypatch.setitem(data.CHECKSUMS, "mnist", {f: sha256(root / "good" / f) for f in TRAIN + TEST})
    monkeypatch.setattr(download, "TIMEOUT", 0.5)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# ----------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5), (0, 28, 28)])
def test_idx_round_trip(tmp_path, name, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    data.write_idx(tmp_path / name, array)
    back = data.read_idx(tmp_path / name)
    assert back.dtype == np.uint8 and back.shape == shape and np.array_equal(back, array)
    back[...] = 0  # a normal writable array, not a read-only view of the file's bytes
    assert files_under(tmp_path) == [name]  # no temporary file left behind


def test_gzip_is_detected_by_content_not_by_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data.write_idx(tmp_path / "really-gzip.gz", array)
    data.write_idx(tmp_path / "really-raw", array)
    os.replace(tmp_path / "really-gzip.gz", tmp_path / "no-suffix")
    os.replace(tmp_path / "really-raw", tmp_path / "raw-but-named.gz")
    assert np.array_equal(data.read_idx(tmp_path / "no-suffix"), array)
    assert np.array_equal(data.read_idx(tmp_path / "raw-but-named.gz"), array)


def test_write_idx_is_byte_reproducible(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    data.write_idx(tmp_path / "a.gz", array)
    data.write_idx(tmp_path / "b.gz", array)
    a = (tmp_path / "a.gz").read_bytes()
    assert a == (tmp_path / "b.gz").read_bytes()
    assert a[4:8] == b"\0\0\0\0"  # gzip header mtime field
    raw = gzip.decompress(a)
    assert raw[:8] == bytes([0, 0, 8, 3, 0, 0, 0, 10])


def test_write_idx_rejects_other_dtypes(tmp_path):
    with pytest.raises(ArgumentError, match="uint8"):
        data.write_idx(tmp_path / "x.gz", np.zeros((2, 2), np.float32))


def _valid_raw():
    return bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))


CORRUPTIONS = {
    "bad magic": (lambda raw: b"\x12\x34" + raw[2:], "magic"),
    "wrong dtype code": (lambda raw: raw[:2] + b"\x0d" + raw[3:], "type code 0x0d"),
    "truncated payload": (lambda raw: raw[:-1], "truncated"),
    "extra bytes": (lambda raw: raw + b"\0", "extra bytes"),
    "short header": (lambda raw: raw[:9], "2 dimensions declared"),
    "empty file": (lambda raw: b"", "magic"),
    "zero dimensions": (lambda raw: bytes([0, 0, 8, 0]), "0 dimensions declared"),
    "truncated gzip": (lambda raw: gzip.compress(raw, mtime=0)[:-10], "gzip"),
    "corrupt gzip": (lambda raw: gzip.compress(raw, mtime=0)[:12] + b"\xff" * 20, "gzip"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_damaged_idx_files_raise_data_error_naming_the_file(tmp_path, kind):
    corrupt, expected = CORRUPTIONS[kind]
    path = tmp_path / f"damaged-{kind.replace(' ', '-')}"
    path.write_bytes(corrupt(_valid_raw()))
    with pytest.raises(DataError) as info:
        data.read_idx(path)
    message = str(info.value)
    assert str(path) in message and expected in message and "download it again" in message
    assert isinstance(info.value, TinyNodeError) and isinstance(info.value, ValueError)


def test_an_interrupted_write_leaves_nothing(tmp_path):
    (tmp_path / "old").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(tmp_path / "old") as f:
            f.write(b"half of the new")
            raise KeyboardInterrupt  # Ctrl-C in the middle of a write
    assert files_under(tmp_path) == ["old"] and (tmp_path / "old").read_bytes() == b"old"


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope"):
        data.read_idx(tmp_path / "nope")


def test_no_pickle_in_the_data_module():
    source = pathlib.Path(data.__file__).read_text()
    assert "import pickle" not in source and "allow_pickle" not in source


# ----------------------------------------------------------------------------- the bundled sample


def test_bundled_sample_matches_its_checksums():
    for name in data.SAMPLE_FILES:
        assert sha256(data.SAMPLE_DIR / name) == data.SAMPLE_SHA256[name], name


def test_bundled_sample_is_5000_images_500_per_digit_shuffled():
    images, labels = data.load_sample()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    assert np.count_nonzero(np.diff(labels)) > 4000  # sorted would give 9 changes
    assert np.bincount(labels[:1500], minlength=10).min() > 100  # the tutorial's 1500 cover every digit
    assert images.max() == 255 and 0.05 < images.mean() / 255 < 0.25  # real digits, not noise


def test_fallback_to_the_sample_prints_exactly_one_line(capsys):
    images, labels = data.load_mnist(download=False)
    assert images.shape == (5000, 28, 28) and labels.shape == (5000,)
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.endswith("\n")
    assert "5,000" in err and "TINYNODE_DATA" in err and "data-dir" in err and "download" in err


def test_fallback_after_failed_download_prints_one_line_and_quiet_prints_none(capsys):
    images, _ = data.load_mnist()  # no mirrors configured: the "download" fails at once
    assert len(images) == 5000
    assert len(capsys.readouterr().err.splitlines()) == 1
    data.load_mnist(quiet=True, download=False)
    assert capsys.readouterr().err == ""


def test_no_fallback_for_the_test_split_or_fashion():
    with pytest.raises(DataError, match="t10k|test") as info:
        data.load_mnist(split="test", download=False)
    assert "TINYNODE_DATA" in str(info.value)
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        data.load_mnist("fashion-mnist", download=False)


def test_subset_and_the_lux_split():
    images, labels = data.load_mnist(subset=1500, quiet=True)
    assert images.shape == (1500, 28, 28)
    (xtr, ytr), (xte, yte) = data.train_test_split(images, labels, at=0.9)
    assert len(xtr) == len(ytr) == 1350 and len(xte) == len(yte) == 150
    assert np.array_equal(xtr, images[:1350]) and np.array_equal(yte, labels[1350:])


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"name": "cifar10"}, ArgumentError),
        ({"split": "val"}, ArgumentError),
        ({"subset": 0}, ArgumentError),
        ({"subset": 2.5}, ArgumentError),
    ],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        data.load_mnist(download=False, quiet=True, **kwargs)


# ----------------------------------------------------------------------------- where files are found


def test_search_order(isolated, server, monkeypatch, capsys):
    url, requests = server
    explicit, env = isolated / "explicit", isolated / "env"
    fake_mnist(explicit, 2)
    fake_mnist(env, 3)
    fake_mnist(data.cache_dir("mnist"), 4)
    monkeypatch.setenv("TINYNODE_DATA", str(env))

    def n(**kwargs):
        return len(data.load_mnist(mirrors=[url + "/good/"], **kwargs)[0])

    assert n(data_dir=explicit) == 2  # data_dir beats TINYNODE_DATA
    assert n() == 3  # TINYNODE_DATA beats the cache
    monkeypatch.delenv("TINYNODE_DATA")
    assert n() == 4  # the cache beats a download
    assert requests == []
    for f in TRAIN:
        os.remove(os.path.join(data.cache_dir("mnist"), f))
    assert n() == 5  # a download beats the sample
    assert len(requests) == 2
    for f in TRAIN:
        os.remove(os.path.join(data.cache_dir("mnist"), f))
    assert n(download=False) == 5000  # the sample, last
    lines = capsys.readouterr().err.splitlines()
    assert sum(line.startswith("tinynode: downloading ") for line in lines) == 2  # one line per file fetched
    assert sum("bundled 5,000-image MNIST sample" in line for line in lines) == 1 and len(lines) == 3


def test_data_dir_prefers_a_subdirectory_named_after_the_dataset(tmp_path):
    fake_mnist(tmp_path / "d", 2)
    fake_mnist(tmp_path / "d" / "mnist", 3)
    assert len(data.load_mnist(data_dir=tmp_path / "d")[0]) == 3


def test_uncompressed_files_are_found(tmp_path):
    images, labels = fake_mnist(tmp_path / "gz", 4, TEST)
    for name in TEST:
        raw = gzip.decompress((tmp_path / "gz" / name).read_bytes())
        (tmp_path / "raw").mkdir(exist_ok=True)
        (tmp_path / "raw" / name[:-3]).write_bytes(raw)
    got = data.load_mnist(split="test", data_dir=tmp_path / "raw")
    assert np.array_equal(got[0], images) and np.array_equal(got[1], labels)


def test_a_data_dir_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="not a directory"):
        data.load_mnist(data_dir=tmp_path / "typo")
    monkeypatch.setenv("TINYNODE_DATA", str(tmp_path / "typo"))
    with pytest.raises(DataError, match="TINYNODE_DATA"):
        data.load_mnist()


def test_mismatched_files_are_a_data_error(tmp_path):
    fake_mnist(tmp_path, 4)
    os.replace(tmp_path / TRAIN[0], tmp_path / "tmp")
    os.replace(tmp_path / TRAIN[1], tmp_path / TRAIN[0])
    os.replace(tmp_path / "tmp", tmp_path / TRAIN[1])
    with pytest.raises(DataError, match="swapped"):
        data.load_mnist(data_dir=tmp_path)


def test_cache_dir_follows_xdg_and_home(isolated, monkeypatch):
    assert data.cache_dir("mnist") == str(isolated / "xdg-cache" / "tinynode" / "mnist")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_dir("fashion-mnist") == str(isolated / "home" / ".cache" / "tinynode" / "fashion-mnist")


def test_fashion_mnist_is_found_in_system_dirs(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "system", 6, TEST)
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"fashion-mnist": [str(tmp_path / "system")]})
    assert len(data.load_mnist("fashion-mnist", split="test", download=False)[0]) == 6
    with pytest.raises(DataError):  # MNIST does not look there
        data.load_mnist("mnist", split="test", download=False)


DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_if_installed(monkeypatch):
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"fashion-mnist": [DEBIAN_FASHION]})
    images, labels = data.load_mnist("fashion-mnist", split="test", download=False)
    assert images.shape == (10000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10


# ----------------------------------------------------------------------------- downloads


def test_good_download_lands_in_the_cache_and_is_reused(server):
    url, requests = server
    images, labels = data.load_mnist(split="test", mirrors=[url + "/good/"])
    assert images.shape == (3, 28, 28) and labels.shape == (3,)
    cache = data.cache_dir("mnist")
    assert files_under(cache) == sorted(TEST)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(os.path.join(cache, TEST[0])).st_mode & 0o777 == 0o666 & ~umask  # as open() would make it
    n = len(requests)
    again = data.load_mnist(split="test", mirrors=["http://127.0.0.1:9/unused/"])
    assert np.array_equal(again[0], images) and len(requests) == n


def test_corrupt_download_leaves_nothing(server):
    url, _ = server
    with pytest.raises(DataError, match="SHA-256") as info:
        data.load_mnist(split="test", mirrors=[url + "/corrupt/"])
    assert "nothing was saved" in str(info.value)
    assert files_under(data.cache_dir("mnist")) == []


def test_download_checks_the_checksum_directly(server, tmp_path):
    url, _ = server
    target = tmp_path / "c" / "file.gz"
    with pytest.raises(DataError, match="SHA-256 .* expected"):
        data.download_file(url + "/corrupt/" + TRAIN[1], target, data.CHECKSUMS["mnist"][TRAIN[1]])
    assert files_under(tmp_path / "c") == []
    data.download_file(url + "/good/" + TRAIN[1], target, data.CHECKSUMS["mnist"][TRAIN[1]])
    assert files_under(tmp_path / "c") == ["file.gz"]


def test_interrupted_download_leaves_nothing(server):
    url, _ = server
    with pytest.raises(DataError, match="interrupted"):
        data.load_mnist(split="test", mirrors=[url + "/truncated/"])
    assert files_under(data.cache_dir("mnist")) == []


def test_stalled_download_times_out_and_leaves_nothing(server):
    url, _ = server
    start = time.monotonic()
    with pytest.raises(DataError, match="timed out"):
        data.load_mnist(split="test", mirrors=[url + "/stalled/"])
    assert time.monotonic() - start < 1.5  # TIMEOUT is 0.5 s here
    assert files_under(data.cache_dir("mnist")) == []


def test_a_404_mirror_is_skipped_for_the_next(server):
    url, requests = server
    images, _ = data.load_mnist(split="test", mirrors=[url + "/missing/", url + "/good/"])
    assert len(images) == 3
    assert requests == [f"/missing/{TEST[0]}", f"/good/{TEST[0]}", f"/missing/{TEST[1]}", f"/good/{TEST[1]}"]


def test_when_every_mirror_fails_the_error_lists_each(server):
    url, _ = server
    with pytest.raises(DataError) as info:
        data.load_mnist(split="test", mirrors=[url + "/missing/", url + "/corrupt/"])
    message = str(info.value)
    assert "404" in message and "/missing/" in message and "/corrupt/" in message
    assert files_under(data.cache_dir("mnist")) == []


def test_failed_train_download_falls_back_to_the_sample(server, capsys):
    url, _ = server
    images, _ = data.load_mnist(mirrors=[url + "/corrupt/"])
    assert len(images) == 5000
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("tinynode: downloading ") and "SHA-256" in lines[1]
    assert files_under(data.cache_dir("mnist")) == []


def test_files_without_a_known_checksum_are_not_downloaded(server, monkeypatch):
    url, requests = server
    monkeypatch.setitem(data.CHECKSUMS, "mnist", {})
    with pytest.raises(DataError, match="no known SHA-256"):
        data.load_mnist(split="test", mirrors=[url + "/good/"])
    assert requests == []


def test_published_checksums_are_complete():
    for name in ("mnist", "fashion-mnist"):
        assert sorted(data.CHECKSUMS[name]) == sorted(TRAIN + TEST)
        assert all(len(h) == 64 and set(h) <= set("0123456789abcdef") for h in data.CHECKSUMS[name].values())


# ----------------------------------------------------------------------------- batches


def small_set(n=10):
    images = np.arange(n * 28 * 28, dtype=np.int64).reshape(n, 28, 28).astype(np.uint8)
    return images, (np.arange(n) % 10).astype(np.uint8)


def test_batches_are_scaled_float32_and_int64(xp):
    images, labels = small_set(10)
    loader = data.DataLoader(images, labels, batch_size=4, xp=xp)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [len(y) for _, y in batches] == [4, 4, 2]  # the last partial batch is kept
    x, y = batches[0]
    assert type(x) is type(xp.zeros(1)) and x.dtype == xp.float32 and x.shape == (4, 28, 28)
    assert y.dtype == xp.int64
    np.testing.assert_allclose(to_numpy(x), images[:4] / np.float32(255), rtol=1e-6)
    assert to_numpy(x).min() >= 0 and to_numpy(x).max() <= 1
    assert type(loader.images) is type(x)  # moved to the device once, in the constructor


def test_drop_last():
    loader = data.DataLoader(*small_set(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(y) for _, y in loader] == [4, 4]


def test_shuffling_is_a_new_permutation_each_epoch_and_deterministic(xp):
    images, labels = small_set(50)
    labels = np.arange(50, dtype=np.uint8)  # unique, to read the order back

    def epochs(loader, k):
        return [np.concatenate([to_numpy(y) for _, y in loader]).tolist() for _ in range(k)]

    first = epochs(data.DataLoader(images, labels, classes=256, batch_size=8, shuffle=True, seed=3, xp=xp), 3)
    assert all(sorted(e) == list(range(50)) for e in first)  # each sample once per epoch
    assert len({tuple(e) for e in first}) == 3 and first[0] != list(range(50))
    assert epochs(data.DataLoader(images, labels, classes=256, batch_size=8, shuffle=True, seed=3, xp=xp), 3) == first
    assert (
        epochs(data.DataLoader(images, labels, classes=256, batch_size=8, shuffle=True, seed=4, xp=xp), 1)[0]
        != first[0]
    )
    resumed = data.DataLoader(images, labels, classes=256, batch_size=8, shuffle=True, seed=3, xp=xp)
    resumed.epoch = 2
    assert epochs(resumed, 1)[0] == first[2] and resumed.epoch == 3
    plain = data.DataLoader(images, labels, classes=256, batch_size=8)
    assert epochs(plain, 2) == [list(range(50))] * 2


def test_images_and_labels_travel_together():
    images, _ = small_set(30)
    labels = images[:, 0, 0].copy()  # each label is the image's first pixel
    for x, y in data.DataLoader(images, labels, classes=256, batch_size=7, shuffle=True, seed=1):
        np.testing.assert_allclose(x[:, 0, 0] * 255, y, atol=1e-3)


def test_loader_accepts_a_device_name():
    loader = data.DataLoader(*small_set(4), batch_size=2, xp="cpu")
    assert isinstance(next(iter(loader))[0], np.ndarray)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"images": np.zeros((3, 28, 28), np.uint8), "labels": np.zeros(2, np.uint8)}, ShapeError),
        ({"images": np.zeros((3, 28, 28), np.float32), "labels": np.zeros(3, np.uint8)}, ArgumentError),
        ({"images": np.zeros((3, 28, 28), np.uint8), "labels": np.zeros(3, np.uint8), "batch_size": 0}, ArgumentError),
    ],
)
def test_loader_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        data.DataLoader(**kwargs)


def test_train_test_split_in_order():
    images, labels = small_set(10)
    (xtr, ytr), (xte, yte) = data.train_test_split(images, labels)
    assert len(xtr) == 9 and len(xte) == 1 and np.array_equal(yte, labels[9:])
    assert np.shares_memory(xtr, images)  # views, no copy
    fake = np.zeros((1500, 1, 1), np.uint8), np.zeros(1500, np.uint8)
    (xtr, _), (xte, _) = data.train_test_split(*fake, at=0.9)
    assert (len(xtr), len(xte)) == (1350, 150)
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ArgumentError):
            data.train_test_split(*fake, at=bad)
    with pytest.raises(ShapeError):
        data.train_test_split(images, labels[:5])


def test_a_half_present_pair_names_the_missing_file(tmp_path):
    fake_mnist(tmp_path / "d", 3)
    os.remove(tmp_path / "d" / TRAIN[1])  # the labels file: a typo in its name, say
    with pytest.raises(DataError, match=r"has train-images-idx3-ubyte.gz but not train-labels-idx1-ubyte"):
        data.load_mnist(data_dir=tmp_path / "d", download=False)


def test_an_explicit_directory_without_the_files_is_an_error_not_the_sample(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="given as data_dir.*has no mnist train files"):
        data.load_mnist(data_dir=tmp_path / "empty", download=False)
    monkeypatch.setenv("TINYNODE_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="given as TINYNODE_DATA"):
        data.load_mnist(download=False)


def test_labels_outside_the_ten_classes_are_refused_where_they_enter(tmp_path):
    images, labels = fake_mnist(tmp_path / "d", 3)
    data.write_idx(tmp_path / "d" / TRAIN[1], np.array([200, 201, 209], np.uint8))
    with pytest.raises(DataError, match="labels up to 209.*classes 0-9"):
        data.load_mnist(data_dir=tmp_path / "d", download=False)


def test_the_source_record_names_the_files_and_their_checksums(tmp_path):
    fake_mnist(tmp_path / "d", 4)
    _, _, source = data.load_mnist(data_dir=tmp_path / "d", download=False, subset=3, with_source=True)
    assert source["dataset"] == "mnist" and source["split"] == "train" and source["subset"] == 3
    assert source["images"] == 4 and source["origin"] == str(tmp_path / "d")
    assert source["files"][TRAIN[0]] == hashlib.sha256((tmp_path / "d" / TRAIN[0]).read_bytes()).hexdigest()
    _, _, sample = data.load_mnist(download=False, quiet=True, with_source=True)
    assert sample["origin"] == "the bundled sample" and sample["files"] == data.SAMPLE_SHA256


def test_a_failed_download_is_not_retried_for_an_hour(server, monkeypatch, capsys):
    url, requests = server
    monkeypatch.setattr(data, "MIRRORS", {**data.MIRRORS, "mnist": [url + "/missing/"]})
    assert len(data.load_mnist()[0]) == 5000  # the download fails: the sample
    first = len(requests)
    assert first > 0 and "download failed" in capsys.readouterr().err
    assert len(data.load_mnist()[0]) == 5000
    assert len(requests) == first  # no second wait on a network that just failed
    assert "failed less than an hour ago" in capsys.readouterr().err


def test_an_explicit_directory_is_the_only_place_searched(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "system", 3)
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"mnist": [str(tmp_path / "system")]})
    assert len(data.load_mnist(download=False)[0]) == 3  # found in the system directory
    (tmp_path / "mine").mkdir()
    with pytest.raises(DataError, match="given as data_dir"):  # not silently the system's copy
        data.load_mnist(data_dir=tmp_path / "mine", download=False)
