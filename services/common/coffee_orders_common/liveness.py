"""Notice a background worker that ended or stopped making progress, and a blocked event loop.

A service whose consume loop or delivery-report poller has died, but whose gRPC server still
says SERVING, is worse than a crash: nobody restarts it. The ``Watchdog`` checks every worker a
service depends on from a thread of its own (a blocked event loop cannot check itself):

- a worker that ended (a thread no longer alive, a task done) fails the service at once;
- a worker whose ``Heartbeat`` has been silent for longer than the stall bound fails it too;
- so does an event loop that has not run a callback for longer than the stall bound.

A failure is logged in one line, turns health NOT_SERVING for every name (``liveness``
included), and ends ``Watchdog.serve``: after ``FAILURE_SHOWN_S`` the service shuts down as on
SIGTERM (in ``Watchdog.shutting_down``), and then raises ``WorkerFailed``, which the command
line turns into exit code ``EXIT_WORKER_FAILED``. A blocked event loop cannot shut anything
down: the watchdog then exits the process itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from .exit_codes import EXIT_WORKER_FAILED
from .grpc_server import ServingState

_TICK_S = 0.5
# After a failure the server keeps answering (NOT_SERVING; the consumer's GetStatus says FAILED
# and why) this long before the shutdown refuses new calls, so that `coffee-orders status` or
# a probe polling in that moment sees why rather than a closed port.
FAILURE_SHOWN_S = 2.0
# A blocked loop ends the process from the watchdog thread; if even logging hangs (a handler
# lock held by the blocked thread), this timer ends it anyway.
_LAST_WORDS_S = 2.0
# After a failure, the graceful shutdown may take the grace period; past it plus this margin
# the watchdog ends the process itself.
_SHUTDOWN_MARGIN_S = 10.0


class WorkerFailed(Exception):
    """A worker the service depends on ended or stalled; the message says which and why."""


class Heartbeat:
    """A worker's sign of life: ``beat()`` after each step of progress (one clock read).

    A worker that is about to end on an error says so with ``ended(error)``, so that the
    watchdog's line names the error.
    """

    def __init__(self) -> None:
        self._last = time.monotonic()
        self.last_error: BaseException | None = None
        self.on_end: Callable[[], None] | None = None  # set by the watchdog: look at once

    def beat(self) -> None:
        self._last = time.monotonic()

    def silent_for(self) -> float:
        return time.monotonic() - self._last

    def ended(self, error: BaseException) -> None:
        self.last_error = error
        if self.on_end is not None:
            self.on_end()


@dataclass
class _Worker:
    name: str
    heartbeat: Heartbeat
    thread: threading.Thread | None = None  # None: an asyncio task, watched by a done callback

    def has_ended(self) -> bool:
        """Said it ended on an error (it may still be closing), or its thread is gone."""
        if self.heartbeat.last_error is not None:
            return True
        return self.thread is not None and not self.thread.is_alive()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class Watchdog:
    """Watches workers and the event loop; see the module docstring.

    ``stall_after_s`` is the longest a worker may go without a heartbeat (and the loop without
    running a callback); ``on_failure(reason)`` runs once, on the watchdog's or a worker's
    thread, before health turns NOT_SERVING (the consumer uses it for GetStatus).
    """

    def __init__(
        self,
        stall_after_s: float,
        grace_period_s: float,
        serving: ServingState,
        log: logging.Logger,
        on_failure: Callable[[str], None] | None = None,
    ):
        self._stall_after_s = stall_after_s
        self._exit_after_s = grace_period_s + _SHUTDOWN_MARGIN_S
        self._serving = serving
        self._log = log
        self._on_failure = on_failure
        self._workers: list[_Worker] = []
        self._loop = asyncio.get_running_loop()
        self._loop_heartbeat = Heartbeat()
        self._failed = asyncio.Event()
        self._lock = threading.Lock()
        self._done = threading.Event()  # the service has shut down
        self._wake = threading.Event()  # look now, not at the next tick
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self._watching = True
        self.failure: WorkerFailed | None = None

    def watch_thread(self, name: str, thread: threading.Thread, heartbeat: Heartbeat) -> None:
        heartbeat.on_end = self._wake.set
        self._workers.append(_Worker(name, heartbeat, thread))

    def watch_task(self, name: str, task: asyncio.Task[None], heartbeat: Heartbeat) -> None:
        worker = _Worker(name, heartbeat)
        self._workers.append(worker)
        task.add_done_callback(lambda done: self._task_ended(worker, done))

    async def serve(self, serving: Awaitable[None]) -> None:
        """Run ``serving`` until it returns or a worker fails (health NOT_SERVING, then
        ``FAILURE_SHOWN_S``). The service's shutdown follows in ``shutting_down``, always."""
        self._thread.start()
        serving_task = asyncio.ensure_future(serving)
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait({serving_task, failed}, return_when=asyncio.FIRST_COMPLETED)
            if self.failure is not None:
                await self._serving.failed()
                await asyncio.sleep(FAILURE_SHOWN_S)
            elif serving_task.done():
                serving_task.result()  # raises what went wrong
        finally:
            for task in (serving_task, failed):
                task.cancel()
            await asyncio.gather(serving_task, failed, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def shutting_down(self) -> AsyncIterator[None]:
        """The service's shutdown runs in this block; raises WorkerFailed after it when a
        worker failed.

        While it runs, workers may end without that counting; after a failure the process is
        ended if the shutdown overruns the grace period.
        """
        with self._lock:
            self._watching = False  # what ends from now on is the shutdown's doing
        backstop = None
        if self.failure is not None:
            deadline = time.monotonic() + self._exit_after_s
            backstop = threading.Thread(
                target=self._end_overrun_shutdown, args=(deadline,), name="backstop", daemon=True
            )
            backstop.start()
        try:
            yield
        finally:
            self._done.set()
            self._wake.set()
            if self._thread.ident is not None:  # started by ``serve``
                await asyncio.to_thread(self._thread.join)
            if backstop is not None:
                await asyncio.to_thread(backstop.join)
        if self.failure is not None:
            raise self.failure

    # ---- detection --------------------------------------------------------------------------

    def _watch(self) -> None:
        try:
            self._check_until_done()
        except Exception as error:  # nobody would watch any more: as bad as a blocked loop
            self._exit_now("watchdog", f"the watchdog stopped: {_describe(error)}", error)

    def _check_until_done(self) -> None:
        while True:
            self._wake.wait(_TICK_S)
            self._wake.clear()
            if self._done.is_set():
                return
            self._loop.call_soon_threadsafe(self._loop_heartbeat.beat)
            blocked_for = self._loop_heartbeat.silent_for()
            if blocked_for > self._stall_after_s:
                reason = self._stalled_reason("event loop", blocked_for)
                self._exit_now("event loop", reason)
                return
            loop_responsive = blocked_for < 4 * _TICK_S  # else tasks cannot beat either
            for worker in self._workers:
                if worker.has_ended():
                    self._fail(worker, self._ended_reason(worker), worker.heartbeat.last_error)
                elif worker.thread is not None or loop_responsive:
                    silent_for = worker.heartbeat.silent_for()
                    if silent_for > self._stall_after_s:
                        self._fail(worker, self._stalled_reason(worker.name, silent_for), None)

    def _task_ended(self, worker: _Worker, task: asyncio.Task[None]) -> None:
        name = worker.name
        if task.cancelled():
            self._fail(worker, f"the {name} was cancelled", None)
            return
        error = task.exception()
        if error is None:
            self._fail(worker, f"the {name} stopped without being asked to", None)
        else:
            self._fail(worker, f"the {name} stopped: {_describe(error)}", error)

    @staticmethod
    def _ended_reason(worker: _Worker) -> str:
        error = worker.heartbeat.last_error
        if error is None:
            return f"the {worker.name} stopped without being asked to"
        return f"the {worker.name} stopped: {_describe(error)}"

    def _stalled_reason(self, name: str, silent_for: float) -> str:
        return (
            f"the {name} has made no progress for {silent_for:.0f} s "
            f"(worker_stall_timeout_s is {self._stall_after_s:g})"
        )

    # ---- reaction ---------------------------------------------------------------------------

    def _claim(self, reason: str) -> WorkerFailed | None:
        """Record the first failure; None when one was recorded already or we are stopping."""
        with self._lock:
            if self.failure is not None or not self._watching:
                return None
            self.failure = WorkerFailed(reason)
            return self.failure

    def _fail(self, worker: _Worker, reason: str, error: BaseException | None) -> None:
        failure = self._claim(reason)
        if failure is None:
            return
        self._log.error(
            f"worker failed: {reason}; health NOT_SERVING, exiting with code "
            f"{EXIT_WORKER_FAILED} so that a supervisor restarts the service",
            extra={"fields": {"worker": worker.name, "exit_code": EXIT_WORKER_FAILED}},
            exc_info=error,
        )
        if self._on_failure is not None:
            self._on_failure(reason)
        self._loop.call_soon_threadsafe(self._failed.set)

    def _exit_now(self, worker: str, reason: str, error: BaseException | None = None) -> None:
        """Log the one line and end the process from this thread: the loop cannot shut down."""
        if self._claim(reason) is None:  # already failing: the shutdown and its backstop go on
            self._loop.call_soon_threadsafe(self._failed.set)
            return
        last_words = threading.Timer(_LAST_WORDS_S, os._exit, (EXIT_WORKER_FAILED,))
        last_words.daemon = True
        last_words.start()
        self._log.error(
            f"worker failed: {reason}; it cannot shut down gracefully: exiting at once with "
            f"code {EXIT_WORKER_FAILED} so that a supervisor restarts the service",
            extra={"fields": {"worker": worker, "exit_code": EXIT_WORKER_FAILED}},
            exc_info=error,
        )
        if self._on_failure is not None:
            self._on_failure(reason)
        self._loop.call_soon_threadsafe(self._failed.set)  # in case the loop ever runs again
        os._exit(EXIT_WORKER_FAILED)

    def _end_overrun_shutdown(self, deadline: float) -> None:
        if self._done.wait(max(deadline - time.monotonic(), 0.0)):
            return
        self._log.error(
            f"the shutdown after a worker failure took longer than {self._exit_after_s:g} s; "
            f"exiting with code {EXIT_WORKER_FAILED}",
            extra={"fields": {"exit_code": EXIT_WORKER_FAILED}},
        )
        with contextlib.suppress(Exception):
            logging.shutdown()
        os._exit(EXIT_WORKER_FAILED)
