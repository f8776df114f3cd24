"""A real HTTP server on 127.0.0.1 speaking enough of the OpenAI API for dp annotate's tests and benchmark:
chat completions, files and batches, with injectable latency and faults.

Faults per record: put `FAULT<KIND>x<N>` in a base description and the first N requests for that
sentence get KIND: 429 (retry-after-ms), 500, 400 (a refused parameter), SLOW (sleep past the client timeout), MALFORMED (200
with a broken body), REFUSE, DROP (answer omits the first attribute), EMPTY, LENGTH (finish_reason
length), ECHO (answer repeats the prompt), LEAKKEY (a good answer that quotes the API key it was sent),
HANGUP (the connection closes without an answer). Whole-server knobs: latency, fault_rate (random 429/500),
api_key (401 for any other key; the message echoes the key it got, as real servers partly do),
models (404 for others), remaining_requests (x-ratelimit-remaining-requests header).

Run standalone: python tests/annotate/fake_openai.py --latency 0.05 [--fault-rate 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import email.policy
import json
import random
import re
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dp_cli.annotate.offline import rewrite  # noqa: E402
from dp_cli.annotate.records import Attribute, Item  # noqa: E402

_FAULT = re.compile(r"FAULT([A-Z0-9]+)x(\d+)")


class FakeState:
    """Shared, lock-protected server state and counters."""

    def __init__(self, latency=0.0, fault_rate=0.0, api_key=None, models=None, remaining_requests=None,
                 slow_seconds=2.0, batch_delay=0.0, seed=0, down_after=None):
        self.latency, self.fault_rate, self.api_key = latency, fault_rate, api_key
        self.down_after = down_after  # after this many chat requests, every request is dropped unanswered
        self.models, self.remaining_requests, self.slow_seconds = models, remaining_requests, slow_seconds
        self.batch_delay, self.hold_batches = batch_delay, False
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.hits: dict[str, int] = {}
        self.requests = self.in_flight = self.max_in_flight = 0
        self.statuses: dict[int, int] = {}
        self.auth_seen: set[str] = set()
        self.arrivals: list[int] = []
        self.prompts: list[str] = []
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}

    def hit(self, sentence: str) -> str | None:
        """The fault to inject for this request of this sentence, if any."""
        m = _FAULT.search(sentence)
        with self.lock:
            n = self.hits.get(sentence, 0)
            self.hits[sentence] = n + 1
            if m and n < int(m.group(2)):
                return m.group(1)
            if self.fault_rate and self.rng.random() < self.fault_rate:
                return self.rng.choice(["429", "500"])
        return None


def parse_prompt(messages: list[dict]) -> tuple[str, list[str], str]:
    user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    sentence = re.search(r"^Sentence: (.*)$", user, re.M)
    attrs = re.search(r"^Attributes: (.*)$", user, re.M)
    return (sentence.group(1) if sentence else user, attrs.group(1).split(", ") if attrs else [], user)


def chat_answer(state: FakeState, body: dict, key: str = "") -> tuple[int, dict, dict]:
    """(status, json body, extra headers) of one chat completion, faults applied."""
    sentence, labels, user = parse_prompt(body.get("messages", []))
    with state.lock:
        state.prompts.append(user)
    fault = state.hit(sentence)
    if fault == "429":
        return 429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"retry-after-ms": "20"}
    if fault == "500":
        return 500, {"error": {"message": "internal error"}}, {}
    if fault == "400":
        return 400, {"error": {"message": "Unsupported parameter: 'max_tokens'", "type": "invalid_request_error"}}, {}
    if fault == "HANGUP":
        return 0, {}, {}  # _connection closes the connection without an answer
    text, finish = rewrite(Item(0, "x", sentence, tuple(Attribute(l) for l in labels))), "stop"
    if fault == "REFUSE":
        text = "I'm sorry, but I can't help with that request."
    elif fault == "DROP":
        text = rewrite(Item(0, "x", sentence, tuple(Attribute(l) for l in labels[1:]))) if len(labels) > 1 else sentence
    elif fault == "EMPTY":
        text = ""
    elif fault == "LENGTH":
        text, finish = text[: len(text) // 2], "length"
    elif fault == "ECHO":
        text = user
    elif fault == "LEAKKEY":
        text += f" Served for key {key}."
    if body.get("response_format"):
        text = json.dumps({"rewritten": text, "attributes_used": labels})
    usage = {"prompt_tokens": len(user.split()), "completion_tokens": len(text.split()),
             "total_tokens": len(user.split()) + len(text.split())}
    return 200, {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                 "model": body.get("model"), "usage": usage,
                 "choices": [{"index": 0, "finish_reason": finish,
                              "message": {"role": "assistant", "content": text, "refusal": None}}]}, \
        {"x-malformed": "1"} if fault == "MALFORMED" else {"slow": "1"} if fault == "SLOW" else {}


class FakeOpenAI:
    """An asyncio HTTP/1.1 server (keep-alive) in a background thread.

    Start with `with FakeOpenAI(latency=0.01) as srv:`; point clients at `srv.url`.
    """

    def __init__(self, port: int = 0, **state_kwargs):
        self.state = FakeState(**state_kwargs)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", self._port, backlog=512))
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        async def shutdown() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(5)

    def serve_forever(self) -> None:
        self.__enter__()
        self._thread.join()

    # -- HTTP ----------------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                if self.state.down_after is not None and self.state.requests >= self.state.down_after:
                    break  # "the server went away": the connection closes without an answer
                status, obj, extra = await self._route(method, target.split("?")[0], headers, body)
                if status == 0:
                    break
                writer.write(self._response(status, obj, extra))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError,
                asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _response(self, status: int, obj: dict | bytes, headers: dict) -> bytes:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        if headers.pop("x-malformed", None):
            data = data[: len(data) // 2]
        st = self.state
        with st.lock:
            st.statuses[status] = st.statuses.get(status, 0) + 1
        if st.remaining_requests is not None:
            headers["x-ratelimit-remaining-requests"] = str(st.remaining_requests)
        head = [f"HTTP/1.1 {status} X", "content-type: application/json", f"content-length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data

    async def _route(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict | bytes, dict]:
        st = self.state
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()
        with st.lock:
            st.auth_seen.add(key)
        if st.api_key is not None and key != st.api_key:
            return 401, {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error",
                                   "code": "invalid_api_key"}}, {}
        parts = path.strip("/").split("/")
        if method == "POST" and path.endswith("/chat/completions"):
            return await self._chat(json.loads(body), key)
        if method == "POST" and path.endswith("/files"):
            return 200, self.add_file(headers.get("content-type", ""), body), {}
        if method == "POST" and path.endswith("/batches"):
            return 200, self.add_batch(json.loads(body)), {}
        if method == "GET" and len(parts) >= 3 and parts[-1] == "content" and parts[-2] in st.files:
            return 200, st.files[parts[-2]]["data"], {}
        if method == "GET" and len(parts) >= 2 and parts[-2] == "batches" and parts[-1] in st.batches:
            return 200, self.batch_status(parts[-1]), {}
        return 404, {"error": {"message": f"no route {method} {path}"}}, {}

    async def _chat(self, body: dict, key: str = "") -> tuple[int, dict, dict]:
        st = self.state
        if st.models is not None and body.get("model") not in st.models:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist",
                                   "code": "model_not_found"}}, {}
        with st.lock:
            st.requests += 1
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
            st.arrivals.append(st.in_flight)  # requests in flight when each request arrived
        try:
            if st.latency:
                await asyncio.sleep(st.latency)
            status, obj, headers = chat_answer(st, body, key)
            if headers.pop("slow", None):
                await asyncio.sleep(st.slow_seconds)
            return status, obj, headers
        finally:
            with st.lock:
                st.in_flight -= 1

    def add_file(self, content_type: str, body: bytes) -> dict:
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"content-type: {content_type}\r\n\r\n".encode() + body)
        fields = {part.get_param("name", header="content-disposition"): part for part in msg.iter_parts()}
        data = fields["file"].get_payload(decode=True)
        purpose = fields["purpose"].get_payload(decode=True).decode() if "purpose" in fields else "batch"
        return self._store_file(data, fields["file"].get_filename() or "upload.jsonl", purpose)

    def _store_file(self, data: bytes, name: str, purpose: str) -> dict:
        fid = f"file-{uuid.uuid4().hex[:16]}"
        obj = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()), "filename": name,
               "purpose": purpose, "status": "processed"}
        with self.state.lock:
            self.state.files[fid] = {**obj, "data": data}
        return obj

    def add_batch(self, req: dict) -> dict:
        bid = f"batch_{uuid.uuid4().hex[:16]}"
        obj = {"id": bid, "object": "batch", "endpoint": req["endpoint"], "input_file_id": req["input_file_id"],
               "completion_window": req["completion_window"], "status": "in_progress", "created_at": int(time.time()),
               "output_file_id": None, "error_file_id": None, "errors": None, "metadata": req.get("metadata"),
               "_t0": time.monotonic()}
        with self.state.lock:
            self.state.batches[bid] = obj
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def batch_status(self, bid: str) -> dict:
        st = self.state
        b = st.batches[bid]
        if b["status"] == "in_progress" and not st.hold_batches and time.monotonic() - b["_t0"] >= st.batch_delay:
            self._complete(b)
        return {k: v for k, v in b.items() if not k.startswith("_")}

    def _complete(self, b: dict) -> None:
        lines = self.state.files[b["input_file_id"]]["data"].decode().splitlines()
        out = []
        for line in lines:
            req = json.loads(line)
            status, obj, headers = chat_answer(self.state, req["body"])
            if headers.get("x-malformed"):
                status, obj = 200, {"choices": "broken"}
            out.append(json.dumps({"id": f"batch_req_{uuid.uuid4().hex[:8]}", "custom_id": req["custom_id"],
                                   "response": {"status_code": status, "body": obj}, "error": None}))
        b["output_file_id"] = self._store_file(("\n".join(out) + "\n").encode(), "output.jsonl", "batch_output")["id"]
        b["status"] = "completed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    args = ap.parse_args()
    srv = FakeOpenAI(args.port, latency=args.latency, fault_rate=args.fault_rate)
    srv.__enter__()
    print(srv.url, flush=True)
    try:
        srv._thread.join()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
