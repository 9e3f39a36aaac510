"""Run the exporter: ``app-exporter`` or ``python -m services.metrics_exporter``."""

from __future__ import annotations

import errno
import logging
import sys
import threading

from common import exporter_address, heap, logs
from common.config import Settings
from common.errors import FatalError
from common.lifecycle import EXIT_WITHIN_SECONDS, StopSignal, exit_within
from common.metrics import check_multiproc_dir
from common.program import program_name, run_program

PROGRAM = program_name("metrics_exporter")
log = logging.getLogger("exporter")


class ListenError(FatalError):
    """The exporter cannot listen on ``metrics_host:metrics_port`` (taken, unknown host)."""


def _main(settings: Settings) -> None:
    multiproc_dir = check_multiproc_dir()  # before prometheus_client is imported
    from services.metrics_exporter.exporter import make_http_server

    stop = StopSignal()
    try:
        server = make_http_server(settings, multiproc_dir)
    except OSError as exc:
        where = f"{settings.metrics_host}:{settings.metrics_port}"
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"metrics_port {where} is already in use") from None
        raise ListenError(f"cannot listen on {where} (metrics_host, metrics_port): {exc}") from None
    host, port = server.socket.getsockname()[:2]  # numeric: app-health needs no DNS
    try:
        exporter_address.write(settings.runtime_dir, host, port)
    except OSError as exc:  # /metrics still works; app-health will say it has no address
        log.warning("cannot write the address for app-health: %s", exc)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    log.info(
        "serving /metrics /healthz /readyz on %s:%s",
        settings.metrics_host,
        settings.metrics_port,
        extra={"event": logs.STARTUP_SUCCESS},
    )
    heap.trim()  # start-up's garbage: every import is done
    while stop.requested is None:
        stop.sleep(3600)
    log.info("%s shutting down", PROGRAM, extra={"event": logs.SHUTTING_DOWN})
    server.shutdown()
    thread.join()
    server.server_close()
    exporter_address.remove(settings.runtime_dir)
    log.info("%s stopped", PROGRAM, extra={"event": logs.SHUTDOWN_COMPLETE})
    # As a worker does: a stop signal from now on (pid1 sends it again to a program still
    # STOPPING 0.3 s in) must not kill the process while its interpreter exits.
    exit_within(EXIT_WITHIN_SECONDS, 0)


def main() -> None:
    """Console-script entry point; exits 0 (stopped), 1 (crashed) or 78 (bad config)."""
    sys.exit(run_program(PROGRAM, _main))


if __name__ == "__main__":
    main()
