"""A chat webhook that costs as little CPU as Python allows, run as a process of its own for the worker
throughput benchmark: asyncio protocol, HTTP/1.1 keep-alive, answers every POST with 200 `ok` at once
and stamps its arrival (time.monotonic: CLOCK_MONOTONIC, the same clock in every process).

On a 2-core machine the endpoint shares the CPU with the worker and the broker, so its cost is part
of what is measured: a ThreadingHTTPServer in the test process (header parsing by email.parser, a
thread per connection, the GIL shared with pytest) took a good part of a core at a few thousand
requests a second. This one parses only what it needs (the request line and Content-Length).

usage: python lean_endpoint.py            prints its port on the first line of stdout, then serves
       GET /_count                        {"count": n} (cheap: polled while the worker runs)
       GET /_arrivals                     {"count": n, "at": [stamps...], "last_body": "..."}
       POST anything else                 200 ok (counted)
Stop it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

arrivals: list[float] = []
last_body = b""


class Http(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        global last_body
        buffer = self.buffer + data
        out = []
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            length = 0
            at = head.lower().find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            if len(buffer) < end + 4 + length:
                break
            body = buffer[end + 4 : end + 4 + length]
            buffer = buffer[end + 4 + length :]
            if head.startswith(b"GET /_"):  # the benchmark's questions: cheap /_count while it runs
                answer = (
                    {"count": len(arrivals), "at": arrivals, "last_body": last_body.decode()}
                    if head.startswith(b"GET /_arrivals")
                    else {"count": len(arrivals)}
                )
                data_out = json.dumps(answer).encode()
                out.append(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(data_out), data_out)
                )
            else:
                arrivals.append(time.monotonic())
                last_body = body
                out.append(OK)
        self.buffer = buffer
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def main() -> None:
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stopped.set_result, None)
    server = await loop.create_server(Http, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await stopped
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
