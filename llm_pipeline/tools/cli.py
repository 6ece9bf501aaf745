"""`llm-pipeline`: the project's own commands beside `dagster` (demo, web UI, ledger upkeep, limits).

Each subcommand imports its module only when chosen, so `llm-pipeline --help` stays instant and a
ledger command does not load Dagster.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta


def _demo(args: argparse.Namespace) -> int:
    from llm_pipeline.tools.demo import run

    return run(data_dir=args.data_dir, partitions=args.partition or None)


def _ui(args: argparse.Namespace) -> int:
    from llm_pipeline.tools.ui import run

    return run(host=args.host, port=args.port)


def _ledger_stats(args: argparse.Namespace) -> int:
    from llm_pipeline.tools.ledger_cli import stats

    return stats(args.state)


def _ledger_prune(args: argparse.Namespace) -> int:
    from llm_pipeline.tools.ledger_cli import prune

    return prune(args.older_than, args.state)


def _ledger_delete(args: argparse.Namespace) -> int:
    from llm_pipeline.claude.ledger import LedgerSelection
    from llm_pipeline.tools.ledger_cli import delete

    selection = LedgerSelection(
        fingerprints=tuple(args.fingerprint),
        keys=tuple(args.key),
        models=tuple(args.model),
        steps=tuple(args.step),
    )
    return delete(selection, args.state)


def _ledger_accept_reset(args: argparse.Namespace) -> int:
    from llm_pipeline.tools.ledger_cli import accept_reset

    return accept_reset(args.state, args.spool_dir)


def _limits(args: argparse.Namespace) -> int:
    from llm_pipeline.tools.limits_cli import show

    return show(args.state)


def _age(text: str) -> timedelta:
    from llm_pipeline.tools.ledger_cli import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-pipeline",
        description="Run the llm_pipeline demo, its web UI, upkeep of its durable state, and show the "
        "rate limits it learned.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="materialize every asset for every day in <data-dir>/raw on the embedded simulator",
        description="Materialize every asset and check for every sample day, print a summary and "
        "the Parquet paths. Uses the simulator unless ANTHROPIC_API_KEY is set.",
    )
    demo.add_argument(
        "--data-dir",
        default=None,
        help="root of raw/ and warehouse/, a path or a URL such as s3://bucket/prefix "
        "(default: $LLM_PIPELINE_DATA_DIR or data)",
    )
    demo.add_argument("--partition", action="append", help="only this day (YYYY-MM-DD); repeatable")
    demo.set_defaults(handler=_demo)

    ui = commands.add_parser(
        "ui",
        help="start the Dagster web UI and daemon (dagster dev) on the repository's instance",
        description="Start `dagster dev` with $DAGSTER_HOME (the repository's .dagster_home by "
        "default); Ctrl-C stops the webserver, the daemon and the code server.",
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=_ui)

    ledger = commands.add_parser(
        "ledger",
        help="inspect, prune or delete from the durable request → answer ledger",
        description="The ledger stores every paid answer so re-runs and backfills never pay twice. "
        "Its location is --state, else $LLM_PIPELINE_STATE, else $DAGSTER_HOME, else .llm_state.",
    )
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    ledger_stats = ledger_commands.add_parser("stats", help="answers stored, tokens, oldest and newest")
    ledger_stats.set_defaults(handler=_ledger_stats)
    ledger_prune = ledger_commands.add_parser("prune", help="delete answers older than an age")
    ledger_prune.add_argument("--older-than", required=True, type=_age, help="age: 30d, 12h, 90m, 3600s, 2w")
    ledger_prune.set_defaults(handler=_ledger_prune)
    ledger_delete = ledger_commands.add_parser(
        "delete",
        help="delete the answers of a step, model, document key or fingerprint (any that match)",
        description="The next run asks for the deleted answers again (and pays for them). Each option "
        "is repeatable; an answer matching any of them goes.",
    )
    for option, what in (
        ("--step", "a pipeline step, e.g. classifications"),
        ("--model", "a model id"),
        ("--key", "a document id"),
        ("--fingerprint", "a request fingerprint (with or without its endpoint: prefix)"),
    ):
        ledger_delete.add_argument(option, action="append", default=[], help=what)
    ledger_delete.set_defaults(handler=_ledger_delete)
    ledger_reset = ledger_commands.add_parser(
        "accept-reset",
        help="accept that the Redis state lost its data, so runs go on (and pay for the lost answers)",
    )
    ledger_reset.add_argument("--spool-dir", default=None, help="default: $LLM_PIPELINE_SPOOL_DIR, ...")
    ledger_reset.set_defaults(handler=_ledger_accept_reset)
    limits = commands.add_parser(
        "limits",
        help="the rate limits learned from the API's headers, per endpoint and model",
        description="What the shared state learned from the anthropic-ratelimit-* headers (limits, "
        "bucket depth, when seen), this environment's caps and share, and the limits in effect. "
        "The state is --state, else $LLM_PIPELINE_STATE, else $DAGSTER_HOME, else .llm_state.",
    )
    limits.set_defaults(handler=_limits)
    for sub in (ledger_stats, ledger_prune, ledger_delete, ledger_reset, limits):
        sub.add_argument("--state", default=None, help="a state directory or redis:// URL")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
