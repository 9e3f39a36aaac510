"""The asyncio worker's own tests: its code, without supervisord or metrics (keep and extend)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from common.worker import make_async_context
from services.async_worker import worker
from services.async_worker.settings import Settings


def test_wait_between_attempts_doubles_up_to_the_maximum() -> None:
    """0.5 s, 1 s, 2 s... never more than reconnect_max_seconds."""
    waits = [0.0]
    for _ in range(6):
        waits.append(worker.next_wait(waits[-1], 5.0))
    assert waits[1:] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_serve_handles_every_message_reconnects_and_stops_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Messages from two connections are handled; a stop ends serve within 0.5 s."""
    handled: list[str] = []
    monkeypatch.setattr(worker, "handle", lambda ctx, message: handled.append(message))

    async def scenario() -> float:
        async def feed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"one\ntwo\nthree\n")  # then close: the client must reconnect
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(feed, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ctx = make_async_context(Settings(), state=("127.0.0.1", port))
        task = asyncio.create_task(worker.serve(ctx))
        while len(handled) < 6:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        ctx.stop.set()
        await asyncio.wait_for(task, 2)
        server.close()
        return time.monotonic() - started

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) < 0.5
    assert handled[:6] == ["one", "two", "three"] * 2


def test_lifespan_runs_the_demo_feed_when_no_address_is_set() -> None:
    """Without feed_address, the lifespan yields a demo feed that sends tick lines."""

    async def scenario() -> bytes:
        ctx = make_async_context(Settings(demo_interval_seconds=0.01))
        async with worker.lifespan(ctx) as (host, port):
            reader, writer = await asyncio.open_connection(host, port)
            line = await reader.readline()
            writer.close()
        return line

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == b"tick 1\n"


def test_feed_address_must_be_host_and_port() -> None:
    """A feed_address without a port is refused when the settings are made."""
    with pytest.raises(ValueError, match="host:port"):
        Settings(feed_address="localhost")


class Events(logging.Handler):
    """The ``event`` of every record a logger emits (attach with ``logger.addHandler``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's event ("" if it has none)."""
        self.seen.append(getattr(record, "event", ""))


def test_lifespan_yields_the_configured_feed_address() -> None:
    """feed_address host:port (IPv6 in brackets) is what serve connects to."""

    async def scenario() -> tuple[str, int]:
        ctx = make_async_context(Settings(feed_address="[::1]:9000"))
        async with worker.lifespan(ctx) as address:
            return address

    assert asyncio.run(scenario()) == ("::1", 9000)


def test_a_feed_that_refuses_is_retried_and_a_stop_still_ends_serve() -> None:
    """Nothing listens: each failed attempt is one feed_reconnecting line; stop ends serve."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: connections are refused

    async def scenario() -> list[str]:
        ctx = make_async_context(Settings(), state=("127.0.0.1", port))
        events = Events()
        ctx.log.addHandler(events)
        try:
            task = asyncio.create_task(worker.serve(ctx))
            while events.seen.count("feed_reconnecting") < 2:
                await asyncio.sleep(0.01)
            ctx.stop.set()
            await asyncio.wait_for(task, 1)
        finally:
            ctx.log.removeHandler(events)
        return events.seen

    assert asyncio.run(asyncio.wait_for(scenario(), 5)).count("feed_connected") == 0


def test_a_failing_message_is_logged_and_the_session_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """handle raising: one message_failed line, the next message is handled; idle: heartbeats."""
    handled: list[str] = []

    def handle(ctx: object, message: str) -> None:
        if message == "boom":
            raise ValueError(message)
        handled.append(message)

    monkeypatch.setattr(worker, "handle", handle)

    async def scenario() -> list[str]:
        async def feed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"boom\n")
            await writer.drain()
            await asyncio.sleep(0.2)  # idle longer than idle_heartbeat_seconds
            writer.write(b"after\n")
            await writer.drain()
            await reader.read()  # until the worker closes its end at the stop
            writer.close()  # ours too: no socket left for the garbage collector to warn about
            await writer.wait_closed()

        server = await asyncio.start_server(feed, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ctx = make_async_context(Settings(idle_heartbeat_seconds=0.05), state=("127.0.0.1", port))
        events = Events()
        ctx.log.addHandler(events)
        try:
            task = asyncio.create_task(worker.serve(ctx))
            while not handled:
                await asyncio.sleep(0.01)
            ctx.stop.set()
            await asyncio.wait_for(task, 1)
        finally:
            ctx.log.removeHandler(events)
            server.close()
            await server.wait_closed()
        return events.seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert seen.count("message_failed") == 1
    assert handled == ["after"]
