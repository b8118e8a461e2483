#!/usr/bin/env python3
"""One unpaid request from each of N distinct client addresses: 127.1.0.0 and up, every one
its own source address (127.0.0.0/8 is all loopback on Linux: a socket binds to any address in
it, no route or root needed). A new connection per request, `Connection: close`.

    many_addresses.py HOST:PORT PATH N [CONCURRENCY]

Prints one JSON object: {"statuses": {"402": n, ...}, "seconds": s}; a request that got no
status line counts under its error's name. Standard library only. scripts/nginx-full-shm.sh
runs it against real nginx.
"""

import asyncio
import ipaddress
import json
import socket
import sys
import time
from collections import Counter

FIRST = int(ipaddress.IPv4Address("127.1.0.0"))


def address(i):
    """The i-th client address (127.1.0.0 + i: 100,000 of them end at 127.2.134.159)."""
    return str(ipaddress.IPv4Address(FIRST + i))


async def one(target, path, source):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.bind((source, 0))
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, target), 30)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        await loop.sock_sendall(sock, request)
        head = b""
        while b"\r\n" not in head:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 30)
            if not chunk:
                return "closed"
            head += chunk
        # Read to the end so nginx finishes the request before the socket goes.
        while await asyncio.wait_for(loop.sock_recv(sock, 65536), 30):
            pass
        parts = head.split(b" ", 2)
        return parts[1].decode() if len(parts) > 1 else "garbled"
    except (OSError, asyncio.TimeoutError) as e:
        return type(e).__name__
    finally:
        sock.close()


async def main(target, path, n, concurrency):
    statuses = Counter()
    next_i = iter(range(n))

    async def worker():
        for i in next_i:
            statuses[await one(target, path, address(i))] += 1

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, time.monotonic() - start


if __name__ == "__main__":
    host, port = sys.argv[1].rsplit(":", 1)
    n = int(sys.argv[3])
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 128
    statuses, seconds = asyncio.run(main((host, int(port)), sys.argv[2], n, concurrency))
    print(json.dumps({"statuses": dict(statuses), "seconds": round(seconds, 1)}))
