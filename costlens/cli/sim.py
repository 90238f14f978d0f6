"""`costlens serve-sim`: the simulated OpenAI-compatible provider for demos and tests."""

from __future__ import annotations

import click


@click.command("serve-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback).")
@click.option("--port", type=click.IntRange(0, 65535), default=18181, show_default=True, help="Port.")
@click.option(
    "--latency-ms", type=click.IntRange(min=0), default=0, show_default=True, help="Delay per answer."
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of attempts that get a fault (429, 500, 503, dropped or cut connection).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for texts and faults.")
@click.option(
    "--reported-cost",
    type=click.Choice(["none", "usage", "litellm"]),
    default="none",
    show_default=True,
    help="Say what each answer cost, as gateways do: in usage.cost (OpenRouter style) or in the "
    "x-litellm-response-cost header (LiteLLM style), at a made-up $2.50 / $10 per 1M input / output tokens.",
)
def serve_sim(
    host: str, port: int, latency_ms: int, error_rate: float, seed: int, reported_cost: str
) -> None:
    """Serve a simulated OpenAI-compatible chat API (no real model) for trying `costlens run`:
    costlens run FILE --base-url http://127.0.0.1:18181/v1."""
    from costlens.send import sim  # lazy: only this command needs the simulator and uvicorn

    sim.serve(
        host, port, latency_ms=latency_ms, error_rate=error_rate, seed=seed, reported_cost=reported_cost
    )
