"""`llm-pipeline-simulator`: run the simulator in the foreground until Ctrl-C or `--exit-after`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from llm_pipeline.simulator.config import KNOWN_MODELS, Faults, Latency, Limits, SimulatorConfig
from llm_pipeline.simulator.process import run

__all__ = ["build_parser", "config_from_args", "main"]

_EPILOG = """\
Point any SDK script or the pipeline at it:
  export ANTHROPIC_BASE_URL=http://127.0.0.1:PORT   # the URL printed as "listening on ..."
  export ANTHROPIC_API_KEY=sk-sim-anything          # must equal --api-key when one is set

Control endpoints (no auth, never faulted):
  GET  /_sim/health            liveness
  GET  /_sim/stats[?times=1]   counters: attempts, successes, status counts, limiter vs injected 429s,
                               dropped, hung, in-flight, tokens, batches, per-request successes
  GET  /_sim/config            live configuration
  PUT  /_sim/faults            replace all fault switches, e.g. {"p429": 0.1, "retry_after_s": 2}
                               or {"schedule": [{"kind": "429", "count": 3, "retry_after_s": 3}]}
  PUT  /_sim/config            change limits, latency, api_key, batch knobs, ... at run time
  POST /_sim/reset             back to the start configuration, counters zeroed
  POST /_sim/prompt_cache/evict  forget every cached prompt prefix (an eviction before the TTL)

Docs: docs/simulator.md
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-pipeline-simulator",
        description="An Anthropic-compatible Messages/Batches API with rate limits and fault switches.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    server.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default: %(default)s)")
    server.add_argument("--api-key", help="require this key (x-api-key or Bearer); wrong/missing key -> 401")
    server.add_argument(
        "--seed", type=int, default=0, help="seed of the fault/latency/batch RNG (default: 0)"
    )
    server.add_argument(
        "--exit-after", type=float, metavar="SECONDS", help="stop by itself after this many seconds"
    )
    server.add_argument(
        "--models", help="comma-separated model ids to accept (default: the known Claude ids)"
    )
    server.add_argument("--extra-models", help="comma-separated model ids accepted in addition")
    server.add_argument(
        "--context-window", type=int, default=200_000, help="prompt token limit (default: 200000)"
    )
    server.add_argument(
        "--max-output-tokens", type=int, default=128_000, help="max_tokens ceiling (default: 128000)"
    )
    server.add_argument(
        "--prompt-cache-min-tokens", type=int, default=1024, help="smallest cacheable prefix (default: 1024)"
    )
    server.add_argument(
        "--prompt-cache-min-tokens-for",
        action="append",
        metavar="MODEL=N",
        help="smallest cacheable prefix for one model (repeatable)",
    )
    server.add_argument(
        "--itpm-counts-cache-reads",
        nargs="+",
        metavar="MODEL",
        help="models whose input-token limit counts cache reads (the API's older models)",
    )

    limits = parser.add_argument_group("rate limits (per model; unset = unlimited)")
    limits.add_argument("--rpm", type=float, help="requests per minute")
    limits.add_argument("--itpm", type=float, help="input tokens per minute")
    limits.add_argument(
        "--otpm", type=float, help="output tokens per minute (max_tokens booked, unused refunded)"
    )
    limits.add_argument(
        "--burst-seconds", type=float, default=60.0, help="bucket size in seconds of refill (default: 60)"
    )
    limits.add_argument(
        "--no-rate-limit-headers",
        action="store_true",
        help="send no anthropic-ratelimit-* headers (as behind a gateway that strips them)",
    )
    limits.add_argument(
        "--round-token-remaining",
        action="store_true",
        help="round token -remaining headers to the nearest thousand, as the API does",
    )

    latency = parser.add_argument_group("latency (all 0 = answer immediately)")
    latency.add_argument("--latency-median", type=float, default=0.0, help="lognormal median, seconds")
    latency.add_argument("--latency-sigma", type=float, default=0.0, help="lognormal sigma (spread)")
    latency.add_argument(
        "--latency-per-output-token", type=float, default=0.0, help="seconds per output token"
    )

    faults = parser.add_argument_group(
        "faults (probabilities per request; change at run time via /_sim/faults)"
    )
    faults.add_argument("--p429", type=float, default=0.0, help="injected 429 rate_limit_error")
    faults.add_argument(
        "--retry-after", type=float, default=1.0, help="retry-after of injected 429s (default: 1)"
    )
    faults.add_argument("--p500", type=float, default=0.0, help="500 api_error")
    faults.add_argument("--p529", type=float, default=0.0, help="529 overloaded_error")
    faults.add_argument("--p-drop", type=float, default=0.0, help="close the connection without a response")
    faults.add_argument("--p-hang", type=float, default=0.0, help="hold the request for --hang-seconds")
    faults.add_argument("--hang-seconds", type=float, default=600.0, help="how long a hung request is held")
    faults.add_argument(
        "--p-malformed", type=float, default=0.0, help="tool input/JSON that breaks the schema"
    )
    faults.add_argument("--p-bad-json", type=float, default=0.0, help="JSON output text that does not parse")
    faults.add_argument("--p-refusal", type=float, default=0.0, help='stop_reason "refusal"')
    faults.add_argument("--p-truncated-body", type=float, default=0.0, help="200 whose JSON body is cut")
    faults.add_argument("--p-html-body", type=float, default=0.0, help="200 with an HTML error page")
    faults.add_argument(
        "--p-unknown-block", type=float, default=0.0, help="200 Message with an unknown content block"
    )
    faults.add_argument(
        "--bill-abandoned",
        action="store_true",
        help="bill a request whose client left before its answer was delivered (default: not billed)",
    )
    faults.add_argument("--outage", type=int, choices=(500, 529), help="fail every request with this status")
    faults.add_argument(
        "--no-gullible",
        action="store_true",
        help="ignore \"ignore previous instructions ... 'word'\" in documents (default: obey it)",
    )
    faults.add_argument(
        "--fault-models",
        nargs="+",
        metavar="MODEL",
        help="confine every fault to requests for these models (default: all models)",
    )

    batches = parser.add_argument_group("message batches")
    batches.add_argument(
        "--batch-processing-seconds", type=float, default=0.0, help="requests finish spread over this time"
    )
    batches.add_argument(
        "--batch-expiry-seconds", type=float, default=86_400.0, help="unfinished requests expire after this"
    )
    batches.add_argument("--batch-p-errored", type=float, default=0.0, help="chance a valid request errors")
    batches.add_argument("--batch-p-expired", type=float, default=0.0, help="chance a request expires")
    return parser


def _models(args: argparse.Namespace) -> tuple[str, ...]:
    models = [m.strip() for m in args.models.split(",")] if args.models else list(KNOWN_MODELS)
    if args.extra_models:
        models += [m.strip() for m in args.extra_models.split(",")]
    return tuple(m for m in models if m)


def _per_model_minimums(args: argparse.Namespace) -> dict[str, int]:
    minimums: dict[str, int] = {}
    for item in args.prompt_cache_min_tokens_for or ():
        model, sep, value = item.partition("=")
        if not sep or not model.strip() or not value.strip().isdigit():
            raise ValueError(f"--prompt-cache-min-tokens-for wants MODEL=N, got {item!r}")
        minimums[model.strip()] = int(value)
    return minimums


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        seed=args.seed,
        exit_after_s=args.exit_after,
        models=_models(args),
        context_window=args.context_window,
        max_output_tokens=args.max_output_tokens,
        prompt_cache_min_tokens=args.prompt_cache_min_tokens,
        model_prompt_cache_min_tokens=_per_model_minimums(args),
        itpm_counts_cache_reads=tuple(args.itpm_counts_cache_reads or ()),
        limits=Limits(rpm=args.rpm, itpm=args.itpm, otpm=args.otpm, burst_seconds=args.burst_seconds),
        rate_limit_headers=not args.no_rate_limit_headers,
        round_token_remaining=args.round_token_remaining,
        latency=Latency(args.latency_median, args.latency_sigma, args.latency_per_output_token),
        faults=Faults(
            p429=args.p429,
            retry_after_s=args.retry_after,
            p500=args.p500,
            p529=args.p529,
            p_drop=args.p_drop,
            p_hang=args.p_hang,
            hang_s=args.hang_seconds,
            p_malformed=args.p_malformed,
            p_bad_json=args.p_bad_json,
            p_refusal=args.p_refusal,
            p_truncated_body=args.p_truncated_body,
            p_html_body=args.p_html_body,
            p_unknown_block=args.p_unknown_block,
            outage=args.outage,
            gullible=not args.no_gullible,
            models=tuple(args.fault_models or ()),
        ),
        batch_processing_s=args.batch_processing_seconds,
        batch_expiry_s=args.batch_expiry_seconds,
        batch_p_errored=args.batch_p_errored,
        batch_p_expired=args.batch_p_expired,
        bill_abandoned=args.bill_abandoned,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    run(config)
