"""The async client against ``httpx.MockTransport``: retries and backoff (Retry-After in its three
forms, fake sleep), what is and is not retried, SSE parsing with n > 1, cut streams, rate-limit
headers, the API key kept out of every message; and the client-side rate limiter on a fake clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from costlens.send.client import (
    ChatClient,
    ChatOutcome,
    ClientConfig,
    SSEDecoder,
    retry_after_seconds,
    retry_delay,
)
from costlens.send.ratelimit import RateLimiter, RateLimits

KEY = "sk-test-DoNotLeak-0123456789abcdef"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "custom_knob": {"a": [1, 2]}}
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


def completion(*choices: tuple[int, str, str], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1711475054,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            for i, text, finish in choices
        ],
        "usage": USAGE if usage is None else usage,
    }


def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
    obj = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1711475054, "model": "gpt-4o-mini",
           "choices": choices, "usage": usage}  # fmt: skip
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def delta(index: int, content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": {} if content is None else {"content": content}, "finish_reason": finish}


class Chunks(httpx.AsyncByteStream):
    """A response body that arrives in parts and may break off with a transport error."""

    def __init__(self, parts: Iterable[bytes], error: Exception | None = None) -> None:
        self.parts = list(parts)
        self.error = error

    async def __aiter__(self):  # type: ignore[override]
        for part in self.parts:
            yield part
        if self.error is not None:
            raise self.error


SSE = {"content-type": "text/event-stream"}


class Recorder:
    """A MockTransport handler answering from a script, one entry per attempt (the last repeats)."""

    def __init__(
        self, *script: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
    ) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(step, Exception):
            raise step
        if callable(step) and not isinstance(step, httpx.Response):
            return step(request)
        return step


def send(
    handler: Recorder,
    *,
    stream: bool = False,
    max_retries: int = 2,
    key: str | None = KEY,
    body: dict[str, Any] | None = None,
) -> tuple[ChatOutcome, list[float]]:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def go() -> ChatOutcome:
        config = ClientConfig(base_url="https://llm.example/v1/", api_key=key, max_retries=max_retries)
        client = ChatClient(
            config, transport=httpx.MockTransport(handler), sleep=fake_sleep, rand=lambda: 0.5
        )
        async with client:
            return await client.complete(body or BODY, stream=stream, headers={"x-costlens-request": "7:a"})

    return asyncio.run(go()), sleeps


# --- plain responses -------------------------------------------------------------------------------


def test_a_completion_is_read_with_its_headers_and_the_body_passes_through():
    headers = {
        "x-request-id": "req_123",
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    handler = Recorder(
        httpx.Response(200, json=completion((1, "second", "length"), (0, "first", "stop")), headers=headers)
    )
    out, sleeps = send(handler)
    assert out.status == "ok" and out.http_status == 200 and out.attempts == 1 and sleeps == []
    assert out.texts == ["first", "second"]  # ordered by choice index
    assert out.finish_reasons == ["stop", "length"]
    assert out.usage == USAGE
    assert (out.response_id, out.response_model, out.created) == (
        "chatcmpl-1",
        "gpt-4o-mini-2024-07-18",
        1711475054,
    )
    assert out.provider_request_id == "req_123"
    assert out.rate_limits == {"x-ratelimit-remaining-requests": "99", "x-ratelimit-reset-tokens": "6m0s"}
    assert out.latency_ms is not None and out.latency_ms >= 0
    (request,) = handler.requests
    assert str(request.url) == "https://llm.example/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-costlens-request"] == "7:a"
    assert json.loads(request.content) == BODY  # unknown parameters untouched


def test_without_a_key_no_authorization_header_is_sent():
    handler = Recorder(httpx.Response(200, json=completion((0, "x", "stop"))))
    send(handler, key=None)
    assert "authorization" not in handler.requests[0].headers


# --- retries ---------------------------------------------------------------------------------------


def test_retry_after_ms_then_backoff_then_success():
    handler = Recorder(
        httpx.Response(
            429,
            headers={"retry-after-ms": "1500", "retry-after": "9"},
            json={"error": {"message": "slow down", "type": "requests"}},
        ),
        httpx.Response(503, json={"error": {"message": "overloaded", "type": "server_error"}}),
        httpx.Response(200, json=completion((0, "ok", "stop"))),
    )
    out, sleeps = send(handler)
    # retry-after-ms wins over retry-after; then min(0.5 * 2**1, 8) = 1.0 plus 25% x rand(0.5) jitter.
    assert sleeps == [1.5, 1.125]
    assert out.status == "ok" and out.attempts == 3


def test_retry_after_seconds_and_http_date_are_honoured_and_capped():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(httpx.Headers({"retry-after": "7"}), now=now) == 7.0
    assert retry_after_seconds(httpx.Headers({"retry-after": date}), now=now) == 30.0
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"}), now=now) is None
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250", "retry-after": "7"}), now=now) == 0.25
    assert retry_delay(0, httpx.Headers({"retry-after": "7"}), now=now) == 7.0
    assert retry_delay(0, httpx.Headers({"retry-after": "3600"}), now=now) == 120.0  # capped
    late = format_datetime(now + timedelta(hours=1), usegmt=True)
    assert retry_delay(0, httpx.Headers({"retry-after": late}), now=now) == 120.0
    # A bad header falls back to the computed backoff.
    assert retry_delay(0, httpx.Headers({"retry-after": "soon"}), rand=lambda: 0.0, now=now) == 0.5


def test_backoff_doubles_to_8s_with_up_to_25_percent_jitter():
    assert [retry_delay(n, rand=lambda: 0.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert [retry_delay(n, rand=lambda: 1.0) for n in range(6)] == [0.625, 1.25, 2.5, 5.0, 10.0, 10.0]


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 529])
def test_retryable_statuses_are_retried(status):
    handler = Recorder(
        httpx.Response(status, text="busy"), httpx.Response(200, json=completion((0, "ok", "stop")))
    )
    out, sleeps = send(handler)
    assert out.status == "ok" and out.attempts == 2 and len(sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status):
    error = {
        "error": {"message": "bad request", "type": "invalid_request_error", "param": None, "code": None}
    }
    handler = Recorder(httpx.Response(status, json=error, headers={"x-request-id": "req_e"}))
    out, sleeps = send(handler)
    assert (out.status, out.http_status, out.attempts, sleeps) == ("error", status, 1, [])
    assert (out.error_type, out.error_message, out.provider_request_id) == (
        "invalid_request_error",
        "bad request",
        "req_e",
    )
    assert out.usage is None


def test_it_gives_up_after_max_retries():
    handler = Recorder(httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}}))
    out, sleeps = send(handler, max_retries=3)
    assert out.attempts == 4 and len(handler.requests) == 4
    assert sleeps == [0.5 * 1.125, 1.0 * 1.125, 2.0 * 1.125]
    assert (out.status, out.http_status, out.error_type, out.error_message) == (
        "error",
        500,
        "server_error",
        "boom",
    )


def test_connect_errors_and_timeouts_are_retried():
    handler = Recorder(
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(200, json=completion((0, "ok", "stop"))),
    )
    out, sleeps = send(handler)
    assert out.status == "ok" and out.attempts == 3 and len(sleeps) == 2


def test_a_timeout_on_the_last_attempt_is_the_final_error():
    out, _ = send(Recorder(httpx.ReadTimeout("timed out")), max_retries=1)
    assert (out.status, out.error_type, out.attempts, out.http_status) == ("error", "timeout", 2, None)


def test_a_2xx_that_is_not_json_is_an_error_and_not_retried():
    out, sleeps = send(Recorder(httpx.Response(200, text="<html>gateway</html>")))
    assert (out.status, out.error_type, out.attempts, sleeps) == ("error", "invalid_response", 1, [])


# --- streaming -------------------------------------------------------------------------------------


def test_a_stream_with_n2_accumulates_text_per_choice_index():
    parts = [
        b": keep-alive\n\n",
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
        chunk([delta(1, "Bon")]),
        chunk([delta(0, "Hel")]),
        chunk([delta(1, "jour")]),
        chunk([delta(0, "lo")]),
        chunk([delta(0, None, "stop")]),
        chunk([delta(1, None, "length")]),
        chunk([], {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}),
        b"data: [DONE]\n\n",
    ]
    handler = Recorder(httpx.Response(200, headers={**SSE, "x-request-id": "req_s"}, stream=Chunks(parts)))
    out, _ = send(handler, stream=True)
    assert out.status == "ok" and out.streamed and not out.partial
    assert out.texts == ["Hello", "Bonjour"]  # not "BonHeljourlo"
    assert out.finish_reasons == ["stop", "length"]
    assert out.usage == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
    assert out.provider_request_id == "req_s" and out.response_id == "chatcmpl-2"
    assert out.ttft_ms is not None and out.latency_ms is not None and 0 <= out.ttft_ms <= out.latency_ms


def test_a_stream_cut_before_usage_is_an_error_with_its_partial_text_and_is_not_retried():
    parts = [chunk([delta(0, "The answer")]), chunk([delta(0, " is")])]
    handler = Recorder(
        httpx.Response(200, headers=SSE, stream=Chunks(parts, httpx.ReadError("connection reset"))),
        httpx.Response(200, json=completion((0, "never", "stop"))),
    )
    out, sleeps = send(handler, stream=True)
    assert (out.status, out.error_type, out.partial, out.attempts, sleeps) == (
        "error",
        "stream_cut",
        True,
        1,
        [],
    )
    assert out.texts == ["The answer is"]
    assert out.usage is None
    assert "before usage arrived" in (out.error_message or "") and "ReadError" in (out.error_message or "")


def test_a_stream_that_just_ends_without_done_or_usage_is_cut_too():
    handler = Recorder(httpx.Response(200, headers=SSE, stream=Chunks([chunk([delta(0, "half")])])))
    out, _ = send(handler, stream=True)
    assert (out.status, out.error_type, out.texts) == ("error", "stream_cut", ["half"])


def test_a_finished_stream_without_usage_is_ok_with_usage_unknown():
    parts = [chunk([delta(0, "fine", "stop")]), b"data: [DONE]\n\n"]
    out, _ = send(Recorder(httpx.Response(200, headers=SSE, stream=Chunks(parts))), stream=True)
    assert (out.status, out.usage, out.texts, out.partial) == ("ok", None, ["fine"], False)


def test_a_stream_refused_with_429_is_retried_like_any_request():
    parts = [chunk([delta(0, "ok", "stop")], None), chunk([], USAGE), b"data: [DONE]\n\n"]
    handler = Recorder(
        httpx.Response(
            429, headers={"retry-after": "2"}, json={"error": {"message": "rate", "type": "requests"}}
        ),
        httpx.Response(200, headers=SSE, stream=Chunks(parts)),
    )
    out, sleeps = send(handler, stream=True)
    assert (out.status, out.attempts, sleeps, out.usage) == ("ok", 2, [2.0], USAGE)


def test_a_connection_dropped_before_any_event_is_retried():
    handler = Recorder(
        httpx.Response(200, headers=SSE, stream=Chunks([], httpx.RemoteProtocolError("peer closed"))),
        httpx.Response(
            200,
            headers=SSE,
            stream=Chunks([chunk([delta(0, "x", "stop")]), chunk([], USAGE), b"data: [DONE]\n\n"]),
        ),
    )
    out, sleeps = send(handler, stream=True)
    assert (out.status, out.attempts, len(sleeps)) == ("ok", 2, 1)


def test_an_error_event_inside_a_stream_is_recorded():
    parts = [
        chunk([delta(0, "partial")]),
        b'data: {"error": {"message": "model overloaded", "type": "server_error"}}\n\n',
    ]
    out, _ = send(Recorder(httpx.Response(200, headers=SSE, stream=Chunks(parts))), stream=True)
    assert (out.status, out.error_type, out.error_message, out.texts, out.partial) == (
        "error", "server_error", "model overloaded", ["partial"], True,
    )  # fmt: skip


def test_sse_decoder_joins_data_lines_and_skips_comments_and_other_fields():
    decoder = SSEDecoder()
    events = [
        decoder.feed(line) for line in [": ping", "event: message", 'data: {"a":', "data:1}", "id: 5", ""]
    ]
    assert events == [None, None, None, None, None, '{"a":\n1}']
    assert decoder.feed("") is None  # a blank line with nothing pending dispatches nothing


# --- the key never leaks ---------------------------------------------------------------------------


def test_the_key_is_scrubbed_from_transport_errors_and_error_bodies():
    def echo_headers(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy said no to {dict(request.headers)}", request=request)

    out, _ = send(Recorder(echo_headers), max_retries=1)
    assert out.status == "error" and out.error_type == "connection_error"
    assert KEY not in (out.error_message or "") and "Bearer ***" in (out.error_message or "")

    def echo_body(request: httpx.Request) -> httpx.Response:
        auth = request.headers["authorization"]
        return httpx.Response(
            401, json={"error": {"message": f"bad key {auth}", "type": "invalid_request_error"}}
        )

    out, _ = send(Recorder(echo_body))
    assert KEY not in (out.error_message or "") and out.http_status == 401
    assert KEY not in repr(ClientConfig(base_url="https://x/v1", api_key=KEY))


# --- rate limits -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def starts(limiter: RateLimiter, clock: FakeClock, costs: list[int]) -> list[float]:
    async def go() -> list[float]:
        times = []
        for cost in costs:
            await limiter.acquire(cost)
            times.append(round(clock.now, 6))
        return times

    return asyncio.run(go())


def test_rpm_spreads_requests_evenly_after_a_one_second_burst():
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(rpm=120), clock=clock, sleep=clock.sleep)
    # 120/min = one every 0.5 s; up to 1 s of allowance may be used at once.
    assert starts(limiter, clock, [0] * 6) == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]


def test_tpm_waits_for_a_big_request_instead_of_deadlocking():
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(tpm=6000), clock=clock, sleep=clock.sleep)  # 100 tokens/s
    # 1,000 tokens are 10 s of allowance: the next request waits until 9 s (1 s burst).
    assert starts(limiter, clock, [1000, 100, 100]) == [0.0, 9.0, 10.0]


def test_both_limits_apply_and_no_limit_never_waits():
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(rpm=60, tpm=600_000), clock=clock, sleep=clock.sleep)
    assert starts(limiter, clock, [10, 10, 10]) == [0.0, 0.0, 1.0]  # the request limit binds
    free = RateLimiter(RateLimits(), clock=clock, sleep=clock.sleep)
    assert not free.active and starts(free, clock, [10**9]) == [1.0]
