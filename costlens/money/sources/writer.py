"""Turn an :class:`ImportResult` into price-sheet bytes, and put them on disk atomically.

Kept apart from the importers so every source writes the same file the same way:

* **Deterministic.** Rows are sorted (model lower-cased; then price rows by service tier
  standard, batch, flex, priority, by ``min_prompt_tokens`` and by ``effective_from`` with the
  unbounded row first; then the model's ``match`` rows), lines end in ``\\n`` and quoting is
  minimal, so the same source always gives the same bytes and a re-import diffs cleanly.
* **Atomic.** The sheet is written to a temporary file in the target's directory, flushed
  and fsynced, then renamed over the target: a reader sees the old sheet or the new one,
  never half of one, and a failure leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

from costlens.errors import ConfigError
from costlens.money.sources.base import COLUMNS, SERVICE_TIERS, ImportResult, SheetRow
from costlens.store.files import fsync_directory

__all__ = ["render_csv", "row_order", "write_atomically"]

_TIER_RANK: dict[str, int] = {tier: i for i, tier in enumerate(SERVICE_TIERS)}


def row_order(row: SheetRow) -> tuple[str, bool, int, int, bool, str, str, tuple[str, ...]]:
    """The sheet's sort key (the last parts only break ties between otherwise equal keys)."""
    return (
        row.model.lower(),
        bool(row.match),
        _TIER_RANK.get(row.service_tier or "standard", len(_TIER_RANK)),
        int(row.min_prompt_tokens or 0),
        bool(row.effective_from),
        row.effective_from,
        row.match,
        row.cells(),
    )


def render_csv(result: ImportResult) -> bytes:
    """The price sheet for ``result``: header :data:`COLUMNS`, sorted rows, UTF-8, ``\\n``."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    writer.writerows(row.cells() for row in sorted(result.rows, key=row_order))
    return buffer.getvalue().encode("utf-8")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename; on failure nothing is left behind."""
    path = Path(path)
    directory = path.parent
    try:
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from e
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            _copy_mode(path, handle.fileno())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as e:
        temp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise ConfigError(f"cannot write {path}: {e.strerror or e}") from e
        raise
    fsync_directory(directory)


def _copy_mode(path: Path, fd: int) -> None:
    """mkstemp makes the file 0600; give the sheet the target's mode, or the umask default."""
    if not hasattr(os, "fchmod"):
        return
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.fchmod(fd, mode)
