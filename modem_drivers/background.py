"""Background tasks owned by one component (a modem, the bank, the scheduler): each is
kept referenced until done (asyncio only holds weak references), a failure is logged in
one line with what the task was for and never escapes, and the owner cancels them all
when it closes."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from typing import Any


class Background:
    def __init__(self, owner: str, logger: logging.Logger, *, expected: tuple[type[BaseException], ...] = ()) -> None:
        self.owner = owner
        self.logger = logger
        #: Errors that are part of life (a port lost mid-task): a warning, not a traceback.
        self.expected = expected
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        async def guarded() -> Any:
            try:
                return await coro
            except asyncio.CancelledError:
                raise
            except self.expected as exc:
                self.logger.warning("%s: %s interrupted: %s", self.owner, what, exc)
            except Exception:
                self.logger.exception("%s: %s failed", self.owner, what)
            return None

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # cancelled before its first step (stopped at once), ``coro`` never ran: close it,
        # or Python warns that it was never awaited (a no-op once it has run)
        task.add_done_callback(lambda _: coro.close())
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))

    async def drain(self, timeout: float) -> None:
        """Let running work finish, for at most ``timeout`` seconds."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
