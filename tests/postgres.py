"""A throwaway PostgreSQL for the tests: ``initdb`` and ``pg_ctl`` of Debian's postgresql-15 in a temp dir, on a
free loopback port, stopped at the end. Root cannot run postgres, so as root it runs as the ``postgres`` user."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres() -> Iterator[str]:
    """A running server's URL (trust auth on loopback: a test database, never a real one)."""
    if not (BIN / "initdb").exists():
        raise RuntimeError("postgresql-15 is not installed: run scripts/setup")
    root = Path(tempfile.mkdtemp(prefix="cp-pg-"))
    data, port = root / "data", _free_port()
    if os.getuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    subprocess.run(_as_postgres([str(BIN / "initdb"), "-D", str(data), "-U", "cp", "--auth=trust", "-E", "UTF8"]), **run)
    subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                                 f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=on", "start"]), **run)
    try:
        subprocess.run(_as_postgres([str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "cp", "cp"]),
                       **run)
        yield f"postgresql://cp@127.0.0.1:{port}/cp"
    finally:
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-w", "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
