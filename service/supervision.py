"""How `bentoml serve` keeps a replica serving: a dead worker is back in about a second, a worker that
cannot start stops the server at once with a non-zero status, and SIGTERM drains without dropping a
connection the kernel already accepted.

`bentoml serve` runs an arbiter (circus) that holds the listening socket and spawns the workers that
serve it. BentoML 1.4.39 configures it so that, inside a container, a worker killed by the OOM killer or
`kill -9` is never restarted (respawn is off when BENTOML_CONTAINERIZED is set) and the arbiter only
notices after up to 10 s (check_delay); a worker whose model fails to load is respawned forever; and
on SIGTERM the arbiter keeps its copy of the listening socket open until every worker has exited, so the
connections that queue in the meantime are reset when it finally closes (19 lost at concurrency 16).

Both the arbiter and the workers import the service module, which calls `install()`: the arbiter
process gets the circus patches and the worker processes the uvicorn ones. They touch four methods of
pinned libraries (bentoml==1.4.39, circus via kantoku, uvicorn); tests/test_supervision.py fails if
those move.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import socket
import struct
import time

logger = logging.getLogger("langdetect.supervision")

GRACE_ENV = "LANGDETECT_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 25  # under Kubernetes' default terminationGracePeriodSeconds (30)
CHECK_DELAY_S = 0.25  # how often the arbiter looks at its workers (BentoML: 10 s)
STARTUP_FAILURE = 3  # uvicorn's exit code when the app's lifespan start-up (our __init__) failed
# uvicorn's shutdown closes every connection that has not sent a request yet: drained connections get up to
# this long for their request to arrive (a client preempted between connect() and send() is no reason to
# drop it).
REQUEST_WAIT_S = 2.0
# A worker keeps accepting this long after SIGTERM before it drains and closes: when the signal reached the
# whole process group (Ctrl-C, `kill -- -PGID`), the arbiter closes its copy of the socket meanwhile, so
# nothing can queue on a socket nobody accepts from. Under an orchestrator only the arbiter is signalled,
# it closes its copy first, and the wait only delays the exit.
LISTEN_AFTER_SIGTERM_S = 0.5

_installed = False


def grace_seconds() -> int:
    """How long in-flight requests may take after SIGTERM before the worker stops waiting."""
    value = os.environ.get(GRACE_ENV, str(DEFAULT_GRACE_SECONDS))
    try:
        return max(0, int(value))
    except ValueError:
        raise ValueError(f"{GRACE_ENV} must be a whole number of seconds, got {value!r}") from None


def install() -> None:
    """Idempotent; cheap in processes that never use one side of it."""
    global _installed
    if _installed:
        return
    grace = grace_seconds()
    _patch_circus(grace)
    _patch_uvicorn(grace)
    _installed = True


def _patch_circus(grace: int) -> None:
    from circus.arbiter import Arbiter
    from circus.watcher import Watcher

    watcher_init, arbiter_init = Watcher.__init__, Arbiter.__init__
    reap_process, arbiter_stop = Watcher.reap_process, Arbiter.stop

    @functools.wraps(watcher_init)
    def watcher_init_respawning(self, *args, **kwargs):
        # Restart dead workers in containers too; stop waiting on them a little after their own grace.
        kwargs.update(respawn=True, graceful_timeout=grace + 5)
        watcher_init(self, *args, **kwargs)

    @functools.wraps(arbiter_init)
    def arbiter_init_watchful(self, *args, **kwargs):
        kwargs["check_delay"] = min(kwargs.get("check_delay", CHECK_DELAY_S), CHECK_DELAY_S)
        arbiter_init(self, *args, **kwargs)

    @functools.wraps(reap_process)
    def reap_process_or_give_up(self, pid, status=None):
        if status is not None and os.waitstatus_to_exitcode(status) == STARTUP_FAILURE:
            # The model did not load (missing, sha256 mismatch...): restarting will not help, and a
            # server that never gets ready must exit so the orchestrator sees it. Without respawn the
            # watcher stops once it has no process left, and then the arbiter exits with status 1.
            logger.error("a worker of %s failed to start (see its error above); stopping the server", self.name)
            self.respawn = False
        return reap_process(self, pid, status)

    @functools.wraps(arbiter_stop)
    def arbiter_stop_closing_listeners_first(self, *args, **kwargs):
        # The workers keep their own copies of the listening socket and drain its queue before they
        # close them (below); once the last copy is closed the kernel refuses new connections instead
        # of queueing them on a socket nobody will accept from again.
        for listener in getattr(self, "sockets", {}).values():
            listener.close()
        return arbiter_stop(self, *args, **kwargs)

    Watcher.__init__ = watcher_init_respawning
    Arbiter.__init__ = arbiter_init_watchful
    Watcher.reap_process = reap_process_or_give_up
    Arbiter.stop = arbiter_stop_closing_listeners_first


def _patch_uvicorn(grace: int) -> None:
    import uvicorn

    config_init, shutdown = uvicorn.Config.__init__, uvicorn.Server.shutdown

    @functools.wraps(config_init)
    def config_init_with_grace(self, *args, **kwargs):
        if kwargs.get("timeout_graceful_shutdown") is None:
            kwargs["timeout_graceful_shutdown"] = grace
        config_init(self, *args, **kwargs)

    @functools.wraps(shutdown)
    async def shutdown_after_draining(self, sockets=None):
        await asyncio.sleep(LISTEN_AFTER_SIGTERM_S)
        drained = await _drain_accept_queues(self.servers, self.server_state.connections)
        await _wait_for_first_requests(self.server_state.connections)
        if drained:
            logger.info("SIGTERM: serving %d connections that were queued on the listening socket", drained)
        await shutdown(self, sockets)

    uvicorn.Config.__init__ = config_init_with_grace
    uvicorn.Server.shutdown = shutdown_after_draining


async def _drain_accept_queues(servers, connections) -> int:
    """Accepts every connection already queued on the listening sockets, then closes them at once, and
    hands the accepted ones to the HTTP protocol.

    A connection the kernel queues between the last accept() and close() is reset, so that window must
    stay a few microseconds: no await inside it, no garbage collection, and no other Python thread (the
    model's) that could take the GIL while accept() releases it, hence the wait for in-flight requests."""
    loop = asyncio.get_running_loop()
    listeners = [(server, sock) for server in servers for sock in list(getattr(server, "_sockets", None) or [])]
    for _, sock in listeners:  # asyncio stops accepting; new connections wait in the kernel's queue
        loop.remove_reader(sock.fileno())
    deadline = loop.time() + REQUEST_WAIT_S
    while loop.time() < deadline and any(_answering(c) for c in list(connections)):
        await asyncio.sleep(0.002)
    gc.disable()
    try:
        accepted, plugs = [], []
        for server, sock in listeners:
            connections_, plug = _accept_and_plug(sock)
            accepted += [(server, conn) for conn in connections_]
            plugs.append(plug)
        for server in servers:
            server.close()  # closes the listening sockets: the kernel resets the plugs alone
    finally:
        gc.enable()
    for plug in plugs:
        if plug is not None:
            plug.close()
    for server, conn in accepted:
        await loop.connect_accepted_socket(server._protocol_factory, conn)
    return len(accepted)


async def _wait_for_first_requests(connections) -> None:
    """Until every connection that has not sent its first request yet has sent it (or REQUEST_WAIT_S)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REQUEST_WAIT_S
    while loop.time() < deadline and any(_awaiting_first_request(c) for c in list(connections)):
        await asyncio.sleep(0.01)


def _answering(protocol) -> bool:
    """A request is being served on this connection (so the model's thread may be busy)."""
    cycle = getattr(protocol, "cycle", None)
    return cycle is not None and not cycle.response_complete


def _awaiting_first_request(protocol) -> bool:
    """Connected, but no request has started on it yet (uvicorn's protocols set `cycle` when one does)."""
    transport = getattr(protocol, "transport", None)
    return transport is not None and not transport.is_closing() and getattr(protocol, "cycle", None) is None


def _accept_and_plug(listener: socket.socket, wait_s: float = 1.5) -> tuple[list[socket.socket], socket.socket | None]:
    """Every queued connection, and a plug that keeps any other from queueing until the listener is closed.

    Closing a listening socket resets the connections still in its queue, and a client that connects in the
    microseconds between the last accept() and close() is one of them: with clients reconnecting at once
    (concurrency 16, a connection per request) that lost one request in five stops. So the queue is
    shrunk to one place and filled with a connection of our own (the plug): the kernel then drops new
    SYNs, those clients retry and find the port closed (refused, never accepted), and only the plug is
    reset when the caller closes the listener.

    A client whose SYN got in just before the plug is the exception: its handshake completes on its side,
    but the kernel drops its last ACK (the queue is full) and resets it on close, after it has sent its
    request. So the plug stays only when no connection is half-open (SYN_RECV); otherwise it is pulled,
    that client's retransmission (within about 200 ms on loopback) lands in the freed place, and it is
    accepted on the next round.
    """
    accepted = []
    if listener.family not in (socket.AF_INET, socket.AF_INET6):
        return _accept_all(listener), None
    listener.listen(0)  # the queue is full as soon as it holds one connection
    host, port = listener.getsockname()[:2]
    target = ("127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host, port)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        accepted += _accept_all(listener)
        if _half_open(port):  # leave the place free for that client's retransmission
            time.sleep(0.005)
            continue
        plug = socket.socket(listener.family, socket.SOCK_STREAM)
        plug.setblocking(False)
        plug.connect_ex(target)
        if _established(plug) and _queued(listener) == 1 and not _half_open(port):
            return accepted, plug
        plug.close()  # a client took the one place first, or is mid-handshake: let it in, try again
    return accepted + _accept_all(listener), None


def _half_open(port: int) -> int:
    """Connections to `port` between the client's SYN and its final ACK (state 03, SYN_RECV, in
    /proc/net/tcp and tcp6; 0 where those cannot be read)."""
    suffix, count = f":{port:04X}", 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows, None)
                for row in rows:
                    fields = row.split(None, 4)
                    count += len(fields) > 3 and fields[3] == "03" and fields[1].endswith(suffix)
        except OSError:
            continue
    return count


def _established(sock: socket.socket, timeout_s: float = 0.005) -> bool:
    import select

    _, writable, _ = select.select([], [sock], [], timeout_s)
    return bool(writable) and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def _queued(listener: socket.socket) -> int:
    """Connections waiting in a listening socket's accept queue (tcp_info.tcpi_unacked, Linux)."""
    info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 24)[0]


def _accept_all(listener: socket.socket) -> list[socket.socket]:
    connections = []
    listener.setblocking(False)
    while True:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return connections
        except OSError:  # closed or not a listening socket
            return connections
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections.append(conn)
