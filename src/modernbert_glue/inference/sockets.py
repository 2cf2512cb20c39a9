"""The server's listening sockets, bound before uvicorn starts (serve.py)."""

from __future__ import annotations

from ..errors import UserError


def listen_sockets(host: str, port: int) -> list:
    """Sockets bound to every address `host` resolves to, as asyncio's create_server (which uvicorn would use)
    binds them: an address in use, or a host that is not this machine's, is one line here, not uvicorn's
    logged error and exit code 3 (after the model has loaded)."""
    import errno
    import socket

    try:  # "" is every interface, as asyncio reads it
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:  # socket.gaierror: a name that does not resolve
        raise UserError(f"--host {host}: not an address to listen on ({getattr(exc, 'strerror', None) or exc})") from None
    sockets, refused = [], []
    for family, kind, proto, _, address in dict.fromkeys(infos):
        sock = None
        try:
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # one socket per family, as asyncio binds them
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            # listening now: with SO_REUSEADDR, a second server could still bind a port that is bound but not
            # listening, and fail only in uvicorn, after its model loaded
            sock.listen(2048)
            sockets.append(sock)
        except OSError as exc:
            if sock is not None:
                sock.close()
            refused.append(exc)
    # An address of a family the machine has not enabled (localhost's ::1 without IPv6) is skipped, as asyncio
    # skips it, while another address is bound.
    skipped = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
    fatal = [exc for exc in refused if exc.errno not in skipped] or (refused if not sockets else [])
    if fatal:
        for sock in sockets:
            sock.close()
        if fatal[0].errno == errno.EADDRINUSE:
            raise UserError(f"--port {port}: address already in use on {host} (another server is listening "
                            "there; choose another --port)")
        raise UserError(f"--host {host} --port {port}: cannot listen there ({fatal[0].strerror or fatal[0]})")
    return sockets
