"""The master's listener against slow clients, on real loopback sockets: a head or a body trickled one byte at
a time is cut off within its bound while a normal client is served, and one address holds a bounded number
of connections."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest

from cluster_pilot.master.listener import Limits
from tests.unit.test_kubecfg import TOKEN, serve
from tests.waits import wait_for

LIMITS = Limits(head_timeout=2.0, body_rate=1024, body_grace=1.0, per_address=40)
BOUND = LIMITS.head_timeout + LIMITS.body_grace + 15  # the bound plus a generous margin on a shared machine


def _address(url: str) -> tuple[str, int]:
    host, port = url.rsplit("/", 1)[1].rsplit(":", 1)
    return host, int(port)


def _trickle(address, head: bytes, rest: bytes, closed: list, stop: threading.Event) -> None:
    """Send ``head`` at once, then ``rest`` one byte at a time; note when the master closes the connection."""
    with socket.create_connection(address, timeout=30) as sock:
        try:
            sock.sendall(head)
            for byte in rest:
                if stop.is_set():
                    return
                sock.sendall(bytes([byte]))
                stop.wait(0.1)  # the trickle's pace, not a synchronisation
        except OSError:
            closed.append(True)
            return
        closed.append(False)


def _healthz(url: str) -> int:
    conn = http.client.HTTPConnection(*_address(url), timeout=10)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture()
def master(tmp_path):
    m = serve(tmp_path, False, limits=LIMITS)
    yield m
    m.stop()


def test_slow_heads_and_bodies_are_cut_off_while_a_normal_client_is_served(master):
    address, closed, stop = _address(master.url), [], threading.Event()
    body_head = (b"POST /api/v1beta1/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n")
    slow_head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 100000
    threads = ([threading.Thread(target=_trickle, args=(address, body_head, b"x" * 100000, closed, stop))
                for _ in range(20)]
               + [threading.Thread(target=_trickle, args=(address, b"", slow_head, closed, stop))
                  for _ in range(10)])
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        assert _healthz(master.url) == 200
        wait_for(lambda: len(closed) == 30, BOUND, "the master to close all 30 slow connections")
        assert _healthz(master.url) == 200
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert closed == [True] * 30 and time.monotonic() - started < BOUND + 5


def test_one_address_holds_a_bounded_number_of_connections(tmp_path):
    m = serve(tmp_path, False, limits=Limits(per_address=3))
    address = _address(m.url)
    socks = [socket.create_connection(address, timeout=10) for _ in range(3)]
    try:
        wait_for(lambda: len(m.server.server_state.connections) == 3, 10, "three connections to be open")
        with socket.create_connection(address, timeout=10) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                assert extra.recv(100) == b""
            except ConnectionResetError:
                pass  # aborted: also closed
        socks[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert socks[0].recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for s in socks:
            s.close()
        m.stop()


def test_urllib_sending_a_whole_refused_body_before_reading_gets_the_answer(tmp_path):
    """urllib writes the whole body, then reads: the 413 (over the limit) and the 401 (no token) must reach it
    rather than a reset or a broken pipe."""
    import urllib.error
    import urllib.request

    m = serve(tmp_path, False)
    try:
        for body, headers, code in [(b"[" + b" " * (5 << 20) + b"]", {"Authorization": f"Bearer {TOKEN}"}, 413),
                                    (b"[" + b" " * (1 << 20) + b"]", {}, 401)]:
            request = urllib.request.Request(m.url + "/api/v1beta1/pods", data=body, method="POST",
                                             headers={"Content-Type": "application/json", **headers})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=20)
            assert refused.value.code == code
    finally:
        m.stop()
