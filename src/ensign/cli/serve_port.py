"""The port `ensign serve` is about to bind, checked first: a busy port must fail before the
database is migrated, the demo seeded or its keys printed, and say who holds the port.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

# /proc/net/tcp's code for a listening socket.
_LISTEN = "0A"
_COMMAND_SHOWN_CHARS = 200


@dataclass(frozen=True)
class Holder:
    """A process with a socket listening on the port."""

    pid: int
    command: str


def bind_error(host: str, port: int) -> OSError | None:
    """The error uvicorn would get binding `host:port`, or None when the port is free.

    Binds as uvicorn does (`SO_REUSEADDR`), so a port with only closing connections left on it
    counts as free and a port another process listens on does not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            return error
    return None


def _listening_sockets(port: int, proc: Path) -> set[str]:
    """The inodes of the sockets listening on `port`, as /proc/*/fd links name them."""
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(f"socket:[{fields[9]}]")
    return found


def _command_of(process: Path) -> str:
    try:
        raw = (process / "cmdline").read_bytes()
        command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
        if not command:
            command = (process / "comm").read_text().strip()
    except OSError:
        return "?"
    command = " ".join(command.split())  # one line, even for `python -c` scripts
    if len(command) > _COMMAND_SHOWN_CHARS:
        command = command[: _COMMAND_SHOWN_CHARS - 1] + "…"
    return command


def find_holder(port: int, proc: Path = Path("/proc")) -> Holder | None:
    """The process listening on `port`, when this user may see it (Linux only)."""
    sockets = _listening_sockets(port, proc)
    if not sockets:
        return None
    for process in proc.iterdir():
        if not process.name.isdigit():
            continue
        try:
            descriptors = list((process / "fd").iterdir())
        except OSError:
            continue  # another user's process, or one that has just exited
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) in sockets:
                    return Holder(int(process.name), _command_of(process))
            except OSError:
                continue
    return None


def _next_free_port(host: str, port: int) -> int | None:
    for candidate in range(port + 1, min(port + 100, 65536)):
        if bind_error(host, candidate) is None:
            return candidate
    return None


def _how_to_find(port: int) -> str:
    if shutil.which("ss"):
        return f"`ss -ltnp 'sport = :{port}'` (with sudo for other users' processes) shows it"
    return f"`lsof -nP -iTCP:{port} -sTCP:LISTEN` (with sudo for other users' processes) shows it"


def port_problem(host: str, port: int) -> str | None:
    """What stops `ensign serve` from listening on `host:port`, said for the operator, or None."""
    error = bind_error(host, port)
    if error is None:
        return None
    if error.errno == errno.EADDRINUSE:
        holder = find_holder(port)
        who = (
            f"by process {holder.pid} ({holder.command})"
            if holder is not None
            else f"by a process not visible to this user: {_how_to_find(port)}"
        )
        reason = f"port {port} is already in use {who}"
        advice = "Stop that process, or choose another port"
    else:
        reason = error.strerror or str(error)
        advice = "Choose another port (or address, with ENSIGN_HOST)"
    other = _next_free_port(host, port) or port + 1
    return (
        f"cannot serve on {host}:{port}: {reason}.\n"
        f"{advice}, for example {other}: "
        f"`ENSIGN_PORT={other} make run`, or `scripts/ensign serve --port {other}`."
    )
