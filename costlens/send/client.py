"""The async HTTP client that sends chat-completion requests to an OpenAI-compatible endpoint.

Shaped by what a cost log needs from each request (FORMATS.md §5-6):

* **One pooled httpx transport** for the whole run, sent ``httpx.Request`` objects directly
  (``AsyncClient.send``'s per-request work was a third of a run's CPU; see ``_request``).
  The transport is injectable (unit tests pass an ``httpx.MockTransport``); the default is
  ``httpx-aiohttp``'s ``AiohttpTransport``, because plain httpx's connection pool degrades at
  high concurrency (FACTS.md: ~350 req/s at concurrency 128 against ~2,650 req/s).
* **Retries like the official SDK**: connection errors, timeouts, 408, 409, 429 and 5xx;
  backoff ``min(0.5 * 2**retry, 8)`` seconds plus up to 25% jitter, unless the response
  says ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), capped at 120 s.
  Sleep, clock and randomness are injectable so tests never wait.
* **Streaming** is parsed as server-sent events with ``stream_options.include_usage``
  requested; text is accumulated per choice ``index`` (``n > 1``), and time to first
  token is measured. A stream that breaks after it started is *not* retried (the
  provider may already bill it): it comes back as an error with its partial text and
  no usage, for the caller to estimate.
* **The API key never leaves the Authorization header**: it is not kept in any repr,
  and every error message (ours, the transport's, the server's) is scrubbed of it.

Nothing here touches the database; :class:`ChatOutcome` is a plain record.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx

from costlens import __version__

__all__ = [
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "ChatClient",
    "ChatOutcome",
    "ClientConfig",
    "SSEDecoder",
    "default_transport",
    "is_retryable_status",
    "retry_after_seconds",
    "retry_delay",
]

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 120.0
_JITTER = 0.25
_RETRY_STATUSES = frozenset({408, 409, 429})
_RETRY_AFTER_HEADERS = ("retry-after", "retry-after-ms")
_ERROR_TEXT_LIMIT = 500
_BEARER = re.compile(r"Bearer\s+[^\s'\",}]+", re.IGNORECASE)
# What httpx.AsyncClient sends by default (costlens replaces its user-agent); httpx decodes both encodings.
_DEFAULT_HEADERS = (("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"))


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Where to send and how hard to try. ``api_key`` is excluded from repr."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 600.0
    max_retries: int = 2
    max_connections: int = 64

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(slots=True, kw_only=True)
class ChatOutcome:
    """What one request came to, after its retries. ``usage`` is the raw usage object, if any."""

    status: Literal["ok", "error"]
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    response_id: str | None = None
    provider_request_id: str | None = None
    response_model: str | None = None
    created: int | None = None
    service_tier: str | None = None
    usage: dict[str, Any] | None = None
    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    rate_limits: dict[str, str] = field(default_factory=dict)
    streamed: bool = False
    # A stream that started and broke (or an error event) before usage arrived.
    partial: bool = False
    attempts: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    # The answer said it came from a simulator (costlens serve-sim's x-costlens-simulated header).
    simulated: bool = False
    # What the provider or gateway said the request cost (exact, from its text), and where it said so:
    # 'usage.cost' (OpenRouter and others) or 'x-litellm-response-cost' (LiteLLM's header).
    reported_cost_usd: Decimal | None = None
    reported_cost_source: str | None = None
    # Internal: whether this attempt may be retried, and the headers that say when.
    retryable: bool = False
    headers: httpx.Headers | None = None


def default_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """The aiohttp-backed transport (FACTS.md: holds up at high concurrency)."""
    from httpx_aiohttp import AiohttpTransport  # imported here: only a real run needs aiohttp

    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return AiohttpTransport(limits=limits)


def is_retryable_status(status: int) -> bool:
    return status in _RETRY_STATUSES or status >= 500


def retry_after_seconds(headers: httpx.Headers | None, *, now: datetime | None = None) -> float | None:
    """The server's wish: ``retry-after-ms``, else ``retry-after`` (seconds or HTTP date); None if absent/bad."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = -1.0
        if value >= 0 and value == value:  # not NaN
            return value
    text = headers.get("retry-after")
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(seconds, 0.0)
    return seconds if seconds >= 0 and seconds == seconds else None


def retry_delay(
    retry: int,
    headers: httpx.Headers | None = None,
    *,
    rand: Callable[[], float] = random.random,
    now: datetime | None = None,
) -> float:
    """Seconds to wait before retry number ``retry`` (0-based)."""
    after = retry_after_seconds(headers, now=now)
    if after is not None:
        return min(after, MAX_RETRY_AFTER)
    base = min(INITIAL_RETRY_DELAY * 2.0**retry, MAX_RETRY_DELAY)
    return float(base * (1 + _JITTER * rand()))


class SSEDecoder:
    """Server-sent events, line by line: returns an event's data when a blank line ends it."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        if line == "":
            return self.flush()
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        return None  # event:, id:, retry: carry nothing costlens uses

    def flush(self) -> str | None:
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data = []
        return data


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


LITELLM_COST_HEADER = "x-litellm-response-cost"


def _cost(value: object) -> Decimal | None:
    """A reported cost as an exact, finite, non-negative Decimal; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        return None
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def usage_cost(text: str | bytes) -> Decimal | None:
    """``usage.cost`` of a response body (or stream event), read exactly from its JSON text: floats
    are parsed as Decimal, so 0.000123 stays 0.000123. Cheap when there is no cost at all."""
    if (b'"cost"' not in text) if isinstance(text, bytes) else ('"cost"' not in text):
        return None
    try:
        parsed = json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    usage = parsed.get("usage") if isinstance(parsed, dict) else None
    return _cost(usage.get("cost")) if isinstance(usage, dict) else None


def _note_cost(outcome: ChatOutcome, body_cost: Decimal | None, headers: httpx.Headers) -> None:
    """usage.cost wins (the gateway's charge); else LiteLLM's header (its own estimate, not a bill)."""
    if body_cost is not None:
        outcome.reported_cost_usd, outcome.reported_cost_source = body_cost, "usage.cost"
        return
    header = _cost(headers.get(LITELLM_COST_HEADER))
    if header is not None:
        outcome.reported_cost_usd, outcome.reported_cost_source = header, LITELLM_COST_HEADER


def says_simulated(headers: httpx.Headers) -> bool:
    """Whether an answer says it is made up: ``x-costlens-simulated: 1`` (costlens serve-sim sends it on
    every answer, errors included)."""
    return headers.get("x-costlens-simulated", "").strip().lower() in ("1", "true", "yes")


def _rate_limits(headers: httpx.Headers) -> dict[str, str]:
    # httpx.Headers.items() gives lower-case names (repeated headers joined with ", ").
    return {k: v for k, v in headers.items() if k.startswith("x-ratelimit-") or k in _RETRY_AFTER_HEADERS}


class _Stream:
    """Accumulates a chat-completion stream: text and finish reason per choice index, usage, ids."""

    def __init__(self, outcome: ChatOutcome, t0: float, clock: Callable[[], float]) -> None:
        self.outcome = outcome
        self.t0 = t0
        self.clock = clock
        self.texts: dict[int, list[str]] = {}
        self.finish: dict[int, str | None] = {}
        self.chunks = 0
        self.done = False
        self.error: tuple[str, str] | None = None
        self.cost: Decimal | None = None

    def event(self, data: str) -> None:
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            return  # a malformed event is skipped; the missing usage then shows it
        if not isinstance(chunk, dict):
            return
        self.chunks += 1
        out = self.outcome
        if isinstance(chunk.get("error"), dict | str):
            self.error = _error_fields(chunk["error"], None)
            return
        out.response_id = out.response_id or _str(chunk.get("id"))
        out.response_model = out.response_model or _str(chunk.get("model"))
        out.created = out.created or _int(chunk.get("created"))
        out.service_tier = out.service_tier or _str(chunk.get("service_tier"))
        if isinstance(chunk.get("usage"), dict):
            out.usage = chunk["usage"]
            self.cost = usage_cost(data)
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = _int(choice.get("index")) or 0
            parts = self.texts.setdefault(index, [])
            self.finish.setdefault(index, None)
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                if out.ttft_ms is None:
                    out.ttft_ms = (self.clock() - self.t0) * 1000
                parts.append(content)
            if choice.get("finish_reason") is not None:
                self.finish[index] = _str(choice.get("finish_reason"))

    def finish_outcome(self) -> None:
        size = max(self.texts, default=-1) + 1
        self.outcome.texts = ["".join(self.texts.get(i, ())) for i in range(size)]
        self.outcome.finish_reasons = [self.finish.get(i) for i in range(size)]


def _error_fields(error: object, status: int | None) -> tuple[str, str]:
    """(error_type, message) from an OpenAI-style error object or string."""
    fallback = f"http_{status}" if status is not None else "error"
    if isinstance(error, dict):
        kind = _str(error.get("type")) or (str(error["code"]) if error.get("code") is not None else None)
        message = _str(error.get("message")) or json.dumps(error)[:_ERROR_TEXT_LIMIT]
        return kind or fallback, message
    if isinstance(error, str):
        return fallback, error
    return fallback, ""


class ChatClient:
    """Sends chat completions with retries; use as ``async with ChatClient(config) as client``."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._given_transport = transport
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._transport: httpx.AsyncBaseTransport | None = None
        # Built once per client, not per request (see _request).
        self._url = httpx.URL(config.url)
        headers = [
            ("Host", self._url.netloc.decode("ascii")),
            *_DEFAULT_HEADERS,
            ("user-agent", f"costlens/{__version__}"),
            ("content-type", "application/json"),
        ]
        if config.api_key:
            headers.append(("authorization", f"Bearer {config.api_key}"))
        self._headers = httpx.Headers(headers)
        self._timeout = httpx.Timeout(config.timeout).as_dict()

    async def __aenter__(self) -> ChatClient:
        transport = self._given_transport or default_transport(self.config.max_connections)
        await transport.__aenter__()
        self._transport = transport
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.__aexit__()

    def scrub(self, text: str) -> str:
        """Remove the API key (and any bearer token) from a message before it is stored or shown."""
        key = self.config.api_key
        if key:
            text = text.replace(key, "***")
        return _BEARER.sub("Bearer ***", text)

    async def complete(
        self, body: Mapping[str, Any], *, stream: bool, headers: Mapping[str, str] | None = None
    ) -> ChatOutcome:
        """Send one request (``body`` as given: unknown parameters pass through), retrying as the SDK does."""
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        started = _utcnow()
        attempts = 0
        while True:
            attempts += 1
            t0 = self._clock()
            try:
                if stream:
                    outcome = await self._stream_once(payload, headers, t0)
                else:
                    outcome = await self._post_once(payload, headers, t0)
            except httpx.TimeoutException as e:
                outcome = ChatOutcome(
                    status="error",
                    error_type="timeout",
                    error_message=self.scrub(
                        f"{type(e).__name__}: no response within {self.config.timeout:g}s"
                    ),
                    retryable=True,
                )
            except (httpx.TransportError, OSError) as e:
                outcome = ChatOutcome(
                    status="error",
                    error_type="connection_error",
                    error_message=self.scrub(f"{type(e).__name__}: {e}"[:_ERROR_TEXT_LIMIT]),
                    retryable=True,
                )
            except Exception as e:  # not the network's fault as far as we can tell: record it, don't retry
                outcome = ChatOutcome(
                    status="error",
                    error_type="client_error",
                    error_message=self.scrub(f"{type(e).__name__}: {e}"[:_ERROR_TEXT_LIMIT]),
                )
            outcome.streamed = stream
            if outcome.latency_ms is None and outcome.http_status is not None:
                outcome.latency_ms = (self._clock() - t0) * 1000
            if outcome.retryable and attempts <= self.config.max_retries:
                await self._sleep(retry_delay(attempts - 1, outcome.headers, rand=self._rand))
                continue
            outcome.attempts = attempts
            outcome.started_at = started
            outcome.completed_at = _utcnow()
            if self.config.api_key and any(self.config.api_key in t for t in outcome.texts):
                # A server that echoes the key into the answer must not get it stored: the exact key
                # becomes *** (nothing else in a completion is touched).
                outcome.texts = [t.replace(self.config.api_key, "***") for t in outcome.texts]
            outcome.retryable = False
            outcome.headers = None
            return outcome

    # --- one attempt -------------------------------------------------------------------------

    def _request(self, payload: bytes, headers: Mapping[str, str] | None) -> httpx.Request:
        """One POST, headers as ``httpx.AsyncClient`` would send them (its defaults, then ours).

        The request goes straight to the transport rather than through ``AsyncClient.send``:
        with no auth, redirects or cookies to handle, the client's per-request work (URL
        merging, header merging, a cookie-jar pass over every response) was a third of the
        run's CPU. The transport is still httpx's interface, so tests swap it as before.
        """
        if self._transport is None:
            raise RuntimeError("ChatClient used outside 'async with'")
        all_headers = httpx.Headers(self._headers)
        for name, value in (headers or {}).items():
            all_headers[name] = value
        all_headers["Content-Length"] = str(len(payload))
        request = httpx.Request(
            "POST",
            self._url,
            headers=all_headers,
            stream=httpx.ByteStream(payload),
            extensions={"timeout": self._timeout},
        )
        request.read()
        return request

    def _error_response(self, response: httpx.Response, body: bytes) -> ChatOutcome:
        status = response.status_code
        try:
            parsed: object = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if error is None:
            kind, message = f"http_{status}", body.decode("utf-8", "replace")[:_ERROR_TEXT_LIMIT]
        else:
            kind, message = _error_fields(error, status)
        return ChatOutcome(
            status="error",
            http_status=status,
            error_type=kind,
            error_message=self.scrub(message) or None,
            provider_request_id=response.headers.get("x-request-id"),
            rate_limits=_rate_limits(response.headers),
            retryable=is_retryable_status(status),
            headers=response.headers,
        )

    def _completion(self, response: httpx.Response, body: bytes) -> ChatOutcome:
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        if not isinstance(parsed, dict):
            return ChatOutcome(
                status="error",
                http_status=response.status_code,
                error_type="invalid_response",
                error_message="response body is not a JSON object",
                provider_request_id=response.headers.get("x-request-id"),
                rate_limits=_rate_limits(response.headers),
            )
        if parsed.get("error") is not None:
            kind, message = _error_fields(parsed["error"], response.status_code)
            outcome = ChatOutcome(status="error", error_type=kind, error_message=self.scrub(message))
        else:
            outcome = ChatOutcome(status="ok")
        outcome.http_status = response.status_code
        outcome.provider_request_id = response.headers.get("x-request-id")
        outcome.rate_limits = _rate_limits(response.headers)
        outcome.response_id = _str(parsed.get("id"))
        outcome.response_model = _str(parsed.get("model"))
        outcome.created = _int(parsed.get("created"))
        outcome.service_tier = _str(parsed.get("service_tier"))
        outcome.usage = parsed["usage"] if isinstance(parsed.get("usage"), dict) else None
        choices = [c for c in parsed.get("choices") or () if isinstance(c, dict)]
        choices.sort(key=lambda c: _int(c.get("index")) or 0)
        texts: list[str] = []
        for c in choices:
            reply = c.get("message")
            text = reply.get("content") if isinstance(reply, dict) else None
            texts.append(text if isinstance(text, str) else "")
        outcome.texts = texts
        outcome.finish_reasons = [_str(c.get("finish_reason")) for c in choices]
        return outcome

    async def _post_once(self, payload: bytes, headers: Mapping[str, str] | None, t0: float) -> ChatOutcome:
        assert self._transport is not None
        response = await self._transport.handle_async_request(self._request(payload, headers))
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        if not 200 <= response.status_code < 300:
            outcome = self._error_response(response, body)
        else:
            outcome = self._completion(response, body)
            outcome.latency_ms = (self._clock() - t0) * 1000
            _note_cost(outcome, usage_cost(body), response.headers)
        outcome.simulated = says_simulated(response.headers)
        return outcome

    async def _stream_once(self, payload: bytes, headers: Mapping[str, str] | None, t0: float) -> ChatOutcome:
        assert self._transport is not None
        response = await self._transport.handle_async_request(self._request(payload, headers))
        outcome = await self._read_stream(response, t0)
        outcome.simulated = says_simulated(response.headers)
        return outcome

    async def _read_stream(self, response: httpx.Response, t0: float) -> ChatOutcome:
        async with contextlib.aclosing(response):
            if not 200 <= response.status_code < 300:
                return self._error_response(response, await response.aread())
            if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
                # A server that ignores "stream": answer parsed as a whole completion.
                body = await response.aread()
                outcome = self._completion(response, body)
                outcome.latency_ms = (self._clock() - t0) * 1000
                _note_cost(outcome, usage_cost(body), response.headers)
                return outcome
            outcome = ChatOutcome(
                status="ok",
                http_status=response.status_code,
                provider_request_id=response.headers.get("x-request-id"),
                rate_limits=_rate_limits(response.headers),
            )
            acc = _Stream(outcome, t0, self._clock)
            decoder = SSEDecoder()
            broke: str | None = None
            try:
                async for line in response.aiter_lines():
                    data = decoder.feed(line)
                    if data is not None:
                        acc.event(data)
                tail = decoder.flush()  # a last event without its blank line
                if tail is not None:
                    acc.event(tail)
            except httpx.TransportError as e:
                if acc.chunks == 0:
                    raise  # nothing arrived: a plain connection failure, retried as such
                broke = f"{type(e).__name__}: {e}"
        outcome.latency_ms = (self._clock() - t0) * 1000
        acc.finish_outcome()
        _note_cost(outcome, acc.cost, response.headers)
        if acc.error is not None:
            outcome.status = "error"
            outcome.error_type, message = acc.error
            outcome.error_message = self.scrub(message)
            outcome.partial = outcome.usage is None and any(outcome.texts)
        elif outcome.usage is None and not acc.done:
            if acc.chunks == 0:
                raise httpx.RemoteProtocolError("stream closed before any event")
            outcome.status = "error"
            outcome.error_type = "stream_cut"
            cause = f": {broke}" if broke else ""
            outcome.error_message = self.scrub(
                f"stream ended after {acc.chunks} chunks, before usage arrived{cause}"[:_ERROR_TEXT_LIMIT]
            )
            outcome.partial = True
        return outcome
