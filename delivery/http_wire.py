"""One HTTP/1.1 request and its answer on a connection kept alive between requests: the direct (no proxy)
path of `delivery.http.HttpClient`.

Why not http.client: it writes the head and the body in two send calls and parses every answer's
headers with the e-mail package; that was a third of a Mattermost delivery's CPU. A chat webhook
exchange needs far less: one write, a status line, a few headers, a body by Content-Length or chunked
(or until the server closes). Everything else is refused as a protocol error (the caller retries on
a fresh connection), never guessed at.

Errors raised, for the caller to classify: OSError (refused, reset, TimeoutError for a timeout,
ssl.SSLError for TLS); http.client.RemoteDisconnected (a ConnectionError) when the server closed
before the first byte of an answer; http.client.HTTPException when the answer is not HTTP/1.x as
expected; ValueError when a header or the target holds CR, LF or NUL (header injection).
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from urllib3.util.wait import wait_for_read

MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024  # more is cut and the connection closed: a caller only ever reads an excerpt
_UNSAFE = re.compile(r"[\r\n\0]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_RECEIVE = 65536


class ResponseHeaders(dict[str, str]):
    """Header names lower-cased; `get` by any spelling. Repeated headers are joined with ", "."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: ResponseHeaders


class Connection:
    """A connection to one server (`tls`: an SSLContext for https), opened on first use and reopened when
    the server has closed it. Not thread-safe: `HttpClient` keeps one per thread."""

    def __init__(
        self, host: str, port: int, connect_timeout: float, read_timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.tls = tls
        default_port = 443 if tls is not None else 80
        name = f"[{host}]" if ":" in host else host  # an IPv6 literal
        self.host_header = name if port == default_port else f"{name}:{port}"
        self.sock: socket.socket | None = None
        self._buffer = bytearray()

    def ready(self) -> None:
        """Connected and idle: a connection the server closed meanwhile (keep-alive timeout) is replaced.
        OSError (ssl.SSLError for TLS) when connecting fails: nothing was sent."""
        if self.sock is not None and wait_for_read(self.sock, timeout=0.0):
            self.close()  # readable while idle: closed by the server, or it sent something unasked
        if self.sock is not None:
            return
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)  # handshake: connect timeout
            sock.settimeout(self.read_timeout)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._buffer.clear()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._buffer.clear()

    def exchange(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> Response:
        """Send one request (head and body in one write) and read its answer; `ready()` first."""
        assert self.sock is not None
        self.sock.sendall(_request(method, target, self.host_header, headers, body))
        status, reusable, answer_headers = self._read_head()
        if method == "HEAD" or status in (204, 304):
            data = b""
        elif "chunked" in (answer_headers.get("transfer-encoding") or "").lower():
            data, complete = self._read_chunked()
            reusable = reusable and complete
        elif "content-length" in answer_headers:
            try:
                length = int(answer_headers["content-length"])
            except ValueError:
                raise http.client.HTTPException("bad Content-Length") from None
            if length < 0:
                raise http.client.HTTPException("bad Content-Length")
            data = self._read_exact(min(length, MAX_BODY))
            reusable = reusable and length <= MAX_BODY
        else:  # the body ends when the server closes
            data = self._read_to_close()
            reusable = False
        if not reusable or self._buffer:  # bytes nobody asked for: do not read the next answer from them
            self.close()
        return Response(status, data, answer_headers)

    # ---- reading ---------------------------------------------------------------------------------

    def _read_head(self) -> tuple[int, bool, ResponseHeaders]:
        """Status, whether the connection may be kept, headers; informational (1xx) answers skipped."""
        first = True
        while True:
            head = self._read_until(b"\r\n\r\n", MAX_HEAD, first)
            first = False
            status_line, _, header_lines = head.partition(b"\r\n")
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3 or not parts[1].isdigit():
                raise http.client.BadStatusLine(status_line[:40].decode("latin-1"))
            status = int(parts[1])
            if 100 <= status < 200:
                continue
            headers = _parse_headers(header_lines)
            tokens = {t.strip().lower() for t in (headers.get("connection") or "").split(",")}
            reusable = parts[0] == b"HTTP/1.1" and "close" not in tokens
            return status, reusable, headers

    def _read_chunked(self) -> tuple[bytes, bool]:
        """The body, and whether it was read to its end (False: cut at MAX_BODY)."""
        data = bytearray()
        while True:
            line = self._read_until(b"\r\n", 1024, False)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise http.client.HTTPException("bad chunk size") from None
            if size < 0:
                raise http.client.HTTPException("bad chunk size")
            if size == 0:
                while self._read_until(b"\r\n", MAX_HEAD, False):  # trailers, up to an empty line
                    pass
                return bytes(data), True
            if len(data) + size > MAX_BODY:
                return bytes(data), False
            data += self._read_exact(size)
            if self._read_exact(2) != b"\r\n":
                raise http.client.HTTPException("bad chunk end")

    def _read_to_close(self) -> bytes:
        assert self.sock is not None
        while len(self._buffer) < MAX_BODY:
            chunk = self.sock.recv(_RECEIVE)
            if not chunk:
                break
            self._buffer += chunk
        data = bytes(self._buffer[:MAX_BODY])
        self._buffer.clear()
        return data

    def _read_until(self, end: bytes, limit: int, first: bool) -> bytes:
        """Bytes up to `end` (consumed, not returned). `first`: the answer's first read, where a closed
        connection means the server closed before answering."""
        assert self.sock is not None
        start = 0
        while True:
            found = self._buffer.find(end, start)
            if found >= 0:
                taken = bytes(self._buffer[:found])
                del self._buffer[: found + len(end)]
                return taken
            if len(self._buffer) > limit:
                raise http.client.LineTooLong("answer head")
            start = max(0, len(self._buffer) - len(end) + 1)
            chunk = self.sock.recv(_RECEIVE)
            if not chunk:
                if first and not self._buffer:
                    raise http.client.RemoteDisconnected("closed before answering")
                raise http.client.IncompleteRead(bytes(self._buffer))
            self._buffer += chunk

    def _read_exact(self, count: int) -> bytes:
        assert self.sock is not None
        while len(self._buffer) < count:
            chunk = self.sock.recv(max(_RECEIVE, count - len(self._buffer)))
            if not chunk:
                raise http.client.IncompleteRead(bytes(self._buffer), count - len(self._buffer))
            self._buffer += chunk
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken


def _request(method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
    names = "".join(headers)
    if _UNSAFE.search(f"{method}{target}{names}{''.join(headers.values())}") or not all(
        _TOKEN.fullmatch(name) for name in headers
    ):
        raise ValueError("CR, LF or NUL in the request line or a header, or a bad header name")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")  # UnicodeEncodeError is a ValueError
    return head + body if body else head


def _parse_headers(block: bytes) -> ResponseHeaders:
    headers = ResponseHeaders()
    name = ""
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):  # obsolete line folding: continues the previous value
            if name:
                headers[name] = f"{headers[name]} {line.strip().decode('latin-1')}"
            continue
        raw_name, colon, value = line.partition(b":")
        if not colon:
            raise http.client.HTTPException("bad header line")
        name = raw_name.strip().lower().decode("latin-1")
        text = value.strip().decode("latin-1")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers
