"""The asyncio worker's logic: a client that stays connected to a feed and handles messages.

The shape of a bot, a websocket client or a queue consumer: ``serve`` runs
until a stop is requested. It connects, handles each message as one unit of
work (``with ctx.work():``, counted and timed), heartbeats while connected,
and reconnects with a doubling, capped wait when the connection drops. It
races its I/O against ``ctx.stop``, so a stop takes effect at once. Replace
``handle`` (and the connection) with yours. See :mod:`common.worker` for ``ctx``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from common.worker import AsyncContext

from . import demo_feed
from .settings import Settings

FIRST_RETRY_SECONDS = 0.5


@contextlib.asynccontextmanager
async def lifespan(ctx: AsyncContext[Settings]) -> AsyncIterator[tuple[str, int]]:
    """Yield the feed's ``(host, port)``: the configured one, or a demo feed started here."""
    if ctx.settings.feed_address:
        host, _, port = ctx.settings.feed_address.rpartition(":")
        yield host.strip("[]"), int(port)
        return
    async with demo_feed.serving(ctx.settings.demo_interval_seconds) as address:
        yield address


def next_wait(previous: float, maximum: float) -> float:
    """The wait before the next connection attempt: double the previous, at most ``maximum``."""
    return min(maximum, max(FIRST_RETRY_SECONDS, previous * 2))


def handle(ctx: AsyncContext[Settings], message: str) -> None:
    """Your work for one message (here: log it)."""
    ctx.log.debug("message received", extra={"feed_message": message})


async def serve(ctx: AsyncContext[Settings]) -> None:
    """Stay connected until a stop is requested; reconnect after any failure."""
    host, port = ctx.state
    stopping = asyncio.ensure_future(ctx.stop.wait())
    wait = 0.0
    try:
        while True:
            session = asyncio.ensure_future(_session(ctx, host, port))
            await asyncio.wait({session, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():  # stop requested: end the session at its current await
                session.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await session
                return
            try:
                session.result()
                connected, why = True, "connection closed"
            except OSError as exc:  # could not connect
                connected, why = False, str(exc) or type(exc).__name__
            wait = (
                FIRST_RETRY_SECONDS
                if connected
                else next_wait(wait, ctx.settings.reconnect_max_seconds)
            )
            ctx.log.warning(
                "feed %s:%s: %s; reconnecting in %.1f s",
                host,
                port,
                why,
                wait,
                extra={"event": "feed_reconnecting"},
            )
            await asyncio.wait({stopping}, timeout=wait)
    finally:
        stopping.cancel()


async def _session(ctx: AsyncContext[Settings], host: str, port: int) -> None:
    """One connection: handle messages until it closes; OSError if it cannot connect."""
    reader, writer = await asyncio.open_connection(host, port)
    ctx.log.info("connected to feed %s:%s", host, port, extra={"event": "feed_connected"})
    ctx.heartbeat()
    try:
        while True:
            try:
                line = await asyncio.wait_for(
                    reader.readline(), ctx.settings.idle_heartbeat_seconds
                )
            except TimeoutError:
                ctx.heartbeat()  # connected, nothing to do
                continue
            except OSError:  # the connection broke: reconnect
                return
            if not line:
                return
            try:
                with ctx.work():  # counted, timed, and a heartbeat
                    handle(ctx, line.decode("utf-8", "replace").rstrip("\n"))
            except Exception:
                ctx.log.exception("message failed", extra={"event": "message_failed"})
    finally:
        writer.close()
