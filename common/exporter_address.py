"""The file ``<runtime_dir>/exporter-address``: where ``app-health`` finds the exporter.

The exporter writes it once it listens; ``app-health`` reads it, so it needs
neither the settings nor the YAML parser (it runs every 30 s: every import
counts). One line, host and port separated by a space: the numeric address
to connect to (the one the exporter's socket is bound to, a wildcard already
turned into loopback), so that connecting needs no name lookup. Standard library ``os``
only.
"""

from __future__ import annotations

import os

FILE_NAME = "exporter-address"
# A wildcard bind address is reached on loopback.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


def write(runtime_dir: str | os.PathLike[str], host: str, port: int) -> None:
    """Write the address atomically (write a temporary file, rename it over the old one)."""
    path = os.path.join(runtime_dir, FILE_NAME)
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        out.write(f"{_LOOPBACK.get(host, host)} {port}\n")
    os.replace(path + ".tmp", path)


def read(runtime_dir: str | os.PathLike[str]) -> tuple[str, int]:
    """``(host, port)`` from the file.

    Raises :class:`OSError` if it cannot be read (the exporter has not started)
    and :class:`ValueError` if it does not hold ``"<host> <port>"``.
    """
    with open(os.path.join(runtime_dir, FILE_NAME), encoding="utf-8") as src:
        host, port_text = src.read().split()
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return host, port


def remove(runtime_dir: str | os.PathLike[str]) -> None:
    """Remove the file (the exporter stopped, or a past run's): app-health says so."""
    try:  # noqa: SIM105 - importing contextlib would cost app-health 4 ms
        os.unlink(os.path.join(runtime_dir, FILE_NAME))
    except FileNotFoundError:
        pass
