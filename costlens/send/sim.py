"""A simulated OpenAI-compatible chat provider, for the demo and the tests — never a real model.

Why it exists: ``costlens run`` has to be shown and tested end to end (retries, streaming, resume after a
kill) without a paid API and without the network. The simulator answers like the OpenAI chat-completions
API (FORMATS.md §3, §5, §6) but is honest about itself: every response carries ``x-costlens-simulated: 1``,
``"simulated": true`` and ``system_fingerprint: "costlens-sim"``.

Why it is shaped so:
- A plain ASGI callable, no framework: tests drive it in-process through ``httpx.ASGITransport`` (no
  sockets), and :func:`serve` puts it behind uvicorn for the CLI (``costlens serve-sim``).
- Deterministic: a completion's text is drawn from a hash of the seed, the model, the messages and the
  choice index, so the same request always gets the same answer (retries included). ``max_tokens``
  (finish_reason ``length``), ``stop`` and ``n`` are honoured.
- Usage is tokenizer-true, not made up: ``prompt_tokens`` is :func:`costlens.tokens.count_messages` of the
  request and ``completion_tokens`` the tokens of every generated choice, summed over ``n``.
- Faults on demand, to exercise a client's retry and recovery paths. Per-request headers win over server
  options:

  ===========================  ==============================================================
  ``x-sim-fault: KIND``        this request gets fault KIND (``none`` turns faults off)
  ``x-sim-fault-once: KIND``   only the first attempt of this request gets KIND
  ``x-sim-latency-ms: MS``     answer after MS milliseconds (server option ``latency_ms``)
  ``x-sim-slow-ms: MS``        how long the ``slow`` fault holds the request
  ``x-sim-retry-after-ms: MS`` what a 429 asks the client to wait
  ===========================  ==============================================================

  KIND is one of ``429`` (with ``Retry-After`` and ``retry-after-ms``), ``500``, ``503`` (OpenAI-style
  error bodies), ``drop`` (connection closed with no response), ``slow`` (held longer than a typical client
  timeout, then answered), ``cut`` (the connection closes mid-response: a stream stops before its finish
  and usage chunks). With ``error_rate`` > 0 a fraction of attempts gets a fault drawn from
  ``fault_mix`` — deterministically, from the seed, the request and its attempt number, so concurrency
  does not change which attempts fail.
- A request is identified by the ``x-costlens-request`` header (costlens sends its ``custom_id``) and its
  model; without the header, by a hash of its body. ``GET /_sim/stats`` reports attempts and successful
  completions (the complete response was written) per request × model, so a test can prove that a resumed
  run completed every request exactly once. ``POST /_sim/reset`` clears them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import math
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, get_args

from costlens.errors import ConfigError
from costlens.tokens import count_messages, count_text, encoding_for_model, truncate_text

__all__ = [
    "DEFAULT_FAULT_MIX",
    "FaultKind",
    "RunningSim",
    "SimApp",
    "SimConfig",
    "SimulatedDisconnect",
    "create_app",
    "running_server",
    "serve",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Closes the client connection of a scope at the socket; True when it did (only a real server can).
Disconnect = Callable[[Scope], bool]

FaultKind = Literal["429", "429-bare", "500", "503", "drop", "slow", "cut"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
ReportedCost = Literal["none", "usage", "litellm"]
REPORTED_COST_KINDS: tuple[ReportedCost, ...] = get_args(ReportedCost)
# ``slow`` is left out of the random mix: each one holds a client for ``slow_ms``, which would make a
# run with --error-rate crawl. Ask for it per request with ``x-sim-fault: slow``.
DEFAULT_FAULT_MIX: Mapping[FaultKind, int] = {"429": 4, "500": 2, "503": 2, "drop": 1, "cut": 1}
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3-mini")

SIMULATED_HEADER = (b"x-costlens-simulated", b"1")
FINGERPRINT = "costlens-sim"
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_N = 128

# Plain words for deterministic filler text; a short vocabulary keeps it readable and tokenizes simply.
_WORD_TEXT = (
    "the of and to in is that it for on with as was at by this be from or are an but not have which all "
    "one can their has more when there so what about other time into some could them these than then its "
    "only new also after most over many where much before right through well just very still while here "
    "cost token model price budget request answer batch cache window prompt output input rate limit "
    "report summary estimate retry stream usage total daily monthly margin invoice provider endpoint "
    "latency signal value record table query result number figure careful simple clear exact steady "
    "quick small large early late green blue bright quiet gentle river mountain harbor garden market "
    "library lantern letter bridge station morning evening season journey question reason pattern"
)
WORDS = tuple(_WORD_TEXT.split())


class SimulatedDisconnect(Exception):
    """The simulator dropped or cut the connection; raised when no server can close the socket itself."""


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """How the simulated provider behaves; per-request ``x-sim-*`` headers override these."""

    latency_ms: int = 0
    error_rate: float = 0.0
    seed: int = 0
    slow_ms: int = 60_000
    retry_after_ms: int = 1_000
    fault_mix: Mapping[FaultKind, int] = field(default_factory=lambda: dict(DEFAULT_FAULT_MIX))
    models: tuple[str, ...] = DEFAULT_MODELS
    # Say what each answer "cost", as gateways do: in usage.cost (OpenRouter) or in the
    # x-litellm-response-cost header (LiteLLM); at a made-up rate of USD per 1M input / output tokens.
    # Per request: header x-sim-reported-cost: none|usage|litellm.
    reported_cost: ReportedCost = "none"
    reported_rate_per_1m: tuple[Decimal, Decimal] = (Decimal("2.5"), Decimal("10"))

    def __post_init__(self) -> None:
        if self.reported_cost not in REPORTED_COST_KINDS:
            raise ConfigError(f"reported cost must be one of {', '.join(REPORTED_COST_KINDS)}")
        if self.latency_ms < 0:
            raise ConfigError(f"latency must be >= 0 ms, got {self.latency_ms}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ConfigError(f"error rate must be between 0 and 1, got {self.error_rate}")
        if self.slow_ms < 0 or self.retry_after_ms < 0:
            raise ConfigError("slow_ms and retry_after_ms must be >= 0")
        unknown = set(self.fault_mix) - set(FAULT_KINDS)
        if unknown or any(w < 0 for w in self.fault_mix.values()):
            raise ConfigError(f"fault mix must weigh kinds of {', '.join(FAULT_KINDS)} with weights >= 0")
        if self.error_rate > 0 and not any(self.fault_mix.values()):
            raise ConfigError("an error rate needs a fault mix with a positive weight")


def _reported_cost(config: SimConfig, headers: Mapping[str, str]) -> ReportedCost:
    value = headers.get("x-sim-reported-cost", "").strip().lower() or config.reported_cost
    for kind in REPORTED_COST_KINDS:
        if value == kind:
            return kind
    raise _HTTPError(400, f"x-sim-reported-cost must be one of {', '.join(REPORTED_COST_KINDS)}")


class _HTTPError(Exception):
    """An error answer: status, OpenAI-style error body, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        self.headers = list(headers)


@dataclass(frozen=True, kw_only=True)
class _Chat:
    """A validated chat-completions request."""

    model: str
    messages: list[Mapping[str, Any]]
    n: int
    max_tokens: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


@dataclass(frozen=True, kw_only=True)
class _Choice:
    text: str
    finish_reason: Literal["stop", "length"]


@dataclass
class _Stats:
    requests: int = 0
    invalid: int = 0
    completions: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    attempts: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    completed: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def as_json(self) -> dict[str, Any]:
        def nested(table: Mapping[str, Counter[str]]) -> dict[str, dict[str, int]]:
            return {key: dict(sorted(table[key].items())) for key in sorted(table)}

        return {
            "simulated": True,
            "requests": self.requests,
            "invalid": self.invalid,
            "completions": self.completions,
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens},
            "faults": dict(sorted(self.faults.items())),
            "attempts": nested(self.attempts),
            "completed": nested(self.completed),
        }


class _Client:
    """Watches for the client going away while the app sleeps or streams (ASGI ``http.disconnect``)."""

    def __init__(self, receive: Receive) -> None:
        self.gone = asyncio.Event()
        self._task = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone.set()

    async def wait(self, ms: float) -> bool:
        """Sleep ``ms`` milliseconds; True if the client is still there afterwards."""
        if ms > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gone.wait(), ms / 1000)
        return not self.gone.is_set()

    def close(self) -> None:
        self._task.cancel()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _digest(*parts: Any) -> bytes:
    return hashlib.blake2b(_dumps(parts), digest_size=16).digest()


def _split_pieces(text: str) -> list[str]:
    """Stream deltas: each word with the whitespace before it; joined, they give back ``text``."""
    return re.findall(r"\s*\S+|\s+", text)


class SimApp:
    """The ASGI application. ``disconnect`` is set by :func:`serve` so ``drop``/``cut`` close the socket."""

    def __init__(self, config: SimConfig | None = None, *, disconnect: Disconnect | None = None) -> None:
        self.config = config or SimConfig()
        self.disconnect = disconnect
        self.stats = _Stats()

    # --- ASGI entry ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"].rstrip("/")
        try:
            if path in ("/v1/chat/completions", "/chat/completions"):
                if method != "POST":
                    raise _HTTPError(405, f"method {method} not allowed on {path}")
                await self._chat(scope, receive, send)
            elif path == "/v1/models" and method == "GET":
                await self._json(send, 200, self._models())
            elif path == "/health" and method == "GET":
                await self._json(send, 200, {"status": "ok", "simulated": True})
            elif path == "/_sim/stats" and method == "GET":
                await self._json(send, 200, self.stats.as_json())
            elif path == "/_sim/reset" and method == "POST":
                self.stats = _Stats()
                await self._json(send, 200, {"status": "reset", "simulated": True})
            else:
                raise _HTTPError(404, f"no route {method} {path}", code="unknown_url")
        except _HTTPError as e:
            await self._json(send, e.status, e.body, e.headers)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _models(self) -> dict[str, Any]:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": FINGERPRINT} for m in self.config.models
        ]
        return {"object": "list", "data": data, "simulated": True}

    # --- chat completions ------------------------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await self._read_body(receive)
        if raw is None:
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        self.stats.requests += 1
        try:
            chat = self._parse(raw)
        except _HTTPError:
            self.stats.invalid += 1
            raise
        key = headers.get("x-costlens-request") or "body:" + hashlib.sha256(raw).hexdigest()[:16]
        attempt = self.stats.attempts[key][chat.model]
        self.stats.attempts[key][chat.model] += 1
        fault = self._fault(headers, key, chat.model, attempt)
        if fault is not None:
            self.stats.faults[fault] += 1

        client = _Client(receive)
        try:
            latency = _header_ms(headers, "x-sim-latency-ms", self.config.latency_ms)
            if not await client.wait(latency):
                return
            if fault in ("429", "429-bare", "500", "503"):
                raise self._fault_error(fault, headers)
            if fault == "drop":
                await self._drop(scope, client)
                return
            if fault == "slow" and not await client.wait(
                _header_ms(headers, "x-sim-slow-ms", self.config.slow_ms)
            ):
                return
            choices = [self._generate(chat, index) for index in range(chat.n)]
            completion_id = "chatcmpl-sim-" + _digest(self.config.seed, key, chat.model, attempt).hex()[:24]
            prompt_tokens = count_messages(chat.messages, model=chat.model)
            encoding = encoding_for_model(chat.model)
            completion_tokens = sum(count_text(c.text, encoding=encoding) for c in choices)
            usage = _usage(prompt_tokens, completion_tokens)
            extra = [(b"x-request-id", ("req_sim_" + completion_id[13:]).encode())]
            reported = _reported_cost(self.config, headers)
            if reported != "none":
                rate_in, rate_out = self.config.reported_rate_per_1m
                cost = (prompt_tokens * rate_in + completion_tokens * rate_out) / 1_000_000
                if reported == "usage":
                    # A JSON number (a float short enough to print its exact decimal, as gateways send it).
                    usage["cost"] = float(cost)
                    usage["is_byok"] = False
                    usage["cost_details"] = {"upstream_inference_cost": None}
                elif not chat.stream:  # LiteLLM sends no cost header on streamed answers
                    extra.append((b"x-litellm-response-cost", format(float(cost), "f").encode()))
            if chat.stream:
                done = await self._stream(
                    scope, send, client, chat, completion_id, choices, usage, extra, fault
                )
            else:
                done = await self._complete(
                    scope, send, client, chat, completion_id, choices, usage, extra, fault
                )
            if done:
                self.stats.completions += 1
                self.stats.prompt_tokens += prompt_tokens
                self.stats.completion_tokens += completion_tokens
                if not key.startswith("body:"):
                    self.stats.completed[key][chat.model] += 1
        finally:
            client.close()

    async def _complete(
        self,
        scope: Scope,
        send: Send,
        client: _Client,
        chat: _Chat,
        completion_id: str,
        choices: list[_Choice],
        usage: dict[str, Any],
        extra: list[tuple[bytes, bytes]],
        fault: FaultKind | None,
    ) -> bool:
        body = _dumps(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": chat.model,
                "choices": [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": c.text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": c.finish_reason,
                    }
                    for i, c in enumerate(choices)
                ],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "simulated": True,
            }
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if client.gone.is_set():
            return False
        await send({"type": "http.response.start", "status": 200, "headers": _headers(headers + extra)})
        if fault == "cut":
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            await self._drop(scope, client)
            return False
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return True

    async def _stream(
        self,
        scope: Scope,
        send: Send,
        client: _Client,
        chat: _Chat,
        completion_id: str,
        choices: list[_Choice],
        usage: dict[str, Any],
        extra: list[tuple[bytes, bytes]],
        fault: FaultKind | None,
    ) -> bool:
        created = int(time.time())

        def chunk(chunk_choices: list[dict[str, Any]], chunk_usage: dict[str, Any] | None = None) -> bytes:
            obj: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": chat.model,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": chunk_choices,
                "simulated": True,
            }
            if chat.include_usage:
                obj["usage"] = chunk_usage
            return b"data: " + _dumps(obj) + b"\n\n"

        def delta(index: int, content: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": index, "delta": content, "logprobs": None, "finish_reason": finish}

        # One choice per chunk, the choices interleaved (as OpenAI does): a client has to accumulate the
        # text per index.
        per_choice: list[list[bytes]] = []
        for i, choice in enumerate(choices):
            frames = [chunk([delta(i, {"role": "assistant", "content": "", "refusal": None})])]
            frames += [chunk([delta(i, {"content": piece})]) for piece in _split_pieces(choice.text)]
            frames.append(chunk([delta(i, {}, choice.finish_reason)]))
            per_choice.append(frames)
        frames = [f for group in _interleave(per_choice) for f in group]
        tail = [chunk([], usage)] if chat.include_usage else []
        tail.append(b"data: [DONE]\n\n")

        if client.gone.is_set():
            return False
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": _headers(headers + extra)})
        if fault == "cut":
            # Stop before the finish and usage chunks: the client gets text but no usage.
            for frame in frames[: max(1, len(frames) // 2)]:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await self._drop(scope, client)
            return False
        for frame in frames:
            if client.gone.is_set():
                return False
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if client.gone.is_set():
            return False
        await send({"type": "http.response.body", "body": b"".join(tail), "more_body": False})
        return True

    def _generate(self, chat: _Chat, index: int) -> _Choice:
        """Deterministic text for one choice, cut at the first stop string, then at ``max_tokens``."""
        rng = random.Random(_digest(self.config.seed, chat.model, chat.messages, index))
        sentences = []
        for _ in range(rng.randint(1, 4)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
            sentences.append(" ".join(words).capitalize() + ".")
        text = " ".join(sentences)
        hits = [text.find(s) for s in chat.stop if s and s in text]
        if hits:
            text = text[: min(hits)]
        finish: Literal["stop", "length"] = "stop"
        encoding = encoding_for_model(chat.model)
        if chat.max_tokens is not None and count_text(text, encoding=encoding) > chat.max_tokens:
            text = truncate_text(text, chat.max_tokens, encoding=encoding)
            finish = "length"
        return _Choice(text=text, finish_reason=finish)

    # --- faults ----------------------------------------------------------------------------------

    def _fault(self, headers: Mapping[str, str], key: str, model: str, attempt: int) -> FaultKind | None:
        forced = headers.get("x-sim-fault", "").strip().lower()
        if forced:
            return None if forced == "none" else _fault_kind(forced, "x-sim-fault")
        once = headers.get("x-sim-fault-once", "").strip().lower()
        if once and attempt == 0:
            return _fault_kind(once, "x-sim-fault-once")
        if self.config.error_rate <= 0:
            return None
        rng = random.Random(_digest("fault", self.config.seed, key, model, attempt))
        if rng.random() >= self.config.error_rate:
            return None
        kinds = [k for k, w in self.config.fault_mix.items() if w > 0]
        return rng.choices(kinds, weights=[self.config.fault_mix[k] for k in kinds])[0]

    def _fault_error(self, fault: FaultKind, headers: Mapping[str, str]) -> _HTTPError:
        if fault == "429-bare":  # a rate limit that says nothing about when to come back
            return _HTTPError(
                429,
                "Rate limit reached for requests (simulated).",
                type_="requests",
                code="rate_limit_exceeded",
            )
        if fault == "429":
            ms = _header_ms(headers, "x-sim-retry-after-ms", self.config.retry_after_ms)
            return _HTTPError(
                429,
                "Rate limit reached for requests (simulated).",
                type_="requests",
                code="rate_limit_exceeded",
                headers=[
                    (b"retry-after", str(max(1, math.ceil(ms / 1000))).encode()),
                    (b"retry-after-ms", str(int(ms)).encode()),
                    (b"x-ratelimit-remaining-requests", b"0"),
                    (b"x-ratelimit-reset-requests", f"{int(ms)}ms".encode()),
                ],
            )
        if fault == "500":
            return _HTTPError(
                500,
                "The server had an error while processing your request (simulated).",
                type_="server_error",
            )
        return _HTTPError(
            503,
            "The engine is currently overloaded, please try again later (simulated).",
            type_="server_error",
        )

    async def _drop(self, scope: Scope, client: _Client) -> None:
        """Close the connection at the socket; in-process (no server) raise instead.

        Waits until the server has seen the connection go, so it does not then try to answer it.
        """
        if self.disconnect is None or not self.disconnect(scope):
            raise SimulatedDisconnect("connection closed by the simulator")
        await client.wait(1000)

    # --- request parsing -------------------------------------------------------------------------

    @staticmethod
    async def _read_body(receive: Receive) -> bytes | None:
        """The request body; None if the client went away while sending it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _HTTPError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _parse(raw: bytes) -> _Chat:
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise _HTTPError(400, f"request body is not valid JSON: {e}") from e
        if not isinstance(body, dict):
            raise _HTTPError(400, "request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _HTTPError(400, "you must provide a model parameter", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HTTPError(400, "'messages' must be a non-empty array", param="messages")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise _HTTPError(
                    400, f"messages[{i}] must be an object with a string 'role'", param="messages"
                )
        n = body.get("n", 1)
        if n is None:
            n = 1
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
            raise _HTTPError(400, f"'n' must be an integer from 1 to {MAX_N}", param="n")
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            max_tokens = body.get("max_completion_tokens")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise _HTTPError(400, "'max_tokens' must be an integer >= 1", param="max_tokens")
        stop = body.get("stop")
        if stop is None:
            stops: tuple[str, ...] = ()
        elif isinstance(stop, str):
            stops = (stop,)
        elif isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop):
            stops = tuple(stop)
        else:
            raise _HTTPError(400, "'stop' must be a string or an array of at most 4 strings", param="stop")
        stream = body.get("stream", False)
        if stream is None:
            stream = False
        if not isinstance(stream, bool):
            raise _HTTPError(400, "'stream' must be a boolean", param="stream")
        options = body.get("stream_options") or {}
        if not isinstance(options, dict):
            raise _HTTPError(400, "'stream_options' must be an object", param="stream_options")
        return _Chat(
            model=model,
            messages=messages,
            n=n,
            max_tokens=max_tokens,
            stop=stops,
            stream=stream,
            include_usage=bool(options.get("include_usage", False)),
        )

    # --- responses -------------------------------------------------------------------------------

    @staticmethod
    async def _json(send: Send, status: int, obj: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        body = _dumps(obj)
        base = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send(
            {"type": "http.response.start", "status": status, "headers": _headers(base + list(headers))}
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [*headers, SIMULATED_HEADER]


def _interleave(groups: list[list[bytes]]) -> Iterator[list[bytes]]:
    for i in range(max((len(g) for g in groups), default=0)):
        yield [g[i] for g in groups if i < len(g)]


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _fault_kind(value: str, header: str) -> FaultKind:
    for kind in FAULT_KINDS:
        if value == kind:
            return kind
    raise _HTTPError(
        400, f"{header}: unknown fault {value!r}; expected one of {', '.join(FAULT_KINDS)}, none"
    )


def _header_ms(headers: Mapping[str, str], name: str, default: int) -> float:
    value = headers.get(name)
    if value is None:
        return float(default)
    try:
        ms = float(value)
    except ValueError:
        raise _HTTPError(400, f"{name} must be a number of milliseconds, got {value!r}") from None
    if not 0 <= ms < math.inf:
        raise _HTTPError(400, f"{name} must be >= 0, got {value!r}")
    return ms


def create_app(config: SimConfig | None = None) -> SimApp:
    """A simulator app to drive in-process (``httpx.ASGITransport(app=create_app())``)."""
    return SimApp(config)


# --- serving ---------------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server(app: SimApp, host: str, port: int, *, log_level: str) -> Any:
    """A uvicorn server for ``app``, wired so ``drop``/``cut`` close the client's socket."""
    import uvicorn  # lazy: only serving needs it, and the in-process tests do not

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)

    def close_connection(scope: Scope) -> bool:
        client = tuple(scope.get("client") or ())
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if (
                client
                and tuple(getattr(connection, "client", None) or ()) == client
                and transport is not None
            ):
                transport.close()
                return True
        return False

    app.disconnect = close_connection
    return server


def serve(
    host: str,
    port: int,
    *,
    latency_ms: int,
    error_rate: float,
    seed: int,
    slow_ms: int = 60_000,
    retry_after_ms: int = 1_000,
    log_level: str = "info",
    reported_cost: str = "none",
) -> None:
    """Serve the simulator on ``host:port`` until interrupted (blocking). Loopback only unless asked.

    Raises :class:`~costlens.errors.ConfigError` for a bad option or a port that cannot be bound.
    """
    config = SimConfig(
        latency_ms=latency_ms,
        error_rate=error_rate,
        seed=seed,
        slow_ms=slow_ms,
        retry_after_ms=retry_after_ms,
        reported_cost=reported_cost,  # type: ignore[arg-type]  # checked by SimConfig
    )
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be 0-65535, got {port}")
    server = _server(SimApp(config), host, port, log_level=log_level)
    if not _is_loopback(host):
        logging.getLogger("uvicorn.error").warning(
            "costlens sim listens on %s, which is not a loopback address: anyone who can reach it gets "
            "simulated answers",
            host,
        )
    try:
        server.run()
    except (OSError, SystemExit) as e:  # uvicorn logs a bind error, then exits
        raise ConfigError(f"cannot serve on {host}:{port}: {e}") from e


@dataclass(frozen=True)
class RunningSim:
    """A simulator served by :func:`running_server`: ``url`` is the root, ``base_url`` the ``/v1`` API."""

    url: str
    app: SimApp

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


@contextlib.contextmanager
def running_server(
    config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 10.0
) -> Iterator[RunningSim]:
    """Run the simulator on a loopback port in a background thread, for tests and benchmarks.

    Port 0 picks a free port. ``sim.base_url`` is what OpenAI clients take; ``sim.app.stats`` is live,
    and ``GET {sim.url}/_sim/stats`` serves the same over HTTP.
    """
    app = SimApp(config)
    server = _server(app, host, port, log_level="warning")
    thread = threading.Thread(target=server.run, name="costlens-sim", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ConfigError(f"simulator did not start on {host}:{port}")
        time.sleep(0.01)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningSim(url=f"http://{host}:{bound_port}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout_s)
