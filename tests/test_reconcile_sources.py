"""The export readers of `costlens reconcile`: detection, normalized figures, and strictness.

Every malformed, overlapping, duplicated, misaligned or mixed-currency export is refused with the
file, the JSON path (or CSV line) and the reason, before the database is even opened: nothing is
stored.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA

from costlens.errors import ConfigError, InputError
from costlens.reconcile import parse_tolerance, read_exports
from costlens.reconcile.sources import SOURCES, cents_to_usd, split_line_item
from costlens.reconcile.sources.base import BucketRow, load_document

FIXTURES = DATA / "reconcile"
NOV1 = 1730419200  # 2024-11-01T00:00:00Z
DAY = 86400


def rows(path: Path, source: str | None = None) -> list[BucketRow]:
    (export,) = read_exports([path], source)
    return list(export.read.rows)


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def usage_page(*buckets: tuple[int, int, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "object": "page",
        "data": [{"object": "bucket", "start_time": s, "end_time": e, "results": r} for s, e, r in buckets],
        "has_more": False,
        "next_page": None,
    }


def usage(model: str = "gpt-4o", **figures: Any) -> dict[str, Any]:
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": 10,
        "output_tokens": 5,
        "input_cached_tokens": 0,
        "num_model_requests": 1,
        "model": model,
        "batch": None,
        "project_id": None,
        **figures,
    }


def cost(value: Any, currency: str = "usd", line_item: str | None = "gpt-4o, input") -> dict[str, Any]:
    return {
        "object": "organization.costs.result",
        "amount": {"value": value, "currency": currency},
        "line_item": line_item,
    }


def day(n: int, results: list[dict[str, Any]]) -> tuple[int, int, list[dict[str, Any]]]:
    return NOV1 + n * DAY, NOV1 + (n + 1) * DAY, results


# --- the FORMATS.md examples -----------------------------------------------------------------------


def test_openai_usage_page_is_detected_and_normalized():
    (export,) = read_exports([FIXTURES / "openai_usage_page.json"])
    assert (export.kind, export.detected, export.read.buckets) == ("openai-usage", True, 2)
    assert export.days == (date(2024, 11, 1), date(2024, 11, 2))  # the empty bucket covers its day too
    assert export.read.rows == (
        BucketRow(path="$.data[0].results[0]", day=date(2024, 11, 1), model="gpt-4o-mini-2024-07-18",
                  tier="non-batch", requests=5, input_tokens=1000, cached_tokens=800, output_tokens=500),
        BucketRow(path="$.data[0].results[1]", day=date(2024, 11, 1), model="gpt-4o-2024-08-06",
                  tier="batch", requests=12, input_tokens=250000, cached_tokens=0, output_tokens=4000),
    )  # fmt: skip


def test_openai_costs_amounts_are_exact_and_grouped_by_the_line_items_model():
    got = rows(FIXTURES / "openai_costs_page.json")
    assert [(r.model, r.unattributed, r.cost_usd) for r in got] == [
        ("gpt-4o-2024-08-06", None, Decimal("0.06")),
        ("gpt-4o-2024-08-06", None, Decimal("0.0123456789")),  # a string, read from its text
        # Float noise beyond DECIMAL(38,15), rounded half-even at the 15th place.
        ("gpt-4o-mini-2024-07-18", None, Decimal("0.001615000000000")),
        (None, "line item 'web search tool calls'", Decimal("1.5")),
    ]
    assert all(r.tier is None and r.requests is None for r in got)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpt-4o-2024-08-06, input", ("gpt-4o-2024-08-06", "input")),
        ("gpt-4o-mini-2024-07-18, cached input", ("gpt-4o-mini-2024-07-18", "cached input")),
        ("ft:gpt-4o-mini-2024-07-18:acme::9abc, output", ("ft:gpt-4o-mini-2024-07-18:acme::9abc", "output")),
        ("o3", ("o3", "")),
        ("web search tool calls", (None, "web search tool calls")),
        ("File search storage, per GB", (None, "File search storage, per GB")),
    ],
)
def test_line_items_split_into_model_and_token_type(text, expected):
    assert split_line_item(text) == expected


def test_anthropic_usage_input_includes_cache_reads_and_writes():
    (row,) = rows(FIXTURES / "anthropic_usage_page.json")
    assert row == BucketRow(
        path="$.data[0].results[0]", day=date(2025, 8, 1), model="claude-sonnet-4-20250514", tier="standard",
        input_tokens=1500 + 1000 + 500 + 200, cached_tokens=200, cache_write_tokens=1500, output_tokens=500,
    )  # fmt: skip


def test_anthropic_cost_amounts_are_cents():
    assert cents_to_usd(Decimal("123.45")) == Decimal("1.2345")
    token, search = rows(FIXTURES / "anthropic_cost_page.json")
    assert (token.model, token.tier, token.cost_usd) == (
        "claude-sonnet-4-20250514",
        "batch",
        Decimal("1.2345"),
    )
    assert (search.model, search.unattributed, search.cost_usd) == (
        None,
        "web_search, 'Web Search'",
        Decimal("10"),
    )
    assert str(token.cost_usd) == "1.2345"


def test_litellm_spend_log_csv():
    (export,) = read_exports([FIXTURES / "litellm_spend.csv"])
    assert (export.kind, export.detected, export.read.buckets) == ("litellm-spend", True, 3)
    assert [
        (r.day, r.model, r.requests, r.input_tokens, r.output_tokens, r.cost_usd) for r in export.read.rows
    ] == [
        (date(2025, 8, 1), "gpt-4o-mini", 1, 1000, 500, Decimal("0.000225")),  # 23:59:59.9 UTC: still Aug 1
        (
            date(2025, 8, 2),
            "claude-haiku",
            0,
            12,
            0,
            Decimal("0.0"),
        ),  # 08:00+02:00; no model: its group; failed
        (date(2025, 8, 3), "gpt-4o-mini", 1, 10, 20, Decimal("0.000015")),  # 1.5e-05 as Python writes a float
    ]
    assert export.days == (date(2025, 8, 1), date(2025, 8, 2), date(2025, 8, 3))


def test_litellm_spend_log_json():
    (row,) = rows(FIXTURES / "litellm_spend.json")
    assert (row.day, row.model, row.requests, row.cost_usd) == (
        date(2025, 8, 5),
        "gpt-4o",
        1,
        Decimal("0.001615000000000"),
    )


def test_every_kind_is_detected_and_none_is_mistaken(tmp_path):
    files = {
        "openai_usage_page.json": "openai-usage",
        "openai_costs_page.json": "openai-costs",
        "anthropic_usage_page.json": "anthropic-usage",
        "anthropic_cost_page.json": "anthropic-cost",
        "litellm_spend.csv": "litellm-spend",
        "litellm_spend.json": "litellm-spend",
    }
    assert set(files.values()) == set(SOURCES)
    for name, kind in files.items():
        (export,) = read_exports([FIXTURES / name])
        assert export.kind == kind, name
        others = [k for k in SOURCES if k != kind]
        document = load_document(FIXTURES / name)
        assert [k for k in others if SOURCES[k].detect(document)] == [], name


# --- strictness: file, JSON path, reason; nothing stored -------------------------------------------


def rejected(
    invoke, user_error, db_path, *files: Path, fragments: tuple[str, ...], args: tuple[str, ...] = ()
):
    result = invoke("reconcile", *files, *args)
    user_error(result, 2, *fragments)
    assert not db_path.exists(), "the exports are read before the database is opened: nothing is stored"
    return result


def test_malformed_json_names_line_and_column(invoke, user_error, db_path, tmp_path):
    path = write(tmp_path, "page.json", '{"object": "page",\n "data": [}\n')
    rejected(invoke, user_error, db_path, path, fragments=(f"{path}:2:", "invalid JSON"))


def test_a_repeated_key_or_a_nan_names_its_json_path(invoke, user_error, db_path, tmp_path):
    text = json.dumps(usage_page(day(0, [usage()])))
    repeated = write(
        tmp_path, "r.json", text.replace('"num_model_requests": 1', '"num_model_requests": 1, "model": "x"')
    )
    rejected(
        invoke,
        user_error,
        db_path,
        repeated,
        fragments=(f"{repeated}: $.data[0].results[0].model: duplicate key 'model'",),
    )
    nan = write(tmp_path, "n.json", text.replace('"input_tokens": 10', '"input_tokens": NaN'))
    rejected(
        invoke,
        user_error,
        db_path,
        nan,
        fragments=(f"{nan}: $.data[0].results[0].input_tokens: NaN is not allowed",),
    )


@pytest.mark.parametrize(
    ("result", "fragment"),
    [
        (
            usage(input_tokens="10"),
            "$.data[0].results[0].input_tokens: expected a whole number >= 0, got a string",
        ),
        (usage(input_tokens=-1), "$.data[0].results[0].input_tokens: expected a whole number >= 0, got -1"),
        (
            usage(num_model_requests=1.5),
            "$.data[0].results[0].num_model_requests: expected a whole number >= 0, got 1.5",
        ),
        (
            usage(input_cached_tokens=11),
            "$.data[0].results[0].input_cached_tokens: 11 cached tokens exceed the 10",
        ),
        (usage(batch="yes"), "$.data[0].results[0].batch: expected true, false or null"),
        (usage(model=7), "$.data[0].results[0].model: expected a string or null, got a number"),
        (
            {**usage(), "object": "organization.costs.result"},
            "$.data[0].results[0].object: expected 'organization.usage",
        ),
    ],
)
def test_a_bad_value_names_its_json_path(invoke, user_error, db_path, tmp_path, result, fragment):
    path = write(tmp_path, "usage.json", usage_page(day(0, [result])))
    rejected(
        invoke,
        user_error,
        db_path,
        path,
        fragments=(f"{path}: {fragment}",),
        args=("--source", "openai-usage"),
    )


def test_overlapping_pages_name_both_files_and_paths(invoke, user_error, db_path, tmp_path):
    first = write(tmp_path, "page-1.json", usage_page(day(0, [usage()]), day(1, [usage()])))
    second = write(tmp_path, "page-2.json", usage_page(day(1, [usage()]), day(2, [usage()])))
    rejected(
        invoke, user_error, db_path, first, second,
        fragments=(f"{second}: $.data[0]: overlapping pages: bucket 2024-11-02T00:00:00Z..2024-11-03T00:00:00Z is "
                   f"also in {first} at $.data[1]",),
    )  # fmt: skip


def test_the_same_page_twice_is_an_overlap(invoke, user_error, db_path, tmp_path):
    first = write(tmp_path, "a.json", usage_page(day(0, [usage()])))
    second = tmp_path / "b.json"
    shutil.copy(first, second)
    rejected(
        invoke, user_error, db_path, first, second, fragments=(f"{second}: $.data[0]: overlapping pages",)
    )


def test_hourly_buckets_overlapping_a_daily_one(invoke, user_error, db_path, tmp_path):
    daily = write(tmp_path, "daily.json", usage_page(day(0, [usage()])))
    hourly = write(tmp_path, "hourly.json", usage_page((NOV1 + 3600, NOV1 + 7200, [usage()])))
    rejected(
        invoke, user_error, db_path, daily, hourly,
        fragments=(f"{hourly}: $.data[0]: overlapping pages: bucket 2024-11-01T01:00:00Z..2024-11-01T02:00:00Z "
                   f"overlaps 2024-11-01T00:00:00Z..2024-11-02T00:00:00Z in {daily} at $.data[0]",),
    )  # fmt: skip


def test_a_duplicate_bucket_in_one_file(invoke, user_error, db_path, tmp_path):
    path = write(tmp_path, "u.json", usage_page(day(0, [usage()]), day(1, []), day(0, [usage()])))
    rejected(
        invoke, user_error, db_path, path,
        fragments=(f"{path}: $.data[2]: duplicate bucket 2024-11-01T00:00:00Z..2024-11-02T00:00:00Z: also at $.data[0]",),
    )  # fmt: skip


def test_a_duplicate_result_in_a_bucket(invoke, user_error, db_path, tmp_path):
    path = write(
        tmp_path, "u.json", usage_page(day(0, [usage(), usage("gpt-4o-mini"), usage(input_tokens=99)]))
    )
    rejected(
        invoke, user_error, db_path, path,
        fragments=(f"{path}: $.data[0].results[2]: duplicate result: same grouping as $.data[0].results[0]",),
    )  # fmt: skip


def test_mixed_currencies(invoke, user_error, db_path, tmp_path):
    path = write(tmp_path, "c.json", usage_page(day(0, [cost(1)]), day(1, [cost(2, "eur")])))
    rejected(
        invoke, user_error, db_path, path,
        fragments=(f"{path}: $.data[1].results[0].amount.currency: mixed currencies: 'eur' here, 'usd' at "
                   "$.data[0].results[0].amount.currency",),
    )  # fmt: skip


def test_a_non_usd_export(invoke, user_error, db_path, tmp_path):
    path = write(tmp_path, "c.json", usage_page(day(0, [cost(1, "eur")])))
    rejected(
        invoke,
        user_error,
        db_path,
        path,
        fragments=(f"{path}: $.data[0].results[0].amount.currency: currency 'eur'",),
    )


def test_mixed_currencies_in_an_anthropic_cost_report(invoke, user_error, db_path, tmp_path):
    page = json.loads((FIXTURES / "anthropic_cost_page.json").read_text())
    page["data"][0]["results"][1]["currency"] = "EUR"
    path = write(tmp_path, "a.json", page)
    rejected(
        invoke, user_error, db_path, path,
        fragments=(f"{path}: $.data[0].results[1].currency: mixed currencies: 'EUR' here, 'USD' at "
                   "$.data[0].results[0].currency",),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("abc", "$.data[0].results[0].amount.value: expected a decimal number, got 'abc'"),
        ("NaN", "$.data[0].results[0].amount.value: expected a decimal number, got 'NaN'"),
        (None, "$.data[0].results[0].amount.value: expected a number or a decimal string, got null"),
        (True, "$.data[0].results[0].amount.value: expected a number or a decimal string, got a boolean"),
    ],
)
def test_a_bad_openai_amount(invoke, user_error, db_path, tmp_path, value, fragment):
    path = write(tmp_path, "c.json", usage_page(day(0, [cost(value)])))
    rejected(
        invoke,
        user_error,
        db_path,
        path,
        fragments=(f"{path}: {fragment}",),
        args=("--source", "openai-costs"),
    )


def test_an_anthropic_amount_must_be_a_string_of_cents(invoke, user_error, db_path, tmp_path):
    page = json.loads((FIXTURES / "anthropic_cost_page.json").read_text())
    page["data"][0]["results"][0]["amount"] = 123.45
    path = write(tmp_path, "a.json", page)
    rejected(
        invoke, user_error, db_path, path,
        fragments=(f'{path}: $.data[0].results[0].amount: expected a decimal string in cents (such as "123.45"), got a number',),
    )  # fmt: skip


def test_a_bucket_not_aligned_to_a_utc_day(invoke, user_error, db_path, tmp_path):
    start = NOV1 + 7 * 3600  # a daily report requested in UTC+7's or UTC-17's midnight
    path = write(tmp_path, "u.json", usage_page((start, start + DAY, [usage()])))
    rejected(
        invoke, user_error, db_path, path,
        fragments=(f"{path}: $.data[0]: bucket 2024-11-01T07:00:00Z..2024-11-02T07:00:00Z is not within one UTC day",),
    )  # fmt: skip


def test_an_anthropic_bucket_in_local_time(invoke, user_error, db_path, tmp_path):
    page = json.loads((FIXTURES / "anthropic_usage_page.json").read_text())
    page["data"][0]["starting_at"] = "2025-08-01T00:00:00+02:00"
    page["data"][0]["ending_at"] = "2025-08-02T00:00:00+02:00"
    path = write(tmp_path, "a.json", page)
    rejected(
        invoke,
        user_error,
        db_path,
        path,
        fragments=("2025-07-31T22:00:00Z..2025-08-01T22:00:00Z is not within one UTC day",),
    )


def test_a_day_covered_in_part(invoke, user_error, db_path, tmp_path):
    hours = [(NOV1 + h * 3600, NOV1 + (h + 1) * 3600, [usage()] if h == 0 else []) for h in range(5)]
    path = write(tmp_path, "u.json", usage_page(*hours))
    rejected(
        invoke, user_error, db_path, path,
        fragments=(f"{path}: $.data[0]: the buckets of 2024-11-01 cover 5 h of the UTC day",),
    )  # fmt: skip


def test_hourly_buckets_of_whole_days_add_up_to_their_day(tmp_path):
    hours = [(NOV1 + h * 3600, NOV1 + (h + 1) * 3600, [usage(num_model_requests=h)]) for h in range(24)]
    (export,) = read_exports([write(tmp_path, "u.json", usage_page(*hours))])
    assert export.days == (date(2024, 11, 1),) and export.read.buckets == 24
    assert sum(r.requests or 0 for r in export.read.rows) == sum(range(24))


def test_grouped_and_ungrouped_pages_cannot_be_mixed(invoke, user_error, db_path, tmp_path):
    grouped = write(tmp_path, "g.json", usage_page(day(0, [usage()])))
    plain = write(tmp_path, "p.json", usage_page(day(1, [usage(model=None)])))
    rejected(
        invoke, user_error, db_path, grouped, plain,
        fragments=(f"{plain}: $.data[0].results[0]: not grouped by model (model null), but grouped at {grouped} "
                   "$.data[0].results[0]: pages requested with different group_by cannot be added up",),
    )  # fmt: skip


def test_a_duplicate_request_in_two_spend_logs(invoke, user_error, db_path, tmp_path):
    text = (FIXTURES / "litellm_spend.csv").read_text()
    header, first_row, *_ = text.splitlines()
    second = write(tmp_path, "more.csv", f"{header}\n{first_row}\n")
    rejected(
        invoke, user_error, db_path, FIXTURES / "litellm_spend.csv", second,
        fragments=(f"{second}:2: duplicate request_id 'chatcmpl-1', also at {FIXTURES / 'litellm_spend.csv'}:2",),
    )  # fmt: skip


def test_a_bad_spend_log_row_names_its_line(invoke, user_error, db_path, tmp_path):
    text = (FIXTURES / "litellm_spend.csv").read_text().replace("1.5e-05", "1,5", 1)
    path = write(tmp_path, "s.csv", text)
    rejected(invoke, user_error, db_path, path, fragments=(f"{path}:4: 17 fields, the header has 16",))
    path = write(
        tmp_path, "t.csv", (FIXTURES / "litellm_spend.csv").read_text().replace("0.000225", "lots", 1)
    )
    rejected(
        invoke,
        user_error,
        db_path,
        path,
        fragments=(f"{path}:2: spend: expected a decimal number, got 'lots'",),
    )


def test_an_export_of_unknown_shape_asks_for_source(invoke, user_error, db_path, tmp_path):
    path = write(tmp_path, "x.json", {"data": []})
    rejected(
        invoke,
        user_error,
        db_path,
        path,
        fragments=(f"{path}: cannot tell which export this is", "give --source"),
    )


def test_source_applies_to_every_file(tmp_path):
    empty = write(tmp_path, "empty.json", usage_page(day(0, [])))
    (export,) = read_exports([empty], "openai-costs")
    assert (export.kind, export.detected, export.read.rows, export.days) == (
        "openai-costs",
        False,
        (),
        (date(2024, 11, 1),),
    )
    with pytest.raises(
        InputError, match=r"\$\.data\[0\]\.results\[0\]\.object: expected 'organization\.costs\.result'"
    ):
        read_exports([FIXTURES / "openai_usage_page.json"], "openai-costs")


def test_parse_tolerance():
    assert parse_tolerance("0.01").usd == Decimal("0.01")
    assert parse_tolerance("$1.5").usd == Decimal("1.5")
    assert parse_tolerance("2.5%").percent == Decimal("2.5")
    assert parse_tolerance(" 0 ").text == "0"
    assert parse_tolerance("1%").text == "1%"
    for bad in ("", "abc", "-1", "1e3", "5 USD", "150%"):
        with pytest.raises(ConfigError):
            parse_tolerance(bad)
    t = parse_tolerance("10%")
    assert t.allows("requests", Decimal(20), Decimal(22)) and not t.allows(
        "requests", Decimal(20), Decimal(23)
    )
    usd = parse_tolerance("0.01")
    assert usd.allows("cost_usd", Decimal("1"), Decimal("1.01")) and not usd.allows(
        "cost_usd", Decimal(1), Decimal("1.011")
    )
    assert not usd.allows("input_tokens", Decimal(10), Decimal(11))


def test_a_count_above_what_the_db_stores_is_an_input_error(tmp_path):
    """Found by tests/reliability: 2^64 tokens used to end in an OverflowError (an internal error)."""
    data = json.loads((DATA / "reconcile" / "openai_usage_page.json").read_text(encoding="utf-8"))
    data["data"][0]["results"][0]["input_tokens"] = 2**64
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError, match=r"input_tokens.*above the largest count costlens stores"):
        read_exports([path])
