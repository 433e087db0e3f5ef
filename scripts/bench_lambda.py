"""Lambda mode for the benchmarks: a fake Lambda Runtime API (FakeRuntime) that hands events to a
`killswitch` process, the environment Lambda gives it (lambda_env), and one warm process fed one
event at a time (WarmFunction)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import time
import uuid

from bench_proxies import log
from latency_proxy import read_message

RUNTIME_PREFIX = "/2018-06-01/runtime"


class FakeRuntime:
    """The Lambda Runtime API on 127.0.0.1: `/next` hands out the items of `source` (an
    asyncio.Queue of objects with `.payload` bytes), long-polling while it is empty; results
    posted to `/response` and `/error` go to `on_result(rid, kind, body, t)`; `on_handout(item,
    rid, t)` is called with the time /next returned the event."""

    ids = itertools.count(1)

    def __init__(self, name: str, source: asyncio.Queue, on_handout=None, on_result=None, deadline_ms: int = 120_000):
        self.name = name
        self.source = source
        self.on_handout = on_handout or (lambda item, rid, t: None)
        self.on_result = on_result or (lambda rid, kind, body, t: None)
        self.deadline_ms = deadline_ms
        self.ready = asyncio.Event()  # the function has polled /next once: initialised
        self.polls = 0
        self.init_errors: list = []
        self.tasks: set[asyncio.Task] = set()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 22)
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.server:
            self.server.close()
        for t in list(self.tasks):
            t.cancel()

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, status: str, body: bytes = b"{}", headers: str = "") -> None:
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            while True:
                try:
                    req = await read_message(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    return
                if req is None:
                    return
                path = req.target.split("?", 1)[0]
                if req.method == "GET" and path == f"{RUNTIME_PREFIX}/invocation/next":
                    self.polls += 1
                    self.ready.set()
                    if not await self._next(reader, writer):
                        return
                    continue
                m = re.fullmatch(rf"{RUNTIME_PREFIX}/invocation/([^/]+)/(response|error)", path)
                try:
                    body = json.loads(req.body) if req.body else None
                except ValueError:
                    body = req.body.decode("utf-8", "replace")
                if req.method == "POST" and m:
                    self.on_result(m.group(1), m.group(2), body, time.time())
                    self._reply(writer, "202 Accepted", b'{"status":"OK"}')
                elif req.method == "POST" and path == f"{RUNTIME_PREFIX}/init/error":
                    self.init_errors.append(body)
                    log(f"{self.name}: init error {body}")
                    self._reply(writer, "202 Accepted", b'{"status":"OK"}')
                else:
                    self._reply(writer, "404 Not Found", b'{"errorMessage":"unknown path"}')
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self.tasks.discard(task)
            writer.close()

    async def _next(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Waits for an event, or for the function to go away (then the event stays queued)."""
        get = asyncio.ensure_future(self.source.get())
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            get.cancel()
            gone.cancel()
            raise
        if not get.done():
            get.cancel()
            return False
        item = get.result()
        if gone.done():
            self.source.put_nowait(item)
            return False
        gone.cancel()
        try:
            data = await gone  # the reader must be free before the next request is read
        except asyncio.CancelledError:
            data = None
        if data is not None:  # closed (b"") or sent something while polling: keep the event
            self.source.put_nowait(item)
            return False
        rid = f"{self.name}-{next(self.ids)}"
        deadline = int(time.time() * 1000) + self.deadline_ms
        headers = (f"Lambda-Runtime-Aws-Request-Id: {rid}\r\n"
                   f"Lambda-Runtime-Deadline-Ms: {deadline}\r\n"
                   "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:killswitch\r\n"
                   f"Lambda-Runtime-Trace-Id: Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0\r\n")
        t = time.time()
        try:
            self._reply(writer, "200 OK", item.payload, headers)
            await writer.drain()
        except ConnectionError:
            self.source.put_nowait(item)
            return False
        self.on_handout(item, rid, t)
        return True


def lambda_env(name: str, runtime: FakeRuntime) -> dict[str, str]:
    return {
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "AWS_LAMBDA_FUNCTION_NAME": "killswitch",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/01/01/[1]{name}",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/killswitch",
    }


class Event:
    def __init__(self, payload: dict, **info):
        self.payload = json.dumps(payload).encode()
        self.__dict__.update(info)


class WarmFunction:
    """One killswitch process in Lambda mode behind a fake Runtime API, fed one event at a time."""

    def __init__(self, binary: str, env: dict, name: str, workdir: str):
        self.binary, self.env, self.name, self.workdir = binary, env, name, workdir
        self.queue: asyncio.Queue = asyncio.Queue()
        self.runtime = FakeRuntime(name, self.queue, self._handout, self._result)
        self.pending: dict[str, asyncio.Future] = {}
        self.handed: dict[str, float] = {}
        self.current: asyncio.Future | None = None
        self.proc: asyncio.subprocess.Process | None = None

    def _handout(self, item, rid, t):
        item.rid = rid
        item.t_handout = t
        self.pending[rid] = item.done

    def _result(self, rid, kind, body, t):
        fut = self.pending.pop(rid, None)
        if fut and not fut.done():
            fut.set_result((kind, body, t))

    async def start(self, timeout: float = 60) -> float:
        await self.runtime.start()
        env = dict(self.env, **lambda_env(self.name, self.runtime))
        self.stderr = open(os.path.join(self.workdir, f"{self.name}.stderr"), "w")  # noqa: SIM115
        t = time.time()
        self.proc = await asyncio.create_subprocess_exec(self.binary, env=env, stdout=self.stderr, stderr=self.stderr)
        ready = asyncio.ensure_future(self.runtime.ready.wait())
        died = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait({ready, died}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            raise RuntimeError(f"{self.name} did not poll /next (see {self.stderr.name})")
        died.cancel()
        return time.time() - t

    async def invoke(self, payload: dict, timeout: float = 150) -> Event:
        ev = Event(payload)
        ev.done = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(ev)
        ev.kind, ev.body, ev.t_result = await asyncio.wait_for(ev.done, timeout)
        return ev

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self.runtime.stop()
        if getattr(self, "stderr", None):
            self.stderr.close()
