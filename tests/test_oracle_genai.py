"""Oracle agreement: costlens's cost view prices imported genai-prices data exactly as genai-prices does.

Every genai-prices chat model that imports without loss (nothing omitted, rounded or skipped
for it) gets random usages — cache reads, 5-minute and 1-hour cache writes, reasoning, prompt
sizes at and one either side of every long-context cliff, timestamps either side of every
``start_date``, each service tier the sheet has rows for (batch, flex, priority), per-request
fees where the model has one. The usages are written as result files, **replayed** with
``costlens replay`` under ``--fallback-pricing genai-prices`` (the on-the-fly import, the same
rows ``pricing import`` writes), and each request's ``cost_usd`` from the real cost view is
compared with ``genai_prices.calc_price`` for the same usage, model, provider, time and tier.

The draw is seeded, so a failure reproduces; the count of models and usages is asserted so
the test cannot quietly shrink to nothing.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices import Usage, calc_price
from helpers import write_jsonl

from costlens.money.sources import get_source
from costlens.money.sources.base import ImportResult, SheetRow

SEED = 20261202
TOLERANCE = Decimal("1e-12")
MIN_USAGES = 10_000
TIERS = ("standard", "batch", "flex", "priority")
CONTEXT = {
    "batch": {"processing": "batch"},
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
}
# A fixed "now" for rows without a start date (the sheet's open-ended intervals).
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


@dataclass
class Model:
    model: str
    provider: str
    rows: list[SheetRow]
    ref: str = ""  # the id the requests carry: one genai-prices resolves to this very model

    def thresholds(self) -> list[int]:
        return sorted({int(r.min_prompt_tokens or 0) for r in self.rows})

    def dates(self) -> list[datetime]:
        out: set[datetime] = set()
        for r in self.rows:
            for text in (r.effective_from, r.effective_to):
                if text:
                    out.add(datetime.fromisoformat(text).replace(tzinfo=UTC))
        return sorted(out)

    def tiers(self) -> list[str]:
        return sorted({r.service_tier or "standard" for r in self.rows}, key=TIERS.index)

    def prices(self, column: str) -> bool:
        return any(getattr(r, column) not in ("", "0") for r in self.rows)


@pytest.fixture(scope="module")
def imported() -> ImportResult:
    return get_source("genai-prices").load(None)


def _clause_texts(clause: Any) -> list[str]:
    for name in ("equals", "starts_with"):
        if hasattr(clause, name):
            return [getattr(clause, name)]
    return [t for sub in getattr(clause, "or_", None) or [] for t in _clause_texts(sub)]


def _ref(provider: str, model_id: str) -> str | None:
    """The model's own id if genai-prices resolves it to the model, else its first equals/prefix text that does.

    (Some genai-prices ids are not matched by their own rules, e.g. aws ``regional.amazon.nova-2-lite-v1:0``.)
    """
    snapshot = genai_prices.data_snapshot.get_snapshot()
    info = next(m for p in snapshot.providers if p.id == provider for m in p.models if m.id == model_id)
    for ref in [model_id, *_clause_texts(info.match)]:
        try:
            _, found = snapshot.find_provider_model(ref, None, provider, None)
        except LookupError:
            continue
        if found is info:
            return ref
    return None


def lossless_models(result: ImportResult) -> list[Model]:
    lossy = {(x.provider, x.model) for x in result.listed if x.kind in ("omitted", "rounded", "skipped")}
    by_model: dict[tuple[str, str], list[SheetRow]] = defaultdict(list)
    for row in result.rows:
        if not row.match:
            by_model[(row.provider, row.model)].append(row)
    out = []
    for (p, m), rows in sorted(by_model.items()):
        ref = _ref(p, m)
        if (p, m) not in lossy and ref is not None:
            out.append(Model(m, p, rows, ref))
    return out


@dataclass(frozen=True)
class Draw:
    custom_id: str
    model: Model
    tier: str
    at: datetime
    prompt: int
    read: int
    write: int
    write_1h: int
    completion: int
    reasoning: int


def draws_for(model: Model, rng: random.Random, start: int) -> list[Draw]:
    """At least 8 usages: every cliff at, below and above; every date either side; every tier."""
    prompts = [rng.randint(1, 5000), rng.randint(1, 120_000)]
    for t in model.thresholds():
        if t:
            prompts += [t - 2, t - 1, t, t + 1]  # row min_prompt_tokens = start + 1: t - 1 is "at start"
    times = [NOW]
    for d in model.dates():
        times += [d - timedelta(seconds=1), d, d + timedelta(hours=rng.randint(1, 400))]
    tiers = model.tiers()
    count = max(8, len(prompts), len(times), 2 * len(tiers))
    out: list[Draw] = []
    for i in range(count):
        prompt = prompts[i % len(prompts)]
        at = times[i % len(times)]
        tier = tiers[i % len(tiers)] if i % 2 else rng.choice(TIERS)  # some tiers without rows: fallback
        read = rng.randint(0, prompt) if rng.random() < 0.7 else 0
        write = rng.randint(0, prompt - read) if rng.random() < 0.6 else 0
        write_1h = rng.randint(0, write) if write and rng.random() < 0.6 else 0
        completion = rng.randint(0, 8000)
        reasoning = rng.randint(0, completion) if rng.random() < 0.5 else 0
        out.append(
            Draw(f"u-{start + i}", model, tier, at, prompt, read, write, write_1h, completion, reasoning)
        )
    return out


def line(d: Draw) -> dict[str, Any]:
    """A chat.completion object with its own custom_id and `created`; the usage shape carries the buckets.

    Cache writes exist only in Anthropic-shaped usage, reasoning only in OpenAI-shaped usage, so a
    draw with writes drops its reasoning (and vice versa) — each draw is priced as replayed.
    """
    if d.write:
        usage: dict[str, Any] = {
            "input_tokens": d.prompt - d.read - d.write,
            "output_tokens": d.completion,
            "cache_read_input_tokens": d.read,
            "cache_creation_input_tokens": d.write,
            "cache_creation": {
                "ephemeral_5m_input_tokens": d.write - d.write_1h,
                "ephemeral_1h_input_tokens": d.write_1h,
            },
        }
    else:
        usage = {
            "prompt_tokens": d.prompt,
            "completion_tokens": d.completion,
            "total_tokens": d.prompt + d.completion,
            "prompt_tokens_details": {"cached_tokens": d.read},
            "completion_tokens_details": {"reasoning_tokens": d.reasoning},
        }
    return {
        "custom_id": d.custom_id,
        "id": "chatcmpl-oracle",
        "object": "chat.completion",
        "created": int(d.at.timestamp()),
        "model": d.model.ref,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
        "usage": usage,
    }


def oracle(d: Draw) -> Decimal:
    if d.write:
        usage = Usage(
            input_tokens=d.prompt,
            cache_read_tokens=d.read,
            cache_write_tokens=d.write,
            cache_write_1h_tokens=d.write_1h,
            output_tokens=d.completion,
        )
    else:
        usage = Usage(
            input_tokens=d.prompt,
            cache_read_tokens=d.read,
            output_tokens=d.completion,
            output_reasoning_tokens=d.reasoning,
        )
    calc = calc_price(
        usage,
        model_ref=d.model.ref,
        provider_id=d.model.provider,
        genai_request_timestamp=d.at,
        price_context=CONTEXT.get(d.tier),
    )
    assert calc.model.id == d.model.model, (d.model.model, calc.model.id)
    return calc.total_price


def test_every_lossless_genai_prices_model_costs_what_calc_price_says(imported, invoke, tmp_path):
    models = lossless_models(imported)
    # genai-prices 0.2.3 bundles 2,330 models; ~1,200 of them import without any loss.
    assert len(models) >= 1000, len(models)
    rng = random.Random(SEED)
    draws: list[Draw] = []
    for model in models:
        draws += draws_for(model, rng, len(draws))
    assert len(draws) >= MIN_USAGES
    by_tier: dict[str, list[Draw]] = defaultdict(list)
    for d in draws:
        by_tier[d.tier].append(d)
    # The main sheet is empty, so every id is priced by the genai-prices fallback sheet alone.
    empty = tmp_path / "empty.csv"
    empty.write_text("model,input_per_1m,output_per_1m\n", encoding="utf-8")
    g = ["--pricing", str(empty), "--fallback-pricing", "genai-prices"]
    for tier, group in by_tier.items():
        path = write_jsonl(tmp_path / f"{tier}.jsonl", [line(d) for d in group])
        result = invoke(*g, "replay", path, "--tier", tier, "--run-name", tier)
        assert result.exit_code == 0, result.stderr[:2000]
    out = tmp_path / "costs.jsonl"
    assert invoke(*g, "export", "--format", "jsonl", "--out", out).exit_code == 0
    got = {}
    for text in out.read_text(encoding="utf-8").splitlines():
        row = json.loads(text)
        got[row["custom_id"]] = row
    assert len(got) == len(draws)

    mismatches = []
    tiers_seen: set[str] = set()
    fees = dates = cliffs = one_hour = 0
    for d in draws:
        row = got[d.custom_id]
        expected = oracle(d)
        cost = None if row["cost_usd"] is None else Decimal(row["cost_usd"])
        if cost is None or abs(cost - expected) > TOLERANCE or row["priced_model"] != d.model.model:
            mismatches.append((d, row["priced_model"], row["cost_usd"], expected, row["price_note"]))
        tiers_seen.add(row["price_tier"])
        fees += Decimal(row["request_cost_usd"] or 0) > 0
        dates += bool(d.model.dates())
        cliffs += any(t and d.prompt >= t for t in d.model.thresholds())
        one_hour += d.write_1h > 0
    assert not mismatches, f"{len(mismatches)} of {len(draws)} disagree, e.g. {mismatches[:5]}"
    # The draw reached every construct the issue names (genai-prices version pinned by the sheet label).
    assert {"standard", "batch", "flex", "priority"} <= tiers_seen
    assert fees and dates and cliffs and one_hour, (fees, dates, cliffs, one_hour)
    print(
        f"genai-prices {genai_prices.__version__}: {len(models)} lossless models, {len(draws)} usages "
        f"({fees} with a request fee, {dates} on dated models, {cliffs} above a cliff, {one_hour} with 1h writes)"
    )
