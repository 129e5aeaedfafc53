"""create_server(): the map of the whole server. Each feature lives in one protocol module; services are built
lazily here so the server starts (and serves syntax features) without a model or llama-cpp-python."""

from __future__ import annotations

from greenpatch.protocol.server import GreenpatchServer

__all__ = ["GreenpatchServer", "create_server", "serve"]


def create_server() -> GreenpatchServer:
    from greenpatch.protocol import completion, lifecycle, repair, text

    server = GreenpatchServer()
    lifecycle.register(server)
    text.register(server)
    completion.register(server)
    repair.register(server)
    return server


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(tcp: str | None = None) -> int:
    """Serve until the client exits; the exit code the LSP asks for (1: `exit` came without `shutdown`)."""
    import signal

    server = create_server()
    # SIGTERM (editor closing) must still run cleanup: sandboxes and test process groups are removed on exit.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not host or not port.isdigit():
            from greenpatch.errors import UsageError

            raise UsageError(f"--tcp expects HOST:PORT, got {tcp!r}")
        server.start_tcp(host, int(port))
    else:
        try:
            server.start_io()
        finally:
            server.shutdown_services()
    return server.protocol.exit_code
