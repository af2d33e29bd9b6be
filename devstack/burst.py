"""Many clients at the same moment against a local server (tests and benchmarks): loopback only,
bounded in count and time."""
from __future__ import annotations

import concurrent.futures as cf
import socket
import threading
from urllib.parse import urlsplit


def burst(base_url: str, path: str, clients: int = 100) -> dict[str, int]:
    """``clients`` connections opened at the same moment, one GET each. Returns how many ended in
    each way: the HTTP status ("200", "401", ...), "reset", "empty", or the error's name."""
    parts = urlsplit(base_url)
    start = threading.Barrier(clients, timeout=30)

    def one(_):
        start.wait()
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=20) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.") else "empty"
        except ConnectionResetError:
            return "reset"
        except OSError as err:
            return type(err).__name__

    with cf.ThreadPoolExecutor(clients) as pool:
        outcomes = list(pool.map(one, range(clients)))
    return {k: outcomes.count(k) for k in set(outcomes)}


def answered(outcomes: dict[str, int]) -> int:
    """How many of a burst's clients got an HTTP answer, whatever its status."""
    return sum(n for k, n in outcomes.items() if k.isdigit())
