"""A run's own network namespace, and the relay that is its only way out.

Runs used to share the host's network, so a training of one tenant reached
another tenant's TensorBoard and notebook kernels on ``127.0.0.1``. Now each
run gets a fresh network namespace that holds only a loopback interface.
What it may reach is given as ``PortForward``s and relayed by its
supervisor, which stays in the host's namespace:

* ``out``: the run connects to ``127.0.0.1:PORT`` inside its namespace and
  the relay connects, on the host, to ``host`` (the kqi service through the
  proxy, the hub's API) — nothing else of the host's loopback is reachable;
* ``in``: something on the host connects to ``host`` (a loopback port the
  hub's proxy uses for a notebook, or a unix socket) and the relay connects
  to ``127.0.0.1:PORT`` inside the run's namespace.

Why this mechanism: it needs no packages, no addresses to allocate and no
firewall rules (a veth pair would need all three, and a route to the host's
loopback listeners is exactly what must not exist); unlike slirp4netns or
pasta with host-loopback access, it opens single ports, not the whole host
loopback. The outside network, where a platform allows it, is added by
``slirp4netns --disable-host-loopback`` on the same namespace (``outside``).

How: ``PrivateNetwork.create()`` unshares the network namespace of the
calling thread only (``unshare(CLONE_NEWNET)`` is per thread), brings ``lo``
up, keeps a descriptor of the namespace, creates the ``out`` listeners in
it, and returns the thread to the host's namespace. Sockets keep the
namespace they were created in, so the relay (a thread of the supervisor)
holds sockets of both sides. The sandbox is started inside the namespace
(``setns`` in the child before ``exec``). It needs CAP_SYS_ADMIN (root).
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import hashlib
import logging
import os
import socket
import struct
import subprocess
import threading
from dataclasses import dataclass

log = logging.getLogger("kqi.netns")

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP, IFF_RUNNING = 0x1, 0x40
RELAY_CHUNK = 256 * 1024

_libc = ctypes.CDLL(None, use_errno=True)
#: the socket class, for annotations in ``PrivateNetwork``, whose method ``socket`` hides the module there
Socket = socket.socket


class NetworkUnavailable(RuntimeError):
    """A private network namespace cannot be made here (not root, or the kernel refuses)."""


@dataclass(frozen=True)
class PortForward:
    """One way through a run's network namespace (see the module docstring).

    Attributes:
        direction: ``"out"`` (the run connects to ``127.0.0.1:port``, the
            relay to ``host``) or ``"in"`` (the host connects to ``host``,
            the relay to ``127.0.0.1:port`` in the run).
        port: the port on ``127.0.0.1`` inside the run's namespace.
        host: the host side: ``"HOST:PORT"`` or ``"unix:/absolute/path"``.
    """

    direction: str
    port: int
    host: str

    def validate(self) -> PortForward:
        if self.direction not in ("out", "in"):
            raise ValueError(f"a forward's direction is 'out' or 'in': {self.direction!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"a forward's port must be 1-65535: {self.port!r}")
        host_address(self.host)
        return self


def host_address(host: str):
    """``(family, address)`` of a forward's host side: ``unix:/path`` or ``HOST:PORT``."""
    if not isinstance(host, str) or not host or "\0" in host:
        raise ValueError(f"bad forward address {host!r}")
    if host.startswith("unix:"):
        path = host[5:]
        if not path.startswith("/"):
            raise ValueError(f"a unix forward needs an absolute path: {host!r}")
        return socket.AF_UNIX, path
    name, _, port = host.rpartition(":")
    name = name.strip("[]")
    if not name or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"a forward's host side is HOST:PORT or unix:/path: {host!r}")
    return (socket.AF_INET6 if ":" in name else socket.AF_INET), (name, int(port))


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise NetworkUnavailable(f"{what}: {os.strerror(err)}")


def _loopback_up() -> None:
    """Bring ``lo`` up in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP | IFF_RUNNING))


class PrivateNetwork:
    """A network namespace with only loopback, held by descriptors (``create`` makes one)."""

    def __init__(self, host_ns: int, run_ns: int):
        self.host_ns = host_ns
        self.run_ns = run_ns
        self._lock = threading.Lock()

    @classmethod
    def create(cls) -> PrivateNetwork:
        """A new namespace; the calling thread is back in its own namespace on return."""
        host_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET) (a private network needs root)")
        except NetworkUnavailable:
            os.close(host_ns)
            raise
        try:
            run_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            _loopback_up()
        finally:
            _check(_libc.setns(host_ns, CLONE_NEWNET), "returning to the host's network namespace")
        return cls(host_ns, run_ns)

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> Socket:
        """A socket of the run's namespace (made there; usable from any thread)."""
        with self._lock:
            _check(_libc.setns(self.run_ns, CLONE_NEWNET), "entering the run's network namespace")
            try:
                return socket.socket(family, kind)
            finally:
                _check(_libc.setns(self.host_ns, CLONE_NEWNET), "returning to the host's network namespace")

    def listener(self, port: int) -> Socket:
        """A listening socket on ``127.0.0.1:port`` inside the run's namespace."""
        sock = self.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        return sock

    def enter(self) -> None:
        """Move the calling thread (a forked child before ``exec``) into the run's namespace."""
        _check(_libc.setns(self.run_ns, CLONE_NEWNET), "entering the run's network namespace")

    def path(self) -> str:
        """A path that names the namespace while this process lives (for slirp4netns)."""
        return f"/proc/{os.getpid()}/fd/{self.run_ns}"

    def close(self) -> None:
        for fd in (self.run_ns, self.host_ns):
            try:
                os.close(fd)
            except OSError:
                pass


def start_outside_network(network: PrivateNetwork, slirp4netns: str) -> subprocess.Popen:
    """Give the namespace the outside network through slirp4netns, never the host's loopback.

    The run's DNS server is then 10.0.2.3 (the sandbox's ``/etc/resolv.conf``).
    """
    ready_r, ready_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [slirp4netns, "--configure", "--mtu=65520", "--disable-host-loopback", "--enable-ipv6",
             "--ready-fd", str(ready_w), "--netns-type=path", network.path(), "tap0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(ready_w, network.run_ns), close_fds=True)
        os.close(ready_w)
        ready_w = -1
        if os.read(ready_r, 1) != b"1":
            proc.kill()
            raise NetworkUnavailable("slirp4netns did not configure the run's outside network")
        return proc
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)


def loopback_source(name: str) -> str:
    """An address of 127.0.0.0/8 (all loopback on Linux) that stands for one run, never 127.0.0.1.

    The relay connects from it, so what the service sees of a run's requests
    (its log, a login lockout's source address) is that run's, not every run's.
    """
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:3], "big")
    a, b, c = digest >> 16, (digest >> 8) & 255, digest & 255
    return f"127.{a}.{b}.{c}" if (a, b, c) != (0, 0, 1) and c not in (0, 255) else f"127.{a}.{b}.2"


class Relay:
    """Relays the forwards of one run's namespace in a thread of its own (asyncio).

    Args:
        source: the loopback address ``out`` connections to the host come from (``loopback_source``).
    """

    def __init__(self, network: PrivateNetwork, forwards: list[PortForward], source: str = ""):
        self.network = network
        self.forwards = forwards
        self.source = source
        self._listeners: list[tuple[PortForward, socket.socket]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None

    def bind(self) -> None:
        """Open every listener now, so the run finds its ports open from its first instruction."""
        for forward in self.forwards:
            if forward.direction == "out":
                sock = self.network.listener(forward.port)
            else:
                family, address = host_address(forward.host)
                sock = socket.socket(family, socket.SOCK_STREAM)
                if family == socket.AF_UNIX:
                    try:
                        os.unlink(address)
                    except FileNotFoundError:
                        pass
                else:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
                sock.listen(128)
            sock.setblocking(False)
            self._listeners.append((forward, sock))

    def start(self) -> threading.Thread:
        loop = self._loop = asyncio.new_event_loop()
        task = self._task = loop.create_task(self._serve())
        self._thread = threading.Thread(target=self._run, args=(loop, task), name="kqi-relay", daemon=True)
        self._thread.start()
        return self._thread

    def _run(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task) -> None:
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - the run goes on; its forwards stop
            log.exception("the network relay stopped")
        finally:
            for _, sock in self._listeners:
                sock.close()
            loop.close()

    def close(self) -> None:
        """Stop relaying (connections in flight end) and let go of the namespace."""
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)  # (a relay without forwards has ended already)
        if self._thread is not None:
            self._thread.join(5)
        self.network.close()

    async def _serve(self) -> None:
        await asyncio.gather(*(self._accept(forward, sock) for forward, sock in self._listeners))



    async def _accept(self, forward: PortForward, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(listener)
            loop.create_task(self._pipe(forward, client))

    async def _connect(self, forward: PortForward) -> socket.socket:
        loop = asyncio.get_running_loop()
        if forward.direction == "out":
            family, address = host_address(forward.host)
            sock = socket.socket(family, socket.SOCK_STREAM)
            if self.source and family == socket.AF_INET and address[0].startswith("127."):
                sock.bind((self.source, 0))
        else:
            sock, address = self.network.socket(), ("127.0.0.1", forward.port)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError:
            sock.close()
            raise
        return sock

    async def _pipe(self, forward: PortForward, client: socket.socket) -> None:
        client.setblocking(False)
        try:
            upstream = await self._connect(forward)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(self._copy(client, upstream), self._copy(upstream, client))
        client.close()
        upstream.close()

    @staticmethod
    async def _copy(source: socket.socket, sink: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await loop.sock_recv(source, RELAY_CHUNK):
                await loop.sock_sendall(sink, data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
