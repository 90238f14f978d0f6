"""Usage objects: how each dialect's token counts become costlens's disjoint buckets.

Several formats share a dialect (Anthropic usage comes in Anthropic batch results and in Bedrock
bodies; Gemini's usageMetadata in Gemini and Vertex batch files), so dialects are defined once
here and a format names the one its line carries (``ResultFormat.usage_dialect``). The replay
parses every usage object once with the merged ``USAGE_SHAPE`` into ``u`` and computes, per
dialect, SQL over ``u``:

- ``counts``: the token counts it checks (a negative or non-integer count rejects the line,
  naming the field), ``lacks``/``lacks_reason``: the counts it cannot do without;
- ``buckets`` (``BUCKETS``): prompt = all input, cache reads and writes included; cached and
  cache write (and its 1-hour and 5-minute parts) within it; completion = all output,
  reasoning within it. The cost view bills each bucket once (FORMATS.md §3, §8);
- ``total``: the total, over ``u`` and the buckets; ``checks``: consistency reject reasons.

Dialect rules (FORMATS.md §3, §7):

- openai: ``prompt_tokens`` includes ``cached_tokens``, ``completion_tokens`` includes
  ``reasoning_tokens``: stored as reported.
- anthropic: ``input_tokens`` excludes the cache: prompt = input + cache_creation + cache_read;
  ``cache_creation`` splits the writes by lifetime (5 minutes, 1 hour).
- gemini: ``promptTokenCount`` includes ``cachedContentTokenCount``; ``thoughtsTokenCount`` is
  not in ``candidatesTokenCount``: completion = candidates + thoughts, reasoning = thoughts.
  ``toolUsePromptTokenCount`` (prompt tokens of tool results, e.g. search grounding) is input
  billed like the prompt: prompt = promptTokenCount + toolUsePromptTokenCount. Counts Gemini
  leaves out (proto3 omits zeros) are 0.
- converse (Bedrock Converse): ``inputTokens`` excludes the cache, as Anthropic's (the docs'
  ``totalTokens`` = input + output + cache read + cache write): prompt = inputTokens +
  cacheReadInputTokens + cacheWriteInputTokens; ``cacheDetails`` splits the writes by ``ttl``.
- llama, titan (Bedrock bodies with counts beside the text): prompt = ``prompt_token_count`` /
  ``inputTextTokenCount``, completion = ``generation_token_count`` / sum of
  ``results[].tokenCount``; their usage object is those fields alone.

A usage object's ``cost`` (OpenRouter's ``usage.cost``) is the provider's own figure: kept as the
exact decimal of its JSON text (``REPORTED_COST``), never through a DOUBLE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from costlens.ingest.formats.base import Shape, merge_shapes

__all__ = [
    "BUCKETS",
    "DIALECTS",
    "OPENAI_OR_ANTHROPIC",
    "REPORTED_COST_COLUMNS",
    "REPORTED_COST_REASON",
    "USAGE_SHAPE",
    "UsageDialect",
]

# Every bucket a dialect may fill (BIGINT; NULL = not reported). cache_write_5m_tokens is only
# for the checks: the store keeps the total and its 1-hour part.
BUCKETS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "cache_write_5m_tokens",
    "reasoning_tokens",
)


@dataclass(frozen=True, kw_only=True)
class UsageDialect:
    name: str  # results.usage_format
    shape: Shape
    counts: tuple[tuple[str, str], ...]  # (the count as reasons name it, SQL over u)
    lacks: str  # SQL over u: true when a count it needs is missing
    lacks_reason: str
    buckets: Mapping[str, str]  # bucket -> SQL over u
    total: str  # SQL over u and the buckets
    checks: tuple[str, ...] = ()  # SQL over u and the buckets: a reason or NULL

    def __post_init__(self) -> None:
        unknown = set(self.buckets) - set(BUCKETS)
        if unknown:
            raise ValueError(f"usage dialect {self.name}: unknown buckets {sorted(unknown)}")


def _over(part: str, whole: str, part_name: str, whole_name: str, label: str = "usage") -> str:
    return (
        f"CASE WHEN {part} > {whole} THEN '{label}: {part_name} (' || {part} || ') > {whole_name} (' "
        f"|| {whole} || ')' END"
    )


# Anthropic's fields and OpenAI's are checked together wherever either may come (a server
# answering in the other's style): as strict as costlens always was.
_OPENAI_ANTHROPIC_COUNTS = (
    ("usage.prompt_tokens", "u.prompt_tokens"),
    ("usage.completion_tokens", "u.completion_tokens"),
    ("usage.total_tokens", "u.total_tokens"),
    ("usage.prompt_tokens_details.cached_tokens", "u.prompt_tokens_details.cached_tokens"),
    ("usage.completion_tokens_details.reasoning_tokens", "u.completion_tokens_details.reasoning_tokens"),
    ("usage.input_tokens", "u.input_tokens"),
    ("usage.output_tokens", "u.output_tokens"),
    ("usage.cache_creation_input_tokens", "u.cache_creation_input_tokens"),
    ("usage.cache_read_input_tokens", "u.cache_read_input_tokens"),
    ("usage.cache_creation.ephemeral_5m_input_tokens", "u.cache_creation.ephemeral_5m_input_tokens"),
    ("usage.cache_creation.ephemeral_1h_input_tokens", "u.cache_creation.ephemeral_1h_input_tokens"),
)

OPENAI = UsageDialect(
    name="openai",
    shape={
        "prompt_tokens": "JSON",
        "completion_tokens": "JSON",
        "total_tokens": "JSON",
        "prompt_tokens_details": {"cached_tokens": "JSON"},
        "completion_tokens_details": {"reasoning_tokens": "JSON"},
    },
    counts=_OPENAI_ANTHROPIC_COUNTS,
    lacks="u.prompt_tokens IS NULL OR u.completion_tokens IS NULL",
    lacks_reason="usage lacks prompt_tokens or completion_tokens",
    buckets={
        "prompt_tokens": "cl_int(u.prompt_tokens)",
        "completion_tokens": "cl_int(u.completion_tokens)",
        "cached_tokens": "cl_int(u.prompt_tokens_details.cached_tokens)",
        "reasoning_tokens": "cl_int(u.completion_tokens_details.reasoning_tokens)",
    },
    total="coalesce(cl_int(u.total_tokens), prompt_tokens + completion_tokens)",
    checks=(
        _over("cached_tokens", "prompt_tokens", "cached_tokens", "prompt_tokens"),
        _over("reasoning_tokens", "completion_tokens", "reasoning_tokens", "completion_tokens"),
    ),
)

# The cache-write split by lifetime (FORMATS.md §8), as Anthropic and Converse report it.
_SPLIT_CHECK = (
    "CASE WHEN cache_write_1h_tokens > cache_write_tokens "
    "THEN 'usage: {h} (' || cache_write_1h_tokens || ') > {w} (' || cache_write_tokens || ')' "
    "WHEN cache_write_5m_tokens + cache_write_1h_tokens <> cache_write_tokens "
    "THEN 'usage: {s} (5m ' || cache_write_5m_tokens || ' + 1h ' || cache_write_1h_tokens "
    "|| ') does not add up to {w} (' || cache_write_tokens || ')' END"
)

ANTHROPIC = UsageDialect(
    name="anthropic",
    shape={
        "input_tokens": "JSON",
        "output_tokens": "JSON",
        "cache_creation_input_tokens": "JSON",
        "cache_read_input_tokens": "JSON",
        "cache_creation": {"ephemeral_5m_input_tokens": "JSON", "ephemeral_1h_input_tokens": "JSON"},
    },
    counts=_OPENAI_ANTHROPIC_COUNTS,
    lacks="u.input_tokens IS NULL OR u.output_tokens IS NULL",
    lacks_reason="usage lacks input_tokens or output_tokens",
    buckets={
        "prompt_tokens": "cl_int(u.input_tokens) + coalesce(cl_int(u.cache_creation_input_tokens), 0) "
        "+ coalesce(cl_int(u.cache_read_input_tokens), 0)",
        "completion_tokens": "cl_int(u.output_tokens)",
        "cached_tokens": "cl_int(u.cache_read_input_tokens)",
        "cache_write_tokens": "coalesce(cl_int(u.cache_creation_input_tokens), "
        "cl_int(u.cache_creation.ephemeral_5m_input_tokens) + cl_int(u.cache_creation.ephemeral_1h_input_tokens))",
        "cache_write_1h_tokens": "cl_int(u.cache_creation.ephemeral_1h_input_tokens)",
        "cache_write_5m_tokens": "cl_int(u.cache_creation.ephemeral_5m_input_tokens)",
    },
    total="prompt_tokens + completion_tokens",
    checks=(
        _SPLIT_CHECK.format(
            h="cache_creation.ephemeral_1h_input_tokens", w="cache_creation_input_tokens", s="cache_creation"
        ),
    ),
)

GEMINI = UsageDialect(
    name="gemini",
    shape={
        "promptTokenCount": "JSON",
        "candidatesTokenCount": "JSON",
        "thoughtsTokenCount": "JSON",
        "cachedContentTokenCount": "JSON",
        "toolUsePromptTokenCount": "JSON",
        "totalTokenCount": "JSON",
    },
    counts=tuple(
        (f"usageMetadata.{name}", f"u.{name}")
        for name in (
            "promptTokenCount",
            "candidatesTokenCount",
            "thoughtsTokenCount",
            "cachedContentTokenCount",
            "toolUsePromptTokenCount",
            "totalTokenCount",
        )
    ),
    lacks="u.promptTokenCount IS NULL",
    lacks_reason="usageMetadata lacks promptTokenCount",
    buckets={
        "prompt_tokens": "cl_int(u.promptTokenCount) + coalesce(cl_int(u.toolUsePromptTokenCount), 0)",
        "completion_tokens": "coalesce(cl_int(u.candidatesTokenCount), 0) + coalesce(cl_int(u.thoughtsTokenCount), 0)",
        "cached_tokens": "cl_int(u.cachedContentTokenCount)",
        "reasoning_tokens": "cl_int(u.thoughtsTokenCount)",
    },
    total="coalesce(cl_int(u.totalTokenCount), prompt_tokens + completion_tokens)",
    checks=(
        _over(
            "cl_int(u.cachedContentTokenCount)",
            "cl_int(u.promptTokenCount)",
            "cachedContentTokenCount",
            "promptTokenCount",
            label="usageMetadata",
        ),
    ),
)

# Sum of one lifetime's cacheDetails entries (NULL without cacheDetails).
_TTL_SUM = (
    "CASE WHEN u.cacheDetails IS NOT NULL THEN coalesce(list_sum(list_transform("
    "list_filter(u.cacheDetails, lambda d: d.ttl = '{ttl}'), lambda d: cl_int(d.inputTokens))), 0) END"
)

# Without cacheWriteInputTokens, the writes are what cacheDetails lists.
_CONVERSE_WRITES = f"coalesce(cl_int(u.cacheWriteInputTokens), ({_TTL_SUM.format(ttl='5m')}) + ({_TTL_SUM.format(ttl='1h')}))"

CONVERSE = UsageDialect(
    name="converse",
    shape={
        "inputTokens": "JSON",
        "outputTokens": "JSON",
        "totalTokens": "JSON",
        "cacheReadInputTokens": "JSON",
        "cacheWriteInputTokens": "JSON",
        "cacheDetails": [{"ttl": "VARCHAR", "inputTokens": "JSON"}],
    },
    counts=(
        ("usage.inputTokens", "u.inputTokens"),
        ("usage.outputTokens", "u.outputTokens"),
        ("usage.totalTokens", "u.totalTokens"),
        ("usage.cacheReadInputTokens", "u.cacheReadInputTokens"),
        ("usage.cacheWriteInputTokens", "u.cacheWriteInputTokens"),
    ),
    lacks="u.inputTokens IS NULL OR u.outputTokens IS NULL",
    lacks_reason="usage lacks inputTokens or outputTokens",
    buckets={
        "prompt_tokens": "cl_int(u.inputTokens) + coalesce(cl_int(u.cacheReadInputTokens), 0) "
        f"+ coalesce({_CONVERSE_WRITES}, 0)",
        "completion_tokens": "cl_int(u.outputTokens)",
        "cached_tokens": "cl_int(u.cacheReadInputTokens)",
        "cache_write_tokens": _CONVERSE_WRITES,
        "cache_write_1h_tokens": _TTL_SUM.format(ttl="1h"),
        "cache_write_5m_tokens": _TTL_SUM.format(ttl="5m"),
    },
    total="coalesce(cl_int(u.totalTokens), prompt_tokens + completion_tokens)",
    checks=(
        # Each entry: a count, and a lifetime costlens can price.
        "list_filter(list_transform(u.cacheDetails, lambda d: coalesce("
        "cl_count_error('usage.cacheDetails[].inputTokens', d.inputTokens), "
        "CASE WHEN d.ttl IS NULL OR d.ttl NOT IN ('5m', '1h') THEN 'usage.cacheDetails[].ttl is not \"5m\" or "
        "\"1h\" (' || coalesce(left(d.ttl, 40), 'missing') || ')' END)), lambda r: r IS NOT NULL)[1]",
        _SPLIT_CHECK.format(h="cacheDetails 1h", w="cacheWriteInputTokens", s="cacheDetails"),
    ),
)

LLAMA = UsageDialect(
    name="llama",
    shape={"prompt_token_count": "JSON", "generation_token_count": "JSON"},
    counts=(
        ("modelOutput.prompt_token_count", "u.prompt_token_count"),
        ("modelOutput.generation_token_count", "u.generation_token_count"),
    ),
    lacks="u.prompt_token_count IS NULL OR u.generation_token_count IS NULL",
    lacks_reason="modelOutput lacks prompt_token_count or generation_token_count",
    buckets={
        "prompt_tokens": "cl_int(u.prompt_token_count)",
        "completion_tokens": "cl_int(u.generation_token_count)",
    },
    total="prompt_tokens + completion_tokens",
)

TITAN = UsageDialect(
    name="titan",
    shape={"inputTextTokenCount": "JSON", "results": [{"tokenCount": "JSON"}]},
    counts=(("modelOutput.inputTextTokenCount", "u.inputTextTokenCount"),),
    lacks="u.inputTextTokenCount IS NULL OR coalesce(len(u.results), 0) = 0 "
    "OR len(list_filter(u.results, lambda r: r.tokenCount IS NULL)) > 0",
    lacks_reason="modelOutput lacks inputTextTokenCount or results[].tokenCount",
    buckets={
        "prompt_tokens": "cl_int(u.inputTextTokenCount)",
        "completion_tokens": "list_sum(list_transform(u.results, lambda r: cl_int(r.tokenCount)))",
    },
    total="prompt_tokens + completion_tokens",
    checks=(
        "list_filter(list_transform(u.results, lambda r: cl_count_error('modelOutput.results[].tokenCount', "
        "r.tokenCount)), lambda r: r IS NOT NULL)[1]",
    ),
)

DIALECTS: tuple[UsageDialect, ...] = (OPENAI, ANTHROPIC, GEMINI, CONVERSE, LLAMA, TITAN)

# The dialect of an OpenAI-shaped line: Anthropic-style counts (and no OpenAI ones) are read as such.
OPENAI_OR_ANTHROPIC = (
    "CASE WHEN u.prompt_tokens IS NULL AND u.completion_tokens IS NULL "
    "AND (u.input_tokens IS NOT NULL OR u.output_tokens IS NOT NULL) THEN 'anthropic' ELSE 'openai' END"
)

USAGE_SHAPE = merge_shapes(*(d.shape for d in DIALECTS), {"cost": "JSON"})

# --- reported cost ------------------------------------------------------------------------------
# DuckDB reads a JSON number with a fraction as a DOUBLE, so u.cost's text is a double's, not the
# file's: the number is taken again from the line's own text. A key "cost" whose quote follows
# '{' or ',' is a key of the document, never text inside a string (a quote in a string is
# escaped); of those, the one whose value is u.cost's. Columns over u and line (``normalised``).
_COST_TEXT = (
    "list_filter(regexp_extract_all(line, '[{,][ \\t]*\"cost\"[ \\t]*:[ \\t]*(-?[0-9][0-9.eE+-]*)', 1), "
    "lambda t: TRY_CAST(t AS DOUBLE) = TRY_CAST(CAST(u.cost AS VARCHAR) AS DOUBLE))[1]"
)
REPORTED_COST_COLUMNS = f"""
        CASE WHEN json_type(u.cost) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN {_COST_TEXT} END AS cost_text,
        regexp_extract(cost_text, '^-?[0-9]+(?:\\.([0-9]*?)0*)?(?:[eE]([-+]?[0-9]+))?$', ['frac', 'exp'])
            AS cost_parts,
        length(cost_parts['frac'])
            - CASE WHEN cost_parts['exp'] = '' THEN 0 ELSE TRY_CAST(cost_parts['exp'] AS BIGINT) END
            AS cost_places,
        TRY_CAST(cost_text AS DECIMAL(38, 15)) AS cost_value"""
# Why a reported cost cannot be stored exactly (NULL when it can, or there is none); over usage_label.
REPORTED_COST_REASON = """CASE
            WHEN u.cost IS NULL THEN NULL
            WHEN json_type(u.cost) NOT IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                THEN usage_label || '.cost is not a number (' || left(CAST(u.cost AS VARCHAR), 40) || ')'
            WHEN cost_text IS NULL THEN usage_label || '.cost could not be read from the line'
            WHEN cost_places IS NULL OR cost_places > 15
                THEN usage_label || '.cost has more than 15 decimal places (' || left(cost_text, 60) || ')'
            WHEN cost_value IS NULL THEN usage_label || '.cost is too large (' || left(cost_text, 60) || ')'
            WHEN starts_with(cost_text, '-') AND cost_value <> 0
                THEN usage_label || '.cost is negative (' || left(cost_text, 60) || ')'
        END"""
