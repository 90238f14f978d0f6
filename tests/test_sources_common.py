"""Price sources, the shared parts: exact decimals, the strict JSON loader, owners of an id,
the deterministic CSV, the atomic write and the registry's import_to_file.

Every source's hostile inputs are run through ``import_to_file`` here, so "a malformed source
never reaches the writer" is checked once for all of them: the output file must not appear,
and an existing one must keep its bytes.
"""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from costlens.errors import ConfigError, PricingError
from costlens.money.sources import (
    COLUMNS,
    SOURCES,
    ImportResult,
    Listed,
    SheetRow,
    get_source,
    import_to_file,
    render_csv,
    write_atomically,
)
from costlens.money.sources import writer as writer_module
from costlens.money.sources.base import (
    format_decimal,
    json_path,
    load_json,
    narrow_providers,
    per_token_to_per_1m,
    pick_owners,
    price_cell,
)

DATA = Path(__file__).parent / "data" / "sources"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty directory of our own (conftest puts a state/ dir in tmp_path)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def write(tmp_path: Path, text: str | bytes, name: str = "source.json") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


# --- decimals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cell", "rounded"),
    [
        ("2.5e-06", "2.5", False),
        ("0.000003", "3", False),
        ("1e-05", "10", False),
        ("0", "0", False),
        ("0.0", "0", False),
        ("7.5e-08", "0.075", False),
        ("1.6150000000000001e-06", "1.615", True),  # float noise from FORMATS.md
        ("1.5000000000000002e-07", "0.15", True),
        ("4.0054321e-08", "0.040054321", False),  # exactly 9 places: kept
        ("4.00543215e-08", "0.040054322", True),  # 10 places, half-even rounds the 1 up to 2
        ("4.00543225e-08", "0.040054322", True),  # ... and the 2 stays (even)
        ("0.999999999999", "999999.999999", False),  # just below the limit
    ],
)
def test_per_token_to_per_1m_is_exact_and_lists_only_real_rounding(
    text: str, cell: str, rounded: bool
) -> None:
    listed: list[Listed] = []
    got = per_token_to_per_1m(
        Decimal(text), path="$.m.x", file="f.json", model="m", provider="p", listed=listed
    )
    assert got == cell
    assert [item.kind for item in listed] == (["rounded"] if rounded else [])
    if rounded:
        assert listed[0].reason.startswith(f"$.m.x: {Decimal(text)} rounded to {cell}")


def test_price_cell_shifts_without_context_rounding() -> None:
    """A 28-digit context would first round this to an exact half, then half-even to 0."""
    value = Decimal("0.0000000005000000000000000000001")
    assert (
        price_cell(value, shift=0, path="$", file=None, model="m", provider="p", listed=[]) == "0.000000001"
    )


@pytest.mark.parametrize(
    ("text", "shift", "message"),
    [
        ("1", 6, "$.p: price 1 is too large (must be below 1000000 per 1M tokens)"),
        ("1E+300", 6, "$.p: price 1E+300 is too large"),
        ("1000000", 0, "$.p: price 1000000 is too large (must be below 1000000)"),
        ("999999.9999999999", 0, "$.p: price 999999.9999999999 is too large"),  # rounds up to the limit
        ("-0.000001", 6, "$.p: negative price -0.000001"),
        ("NaN", 6, "$.p: NaN is not a finite number"),
    ],
)
def test_price_cell_rejects_with_the_path(text: str, shift: int, message: str) -> None:
    with pytest.raises(PricingError) as info:
        price_cell(Decimal(text), shift=shift, path="$.p", file="f.json", model="m", provider="p", listed=[])
    assert str(info.value).startswith(f"f.json: {message}")


def test_price_cell_per_thousand_requests() -> None:
    # genai-prices requests_kcount: USD per 1,000 requests -> USD per request
    assert (
        price_cell(Decimal("12"), shift=-3, path="$", file=None, model="m", provider="p", listed=[])
        == "0.012"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [("1E+2", "100"), ("0E-9", "0"), ("-0", "0"), ("1.2500", "1.25"), ("0.000000001", "0.000000001")],
)
def test_format_decimal_is_plain(value: str, text: str) -> None:
    assert format_decimal(Decimal(value)) == text


# --- JSON ---------------------------------------------------------------------------------


def test_json_path_quotes_keys_that_are_not_identifiers() -> None:
    assert json_path("data", 3, "pricing", "prompt") == "$.data[3].pricing.prompt"
    assert json_path("gpt-4o", "mode") == '$["gpt-4o"].mode'
    assert json_path() == "$"
    assert json_path('a"b') == '$["a\\"b"]'


def test_load_json_reads_numbers_as_their_decimal_text(tmp_path: Path) -> None:
    data, digest = load_json(write(tmp_path, '{"a": 1.6150000000000001e-06, "b": 3, "c": [0.1]}'))
    assert data == {"a": Decimal("1.6150000000000001e-06"), "b": Decimal(3), "c": [Decimal("0.1")]}
    assert isinstance(data["b"], Decimal)
    assert len(digest) == 64


def test_load_json_accepts_a_bom(tmp_path: Path) -> None:
    data, _ = load_json(write(tmp_path, b'\xef\xbb\xbf{"a": 1}'))
    assert data == {"a": Decimal(1)}


def test_load_json_sha256_is_of_the_bytes(tmp_path: Path) -> None:
    import hashlib

    raw = b'{"a":  1}\n'
    _, digest = load_json(write(tmp_path, raw))
    assert digest == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ('{"a": 1,\n "b": }', "invalid JSON: Expecting value", 2, 7),
        ('{"a": 1,}', "invalid JSON: Expecting property name enclosed in double quotes", 1, 9),
        ("", "$: empty file (expected a JSON document)", 1, None),
        ("  \n ", "$: empty file (expected a JSON document)", 1, None),
    ],
)
def test_load_json_syntax_errors_have_line_and_column(
    tmp_path: Path, text: str, message: str, line: int, column: int | None
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PricingError) as info:
        load_json(path)
    assert info.value.reason == message
    assert (info.value.file, info.value.line, info.value.column) == (str(path), line, column)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "$.a: duplicate key 'a'"),
        ('{"m": {"x": [1, {"y": 1, "y": 1}]}}', "$.m.x[1].y: duplicate key 'y'"),
        ('{"gpt-4o": {}, "gpt-4o": {}}', "$[\"gpt-4o\"]: duplicate key 'gpt-4o'"),
        ('{"m": {"p": NaN}}', "$.m.p: NaN is not allowed (numbers must be finite)"),
        ('{"m": [1, Infinity]}', "$.m[1]: Infinity is not allowed (numbers must be finite)"),
        ('{"m": -Infinity}', "$.m: -Infinity is not allowed (numbers must be finite)"),
    ],
)
def test_load_json_rejects_what_json_accepts(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PricingError) as info:
        load_json(path)
    assert str(info.value) == f"{path}: {message}"


def test_load_json_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'{"a":\n "\xff"}')
    with pytest.raises(PricingError) as info:
        load_json(path)
    assert (info.value.reason, info.value.line) == ("not UTF-8 text", 2)


def test_load_json_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PricingError, match="cannot read file"):
        load_json(tmp_path / "nope.json")


# --- owners of an id, providers -----------------------------------------------------------


def test_pick_owners_keeps_one_per_lowercased_id() -> None:
    entries = [("gpt-4o", "openai"), ("GPT-4o", "azure"), ("o3", "azure"), ("o3", "openai")]
    kept, listed = pick_owners(entries, model_of=lambda e: e[0], provider_of=lambda e: e[1])
    assert kept == [("gpt-4o", "openai"), ("o3", "azure")]
    assert listed == [
        Listed("GPT-4o", "azure", "also under openai (kept openai)", "duplicate"),
        Listed("o3", "openai", "also under azure (kept azure)", "duplicate"),
    ]


def test_pick_owners_preferred_then_given_order() -> None:
    entries = [("o3", "azure"), ("o3", "openai"), ("x", "azure")]
    kept, _ = pick_owners(
        entries, model_of=lambda e: e[0], provider_of=lambda e: e[1], preferred=lambda m: "openai"
    )
    assert kept == [("o3", "openai"), ("x", "azure")]
    kept, listed = pick_owners(
        entries, model_of=lambda e: e[0], provider_of=lambda e: e[1], providers=("openai", "azure")
    )
    assert kept == [("o3", "openai"), ("x", "azure")]
    kept, listed = pick_owners(
        entries, model_of=lambda e: e[0], provider_of=lambda e: e[1], providers=("azure",)
    )
    assert kept == [("o3", "azure"), ("x", "azure")]
    assert listed == []  # openai is not part of the import at all


def test_narrow_providers_lists_the_valid_names() -> None:
    assert narrow_providers(["b", "a", "b"], ["a", "b", "c"], source="s") == ("b", "a")
    with pytest.raises(ConfigError) as info:
        narrow_providers(["nope"], ["b", "a"], source="litellm")
    assert str(info.value) == "unknown provider 'nope' for litellm (valid: a, b)"


# --- CSV ----------------------------------------------------------------------------------


def test_render_csv_sorts_rows_and_is_plain_csv() -> None:
    rows = (
        SheetRow(model="b", match="prefix:b-", provider="p", source="s b"),
        SheetRow(
            model="b", input_per_1m="2", output_per_1m="4", service_tier="priority", min_prompt_tokens="0"
        ),
        SheetRow(
            model="b",
            input_per_1m="1",
            output_per_1m="2",
            service_tier="standard",
            min_prompt_tokens="0",
            effective_from="2025-01-01",
        ),
        SheetRow(
            model="b",
            input_per_1m="3",
            output_per_1m="6",
            service_tier="standard",
            min_prompt_tokens="200001",
        ),
        SheetRow(
            model="b", input_per_1m="0.5", output_per_1m="1", service_tier="batch", min_prompt_tokens="0"
        ),
        SheetRow(
            model="b",
            input_per_1m="1",
            output_per_1m="1",
            service_tier="standard",
            min_prompt_tokens="0",
            effective_to="2025-01-01",
        ),
        SheetRow(model="B", match="exact:b-latest", provider="p"),
        SheetRow(
            model="A,1",
            input_per_1m="1",
            output_per_1m="1",
            service_tier="standard",
            min_prompt_tokens="0",
            source='say "hi"',
        ),
    )
    result = ImportResult(source="s", rows=rows, listed=(), models_imported=2, models_skipped=0)
    text = render_csv(result).decode("utf-8")
    assert "\r" not in text and text.endswith("\n")
    lines = text.split("\n")[:-1]
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1:] == [
        '"A,1",,,,1,1,,,,,,standard,0,,,,"say ""hi"""',
        "b,,,,1,1,,,,,,standard,0,,2025-01-01,,",  # unbounded start first
        "b,,,,1,2,,,,,,standard,0,2025-01-01,,,",
        "b,,,,3,6,,,,,,standard,200001,,,,",
        "b,,,,0.5,1,,,,,,batch,0,,,,",
        "b,,,,2,4,,,,,,priority,0,,,,",
        "B,exact:b-latest,p,,,,,,,,,,,,,,",
        "b,prefix:b-,p,,,,,,,,,,,,,,s b",
    ]
    shuffled = ImportResult(source="s", rows=rows[::-1], listed=(), models_imported=2, models_skipped=0)
    assert render_csv(shuffled) == render_csv(result)


# --- atomic write -------------------------------------------------------------------------


def test_write_atomically_replaces_and_leaves_nothing_else(work: Path) -> None:
    out = work / "prices.csv"
    write_atomically(out, b"one\n")
    out.chmod(0o640)
    write_atomically(out, b"two\n")
    assert out.read_bytes() == b"two\n"
    assert sorted(p.name for p in work.iterdir()) == ["prices.csv"]
    if hasattr(os, "fchmod"):
        assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the target's mode survives


def test_write_atomically_new_file_gets_the_umask_mode(work: Path) -> None:
    out = work / "new.csv"
    old = os.umask(0o022)
    try:
        write_atomically(out, b"x")
    finally:
        os.umask(old)
    if hasattr(os, "fchmod"):
        assert stat.S_IMODE(out.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_write_atomically_failure_keeps_the_old_file(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = work / "prices.csv"
    out.write_bytes(b"old\n")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer_module.os, "replace", broken_replace)
    with pytest.raises(ConfigError, match="No space left on device"):
        write_atomically(out, b"new\n")
    assert out.read_bytes() == b"old\n"
    assert sorted(p.name for p in work.iterdir()) == ["prices.csv"]


def test_write_atomically_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write"):
        write_atomically(tmp_path / "no" / "such" / "dir.csv", b"x")


# --- registry and import_to_file ----------------------------------------------------------


def test_registry_names_and_interface() -> None:
    assert sorted(SOURCES) == ["genai-prices", "litellm", "models-dev", "openrouter"]
    for name, importer in SOURCES.items():
        assert importer.name == name
        assert importer.needs_file == (name != "genai-prices")
        assert get_source(name) is importer
    with pytest.raises(ConfigError) as info:
        get_source("helicone")
    assert (
        str(info.value)
        == "unknown price source 'helicone' (valid: genai-prices, litellm, models-dev, openrouter)"
    )


def test_import_to_file_checks_the_file_argument(work: Path) -> None:
    with pytest.raises(ConfigError, match="litellm needs the saved source FILE"):
        import_to_file("litellm", None, work / "out.csv")
    with pytest.raises(ConfigError, match="genai-prices takes no FILE"):
        import_to_file("genai-prices", work / "x.json", work / "out.csv")
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    ("source", "fixture"),
    [("litellm", "litellm.json"), ("openrouter", "openrouter.json"), ("models-dev", "models_dev.json")],
)
def test_import_to_file_writes_the_rendered_sheet(tmp_path: Path, source: str, fixture: str) -> None:
    out = tmp_path / "sheet.csv"
    result = import_to_file(source, DATA / fixture, out)
    assert out.read_bytes() == render_csv(result)
    assert result.models_imported > 0


# One hostile input per trap and source: (source, file text, the message's JSON path part).
HOSTILE = [
    ("litellm", '{"m": {"mode": "chat", "input_cost_per_token": 1e-06,}}', "invalid JSON"),
    ("litellm", "", "$: empty file"),
    ("litellm", '[{"mode": "chat"}]', "$: expected a JSON object of model ids, got an array"),
    (
        "litellm",
        '{"m": {"mode": "chat", "input_cost_per_token": "0.000001"}}',
        "$.m.input_cost_per_token: expected a number, got a string",
    ),
    (
        "litellm",
        '{"m": {"mode": "chat", "input_cost_per_token": NaN}}',
        "$.m.input_cost_per_token: NaN is not allowed",
    ),
    (
        "litellm",
        '{"m": {"mode": "chat", "output_cost_per_token": Infinity}}',
        "$.m.output_cost_per_token: Infinity is not allowed",
    ),
    (
        "litellm",
        '{"m": {"mode": "chat", "input_cost_per_token": -1e-06}}',
        "$.m.input_cost_per_token: negative price -0.000001",
    ),
    (
        "litellm",
        '{"m": {"mode": "chat", "input_cost_per_token": 1e300}}',
        "$.m.input_cost_per_token: price 1E+300 is too large",
    ),
    ("litellm", '{"m": {"mode": "chat", "input_cost_per_token": 1}, "m": {}}', "$.m: duplicate key 'm'"),
    ("litellm", '{"m": {"mode": "chat", "mode": "chat"}}', "$.m.mode: duplicate key 'mode'"),
    ("litellm", '{"m": 3}', "$.m: expected an object, got a number"),
    ("litellm", '{"m": {"mode": 1}}', "$.m.mode: expected a string"),
    (
        "litellm",
        '{"m": {"mode": "chat", "litellm_provider": ["x"]}}',
        "$.m.litellm_provider: expected a string",
    ),
    (
        "litellm",
        '{"m": {"mode": "chat", "input_cost_per_token": true}}',
        "$.m.input_cost_per_token: expected a number, got a boolean",
    ),
    (
        "litellm",
        '{"m": {"mode": "chat", "input_cost_per_token": 1e-06, "max_input_tokens": 12.5}}',
        "$.m.max_input_tokens: expected a whole number >= 0, got 12.5",
    ),
    ("openrouter", '{"data": [{"id": "a/b", "pricing": {"prompt": "0.1", }}]}', "invalid JSON"),
    ("openrouter", "", "$: empty file"),
    ("openrouter", '[{"id": "a/b"}]', '$: expected an object with "data", got an array'),
    ("openrouter", '{"data": {"id": "a/b"}}', "$.data: expected an array of models"),
    (
        "openrouter",
        '{"data": [{"id": "a/b", "pricing": {"prompt": 0.000001, "completion": "0"}}]}',
        '$.data[0].pricing.prompt: expected a decimal string such as "0.0000025", got a JSON number',
    ),
    (
        "openrouter",
        '{"data": [{"id": "a/b", "pricing": {"prompt": "cheap", "completion": "0"}}]}',
        "$.data[0].pricing.prompt: expected a decimal string",
    ),
    (
        "openrouter",
        '{"data": [{"id": "a/b", "pricing": {"prompt": "NaN", "completion": "0"}}]}',
        "$.data[0].pricing.prompt: expected a decimal string",
    ),
    (
        "openrouter",
        '{"data": [{"id": "a/b", "pricing": {"prompt": "-0.5", "completion": "0"}}]}',
        "$.data[0].pricing.prompt: negative price -0.5",
    ),
    (
        "openrouter",
        '{"data": [{"id": "a/b", "pricing": {"prompt": "1e300", "completion": "0"}}]}',
        "$.data[0].pricing.prompt: price 1E+300 is too large",
    ),
    (
        "openrouter",
        '{"data": [{"id": "a/b", "pricing": {"prompt": "0", "prompt": "0"}}]}',
        "$.data[0].pricing.prompt: duplicate key 'prompt'",
    ),
    (
        "openrouter",
        '{"data": [{"id": "a/b", "pricing": {"prompt": "0", "completion": "0"}}, '
        '{"id": "A/B", "pricing": {"prompt": "0", "completion": "0"}}]}',
        "$.data[1].id: duplicate id 'A/B' (also $.data[0].id)",
    ),
    ("openrouter", '{"data": [{"pricing": {}}]}', "$.data[0].id: expected a non-empty string id"),
    ("openrouter", '{"data": [{"id": "a/b", "pricing": "free"}]}', "$.data[0].pricing: expected an object"),
    (
        "openrouter",
        '{"data": [{"id": "a/b", "context_length": "8k", "pricing": {"prompt": "0", "completion": "0"}}]}',
        "$.data[0].context_length: expected a number, got a string",
    ),
    ("models-dev", '{"openai": {"models": {"m": {"cost": {"input": 1,}}}}}', "invalid JSON"),
    ("models-dev", "", "$: empty file"),
    ("models-dev", '[{"id": "openai"}]', "$: expected a JSON object of providers, got an array"),
    ("models-dev", '{"openai": {"id": "openai"}}', "$.openai.models: expected an object, got null"),
    (
        "models-dev",
        '{"openai": {"models": {"m": {"cost": {"input": "1", "output": 2}}}}}',
        "$.openai.models.m.cost.input: expected a number, got a string",
    ),
    (
        "models-dev",
        '{"openai": {"models": {"m": {"cost": {"input": NaN, "output": 2}}}}}',
        "$.openai.models.m.cost.input: NaN is not allowed",
    ),
    (
        "models-dev",
        '{"openai": {"models": {"m": {"cost": {"input": -1, "output": 2}}}}}',
        "$.openai.models.m.cost.input: negative price -1",
    ),
    (
        "models-dev",
        '{"openai": {"models": {"m": {"cost": {"input": 1e300, "output": 2}}}}}',
        "$.openai.models.m.cost.input: price 1E+300 is too large",
    ),
    (
        "models-dev",
        '{"openai": {"models": {"m": {"cost": {"input": 1, "output": 2, "input": 1}}}}}',
        "$.openai.models.m.cost.input: duplicate key 'input'",
    ),
    (
        "models-dev",
        '{"openai": {"models": {"m": {"cost": {"input": 1, "output": 2, '
        '"tiers": [{"tier": {"type": "context"}, "input": 2}]}}}}}',
        "$.openai.models.m.cost.tiers[0].tier.size: missing tier size",
    ),
    (
        "models-dev",
        '{"openai": {"models": {"m": {"cost": {"input": 1, "output": 2, '
        '"tiers": [{"tier": {"type": "context", "size": 10}, "input": "2"}]}}}}}',
        "$.openai.models.m.cost.tiers[0].input: expected a number, got a string",
    ),
    (
        "models-dev",
        '{"openai": {"models": {"gpt-4o": {"cost": {"input": 1, "output": 2}, "limit": {"context": -5}}}}}',
        '$.openai.models["gpt-4o"].limit.context: expected a whole number >= 0, got -5',
    ),
]


@pytest.mark.parametrize(("source", "text", "message"), HOSTILE)
def test_hostile_source_raises_with_path_and_writes_nothing(
    work: Path, source: str, text: str, message: str
) -> None:
    path = write(work, text)
    fresh = work / "fresh.csv"
    kept = work / "kept.csv"
    kept.write_bytes(b"model,input_per_1m,output_per_1m\nold,1,2\n")
    for out in (fresh, kept):
        with pytest.raises(PricingError) as info:
            import_to_file(source, path, out)
        assert message in str(info.value), str(info.value)
        assert str(info.value).startswith(f"{path}:")
    assert not fresh.exists()
    assert kept.read_bytes() == b"model,input_per_1m,output_per_1m\nold,1,2\n"
    assert sorted(p.name for p in work.iterdir()) == ["kept.csv", "source.json"]


def test_hostile_bad_json_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "m": {"mode": "chat",\n  }\n}')
    with pytest.raises(PricingError) as info:
        import_to_file("litellm", path, tmp_path / "out.csv")
    assert (info.value.line, info.value.column) == (3, 3)
    assert str(info.value).startswith(f"{path}:3:3: invalid JSON")
