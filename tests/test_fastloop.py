"""The fastloop supervisord plugin: caps the main loop's poll timeout."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from entrypoint.fastloop import make_interface


class RecordingPoller:
    """Stands in for supervisord's poller: records the timeouts it is asked for."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def poll(self, timeout: float) -> tuple[list[int], list[int]]:
        """Record ``timeout``; report nothing ready."""
        self.timeouts.append(timeout)
        return [], []


def fake_supervisord(poller: RecordingPoller) -> SimpleNamespace:
    """The one attribute path the plugin touches: ``supervisord.options.poller``."""
    return SimpleNamespace(options=SimpleNamespace(poller=poller))


def test_poll_timeout_is_capped() -> None:
    """Supervisord's 1 s wait becomes the configured interval; shorter waits are kept."""
    poller = RecordingPoller()
    interface = make_interface(fake_supervisord(poller), poll_interval_seconds="0.1")
    poller.poll(1)
    poller.poll(0.05)
    assert poller.timeouts == [0.1, 0.05]
    assert interface.getPollInterval() == 0.1


@pytest.mark.parametrize("value", ["0", "5", "-1"])
def test_out_of_range_interval_is_refused(value: str) -> None:
    """An interval outside 0.01..1 s stops supervisord's start with a clear error."""
    with pytest.raises(ValueError, match=re.escape("poll_interval_seconds must be in 0.01..1")):
        make_interface(fake_supervisord(RecordingPoller()), poll_interval_seconds=value)
