"""The failfast supervisord plugin: its setting is checked before supervisord starts.

What it does to a running supervisord (shut down on FATAL, exit 1; nothing
while stopping) is pinned end to end in ``tests/test_stack.py``.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from supervisor import events

from entrypoint.failfast import make_interface


@pytest.mark.parametrize("value", ["", "maybe", "2"])
def test_enabled_must_be_a_boolean(value: str) -> None:
    """A missing or misspelt ``enabled`` stops supervisord's start with a clear error."""
    with pytest.raises(
        ValueError, match=re.escape(f"enabled must be true or false, got {value!r}")
    ):
        make_interface(SimpleNamespace(), enabled=value)


@pytest.mark.parametrize(("value", "subscribed"), [("true", 1), ("false", 0)])
def test_subscribes_to_fatal_events_only_when_enabled(value: str, subscribed: int) -> None:
    """Enabled: one in-process subscription to PROCESS_STATE_FATAL; disabled: none."""
    before = list(events.callbacks)
    try:
        interface = make_interface(SimpleNamespace(), enabled=value)
        added = [t for t, _ in events.callbacks if (t, _) not in before]
        assert added == [events.ProcessStateFatalEvent] * subscribed
        assert interface.getFatalProcess() == ""
    finally:
        events.callbacks[:] = before
