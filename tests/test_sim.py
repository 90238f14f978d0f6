"""The simulated provider answers like OpenAI, tells the truth about usage, and faults on demand.

Most tests drive the ASGI app in-process through ``httpx.ASGITransport`` (no sockets); the last ones
serve it with uvicorn on a free loopback port, where ``drop`` and ``cut`` really close the socket.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import openai
import pytest
from helpers import reference_count, reference_prompt_tokens, wait_until

from costlens.errors import ConfigError
from costlens.send import sim as sim_module
from costlens.send.sim import SimApp, SimConfig, SimulatedDisconnect, create_app, running_server, serve

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 2+2? Explain briefly."},
]


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": MESSAGES, **extra}


class Sim:
    """Synchronous calls into an in-process simulator (each request is one ``asyncio.run``)."""

    def __init__(self, app: SimApp | None = None, **config: Any) -> None:
        self.app = app or create_app(SimConfig(**config))

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            return await client.request(method, path, **kwargs)

    def post(
        self, payload: Any = None, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        payload = body() if payload is None else payload
        return asyncio.run(
            self._request("POST", "/v1/chat/completions", json=payload, headers=headers or {}, **kwargs)
        )

    def get(self, path: str) -> httpx.Response:
        return asyncio.run(self._request("GET", path))

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.get("/_sim/stats").json()
        return stats


@pytest.fixture
def sim() -> Sim:
    return Sim(seed=7)


def sse_events(text: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, checking the framing on the way."""
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") and "\n" not in e for e in events), events
    return [e[len("data: ") :] for e in events]


async def call_asgi_into(
    app: SimApp, payload: dict[str, Any], headers: dict[str, str], sent: list[Any]
) -> None:
    """Drive the app by hand, appending every message it sends to ``sent`` (to see what a cut left)."""
    raw = json.dumps(payload).encode()
    delivered = False
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5555),
    }
    try:
        await app(scope, receive, send)
    finally:
        done.set()


# --- the happy path, usage truth -------------------------------------------------------------------


def test_completion_shape_and_labels(sim: Sim) -> None:
    r = sim.post(headers={"x-costlens-request": "r-1"})
    assert r.status_code == 200
    assert r.headers["x-costlens-simulated"] == "1"
    assert r.headers["x-request-id"].startswith("req_sim_")
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-sim-")
    assert data["model"] == "gpt-4o-mini"
    assert data["simulated"] is True
    assert data["system_fingerprint"] == "costlens-sim"
    assert isinstance(data["created"], int)
    [choice] = data["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("openai/gpt-3.5-turbo", "cl100k_base"),
        ("some-local-model", "o200k_base"),
    ],
)
@pytest.mark.parametrize("n", [1, 3])
def test_usage_is_tokenizer_true(sim: Sim, model: str, encoding: str, n: int) -> None:
    messages = [*MESSAGES, {"role": "user", "name": "ann", "content": [{"type": "text", "text": "And 3+3?"}]}]
    data = sim.post({"model": model, "messages": messages, "n": n}).json()
    assert data["model"] == model
    texts = [c["message"]["content"] for c in data["choices"]]
    assert [c["index"] for c in data["choices"]] == list(range(n))
    assert len(set(texts)) == n  # each choice is its own text
    usage = data["usage"]
    # A text part counts as the same text given as a string (the cookbook recipe counts strings).
    as_strings = [*MESSAGES, {"role": "user", "name": "ann", "content": "And 3+3?"}]
    assert usage["prompt_tokens"] == reference_prompt_tokens(as_strings, encoding)
    assert usage["completion_tokens"] == sum(reference_count(t, encoding) for t in texts)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_text_is_deterministic_per_seed_and_request() -> None:
    first = Sim(seed=1).post().json()["choices"][0]["message"]["content"]
    assert Sim(seed=1).post().json()["choices"][0]["message"]["content"] == first
    assert Sim(seed=2).post().json()["choices"][0]["message"]["content"] != first
    other = body(messages=[{"role": "user", "content": "Something else"}])
    assert Sim(seed=1).post(other).json()["choices"][0]["message"]["content"] != first


def test_max_tokens_cuts_with_finish_reason_length(sim: Sim) -> None:
    full = sim.post().json()["choices"][0]["message"]["content"]
    assert reference_count(full) > 5
    for field in ("max_tokens", "max_completion_tokens"):
        data = sim.post(body(**{field: 5})).json()
        [choice] = data["choices"]
        assert choice["finish_reason"] == "length"
        assert reference_count(choice["message"]["content"]) == 5
        assert full.startswith(choice["message"]["content"])
        assert data["usage"]["completion_tokens"] == 5
    roomy = sim.post(body(max_tokens=10_000)).json()["choices"][0]
    assert (roomy["message"]["content"], roomy["finish_reason"]) == (full, "stop")


def test_stop_sequences_end_the_text_before_them(sim: Sim) -> None:
    full = sim.post().json()["choices"][0]["message"]["content"]
    words = full.split(" ")
    stop = " " + words[3]
    expected = full[: full.find(stop)]
    for value in (stop, ["never-there", stop]):
        data = sim.post(body(stop=value)).json()
        [choice] = data["choices"]
        assert choice["message"]["content"] == expected
        assert choice["finish_reason"] == "stop"
        assert data["usage"]["completion_tokens"] == reference_count(expected)


# --- streaming -------------------------------------------------------------------------------------


def test_stream_with_usage_framing_and_text(sim: Sim) -> None:
    plain = sim.post(body(n=2)).json()
    r = sim.post(body(n=2, stream=True, stream_options={"include_usage": True}))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-costlens-simulated"] == "1"
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    *choice_chunks, usage_chunk = chunks
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == plain["usage"]
    texts: dict[int, str] = {0: "", 1: ""}
    finish: dict[int, str] = {}
    for chunk in choice_chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["usage"] is None
        assert chunk["model"] == "gpt-4o-mini" and chunk["simulated"] is True
        [choice] = chunk["choices"]  # one choice per chunk
        texts[choice["index"]] += choice["delta"].get("content", "")
        if choice["finish_reason"]:
            finish[choice["index"]] = choice["finish_reason"]
    assert texts == {i: c["message"]["content"] for i, c in enumerate(plain["choices"])}
    assert finish == {0: "stop", 1: "stop"}
    order = [c["choices"][0]["index"] for c in choice_chunks]
    assert order != sorted(order)  # interleaved: a client must accumulate per index
    assert len({c["id"] for c in chunks}) == 1


def test_stream_without_include_usage_has_no_usage(sim: Sim) -> None:
    events = sse_events(sim.post(body(stream=True)).text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in c and len(c["choices"]) == 1 for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_honours_max_tokens(sim: Sim) -> None:
    events = sse_events(
        sim.post(body(stream=True, max_tokens=3, stream_options={"include_usage": True})).text
    )
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert reference_count(text) == 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


# --- faults ----------------------------------------------------------------------------------------


def test_fault_429_has_retry_headers_and_openai_error(sim: Sim) -> None:
    r = sim.post(headers={"x-sim-fault": "429"})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert r.headers["retry-after-ms"] == "1000"
    assert r.headers["x-costlens-simulated"] == "1"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    quick = sim.post(headers={"x-sim-fault": "429", "x-sim-retry-after-ms": "50"})
    assert (quick.headers["retry-after"], quick.headers["retry-after-ms"]) == ("1", "50")


@pytest.mark.parametrize("status", ["500", "503"])
def test_fault_5xx_has_openai_error_body(sim: Sim, status: str) -> None:
    r = sim.post(headers={"x-sim-fault": status})
    assert r.status_code == int(status)
    error = r.json()["error"]
    assert error["type"] == "server_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_fault_drop_in_process_raises(sim: Sim) -> None:
    with pytest.raises(SimulatedDisconnect):
        sim.post(headers={"x-sim-fault": "drop"})


def test_fault_cut_stream_stops_before_finish_and_usage() -> None:
    app = create_app()
    payload = body(stream=True, stream_options={"include_usage": True})
    sent: list[Any] = []

    async def run() -> None:
        with pytest.raises(SimulatedDisconnect):
            await call_asgi_into(app, payload, {"x-sim-fault": "cut"}, sent)

    asyncio.run(run())
    assert sent[0]["status"] == 200
    streamed = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert streamed.startswith("data: ")
    assert '"finish_reason":"stop"' not in streamed
    assert '"usage":{' not in streamed and "[DONE]" not in streamed
    assert all(m.get("more_body") for m in sent[1:])
    assert app.stats.as_json()["completions"] == 0


def test_fault_cut_non_stream_sends_half_a_body() -> None:
    app = create_app()
    sent: list[Any] = []

    async def run() -> None:
        with pytest.raises(SimulatedDisconnect):
            await call_asgi_into(app, body(), {"x-sim-fault": "cut"}, sent)

    asyncio.run(run())
    declared = int(dict(sent[0]["headers"])[b"content-length"])
    assert 0 < len(sent[1]["body"]) < declared


def test_fault_slow_holds_then_answers(sim: Sim) -> None:
    start = time.perf_counter()
    r = sim.post(headers={"x-sim-fault": "slow", "x-sim-slow-ms": "300"})
    assert time.perf_counter() - start >= 0.3
    assert r.status_code == 200


def test_latency_option_and_header() -> None:
    slow = Sim(latency_ms=200)
    start = time.perf_counter()
    assert slow.post().status_code == 200
    assert time.perf_counter() - start >= 0.2  # a lower bound: a loaded machine only adds to it
    # The header beats the option: with ten minutes of latency configured, an answer at all (within
    # a generous minute, however loaded the machine) means the header's 0 was used.
    stalled = Sim(latency_ms=600_000)
    answered = asyncio.run(
        asyncio.wait_for(
            stalled._request("POST", "/v1/chat/completions", json=body(), headers={"x-sim-latency-ms": "0"}),
            timeout=60,
        )
    )
    assert answered.status_code == 200


def test_header_beats_error_rate() -> None:
    always = Sim(error_rate=1.0)
    assert always.post(headers={"x-sim-fault": "none"}).status_code == 200
    assert always.post(headers={"x-sim-fault": "503"}).status_code == 503


def test_unknown_fault_is_a_400(sim: Sim) -> None:
    r = sim.post(headers={"x-sim-fault": "explode"})
    assert r.status_code == 400
    assert "unknown fault 'explode'" in r.json()["error"]["message"]


def test_fault_once_only_hits_the_first_attempt(sim: Sim) -> None:
    headers = {"x-costlens-request": "r-1", "x-sim-fault-once": "500"}
    assert sim.post(headers=headers).status_code == 500
    assert sim.post(headers=headers).status_code == 200
    assert sim.post(headers=headers).status_code == 200
    # the same custom_id on another model is another request: its first attempt faults too
    assert sim.post(body(model="gpt-4o"), headers=headers).status_code == 500
    stats = sim.stats()
    assert stats["attempts"] == {"r-1": {"gpt-4o": 1, "gpt-4o-mini": 3}}
    assert stats["completed"] == {"r-1": {"gpt-4o-mini": 2}}
    assert stats["faults"] == {"500": 2}


def outcomes(app: SimApp, ids: list[str], *, concurrent: bool) -> dict[str, int | str]:
    async def one(client: httpx.AsyncClient, rid: str) -> tuple[str, int | str]:
        try:
            r = await client.post("/v1/chat/completions", json=body(), headers={"x-costlens-request": rid})
            return rid, r.status_code
        except SimulatedDisconnect:
            return rid, "disconnect"

    async def run() -> dict[str, int | str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            if concurrent:
                return dict(await asyncio.gather(*(one(client, rid) for rid in ids)))
            return dict([await one(client, rid) for rid in ids])

    return asyncio.run(run())


def test_error_rate_is_a_deterministic_fraction() -> None:
    ids = [f"r-{i}" for i in range(300)]
    first = outcomes(create_app(SimConfig(error_rate=0.3, seed=5)), ids, concurrent=False)
    again = outcomes(create_app(SimConfig(error_rate=0.3, seed=5)), list(reversed(ids)), concurrent=True)
    assert first == again  # same seed, same faults, whatever the order or concurrency
    faulted = [o for o in first.values() if o != 200]
    assert 0.2 < len(faulted) / len(ids) < 0.4
    assert set(faulted) <= {429, 500, 503, "disconnect"}
    other_seed = outcomes(create_app(SimConfig(error_rate=0.3, seed=6)), ids, concurrent=False)
    assert other_seed != first
    assert set(outcomes(create_app(SimConfig(error_rate=0.0)), ids[:50], concurrent=True).values()) == {200}


def test_retries_of_a_faulted_request_draw_again() -> None:
    app = create_app(SimConfig(error_rate=0.5, seed=1, fault_mix={"503": 1}))
    sim = Sim(app)
    statuses = [sim.post(headers={"x-costlens-request": "same"}).status_code for _ in range(40)]
    assert {200, 503} == set(statuses)


# --- stats, other routes, validation ---------------------------------------------------------------


def test_stats_count_successful_completions_per_request_and_model(sim: Sim) -> None:
    usages = []
    for rid, model in [("a", "gpt-4o-mini"), ("a", "gpt-4o"), ("b", "gpt-4o-mini")]:
        usages.append(sim.post(body(model=model), headers={"x-costlens-request": rid}).json()["usage"])
    stream = sim.post(
        body(stream=True, stream_options={"include_usage": True}), headers={"x-costlens-request": "c"}
    )
    usages.append(json.loads(sse_events(stream.text)[-2])["usage"])
    sim.post(headers={"x-costlens-request": "b", "x-sim-fault": "429"})
    with pytest.raises(SimulatedDisconnect):
        sim.post(headers={"x-costlens-request": "d", "x-sim-fault": "drop"})
    sim.post()  # no x-costlens-request: counted in the totals only
    stats = sim.stats()
    assert stats["completed"] == {
        "a": {"gpt-4o": 1, "gpt-4o-mini": 1},
        "b": {"gpt-4o-mini": 1},
        "c": {"gpt-4o-mini": 1},
    }
    assert stats["completions"] == 5
    assert stats["requests"] == 7
    assert stats["faults"] == {"429": 1, "drop": 1}
    assert stats["attempts"]["b"] == {"gpt-4o-mini": 2}
    assert stats["usage"]["prompt_tokens"] >= sum(u["prompt_tokens"] for u in usages)
    assert stats["simulated"] is True
    reset = asyncio.run(sim._request("POST", "/_sim/reset"))
    assert reset.status_code == 200
    assert sim.stats()["completions"] == 0 and sim.stats()["completed"] == {}


def test_models_and_health(sim: Sim) -> None:
    models = sim.get("/v1/models").json()
    assert models["object"] == "list"
    assert "gpt-4o-mini" in {m["id"] for m in models["data"]}
    health = sim.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.headers["x-costlens-simulated"] == "1"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"content": "no role"}]}, "messages"),
        (body(n=0), "n"),
        (body(n=True), "n"),
        (body(max_tokens=0), "max_tokens"),
        (body(stop=["a", "b", "c", "d", "e"]), "stop"),
        (body(stream="yes"), "stream"),
    ],
)
def test_invalid_requests_are_400_with_param(sim: Sim, payload: dict[str, Any], param: str) -> None:
    r = sim.post(payload)
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert sim.stats()["invalid"] == 1


def test_not_json_unknown_route_wrong_method(sim: Sim) -> None:
    r = asyncio.run(sim._request("POST", "/v1/chat/completions", content=b"{not json"))
    assert r.status_code == 400
    assert sim.get("/v1/embeddings").status_code == 404
    assert sim.get("/v1/chat/completions").status_code == 405


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="error rate"):
        SimConfig(error_rate=1.5)
    with pytest.raises(ConfigError, match="latency"):
        SimConfig(latency_ms=-1)
    with pytest.raises(ConfigError, match="fault mix"):
        SimConfig(fault_mix={"teapot": 1})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="port"):
        serve("127.0.0.1", 70000, latency_ms=0, error_rate=0, seed=0)


# --- a real uvicorn server on loopback -------------------------------------------------------------


class FinishedSim(SimApp):
    """The simulator, noting the ``x-costlens-request`` of each chat request once its handler has
    returned (answered or not), so a test can wait for that instead of sleeping."""

    finished: list[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if scope["type"] == "http":
                headers = dict(scope.get("headers", []))
                self.finished.append(headers.get(b"x-costlens-request", b"").decode("latin-1"))


def test_real_server_faults_close_the_socket_and_stats_count_only_successes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sim_module, "SimApp", FinishedSim)
    with running_server(SimConfig(seed=3)) as sim, httpx.Client(base_url=sim.base_url) as client:
        assert sim.url.startswith("http://127.0.0.1:")
        ok = client.post("/chat/completions", json=body(), headers={"x-costlens-request": "ok"})
        assert ok.status_code == 200 and ok.headers["x-costlens-simulated"] == "1"

        with client.stream(
            "POST",
            "/chat/completions",
            json=body(stream=True, stream_options={"include_usage": True}),
            headers={"x-costlens-request": "stream"},
        ) as r:
            events = [line for line in r.iter_lines() if line]
        assert events[-1] == "data: [DONE]"
        assert json.loads(events[-2][6:])["usage"]["prompt_tokens"] == reference_prompt_tokens(MESSAGES)

        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            client.post(
                "/chat/completions",
                json=body(),
                headers={"x-costlens-request": "drop", "x-sim-fault": "drop"},
            )
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            client.post(
                "/chat/completions",
                json=body(stream=True, stream_options={"include_usage": True}),
                headers={"x-costlens-request": "cut", "x-sim-fault": "cut"},
            )
        with pytest.raises(httpx.ReadTimeout):
            client.post(
                "/chat/completions",
                json=body(),
                headers={"x-costlens-request": "slow", "x-sim-fault": "slow", "x-sim-slow-ms": "600"},
                timeout=0.2,
            )
        # Every handler has returned: the slow one as soon as it saw the client go (it would have
        # answered after its 600 ms otherwise, and the stats would say so).
        app = sim.app
        assert isinstance(app, FinishedSim)
        wait_until(lambda: {"ok", "stream", "drop", "cut", "slow"} <= set(app.finished), "every handler")
        stats = httpx.get(sim.url + "/_sim/stats").json()
        assert stats["completed"] == {"ok": {"gpt-4o-mini": 1}, "stream": {"gpt-4o-mini": 1}}
        assert stats["attempts"]["slow"] == {"gpt-4o-mini": 1}
        assert stats["faults"] == {"cut": 1, "drop": 1, "slow": 1}
        assert sim.app.stats.completions == 2


def test_real_server_official_sdk_retries_a_fault_once() -> None:
    with running_server(SimConfig(retry_after_ms=50)) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=2)
        for fault in ("429", "503", "drop"):
            completion = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                extra_headers={"x-costlens-request": f"once-{fault}", "x-sim-fault-once": fault},
            )
            assert completion.usage is not None
            assert completion.usage.prompt_tokens == reference_prompt_tokens(MESSAGES)
        # The server counts a completion once it has sent the last byte, which
        # can be just after the client has read it: wait for it.
        wait_until(lambda: len(sim.app.stats.as_json()["completed"]) == 3, "three completions counted")
        stats = sim.app.stats.as_json()
        for fault in ("429", "503", "drop"):
            assert stats["attempts"][f"once-{fault}"] == {"gpt-4o-mini": 2}
            assert stats["completed"][f"once-{fault}"] == {"gpt-4o-mini": 1}


def test_serve_reports_a_busy_port() -> None:
    with running_server() as sim:
        port = int(sim.url.rsplit(":", 1)[1])
        errors: list[BaseException] = []

        def run() -> None:
            try:
                serve("127.0.0.1", port, latency_ms=0, error_rate=0, seed=0, log_level="critical")
            except BaseException as e:  # noqa: BLE001 - collected for the assertion below
                errors.append(e)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(10)
        assert not thread.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], ConfigError)
