"""Running the simulator: on the current event loop (`ServerRunner`) or on a thread (`Simulator`).

`Simulator` owns a background thread with its own event loop, so sync code, async tests on
another loop and Dagster steps can all use it; everything else talks to it over HTTP (the SDK
and `SimulatorControl`). Stopping cancels in-flight handlers after `SHUTDOWN_S`, which is what
ends a hung response promptly instead of after its 600 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from aiohttp import web

from llm_pipeline.simulator.app import build_app
from llm_pipeline.simulator.config import SimulatorConfig
from llm_pipeline.simulator.control import SimulatorControl
from llm_pipeline.simulator.server import SimulatorService

if TYPE_CHECKING:
    from llm_pipeline.simulator.process import SimulatorProcess

__all__ = ["SHUTDOWN_S", "ServerRunner", "Simulator"]

#: Grace period for in-flight requests when the server stops; then they are cancelled.
SHUTDOWN_S = 0.25
_STARTUP_TIMEOUT_S = 30.0


class ServerRunner:
    """The aiohttp server for one `SimulatorService`, on whatever loop calls `start`."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.service = SimulatorService(config)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> str:
        self._runner = web.AppRunner(
            build_app(self.service), access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_S
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=2048)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        return self.base_url

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set or `config.exit_after_s` has passed, then stop the server.

        The time limit is here so that no way of running the simulator leaves a stray server.
        """
        try:
            await asyncio.wait_for(stop.wait(), timeout=self.config.exit_after_s)
        except TimeoutError:
            pass
        finally:
            await self.stop()

    async def stop(self) -> None:
        self.service.batches.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class Simulator:
    """An in-process simulator on a background thread; also a context manager."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._base_url = ""

    @property
    def base_url(self) -> str:
        """What `ANTHROPIC_BASE_URL` takes, e.g. "http://127.0.0.1:54321"."""
        if not self._base_url:
            raise RuntimeError("the simulator is not running")
        return self._base_url

    @property
    def control(self) -> SimulatorControl:
        return SimulatorControl(self.base_url)

    def start(self) -> Simulator:
        if self._thread is not None:
            raise RuntimeError("the simulator was already started")
        self._thread = threading.Thread(target=self._run, name="llm-pipeline-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(_STARTUP_TIMEOUT_S):
            raise RuntimeError("the simulator did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the simulator failed to start: {self._error!r}") from self._error
        return self

    def stop(self) -> None:
        loop, event, thread = self._loop, self._stop_event, self._thread
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: already stopping
                loop.call_soon_threadsafe(event.set)
        if thread is not None:
            thread.join(timeout=_STARTUP_TIMEOUT_S)
        self._base_url = ""

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 -- the thread's boundary: start() re-raises it
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        runner = ServerRunner(self.config)
        await runner.start()
        self._base_url = runner.base_url
        self._ready.set()
        await runner.serve_until(self._stop_event)

    @staticmethod
    def spawn(config: SimulatorConfig | None = None) -> SimulatorProcess:
        """The same simulator in its own OS process (it exits when this process dies)."""
        from llm_pipeline.simulator.process import SimulatorProcess

        return SimulatorProcess.start(config or SimulatorConfig())

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Simulator {self._base_url or 'stopped'}>"
