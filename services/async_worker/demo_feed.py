"""A demo feed on 127.0.0.1 that sends ``tick <n>`` lines: a stand-in for your server.

The asyncio worker connects to it when ``feed_address`` is empty, so that the
template runs out of the box. Delete this module once your worker connects to
a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def serving(interval_seconds: float) -> AsyncIterator[tuple[str, int]]:
    """Serve every client one line per ``interval_seconds``; yield ``(host, port)``."""
    closing = asyncio.Event()  # set at exit: each client's handler returns (no cancel needed)
    clients: set[asyncio.Task[None]] = set()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            clients.add(task)
        try:
            count = 0
            while not closing.is_set():
                count += 1
                writer.write(f"tick {count}\n".encode())
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), interval_seconds)
        except ConnectionError:
            pass
        finally:
            writer.close()
            if task is not None:
                clients.discard(task)

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    try:
        host, port = server.sockets[0].getsockname()[:2]
        yield host, port
    finally:
        server.close()
        closing.set()
        await asyncio.gather(*clients, return_exceptions=True)
        await server.wait_closed()
