"""The pid1 supervisord plugin: its setting is checked, and what it subscribes to.

What it does to a running supervisord (shut down on FATAL and exit 1, nothing
while stopping, a stop signal during start-up not lost) is pinned end to end
in ``tests/test_stack.py`` and ``tests/test_container.py``.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from supervisor import events

from entrypoint.pid1 import make_interface


def fake_supervisord() -> SimpleNamespace:
    """The attribute path the factory touches at load time: ``options.poller.poll``."""
    return SimpleNamespace(options=SimpleNamespace(poller=SimpleNamespace(poll=lambda t: ([], []))))


@pytest.mark.parametrize("value", ["", "maybe", "2"])
def test_fail_fast_must_be_a_boolean(value: str) -> None:
    """A missing or misspelt ``fail_fast`` stops supervisord's start with a clear error."""
    match = re.escape(f"fail_fast must be true or false, got {value!r}")
    with pytest.raises(ValueError, match=match):
        make_interface(fake_supervisord(), fail_fast=value)


@pytest.mark.parametrize(("value", "subscribed"), [("true", 1), ("false", 0)])
def test_subscribes_to_fatal_events_only_with_fail_fast(value: str, subscribed: int) -> None:
    """fail_fast on: one in-process subscription to PROCESS_STATE_FATAL; off: none."""
    before = list(events.callbacks)
    try:
        interface = make_interface(fake_supervisord(), fail_fast=value)
        added = [kind for kind, callback in events.callbacks if (kind, callback) not in before]
        assert added == [events.ProcessStateFatalEvent] * subscribed
        assert interface.getFatalProcess() == ""
    finally:
        events.callbacks[:] = before
