"""Offline token counts are right: published figures, and tiktoken itself as the reference.

Two kinds of evidence:
- figures OpenAI published (the cookbook "How to count tokens with tiktoken": token ids of fixed
  strings, and 129 / 124 prompt tokens *counted by the OpenAI API* for its example conversation);
- tiktoken, the reference implementation, loaded the way it loads itself (its own patterns and
  special tokens, ``tiktoken.get_encoding``) from the vocabulary file that ships inside quicktok
  (tests/helpers.py). That vocabulary is first proven to be OpenAI's: written in tiktoken's file
  format it has exactly the sha256 tiktoken pins for the download (and tiktoken checks that hash
  again when loading). Against it, every code point is counted, alone and between ASCII.
"""

from __future__ import annotations

import functools
import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import tiktoken
from helpers import (
    TIKTOKEN_FILES,
    examples,
    reference_count,
    reference_encodings,
    reference_prompt_tokens,
    tiktoken_file,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from costlens import tokens
from costlens.tokens import (
    count_messages,
    count_text,
    encoding_for_model,
    estimate_prompt_tokens,
    truncate_text,
)

# The cookbook's example conversation (section 6), with the OpenAI API's own prompt_tokens for it.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]

# Token ids printed in the cookbook (sections 3 and 5).
PUBLISHED_IDS = [
    ("o200k_base", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
    ("cl100k_base", "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
    ("o200k_base", "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
    ("cl100k_base", "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
    ("o200k_base", "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
    (
        "cl100k_base",
        "お誕生日おめでとう",
        [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
    ),
    ("o200k_base", "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
    ("cl100k_base", "hello world", [15339, 1917]),
    ("o200k_base", "hello world", [24912, 2375]),
]

TRICKY = [
    "",
    " ",
    "\n",
    "\n\n\n",
    "   leading and trailing   ",
    "tabs\tand\r\nwindows newlines",
    "I'm sure they'll've done it; DON'T, WON'T, it'S",
    "12345678901234567890 3.14159 -42 1,000,000",
    "<|endoftext|> is plain text here <|fim_prefix|>",
    "emoji 👩‍👩‍👧‍👦 🚀🔥 flags 🇫🇷🇯🇵",
    "Ünïcödé ñ café naïve Ελληνικά русский עברית العربية हिन्दी 中文 日本語 한국어",
    "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n",
    "SELECT sum(cost_usd) FROM results WHERE model = 'gpt-4o-mini';",
    "https://example.com/path?q=1&r=two#frag",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "ThisIsCamelCaseAndSnake_case_and-kebab-case",
    "\u200b\u00a0\ufeffzero width and nbsp",
]


# --- published figures -----------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "text", "ids"), PUBLISHED_IDS)
def test_published_token_ids(encoding: str, text: str, ids: list[int]) -> None:
    assert tokens._tokenizer(encoding).encode_ordinary(text) == ids
    assert reference_encodings()[encoding].encode_ordinary(text) == ids
    assert count_text(text, encoding=encoding) == len(ids)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-3.5-turbo", 129),
        ("gpt-4-0613", 129),
        ("gpt-4", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
        ("openai/gpt-4o-mini", 124),
    ],
)
def test_cookbook_conversation_matches_openai_api_prompt_tokens(model: str, expected: int) -> None:
    assert count_messages(COOKBOOK_MESSAGES, model=model) == expected


def test_hello_world_is_two_tokens_in_both_encodings() -> None:
    assert count_text("hello world") == 2
    assert count_text("hello world", encoding="cl100k_base") == 2


# --- against tiktoken ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", sorted(TIKTOKEN_FILES))
def test_shipped_vocabulary_is_openais(encoding: str) -> None:
    _, expected_sha256 = TIKTOKEN_FILES[encoding]
    assert hashlib.sha256(tiktoken_file(encoding)).hexdigest() == expected_sha256


@pytest.mark.parametrize("encoding", sorted(TIKTOKEN_FILES))
def test_encoder_is_tiktokens_with_the_same_vocabulary_pattern_and_specials(encoding: str) -> None:
    ours, reference = tokens._tokenizer(encoding), reference_encodings()[encoding]
    assert ours._mergeable_ranks == reference._mergeable_ranks
    assert ours._pat_str == reference._pat_str
    assert ours._special_tokens == reference._special_tokens


@pytest.mark.parametrize("encoding", sorted(TIKTOKEN_FILES))
@pytest.mark.parametrize("text", TRICKY)
def test_counts_match_tiktoken_on_tricky_text(encoding: str, text: str) -> None:
    assert count_text(text, encoding=encoding) == reference_count(text, encoding)


@pytest.mark.parametrize("encoding", sorted(TIKTOKEN_FILES))
def test_a_code_point_newer_than_tiktokens_unicode_counts_as_tiktoken_counts(encoding: str) -> None:
    """U+323B0 (CJK Extension J, Unicode 17.0) is unassigned to tiktoken's regex, so not a letter:
    U+323B0 with the colon is one piece (its 4 bytes, then ":"), "A" another: 6 tokens, not 5."""
    assert count_text("\U000323b0:A", encoding=encoding) == 6
    assert reference_count("\U000323b0:A", encoding) == 6


# Every code point UTF-8 can carry (all but the surrogates), alone and next to ASCII that the
# pre-tokenizer treats by class: a letter, digit, space or punctuation mix-up changes the count.
PROBES = ("{}", "{}:A", " {}", "{}a1", "'{}")
CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
CHUNK = 4096


@functools.cache
def probe_texts(probe: str) -> list[str]:
    """``probe`` around each code point, one per line, ``CHUNK`` code points a text."""
    return [
        "\n".join(probe.format(chr(c)) for c in CODE_POINTS[i : i + CHUNK])
        for i in range(0, len(CODE_POINTS), CHUNK)
    ]


@pytest.mark.parametrize("encoding", sorted(TIKTOKEN_FILES))
@pytest.mark.parametrize("probe", PROBES)
def test_every_code_point_counts_as_tiktoken_counts(probe: str, encoding: str) -> None:
    texts = probe_texts(probe)
    reference = reference_encodings()[encoding]
    want = [len(ids) for ids in reference.encode_ordinary_batch(texts, num_threads=2)]
    count_text("", encoding=encoding)  # load the encoder before the threads share it
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(functools.partial(count_text, encoding=encoding), texts))
    wrong = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    if wrong:
        points = [c for i in wrong for c in CODE_POINTS[i * CHUNK : (i + 1) * CHUNK]]
        named = [
            f"U+{c:04X}"
            for c in points
            if count_text(probe.format(chr(c)), encoding=encoding)
            != reference_count(probe.format(chr(c)), encoding)
        ]
        pytest.fail(
            f"{encoding}, probe {probe!r}: {len(wrong)} of {len(texts)} chunks count differently from"
            f" tiktoken; alone: {len(named)} code points, first {named[:20]}"
        )


@settings(max_examples=examples(300))
@given(text=st.text(max_size=300), encoding=st.sampled_from(sorted(TIKTOKEN_FILES)))
def test_counts_match_tiktoken_on_any_text(text: str, encoding: str) -> None:
    assert count_text(text, encoding=encoding) == reference_count(text, encoding)


@pytest.mark.parametrize(("model", "expected"), [("gpt-4o-mini", 124), ("gpt-4", 129)])
def test_messages_match_cookbook_recipe_run_on_tiktoken(model: str, expected: int) -> None:
    """The cookbook's num_tokens_from_messages, on tiktoken and tiktoken's model table: same number."""
    reference = reference_prompt_tokens(COOKBOOK_MESSAGES, tiktoken.encoding_name_for_model(model))
    assert count_messages(COOKBOOK_MESSAGES, model=model) == reference == expected


# --- model → encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("gpt-4.5-preview", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("claude-3-5-haiku-20241022", "o200k_base"),
        ("gemma3-270m", "o200k_base"),
        ("", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("GPT-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-4-32k", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("openai/gpt-4", "cl100k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("azure/openai/gpt-3.5-turbo", "cl100k_base"),
        ("ft:gpt-3.5-turbo-0125:acme::abc123", "cl100k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
    ],
)
def test_encoding_for_model(model: str, encoding: str) -> None:
    assert encoding_for_model(model) == encoding


# --- chat accounting -------------------------------------------------------------------------------


def test_message_accounting_parts() -> None:
    user = [{"role": "user", "content": "What is 2+2?"}]
    assert count_messages(user, model="gpt-4o") == 3 + 1 + 7 + 3  # "What is 2+2?": What/ is/ /2/+/2/?
    assert count_messages(user, model="gpt-4o") == reference_prompt_tokens(user)
    named = [{"role": "user", "name": "bob", "content": "hi"}]
    assert count_messages(named, model="gpt-4o") == 3 + (1 + 1 + 1) + 1 + 3
    assert count_messages(named, model="gpt-4o") == reference_prompt_tokens(named)
    assert count_messages([], model="gpt-4o") == 3


def test_content_parts_count_text_only() -> None:
    parts = [
        {"type": "text", "text": "Describe this picture"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "in one line."},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]
    message = [{"role": "user", "content": parts}]
    texts = ("user", "Describe this picture", "in one line.")
    expected = 3 + sum(reference_count(t) for t in texts) + 3
    assert count_messages(message, model="gpt-4o-mini") == expected


def test_assistant_tool_call_message_with_null_content() -> None:
    message = [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    expected = (
        3 + reference_count("assistant") + 3 + sum(reference_count(t) for t in ("tool", "c1", "42")) + 3
    )
    assert count_messages(message, model="gpt-4o") == expected


def test_special_token_text_is_counted_as_text() -> None:
    assert count_text("<|endoftext|>") == 7
    assert count_messages([{"role": "user", "content": "<|endoftext|>"}], model="gpt-4o") == 3 + 1 + 7 + 3


def test_estimate_prompt_tokens_uses_body_model_and_messages() -> None:
    body = {"model": "gpt-4", "messages": COOKBOOK_MESSAGES, "temperature": 0}
    assert estimate_prompt_tokens(body) == 129
    assert estimate_prompt_tokens({**body, "model": "gpt-4o"}) == 124


def test_unknown_encoding_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown encoding 'p50k_base'"):
        count_text("x", encoding="p50k_base")


@settings(max_examples=examples(200))
@given(text=st.text(max_size=200), limit=st.integers(min_value=0, max_value=60))
def test_truncate_text_never_exceeds_the_limit(text: str, limit: int) -> None:
    cut = truncate_text(text, limit)
    assert reference_count(cut) <= limit
    if reference_count(text) <= limit:
        assert cut == text


def test_truncate_plain_words_is_exact() -> None:
    text = "the quick brown fox jumps over the lazy dog " * 10
    assert count_text(truncate_text(text, 17)) == 17
    assert text.startswith(truncate_text(text, 17))


def test_encoders_are_loaded_once() -> None:
    count_text("x", encoding="cl100k_base")
    assert tokens._tokenizer("cl100k_base") is tokens._tokenizer("cl100k_base")
