"""Arrays on disk, written whole and read back one weight decay at a time.

A sweep with a run directory keeps each finished chunk of training sets in its own
``.npz`` file (written atomically, so a crash leaves either the old file or the new
one). Those chunk files are the store of the per-member arrays: :class:`ChunkStack`
reads the predictions of one weight decay at a time out of them, and
:func:`write_npz` streams ``predictions.npz`` from them, so the main process never
holds all predictions at once (its memory is bounded by one weight decay's slice, not
by the whole sweep).
"""

from __future__ import annotations

import os
import secrets
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = [
    "PREDICTIONS",
    "STAMP",
    "ChunkReplacedError",
    "ChunkStack",
    "StepSlice",
    "atomic_path",
    "load_arrays",
    "read_part",
    "read_slice",
    "save_atomic",
    "write_npz",
    "write_text_atomic",
]

_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


#: The file of a run's member predictions (:func:`write_npz` streams it; run/disk.py
#: counts it, io/ writes and reads it and clears an earlier run's).
PREDICTIONS = "predictions.npz"

#: Prefix of the temporary files outputs are written to before being renamed.
TMP_PREFIX = ".tmp-"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to: renamed to ``path`` when the block
    ends without error, removed when it raises. So ``path`` is always either the old
    file or the whole new one. The temporary name keeps ``path``'s suffix (writers that
    infer a format from it still work) and is created like any file (the umask's mode).
    """
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:  # name the file meant, not the temporary one
        why = f"not written ({err.strerror or err})"
        raise OSError(err.errno, why, str(path)) from err
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_atomic(path: Path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` (npz, uncompressed) via a temporary file + rename."""
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def load_arrays(path: Path) -> dict | None:
    """Every array of an npz file, or None if it is missing or corrupt (zip CRC)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # a torn or corrupt file is recomputed
        return None


def _member(fh, path: str | Path, name: str) -> tuple[tuple, np.dtype, int, int | None]:
    """Shape, dtype, header size of array ``name`` in the npz ``path`` open as ``fh``,
    and the file offset of its data (None when the member is compressed).

    Remembered per file and name while the file is unchanged (the same inode, size and
    modification time of the open file: a chunk file is replaced, never rewritten in
    place), so reading many small parts of a chunk file parses its zip directory
    once."""
    st = os.fstat(fh.fileno())
    key = (str(path), name, st.st_ino, st.st_size, st.st_mtime_ns)
    found = _MEMBERS.get(key)
    if found is None:
        if len(_MEMBERS) >= _MEMBERS_MAX:
            _MEMBERS.clear()
        found = _MEMBERS[key] = _read_member(fh, path, name)
    return found


#: :func:`_member`'s memory: (path, name, inode, size, mtime) -> what it returns.
_MEMBERS: dict = {}
_MEMBERS_MAX = 4096


def _read_member(fh, path, name: str) -> tuple[tuple, np.dtype, int, int | None]:
    with zipfile.ZipFile(fh) as zf:
        info = zf.getinfo(f"{name}.npy")
        with zf.open(info) as member:
            version = np.lib.format.read_magic(member)
            shape, fortran, dtype = _HEADER_READERS[version](member)
            header = member.tell()
        if fortran or dtype.hasobject:
            raise ValueError(f"{path}:{name}: only C-ordered numeric arrays can be read in "
                             "parts")  # fmt: skip
        offset = None
        if info.compress_type == zipfile.ZIP_STORED:
            fh.seek(info.header_offset)
            local = fh.read(zipfile.sizeFileHeader)
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            offset = info.header_offset + zipfile.sizeFileHeader + name_len + extra_len + header
    return shape, dtype, header, offset


def _rows_member(fh, path, name: str) -> tuple[tuple, np.dtype, int, int | None]:
    """:func:`_member`, refusing an array without an axis 0."""
    found = _member(fh, path, name)
    if not found[0]:
        raise ValueError(f"{path}:{name}: only arrays with an axis 0 can be sliced")
    return found


class ChunkReplacedError(RuntimeError):
    """A chunk file that a result reads lazily no longer holds the numbers it held when
    the result was made: a later run into the same run directory replaced it (other
    data or code, the same chunk key) or removed it."""


#: The stamp a chunk file carries: the resume key it was computed under
#: (:func:`bvsim.run.resume.resume_key`), a small array of the npz.
STAMP = "key"


def _open_stamped(path: Path, stamp: str | None):
    """``path`` opened for reading, after checking that it holds array :data:`STAMP`
    equal to ``stamp`` (None: unchecked): a :class:`ChunkReplacedError` where it does
    not or the file is gone. What is read next comes from this open file, so from the
    file checked, even if another replaces the path meanwhile."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        if stamp is None:
            raise
        raise _replaced(path, "removed") from None
    if stamp is None:
        return fh
    try:
        shape, dtype, _, offset = _member(fh, path, STAMP)
        if offset is not None and shape == () and dtype.kind == "U":  # stored: a few bytes
            fh.seek(offset)
            found = str(np.frombuffer(fh.read(dtype.itemsize), dtype=dtype)[0])
        else:
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as z:
                found = str(z[STAMP])
    except (KeyError, ValueError, OSError, EOFError, IndexError, zipfile.BadZipFile):
        found = None
    if found != stamp:
        fh.close()
        raise _replaced(path, "replaced by a later run")
    return fh


def _replaced(path: Path, what: str) -> ChunkReplacedError:
    run = path.parent.parent.parent  # <run>/chunks/<chunk key>/sets_*.npz
    return ChunkReplacedError(
        f"the chunk files of this result were {what} ({path}): its large arrays (pred, "
        f"curves, test labels) are read from {run} and are no longer the numbers this "
        "result was computed with; rerun, or keep the result in memory (np.asarray of "
        "them, or run_sweep without a run directory) before running into the same "
        "directory again"
    )


def read_slice(path: str | Path, name: str, start: int, stop: int | None = None) -> np.ndarray:
    """``array[start:stop]`` (along axis 0) of array ``name`` in the npz ``path``,
    reading only those rows (an int ``start`` alone: ``array[start]``). Indices follow
    Python's rules (negative ones count from the end).

    Works for stored and compressed npz files alike; a compressed one is decompressed
    up to the rows, in bounded memory.
    """
    with open(path, "rb") as fh:
        return _read_slice(fh, path, name, start, stop)


def _read_slice(fh, path, name: str, start: int, stop: int | None) -> np.ndarray:
    shape, dtype, header, offset = _rows_member(fh, path, name)
    n = shape[0]
    if stop is None:  # one row
        if not -n <= start < n:
            raise IndexError(f"{path}:{name}: index {start} out of range for {n} rows")
        start = start % n
        rows = slice(start, start + 1)
    else:
        rows = slice(*slice(start, stop).indices(n)[:2])
    count = max(rows.stop - rows.start, 0)
    items = int(np.prod(shape[1:], dtype=np.int64))
    skip = rows.start * items * dtype.itemsize
    if offset is not None:  # stored: read the rows straight from the file
        fh.seek(offset + skip)
        out = np.fromfile(fh, dtype=dtype, count=count * items)
    else:  # compressed: decompress up to the rows
        with zipfile.ZipFile(fh) as zf, zf.open(f"{name}.npy") as member:
            member.seek(header + skip)
            data = member.read(count * items * dtype.itemsize)
        out = np.frombuffer(data, dtype=dtype).copy()
    out = out.reshape(count, *shape[1:])
    return out[0] if stop is None else out


def read_part(path: str | Path, name: str, index: tuple, stamp: str | None = None) -> np.ndarray:
    """``array[index]`` (a copy) of array ``name`` in the npz ``path``. A stored member
    is memory-mapped, so only the indexed part is read; of a compressed one, only the
    row ``index[0]`` when that is an int, else all of it. KeyError if there is no
    ``name``. With ``stamp``, from a file that carries that stamp only (a chunk file's
    resume key), else a :class:`ChunkReplacedError`."""
    with _open_stamped(Path(path), stamp) as fh:
        shape, dtype, _, offset = _rows_member(fh, path, name)
        if offset is not None:
            mapped = np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape)
            try:
                return np.array(mapped[index])
            finally:
                del mapped
        if isinstance(index[0], (int, np.integer)):
            row = _read_slice(fh, path, name, int(index[0]), None)
            return np.ascontiguousarray(row[index[1:]])
        fh.seek(0)
        with np.load(fh) as z:
            return np.ascontiguousarray(z[name][index])


class ChunkStack:
    """One per-member array of a sweep, stored across its chunk files.

    Behaves like a read-only array of shape ``(n_wd, n_reps, n_seeds, ...)`` (at least
    three axes): an integer first index reads that weight decay from every chunk (the
    training sets of the chunks concatenated, in order), and the last one read is kept
    (read-only). ``np.asarray`` reads everything. It reads the files each time, so it
    works only while they hold what they held when it was made: with ``stamp`` (the
    resume key the chunk files were written under) each read checks the file's, and a
    file replaced by a later run into the same directory (other data or code under the
    same chunk key), or removed (``--overwrite``, deleting ``chunks/``), is a
    :class:`ChunkReplacedError`, never another computation's numbers.

    Parameters
    ----------
    paths : list of path
        The chunk files, in training-set order; each holds ``name`` with shape
        ``(n_wd, n_sets_of_chunk, n_seeds, ...)``.
    name : str
    shape : tuple of int
        The shape of the whole array.
    dtype : numpy dtype
    stamp : str, optional
        The resume key every chunk file holds (:data:`STAMP`); None reads unchecked.
    """

    def __init__(self, paths, name: str, shape: tuple, dtype, stamp: str | None = None):
        self.paths = [Path(p) for p in paths]
        self.name = name
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.stamp = stamp
        self._cached: tuple[int, np.ndarray] | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ChunkStack({self.name!r}, shape={self.shape}, {len(self.paths)} chunk files)"

    def part(self, path: Path, index: tuple) -> np.ndarray:
        """``[index]`` of the array in chunk file ``path`` (one of :attr:`paths`), from
        the file this stack was made from (:func:`read_part` with its stamp)."""
        return read_part(path, self.name, index, self.stamp)

    def blocks(self, i: int, points: slice = slice(None)):
        """``[i][:, :, points]`` of each chunk, in training-set order. A stored chunk
        file is memory-mapped, so only those test points are read."""
        for path in self.paths:
            yield self.part(path, (i, slice(None), slice(None), points))

    def iter_blocks(self):
        """C-order pieces of the whole array (for streaming it to a file)."""
        for i in range(len(self)):
            yield from self.blocks(i)

    def read(self, i: int, points: slice = slice(None)) -> np.ndarray:
        """``self[i][:, :, points]``: weight decay ``i``, test points ``points`` (the
        third axis), holding no more than one chunk's part besides the result."""
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} weight decays")
        key = (i, points.start, points.stop, points.step)
        if self._cached is None or self._cached[0] != key:
            full = np.concatenate(list(self.blocks(i, points)), axis=0)
            full.setflags(write=False)
            self._cached = (key, full)
        return self._cached[1]

    def __getitem__(self, key):
        head, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(head, (int, np.integer)):
            part = self.read(int(head))
            return part[rest] if rest else part
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        full = np.stack([np.concatenate(list(self.blocks(i))) for i in range(len(self))])
        return full if dtype is None else full.astype(dtype)


class StepSlice(ChunkStack):
    """Logged step ``t`` of a per-step array stored across chunk files.

    The stored array has shape ``(n_wd, n_reps, n_seeds, n_log, ...)``
    (``pred_steps``); this reads as a :class:`ChunkStack` of shape
    ``(n_wd, n_reps, n_seeds, ...)`` holding step ``t`` only, one weight decay and one
    block of test points at a time (memory-mapped: only those values are read).
    """

    def __init__(self, stack: ChunkStack, t: int):
        shape = stack.shape[:3] + stack.shape[4:]
        super().__init__(stack.paths, stack.name, shape, stack.dtype, stack.stamp)
        self.t = int(t)

    def blocks(self, i: int, points: slice = slice(None)):
        for path in self.paths:
            yield self.part(path, (i, slice(None), slice(None), self.t, points))


def write_npz(path: str | Path, arrays: dict) -> None:
    """Write a compressed npz like ``np.savez_compressed``, streaming each array-like
    that has ``iter_blocks()`` (a :class:`ChunkStack`, :class:`bvsim.run.result.TestLabels`)
    one C-order piece at a time instead of holding it whole (to a temporary file,
    renamed to ``path`` once complete)."""
    with (
        atomic_path(path) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf,
    ):
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                if not hasattr(arr, "iter_blocks"):
                    np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
                    continue
                header = {
                    "descr": np.lib.format.dtype_to_descr(arr.dtype),
                    "fortran_order": False,
                    "shape": arr.shape,
                }
                np.lib.format.write_array_header_1_0(fh, header)
                for block in arr.iter_blocks():
                    fh.write(np.ascontiguousarray(block, dtype=arr.dtype).tobytes())
