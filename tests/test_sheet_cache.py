"""`--fallback-pricing genai-prices` keeps the sheet it imports, keyed by package version and importer code."""

from __future__ import annotations

from pathlib import Path

from costlens.money import sheets
from costlens.money.pricing import PriceFile


def test_the_second_use_reads_the_cache_and_prices_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTLENS_CACHE_DIR", str(tmp_path / "cache"))
    name, first = sheets.resolve_sheet("genai-prices")
    assert isinstance(first, PriceFile) and name == "genai-prices 0.2.3"
    (cached,) = (tmp_path / "cache").glob("genai-prices-0.2.3-*.csv")

    def no_import(_: str) -> None:
        raise AssertionError("imported again instead of reading the cache")

    monkeypatch.setattr("costlens.money.sources.get_source", no_import)
    name2, second = sheets.resolve_sheet("genai-prices")
    assert isinstance(second, PriceFile)
    assert (name2, second.rows, second.matches, second.source.sha256) == (
        name, first.rows, first.matches, first.source.sha256,
    )  # fmt: skip
    assert second.source.sha256 == __import__("hashlib").sha256(cached.read_bytes()).hexdigest()


def test_the_key_follows_the_importer_code_and_the_package_version(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTLENS_CACHE_DIR", str(tmp_path))
    key = sheets._cache_key("genai-prices")
    assert key.startswith("genai-prices-0.2.3-")
    monkeypatch.setattr(sheets.metadata, "version", lambda _: "9.9.9")
    assert sheets._cache_key("genai-prices") != key


def test_an_unwritable_cache_is_no_cache(tmp_path, monkeypatch):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x", encoding="utf-8")
    monkeypatch.setenv("COSTLENS_CACHE_DIR", str(blocked / "cache"))
    name, sheet = sheets.resolve_sheet("genai-prices")
    assert isinstance(sheet, PriceFile) and len(sheet.rows) > 2000


def test_an_edited_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTLENS_CACHE_DIR", str(tmp_path))
    entry = tmp_path / sheets._cache_key("genai-prices")
    entry.write_text("model,bogus\nx,1\n", encoding="utf-8")
    _, sheet = sheets.resolve_sheet("genai-prices")
    assert isinstance(sheet, PriceFile) and len(sheet.rows) > 2000
    assert entry.read_bytes().startswith(b"model,match,provider,")


def test_cache_dir_defaults_to_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("COSTLENS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert sheets.cache_dir() == Path(tmp_path) / "costlens"
