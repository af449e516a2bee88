"""Whose address a request is: the client behind the hub's own proxy, never what a client claims.

The failed-login lockout counts per (user, source address), so the address
must not be forgeable. configurable-http-proxy appends the address it
received a request from to ``X-Forwarded-For``; that entry is believed only
when the TCP peer really *is* that proxy (or the kqi service, which passes
the address it resolved the same way on to the hub). "Is" is checked by
process, not by address: every local process connects from 127.0.0.1 — a
run's relay out of its network namespace too — so on Linux the peer's
socket is looked up in ``/proc/net/tcp`` and must be an open file of a pid
named in the forwarders' pid files. Further hops (an nginx or an ingress in
front of the proxy) are believed when their address is listed as trusted.
``X-Real-Ip`` is never read.
"""

from __future__ import annotations

import ipaddress
import logging
import os

log = logging.getLogger("kqi.forwarding")

#: the pid file JupyterHub keeps for the proxy it starts, in the state dir (set in hub_config)
PROXY_PID_FILE_NAME = "jupyterhub-proxy.pid"


def _ip(text: str):
    """An address as ipaddress sees it (IPv4-mapped IPv6 as IPv4), None when it is not one."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def _in(address, networks) -> bool:
    return address is not None and any(address.version == n.version and address in n for n in networks)


def client_address(peer: str, forwarded_for: str | None, peer_is_forwarder: bool, trusted_ips=()) -> str:
    """The source address of a request.

    Args:
        peer: the address of the TCP connection's other end.
        forwarded_for: the request's ``X-Forwarded-For`` header, if any.
        peer_is_forwarder: whether that peer is known to append the address it
            received the request from (the hub's proxy, the kqi service).
        trusted_ips: addresses or networks (``"10.0.0.0/8"``) of further proxies
            in front whose entries are believed too; a trusted peer address
            counts as a forwarder.
    """
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_ips]
    current = _ip(peer)
    if current is None:
        return peer or ""
    if not (peer_is_forwarder or _in(current, networks)):
        return str(current)
    for hop in reversed((forwarded_for or "").split(",")):
        previous = _ip(hop)
        if previous is None:  # not written by a forwarder: stop at the hop that passed it on
            break
        current = previous
        if not _in(current, networks):
            break
    return str(current)


def read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    if text.startswith("{"):  # the kqi service's record (lifeline)
        import json

        try:
            return int(json.loads(text)["pid"])
        except (ValueError, KeyError, TypeError):
            return None
    return int(text) if text.isascii() and text.isdigit() else None


def _decode(hex_address: str):
    """An ``ADDR:PORT`` of /proc/net/tcp{,6} (32-bit words in host order) as (ip, port)."""
    address, port = hex_address.split(":")
    raw = bytes.fromhex(address)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    return getattr(ip, "ipv4_mapped", None) or ip, int(port, 16)


def socket_inode(local: tuple, remote: tuple) -> int | None:
    """The inode of this host's TCP socket bound to ``local`` and connected to ``remote``, None if none."""
    want = ((_ip(local[0]), int(local[1])), (_ip(remote[0]), int(remote[1])))
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and (_decode(fields[1]), _decode(fields[2])) == want:
                return int(fields[9])
    return None


def owned_by(inode: int, pids) -> bool:
    """Whether one of ``pids`` holds the socket ``inode`` open."""
    link = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == link:
                    return True
            except OSError:
                continue
    return False


def peer_is_one_of(request, pid_files) -> bool:
    """Whether the TCP peer of a tornado request is a process named in ``pid_files`` (Linux /proc)."""
    pids = [pid for pid in (read_pid(p) for p in pid_files) if pid]
    context = getattr(getattr(request, "connection", None), "context", None)
    stream = getattr(getattr(request, "connection", None), "stream", None)
    peer = getattr(context, "address", None)
    if not pids or not isinstance(peer, tuple) or stream is None or stream.socket is None:
        return False
    try:
        local = stream.socket.getsockname()
    except OSError:
        return False
    inode = socket_inode(peer[:2], local[:2])
    return inode is not None and owned_by(inode, pids)


def peer_address(request) -> str:
    """The TCP peer of a tornado request, before ``xheaders`` rewrote ``remote_ip`` from client headers."""
    context = getattr(getattr(request, "connection", None), "context", None)
    return getattr(context, "_orig_remote_ip", None) or getattr(request, "remote_ip", None) or ""


def request_source(request, forwarder_pid_files, trusted_ips=()) -> str:
    """The source address of a tornado request (see the module docstring)."""
    return client_address(peer_address(request), request.headers.get("X-Forwarded-For"),
                          peer_is_one_of(request, forwarder_pid_files), trusted_ips)
