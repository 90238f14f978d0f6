"""Stream a JSONL file as Arrow chunks of (line_no, line) for DuckDB to parse.

Why this shape: parsing JSON row by row in Python is ~20x slower than DuckDB's
JSON reader, but DuckDB's ``read_json`` drops line numbers, skips blank lines
and stops (or silently skips) on a bad line. So Python only finds line
boundaries — with numpy, without creating a Python object per line — and hands
DuckDB zero-copy Arrow string arrays tagged with exact line numbers. DuckDB then
parses, validates and loads each chunk in SQL. Memory stays bounded by the chunk
size, whatever the file size.

The file's sha256 is computed in the same pass.

A line longer than ``MAX_LINE_BYTES`` (32 MiB; ``COSTLENS_MAX_LINE_BYTES`` overrides) is rejected with
its length, before any parser sees it: no request or result is that large, and parsing one would
hold many times its size in memory. It is still hashed, and still counted as read.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from costlens.errors import InputError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "MAX_LINE_BYTES",
    "FileDigest",
    "LineChunk",
    "max_line_bytes",
    "read_line_chunks",
]

DEFAULT_CHUNK_BYTES = 64 << 20
MAX_LINE_BYTES = 32 << 20
MAX_LINE_ENV = "COSTLENS_MAX_LINE_BYTES"


def max_line_bytes() -> int:
    text = os.environ.get(MAX_LINE_ENV, "").strip()
    if not text:
        return MAX_LINE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{MAX_LINE_ENV}={text!r}: expected a positive number of bytes")
    return value


def _too_long(length: int, limit: int) -> str:
    return f"line is {length:,} bytes, over the {limit:,}-byte limit per line ({MAX_LINE_ENV})"


_BOM = b"\xef\xbb\xbf"
# Record batches per chunk: lets DuckDB spread one chunk over all cores.
_BATCHES_PER_CHUNK = 8


@dataclass(slots=True)
class LineChunk:
    """One slice of the file: its lines as Arrow, minus lines that are not UTF-8 or over the size limit
    (those are in ``bad_utf8``, with the reason)."""

    table: pa.Table
    lines: int
    bad_utf8: list[tuple[int, str]] = field(default_factory=list)


@dataclass(slots=True)
class FileDigest:
    """Filled in as the file is read; complete once the iterator is exhausted."""

    sha256: str = ""
    lines: int = 0
    bytes: int = 0


def _table(line_nos: pa.Array, lines: pa.Array) -> pa.Table:
    table = pa.table({"line_no": line_nos, "line": lines})
    n = table.num_rows
    if n > 1024:
        table = pa.Table.from_batches(table.to_batches(max_chunksize=-(-n // _BATCHES_PER_CHUNK)))
    return table


def _slow_chunk(data: bytes, first_line_no: int) -> LineChunk:
    """Per-line decoding, used only for a chunk that holds invalid UTF-8."""
    nos: list[int] = []
    texts: list[str] = []
    bad: list[tuple[int, str]] = []
    limit = max_line_bytes()
    for i, raw in enumerate(data.split(b"\n")[:-1]):
        line_no = first_line_no + i
        if len(raw) > limit:
            bad.append((line_no, _too_long(len(raw), limit)))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            bad.append((line_no, f"not valid UTF-8 (byte {e.start + 1} of the line)"))
            continue
        nos.append(line_no)
        texts.append(text)
    lines = data.count(b"\n")
    return LineChunk(_table(pa.array(nos, pa.int64()), pa.array(texts, pa.string())), lines, bad)


def _fast_chunk(
    data: bytes | memoryview, first_line_no: int, scratch: npt.NDArray[np.bool_] | None = None
) -> LineChunk | None:
    """Zero-copy Arrow view of the lines; None when the bytes are not valid UTF-8.

    ``scratch``, a boolean array at least as long as ``data``, is used for the
    newline mask: a fresh mask per chunk is a fresh mapping of tens of MiB, and
    the kernel's zeroing of its pages cost more than finding the newlines.
    """
    view = np.frombuffer(data, dtype=np.uint8)
    mask = np.equal(view, 10, out=scratch[: len(view)]) if scratch is not None else view == 10
    ends = np.flatnonzero(mask)  # data always ends with b"\n"
    n = len(ends)
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[0] = 0
    offsets[1:] = ends + 1
    # Lines keep their trailing newline: JSON allows trailing whitespace, and
    # slicing it off would need a copy. Blank lines are dropped later, in SQL.
    lines = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        lines.validate(full=True)  # UTF-8 check, without decoding into a Python str
    except pa.ArrowInvalid:
        return None
    line_nos = np.arange(first_line_no, first_line_no + n, dtype=np.int64)
    limit = max_line_bytes()
    lengths = np.diff(offsets) - 1  # bytes of each line, without its newline
    if int(lengths.max(initial=0)) <= limit:
        return LineChunk(_table(pa.array(line_nos), lines), n)
    keep = lengths <= limit
    bad = [(int(line_nos[i]), _too_long(int(lengths[i]), limit)) for i in np.flatnonzero(~keep)]
    kept = pa.table({"line_no": pa.array(line_nos), "line": lines}).filter(pa.array(keep))
    return LineChunk(
        _table(kept.column("line_no").combine_chunks(), kept.column("line").combine_chunks()), n, bad
    )


def read_line_chunks(
    path: Path, digest: FileDigest, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES, in_use: int = 0
) -> Iterator[LineChunk]:
    """Yield chunks of whole lines with 1-based line numbers; fill ``digest`` as it goes.

    The file is memory-mapped: each chunk is a view of the mapping that ends at
    its last newline, so no bytes are read into Python or copied between chunks
    (a line longer than a chunk makes that chunk longer). ``in_use`` is how many
    of the chunks already yielded the caller may still be reading when it asks
    for the next one; the pages of older chunks are released.
    """
    hasher = hashlib.sha256()
    next_line_no = 1
    try:
        fh = path.open("rb")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=str(path)) from e
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            digest.sha256 = hasher.hexdigest()
            return
        try:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise InputError(f"cannot read: {e.strerror}", file=str(path)) from e
    if hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_SEQUENTIAL)
    view = memoryview(mapped)
    pos = released = 0
    starts: deque[int] = deque()
    scratch: npt.NDArray[np.bool_] | None = None
    while pos < size:
        # Pages of chunks the caller is done with are dropped from this
        # process's mapping (the OS keeps them cached), so resident memory stays
        # at about in_use + 1 chunks whatever the file size. Safe even if a view
        # is still read: touching a dropped page of a read-only file mapping
        # maps it again (but it then stays mapped, hence in_use).
        starts.append(pos)
        while len(starts) > in_use + 1:
            starts.popleft()
        upto = starts[0] - starts[0] % mmap.PAGESIZE
        if upto > released and hasattr(mapped, "madvise"):
            mapped.madvise(mmap.MADV_DONTNEED, released, upto - released)
            released = upto
        end = min(pos + chunk_bytes, size)
        if end < size:
            cut = mapped.rfind(b"\n", pos, end)
            if cut < 0:  # a line longer than the chunk: take it whole
                cut = mapped.find(b"\n", end)
            end = size if cut < 0 else cut + 1
        data: bytes | memoryview = view[pos:end]
        hasher.update(data)
        digest.bytes += end - pos
        pos = end
        if data[-1] != 10:  # last line, no trailing newline
            data = bytes(data) + b"\n"
        if next_line_no == 1 and data[:3] == _BOM:
            data = data[len(_BOM) :]  # a UTF-8 byte-order mark is not part of line 1 (still hashed)
        if scratch is None or len(scratch) < len(data):
            scratch = np.empty(max(len(data), chunk_bytes), dtype=np.bool_)
        chunk = _fast_chunk(data, next_line_no, scratch)
        if chunk is None:
            chunk = _slow_chunk(bytes(data), next_line_no)
        next_line_no += chunk.lines
        yield chunk
    digest.sha256 = hasher.hexdigest()
    digest.lines = next_line_no - 1
