#!/usr/bin/env python3
"""Benchmark infrastructure: a TCP proxy that makes the embedded local AWS behave like a far-away AWS.

The local AWS answers in a few milliseconds, so a benchmark against it hides every sequential
call. This proxy, in front of it on 127.0.0.1, parses HTTP/1.1 (keep-alive, Content-Length and
chunked bodies) and charges each request the round trips it would cost on a real network:

* every HTTP request: one round trip (`--delay-ms`), slept before the request is forwarded;
* the first request on a new client connection: two more (TCP and TLS handshakes), 3 x delay.

Optionally (`--iam-write-limit N`) it plays IAM's write throttling: beyond N mutating IAM calls
(UpdateAccessKey, PutUserPolicy, PutRolePolicy, DeleteUserPolicy) in any one-second window it
answers HTTP 400 with IAM's XML error `Throttling` / `Rate exceeded` itself, without forwarding.

Every request is logged as one JSON line (`--log`), written when its response has gone back:
  t_arrive   time.time() when the request (headers) reached the proxy
  t_forward  when it was forwarded upstream (or answered Throttling), after the simulated delay
  t_done     when the whole response had been written back to the client
  conn, port, new_conn, seq   connection id, the listening port, first request on it?, index
  service, region             from the SigV4 credential scope
  action                      Query protocol: Action= (form or query); JSON: X-Amz-Target
  params                      UserName, AccessKeyId, PolicyName, RoleName, Status if present
  status, throttled, delay_ms

Several --listen-port values may be given (one listener each, same upstream), so a benchmark can
give every AWS service its own endpoint, and every process its own ports, like real AWS hosts.

Usage: latency_proxy.py --listen-port 8001 [--listen-port 8002 ...] --upstream 127.0.0.1:5000
                        --delay-ms 60 --log proxy.jsonl [--iam-write-limit 50] [--ready-file F]
Runs until SIGTERM/SIGINT. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import re
import signal
import sys
import time
import urllib.parse
import uuid
from email.utils import formatdate

SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
IAM_WRITES = ("UpdateAccessKey", "PutUserPolicy", "PutRolePolicy", "DeleteUserPolicy")
LOGGED_PARAMS = ("UserName", "AccessKeyId", "PolicyName", "RoleName", "Status")
STREAM_LIMIT = 1 << 20


class Message:
    """One HTTP/1.1 request or response, with its bytes exactly as read (to forward them)."""

    def __init__(self, start: str, headers: list[tuple[str, str]], raw: bytes, body: bytes, until_close: bool):
        self.start = start
        self.headers = headers
        self.raw = raw  # head and body, framing included, as received
        self.head_len = len(raw)  # bytes of raw that are the head
        self.body = body  # body with chunked framing removed
        self.until_close = until_close  # body delimited by the end of the connection

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0]

    @property
    def target(self) -> str:
        parts = self.start.split(" ")
        return parts[1] if len(parts) > 1 else ""

    @property
    def status(self) -> int:
        parts = self.start.split(" ")
        try:
            return int(parts[1])
        except (IndexError, ValueError):
            return 0

    @property
    def wants_close(self) -> bool:
        conn = (self.header("connection") or "").lower()
        return "close" in conn or self.start.endswith("HTTP/1.0") and "keep-alive" not in conn


async def read_message(reader: asyncio.StreamReader, response: bool = False, request_method: str = "GET") -> Message | None:
    """Reads one HTTP/1.1 message; None on a clean end of stream before its first byte."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise
    lines = head.decode("latin-1").split("\r\n")
    start = lines[0]
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    msg = Message(start, headers, head, b"", False)
    te = (msg.header("transfer-encoding") or "").lower()
    length = msg.header("content-length")
    no_body = response and (request_method == "HEAD" or msg.status in (204, 304) or 100 <= msg.status < 200)
    raw = [head]
    if no_body:
        pass
    elif "chunked" in te:
        body = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw.append(size_line)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    raw.append(trailer)
                    if trailer == b"\r\n":
                        break
                break
            chunk = await reader.readexactly(size + 2)
            raw.append(chunk)
            body.append(chunk[:-2])
        msg.body = b"".join(body)
    elif length is not None:
        msg.body = await reader.readexactly(int(length))
        raw.append(msg.body)
    elif response:
        msg.body = await reader.read(-1)
        raw.append(msg.body)
        msg.until_close = True
    msg.raw = b"".join(raw)
    msg.head_len = len(head)
    return msg


def keep_alive(resp: Message) -> bytes:
    """The response's bytes without its Connection header: the local AWS (werkzeug) closes every
    connection after one response, real AWS keeps it open, and the model is AWS's."""
    lines = resp.raw[: resp.head_len].split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"connection:")]
    return b"\r\n".join(kept) + resp.raw[resp.head_len :]


def describe(req: Message) -> dict:
    """Service, Region, action and the interesting parameters of an AWS request."""
    out: dict = {"service": None, "region": None, "action": None, "params": {}}
    scope = SCOPE_RE.search(req.header("authorization") or "")
    if scope:
        out["region"], out["service"] = scope.group(1), scope.group(2)
    path, _, query = req.target.partition("?")
    fields: dict = dict(urllib.parse.parse_qsl(query))
    ctype = (req.header("content-type") or "").lower()
    target = req.header("x-amz-target")
    if ctype.startswith("application/x-www-form-urlencoded"):
        fields.update(urllib.parse.parse_qsl(req.body.decode("utf-8", "replace")))
    elif "json" in ctype and req.body:
        try:
            data = json.loads(req.body)
            if isinstance(data, dict):
                fields.update({k: v for k, v in data.items() if isinstance(v, str)})
        except ValueError:
            pass
    if target:
        out["action"] = target.rsplit(".", 1)[-1]
    elif "Action" in fields:
        out["action"] = fields["Action"]
    else:
        out["action"] = f"{req.method} {path}"
    out["params"] = {k: fields[k] for k in LOGGED_PARAMS if k in fields}
    return out


def throttling_response() -> bytes:
    body = (
        '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">\n'
        "  <Error>\n    <Type>Sender</Type>\n    <Code>Throttling</Code>\n    <Message>Rate exceeded</Message>\n"
        f"  </Error>\n  <RequestId>{uuid.uuid4()}</RequestId>\n</ErrorResponse>\n"
    ).encode()
    head = (
        "HTTP/1.1 400 Bad Request\r\n"
        f"x-amzn-RequestId: {uuid.uuid4()}\r\n"
        "Content-Type: text/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Date: {formatdate(usegmt=True)}\r\n\r\n"
    ).encode()
    return head + body


class Proxy:
    def __init__(self, upstream: tuple[str, int], delay: float, log, write_limit: int | None, write_actions: set[str]):
        self.upstream = upstream
        self.delay = delay
        self.log = log
        self.write_limit = write_limit
        self.write_actions = write_actions
        self.writes: collections.deque[float] = collections.deque()
        self.ids = itertools.count(1)
        self.tasks: set[asyncio.Task] = set()

    def throttled(self, info: dict, now: float) -> bool:
        if not self.write_limit or info["service"] != "iam" or info["action"] not in self.write_actions:
            return False
        while self.writes and self.writes[0] <= now - 1.0:
            self.writes.popleft()
        if len(self.writes) >= self.write_limit:
            return True
        self.writes.append(now)
        return False

    def record(self, entry: dict) -> None:
        self.log.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self.log.flush()

    async def handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter, port: int) -> None:
        task = asyncio.current_task()
        if task:
            self.tasks.add(task)
        port = cwriter.get_extra_info("sockname")[1]
        conn = f"{port}-{next(self.ids)}"
        seq = 0
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                try:
                    req = await read_message(creader)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
                    break
                if req is None:
                    break
                t_arrive = time.time()
                new_conn = seq == 0
                seq += 1
                info = describe(req)
                rounds = 3 if new_conn else 1
                await asyncio.sleep(self.delay * rounds)
                t_forward = time.time()
                entry = {"t_arrive": t_arrive, "t_forward": t_forward, "conn": conn, "port": port,
                         "new_conn": new_conn, "seq": seq, **info, "delay_ms": round(self.delay * rounds * 1000, 1)}
                close_client = req.wants_close
                if self.throttled(info, t_forward):
                    cwriter.write(throttling_response())
                    await cwriter.drain()
                    entry.update(status=400, throttled=True)
                else:
                    status, up, close = await self.forward(req, up, cwriter)
                    entry.update(status=status, throttled=False)
                    close_client = close_client or close
                entry["t_done"] = time.time()
                self.record(entry)
                if close_client:
                    break
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            self.record({"t_arrive": time.time(), "conn": conn, "port": port, "event": "connection error", "error": repr(e)})
        finally:
            for w in (cwriter, up[1] if up else None):
                if w is not None:
                    try:
                        w.close()
                    except Exception:  # noqa: BLE001 - already gone
                        pass
            if task:
                self.tasks.discard(task)

    async def forward(self, req: Message, up, cwriter: asyncio.StreamWriter):
        """Sends `req` upstream, relays the response. Returns (status, upstream or None, close client?)."""
        for attempt in (1, 2):
            fresh = up is None
            if up is None:
                try:
                    up = await asyncio.open_connection(*self.upstream, limit=STREAM_LIMIT)
                except OSError:
                    cwriter.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    await cwriter.drain()
                    return 502, None, False
            ureader, uwriter = up
            try:
                uwriter.write(req.raw)
                await uwriter.drain()
                resp = await read_message(ureader, response=True, request_method=req.method)
            except (ConnectionError, asyncio.IncompleteReadError):
                resp = None
            if resp is None:
                # The kept-alive upstream connection was closed under us: once more on a new one.
                uwriter.close()
                up = None
                if fresh or attempt == 2:
                    cwriter.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    await cwriter.drain()
                    return 502, None, False
                continue
            while 100 <= resp.status < 200:  # 100 Continue and friends: relay, then the real answer
                cwriter.write(resp.raw)
                resp = await read_message(ureader, response=True, request_method=req.method)
                if resp is None:
                    raise ConnectionError("upstream closed after an interim response")
            if resp.until_close:
                # No framing: only the end of the connection tells the client where the body ends.
                cwriter.write(resp.raw)
                await cwriter.drain()
                uwriter.close()
                return resp.status, None, True
            cwriter.write(keep_alive(resp))
            await cwriter.drain()
            if resp.wants_close:
                # The upstream closes; the client's connection stays open (a new upstream one is
                # opened for its next request, which costs nothing in the model).
                uwriter.close()
                return resp.status, None, False
            return resp.status, up, False
        raise AssertionError("unreachable")


async def serve(args: argparse.Namespace) -> None:
    host, _, port = args.upstream.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("the upstream must be on 127.0.0.1")
    log = open(args.log, "a", buffering=1)  # noqa: SIM115 - closed at exit
    actions = set(args.iam_write_actions.split(",")) if args.iam_write_actions else set(IAM_WRITES)
    proxy = Proxy((host, int(port)), args.delay_ms / 1000.0, log, args.iam_write_limit, actions)
    servers = []
    for p in args.listen_port:
        servers.append(await asyncio.start_server(lambda r, w, p=p: proxy.handle(r, w, p), "127.0.0.1", p,
                                                  limit=STREAM_LIMIT))
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"pid": os.getpid(), "ports": ports}, fh)
        os.replace(tmp, args.ready_file)
    print(f"latency proxy on 127.0.0.1:{','.join(map(str, ports))} -> {args.upstream}, "
          f"{args.delay_ms} ms per round trip, IAM write limit {args.iam_write_limit or 'none'}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    for t in list(proxy.tasks):
        t.cancel()
    log.flush()
    log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, action="append", required=True,
                        help="port on 127.0.0.1 (repeat for several listeners; 0 picks one)")
    parser.add_argument("--upstream", required=True, help="host:port of the local AWS")
    parser.add_argument("--delay-ms", type=float, default=60.0, help="one round trip")
    parser.add_argument("--log", required=True, help="JSON lines, one per request")
    parser.add_argument("--iam-write-limit", type=int, default=None,
                        help="mutating IAM calls per second before answering Throttling")
    parser.add_argument("--iam-write-actions", default=None,
                        help=f"comma-separated IAM actions that count as writes (default {','.join(IAM_WRITES)})")
    parser.add_argument("--ready-file", default=None, help="written ({pid, ports}) once listening")
    args = parser.parse_args()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
