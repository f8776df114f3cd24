"""LLM backends behind one small interface, and the name -> class registry.

`complete(messages, item)` returns an `Answer` or raises `Transient` (this attempt failed; the item may
be asked again) or `BackendError` (the run cannot go on: bad key, no such model).
"""

from __future__ import annotations

import contextvars
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from dp_cli.annotate.config import AnnotateConfig
from dp_cli.annotate.limiter import AdaptiveLimiter
from dp_cli.annotate.offline import rewrite
from dp_cli.annotate.prompts import STRUCTURED_SCHEMA
from dp_cli.annotate.records import Item
from dp_cli.annotate.stats import Stats
from dp_cli.errors import BackendError

KEY_ENV = "OPENAI_API_KEY"
NO_KEY = "sk-no-key-needed-for-local-server"  # placeholder when a local server runs without keys
_SLOT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("dp_annotate_slot", default=None)
_SECRETISH = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,})")


@dataclass
class Answer:
    """One chat completion, reduced to what validation and the output need."""

    content: str | None
    finish_reason: str | None = None
    refusal: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Transient(Exception):
    """This attempt failed (timeout, 5xx after the client's retries, malformed body, ...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Backend(Protocol):
    """What the runner needs from a backend."""

    name: str
    model: str  # recorded in the output

    async def complete(self, messages: list[dict], item: Item) -> Answer: ...

    async def aclose(self) -> None: ...


MIN_SECRET_LENGTH = 8  # shorter keys ("x", "EMPTY" for a local server) are not secrets, and would match
# ordinary words and digits: replacing them would mangle descriptions, keys and messages


def redact(text: str, secret: str | None = None) -> str:
    """Remove the API key (and anything shaped like an OpenAI key) from a message."""
    if secret and secret != NO_KEY and len(secret) >= MIN_SECRET_LENGTH:
        text = text.replace(secret, "[redacted]")
    return _SECRETISH.sub("sk-[redacted]", text)


def redactor() -> Callable[[str], str]:
    """`redact` with this run's key (OPENAI_API_KEY): applied to every line annotate writes (the sink) and
    prints (the console), since a server may echo the key in any answer, not only in errors."""
    secret = os.environ.get(KEY_ENV, "").strip() or None
    return lambda text: redact(text, secret)


class OfflineBackend:
    """Deterministic rule-based rewriting (dp_cli.data.attributes); no server, no tokens."""

    name = "offline"
    model = "offline-rules"

    def __init__(self, cfg: AnnotateConfig, limiter: AdaptiveLimiter | None = None, stats: Stats | None = None):
        self.structured = cfg.structured_output
        self.stats = stats or Stats()

    async def complete(self, messages: list[dict], item: Item) -> Answer:
        self.stats.requests += 1
        text = rewrite(item)
        if self.structured:
            import json
            text = json.dumps({"rewritten": text, "attributes_used": item.labels})
        return Answer(text, "stop")

    async def aclose(self) -> None:
        return None


def api_key(base_url: str | None) -> str:
    """The key from OPENAI_API_KEY; a placeholder for local servers; an error for api.openai.com."""
    key = os.environ.get(KEY_ENV, "").strip()
    if key:
        return key
    if base_url is None or "api.openai.com" in base_url:
        raise BackendError(f"{KEY_ENV} is not set", hint="export OPENAI_API_KEY=..., or set base_url to a "
                           "local OpenAI-compatible server, or use --backend offline")
    return NO_KEY


def make_client(cfg: AnnotateConfig, on_request: Callable[[Any], Any] | None = None,
                on_response: Callable[[Any], Any] | None = None):
    """An AsyncOpenAI client with the run's timeout, retries and connection pool."""
    import httpx2
    import openai

    hooks = {"request": [on_request] if on_request else [], "response": [on_response] if on_response else []}
    http = openai.DefaultAsyncHttpxClient(
        event_hooks=hooks, timeout=httpx2.Timeout(cfg.timeout, connect=min(cfg.timeout, 10.0)),
        limits=httpx2.Limits(max_connections=cfg.concurrency + 8, max_keepalive_connections=cfg.concurrency + 8))
    return openai.AsyncOpenAI(api_key=api_key(cfg.base_url), base_url=cfg.base_url, timeout=cfg.timeout,
                              max_retries=cfg.max_retries, http_client=http)


def fatal_error(exc: Exception, cfg: AnnotateConfig, key: str | None) -> BackendError | None:
    """401/403/404 -> a one-line BackendError (the run stops); anything else -> None."""
    import openai

    where = cfg.base_url or "api.openai.com"
    msg = redact(str(getattr(exc, "message", exc))[:200], key)
    if isinstance(exc, openai.AuthenticationError):
        return BackendError(f"{where}: 401 unauthorized ({msg})", hint="check OPENAI_API_KEY")
    if isinstance(exc, openai.PermissionDeniedError):
        return BackendError(f"{where}: 403 permission denied ({msg})", hint="this key may not use this model or endpoint")
    if isinstance(exc, openai.NotFoundError):
        return BackendError(f"{where}: 404 not found for model {cfg.model!r} ({msg})",
                            hint="check --model and --base-url (it usually ends in /v1)")
    return None


def transient_reason(exc: Exception) -> str:
    """A short failure reason for an exception the client gave up on."""
    import openai

    for cls, reason in ((openai.APITimeoutError, "timeout"), (openai.APIConnectionError, "connection"),
                        (openai.RateLimitError, "rate_limited"), (openai.InternalServerError, "server_error"),
                        (openai.BadRequestError, "bad_request")):
        if isinstance(exc, cls):
            return reason
    status = getattr(exc, "status_code", None)
    return f"http_{status}" if status else type(exc).__name__


def _unreachable_error(exc: Exception) -> bool:
    """No answer at the connection level: refused, DNS, reset, hung up, or a connect timeout (a read
    timeout means a slow server)."""
    import httpx2
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return isinstance(exc.__cause__, httpx2.ConnectTimeout)
    return isinstance(exc, openai.APIConnectionError)


def _not_connected(exc: Exception) -> bool:
    """No connection could be opened at all (refused, DNS, connect timeout): nothing listens there."""
    import httpx2

    return isinstance(exc.__cause__, (httpx2.ConnectError, httpx2.ConnectTimeout))


UNREACHABLE_STREAK = 8  # connection failures in a row (at least `concurrency`) that stop a run
NEVER_ANSWERED_STREAK = 3  # the same, while the server has not answered once in this run (e.g. it hangs up)


class OpenAIBackend:
    """Async chat completions through the official client, against OpenAI or a compatible server.

    It takes its own concurrency slot per HTTP attempt (`owns_slots`): in-flight requests stay bounded
    while requests sleeping in the client's retry backoff do not block new ones."""

    name = "openai"
    owns_slots = True

    def __init__(self, cfg: AnnotateConfig, limiter: AdaptiveLimiter, stats: Stats):
        self.cfg, self.limiter, self.stats = cfg, limiter, stats
        self.model = cfg.model
        self._key = api_key(cfg.base_url)
        self.fatal: BackendError | None = None
        self.answered = False  # any HTTP response seen in this run
        self.unreachable_streak = 0  # requests in a row that got no connection after the client's retries
        self.succeeded = False  # a usable answer came back in this run
        self.client = make_client(cfg, self._on_request, self._on_response)

    async def _on_request(self, request: Any) -> None:
        """Every HTTP attempt (counted as sent, whether or not an answer comes back); the client marks its own
        retries with x-stainless-retry-count. A retry takes a concurrency slot again (given back while the
        client slept in its backoff)."""
        self.stats.requests += 1
        if request.headers.get("x-stainless-retry-count", "0") != "0":
            self.stats.http_retries += 1
            slot = _SLOT.get()
            if slot is not None and not slot["held"]:
                await self.limiter.acquire()
                slot["held"] = True

    async def _on_response(self, response: Any) -> None:
        """Every HTTP response, retries included: feed 429s and rate-limit headers to the limiter."""
        self.answered, self.unreachable_streak = True, 0
        if response.status_code == 429:
            self.stats.rate_limited += 1
            self.limiter.on_rate_limited()
        elif response.status_code >= 500:
            self.stats.server_errors += 1
        slot = _SLOT.get()
        if slot is not None and slot["held"] and (response.status_code in (408, 409, 429) or response.status_code >= 500):
            await self.limiter.release()  # no slot is held while the client backs off before its retry
            slot["held"] = False
        remaining = response.headers.get("x-ratelimit-remaining-requests")
        if remaining is not None and remaining.strip().isdigit():
            self.limiter.on_remaining(int(remaining))

    def request_body(self, messages: list[dict]) -> dict:
        """The chat-completions parameters (also the Batch API request body)."""
        body: dict[str, Any] = {"model": self.cfg.model, "messages": messages,
                                "temperature": self.cfg.temperature, "max_tokens": self.cfg.max_tokens}
        if self.cfg.structured_output:
            body["response_format"] = STRUCTURED_SCHEMA
        return body

    async def complete(self, messages: list[dict], item: Item) -> Answer:
        slot = {"held": False}
        token = _SLOT.set(slot)  # the HTTP hooks run in this task and see it
        try:
            await self.limiter.acquire()
            slot["held"] = True
            if self.fatal is not None:  # another request was refused (401/403/404): send nothing more
                raise self.fatal
            return await self._post(messages)
        finally:
            if slot["held"]:
                await self.limiter.release()
            _SLOT.reset(token)

    async def _post(self, messages: list[dict]) -> Answer:
        import httpx2
        import openai

        t0 = time.monotonic()
        try:
            # client.post (the client's documented path for raw requests) keeps its retries, timeouts and
            # error classes but skips the per-call typed transform of the params (~2 ms CPU per request)
            response = await self.client.post("/chat/completions", body=self.request_body(messages),
                                              cast_to=httpx2.Response)
        except openai.APIError as exc:
            fatal = fatal_error(exc, self.cfg, self._key) or self._unreachable(exc)
            if fatal is not None:
                self.fatal = fatal
                raise fatal from None
            reason = "connection" if _unreachable_error(exc) else transient_reason(exc)
            raise Transient(reason, redact(str(exc)[:200], self._key)) from None
        try:
            answer = answer_from_body(response.json())
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise Transient("malformed", f"unreadable response body ({type(exc).__name__})") from None
        self.limiter.on_success(time.monotonic() - t0)
        self.succeeded = True
        return answer

    def _unreachable(self, exc: Exception) -> BackendError | None:
        """Connection failures (after the client's retries) stop the run instead of failing every record:
        at once when no connection could be opened and the server never answered in this run, after
        `NEVER_ANSWERED_STREAK` failures in a row while it never answered (it hangs up), else after
        `UNREACHABLE_STREAK` such requests in a row.
        Records not finished stay unrecorded, so rerunning the same command continues."""
        if not _unreachable_error(exc):
            return None
        self.unreachable_streak += 1
        where = self.cfg.base_url or "api.openai.com"
        hint = "start the server or fix --base-url / OPENAI_BASE_URL, then rerun the same command to continue"
        if not self.answered and _not_connected(exc):
            return BackendError(f"{where}: cannot connect to the server "
                                f"({redact(str(exc)[:200], self._key)})", hint=hint)
        if not self.answered and self.unreachable_streak >= NEVER_ANSWERED_STREAK:
            return BackendError(f"{where}: the server closed {self.unreachable_streak} connections without answering "
                                f"({redact(str(exc)[:200], self._key)})",
                                hint="check that --base-url names an OpenAI-compatible endpoint (http vs https, "
                                     "port, /v1), then rerun the same command to continue")
        if self.unreachable_streak >= max(UNREACHABLE_STREAK, self.cfg.concurrency):
            return BackendError(f"{where}: the server stopped answering ({self.unreachable_streak} requests in a "
                                "row could not connect); finished records are kept", hint=hint)
        return None

    async def aclose(self) -> None:
        await self.client.close()


def answer_from_body(body: dict) -> Answer:
    """A chat-completion JSON body -> Answer (raises KeyError/TypeError/IndexError when malformed)."""
    choice = body["choices"][0]
    message = choice["message"]
    usage = body.get("usage") or {}
    return Answer(message.get("content"), choice.get("finish_reason"), message.get("refusal"),
                  int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


BACKENDS: dict[str, str] = {
    "openai": "dp_cli.annotate.backends:OpenAIBackend",
    "offline": "dp_cli.annotate.backends:OfflineBackend",
    "openai-batch": "dp_cli.annotate.batch:BatchBackend",
}


def backend_class(name: str) -> type:
    """The class registered for a backend name."""
    import importlib

    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)
