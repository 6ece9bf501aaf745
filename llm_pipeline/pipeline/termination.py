"""How a stopped run becomes a drain: the Dagster half of `claude/drain.py`.

How Dagster 1.13 stops a run worker executing an async asset (read from its source):

- a termination from the UI marks the run CANCELING and asks the code server
  (`DefaultRunLauncher.terminate` → gRPC `CancelExecution`) to set the run's termination event;
  the run process's termination thread then sends itself SIGINT (`dagster_shared.ipc.send_interrupt`);
- SIGTERM (a pod eviction, `kill`) is mapped onto the SIGINT handler (`setup_interrupt_handlers`);
- while an op's compute function runs, that handler raises `DagsterExecutionInterruptedError`
  synchronously, wherever the main thread is (`raise_execution_interrupts`). For an async asset the
  main thread is in the step's event loop (`run_until_complete` of the asset coroutine), so the
  error usually flies out of the loop's `select`, leaving the asset coroutine, its in-flight HTTP
  calls and its staging file abandoned; raised inside a task instead, it kills one worker.

So while a step's calls run, `watch_signals` puts loop signal handlers in place of Dagster's for
SIGINT and SIGTERM: a signal then only requests the drain (no new call starts; the calls on the
wire finish and their answers are stored), the asset coroutine unwinds normally (its staging file
removed by the writer's `with`), and `interrupted` turns the result into the step failure Dagster
itself would have recorded, `DagsterExecutionInterruptedError`, so the run ends canceled (UI) or
failed (signal) as before. Dagster's own handlers are back in place as soon as the first signal
arrives, so a second SIGINT/SIGTERM interrupts at once, Dagster's way.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import dagster as dg

from llm_pipeline.claude import Drain, Interrupted

__all__ = ["interrupted", "watch_signals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def watch_signals(drain: Drain, log: Any = None) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM request `drain` instead of interrupting the loop."""
    loop = asyncio.get_running_loop()
    previous: dict[signal.Signals, Any] = {}

    def restore() -> None:
        for signum, handler in previous.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)
        previous.clear()

    def on_signal(signum: signal.Signals) -> None:
        restore()  # a second signal interrupts at once, as Dagster does
        if log is not None:
            log.warning(
                f"{signum.name} received: no new calls start; waiting up to {drain.timeout_s:g} s for the "
                "calls in flight and storing their answers, then the step stops as interrupted"
            )
        drain.request(signum.name)

    try:
        for signum in _SIGNALS:
            handler = signal.getsignal(signum)
            loop.add_signal_handler(signum, on_signal, signum)
            previous[signum] = handler
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals here
        restore()
    try:
        yield
    finally:
        restore()


def interrupted(error: Interrupted, step: str) -> dg.DagsterExecutionInterruptedError:
    """The step failure for a drained stop: what Dagster records for an interrupt, with the figures."""
    return dg.DagsterExecutionInterruptedError(
        f"{step} interrupted ({error.reason}): {error.finished} call(s) in flight finished and their "
        f"answers were stored, {error.abandoned} abandoned; re-run the partition to finish it "
        "(stored answers are not paid for again)"
    )
