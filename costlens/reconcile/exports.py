"""The provider exports of one reconciliation: every file loaded, its kind detected, read, and
checked against the others — all before the database is touched.

Strictness lives here, across files, where a single reader cannot see it (the readers check
each file on its own: values, currencies, duplicate results in a bucket, buckets inside one
UTC day). Per export kind:

* **Overlapping pages.** A bucket window that overlaps another (the same page saved twice, or
  two pages of different widths over the same hours) is an error naming both files and JSON
  paths; the same window twice in one file is a duplicate bucket. For a spend log, the same
  ``request_id`` twice.
* **Whole UTC days.** Each day the buckets touch must be covered whole (24 h of 1h buckets, say),
  because costlens's side of the comparison is the whole day.
* **One grouping.** Results grouped by model (or by tier) cannot be mixed with ungrouped ones
  of the same kind: the ungrouped figure is every model's and would be counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal, NoReturn

from costlens.errors import InputError
from costlens.reconcile.sources import SOURCES, detect, get_source, load_document
from costlens.reconcile.sources.base import ONE_DAY, BucketRow, ExportRead, Window

__all__ = ["Export", "KindPlan", "TierMode", "plan_kinds", "read_exports"]

TierMode = Literal["none", "batch", "tier"]


@dataclass(frozen=True, slots=True)
class Export:
    """One file as read: where it came from, what kind it is (and whether that was detected)."""

    file: str
    sha256: str
    kind: str
    detected: bool
    read: ExportRead

    @property
    def name(self) -> str:
        """The file name alone (what is stored and shown: the path may name a person's home)."""
        return Path(self.file).name

    @property
    def days(self) -> tuple[date, ...]:
        return tuple(
            sorted({r.day for r in self.read.rows} | _window_days(self.read.windows) | set(self.read.days))
        )


@dataclass(frozen=True, slots=True)
class KindPlan:
    """How one export kind is compared: its family, figures, grouping and the days it covers."""

    kind: str
    family: str
    measures: tuple[str, ...]
    all_models: bool  # not grouped by model: each row is every model's
    tier_mode: TierMode
    days: tuple[date, ...]


def read_exports(files: Sequence[Path], source: str | None = None) -> tuple[Export, ...]:
    """Load, detect (unless ``source`` names the kind) and read every file, then check them together.

    Raises ``InputError`` (file, JSON path or line, reason) or ``ConfigError``; nothing is stored.
    """
    forced = get_source(source) if source else None
    exports: list[Export] = []
    for path in files:
        document = load_document(Path(path))
        reader = forced or detect(document)
        exports.append(
            Export(document.file, document.sha256, reader.kind, forced is None, reader.read(document))
        )
    by_kind: dict[str, list[Export]] = defaultdict(list)
    for export in exports:
        by_kind[export.kind].append(export)
    for group in by_kind.values():
        _check_windows(group)
        _check_identities(group)
        plan_kinds(group)  # raises on mixed grouping
    return tuple(exports)


def plan_kinds(exports: Sequence[Export]) -> tuple[KindPlan, ...]:
    """One plan per kind present, in registry order; raises on a kind that mixes groupings."""
    by_kind: dict[str, list[Export]] = defaultdict(list)
    for export in exports:
        by_kind[export.kind].append(export)
    plans = []
    for kind in SOURCES:
        if kind not in by_kind:
            continue
        group = by_kind[kind]
        reader = SOURCES[kind]
        rows = [(e, r) for e in group for r in e.read.rows if r.unattributed is None]
        named = next(((e, r) for e, r in rows if r.model is not None), None)
        unnamed = next(((e, r) for e, r in rows if r.model is None), None)
        if named and unnamed:
            _mixed(unnamed, named, "not grouped by model (model null)")
        tiers = {r.tier for _, r in rows}
        tiered = next(((e, r) for e, r in rows if r.tier is not None), None)
        untiered = next(((e, r) for e, r in rows if r.tier is None), None)
        if tiered and untiered:
            _mixed(untiered, tiered, "not grouped by service tier or batch (both null)")
        mode: TierMode = "none"
        if tiered:
            mode = "batch" if tiers <= {"batch", "non-batch"} else "tier"
            if "non-batch" in tiers and mode == "tier":
                bare = next((e, r) for e, r in rows if r.tier == "non-batch")
                full = next((e, r) for e, r in rows if r.tier not in ("batch", "non-batch"))
                _mixed(bare, full, "grouped by the batch flag only (service tier null)")
        days = sorted({d for e in group for d in e.days})
        plans.append(
            KindPlan(
                kind=kind,
                family=reader.family,
                measures=tuple(reader.measures),
                all_models=named is None,
                tier_mode=mode,
                days=tuple(days),
            )
        )
    return tuple(plans)


def _mixed(odd: tuple[Export, BucketRow], other: tuple[Export, BucketRow], what: str) -> NoReturn:
    export, row = odd
    raise InputError(
        f"{row.path}: {what}, but grouped at {other[0].file} {other[1].path}: pages requested with "
        "different group_by cannot be added up",
        file=export.file,
    )


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _window_days(windows: Sequence[Window]) -> set[date]:
    return {w.start.date() for w in windows}


def _check_windows(group: Sequence[Export]) -> None:
    """No two buckets of one kind overlap; each day they touch is covered whole."""
    windows = sorted(
        ((w, e) for e in group for w in e.read.windows), key=lambda item: (item[0].start, item[0].end)
    )
    latest: tuple[Window, Export] | None = None
    for window, export in windows:
        if latest is not None and window.start < latest[0].end:
            other, other_export = latest
            span = f"{_stamp(window.start)}..{_stamp(window.end)}"
            if (window.start, window.end) == (other.start, other.end):
                what = (
                    f"duplicate bucket {span}: also at {other.path}"
                    if other_export is export
                    else f"overlapping pages: bucket {span} is also in {other_export.file} at {other.path}"
                )
            else:
                what = (
                    f"overlapping pages: bucket {span} overlaps {_stamp(other.start)}..{_stamp(other.end)} "
                    f"in {other_export.file} at {other.path}"
                )
            raise InputError(f"{window.path}: {what}", file=export.file)
        if latest is None or window.end > latest[0].end:
            latest = (window, export)
    covered: dict[date, timedelta] = defaultdict(timedelta)
    first: dict[date, tuple[Window, Export]] = {}
    for window, export in windows:
        day = window.start.date()
        covered[day] += window.end - window.start
        first.setdefault(day, (window, export))
    for day, length in sorted(covered.items()):
        if length != ONE_DAY:
            window, export = first[day]
            hours = length.total_seconds() / 3600
            raise InputError(
                f"{window.path}: the buckets of {day.isoformat()} cover {hours:g} h of the UTC day: reconcile "
                "compares whole UTC days (give the pages for the whole day)",
                file=export.file,
            )


def _check_identities(group: Sequence[Export]) -> None:
    seen: dict[str, tuple[str, Export]] = {}
    for export in group:
        for identity, place in export.read.identities:
            if identity in seen and seen[identity][1] is not export:
                raise InputError(
                    f"{place}: duplicate request_id {identity!r}, also at {seen[identity][0]} (overlapping exports)"
                )
            seen.setdefault(identity, (place, export))
