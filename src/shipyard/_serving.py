"""Serving ASGI apps (the console, the local production's site) with uvicorn: on a socket
bound here, so that port 0 works and the bound port is known before anything is served."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from shipyard._errors import ShipyardError

__all__ = ["listen", "serve", "serve_in_thread"]


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (0: any free port), for uvicorn to serve on."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise ShipyardError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            code="port-busy",
            hint="choose another port (0: any free one)",
        ) from None
    listener.listen(128)
    return listener


def serve_in_thread(
    app: ASGIApp, host: str, port: int
) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Serve `app` with uvicorn in a daemon thread; returns once it accepts connections."""
    listener = listen(host, port)
    server = uvicorn.Server(_config(app))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="shipyard-serve", daemon=True
    )
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    return server, thread, int(listener.getsockname()[1])


def serve(app: ASGIApp, listener: socket.socket) -> None:
    """Serve `app` on `listener` in this thread until stopped (Ctrl-C, SIGTERM). Forwarded
    headers are left to the app, which believes them from the proxies it knows only."""
    server = uvicorn.Server(_config(app))
    server.run(sockets=[listener])


def _config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(app, log_level="warning", server_header=False, proxy_headers=False)
