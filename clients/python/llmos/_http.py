"""HTTP transport: auth, timeouts, retries with backoff honouring Retry-After, typed errors, SSE/NDJSON."""

import email.utils
import json
import random
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, Optional

from ._errors import APIConnectionError, APITimeoutError, LlmosError, error_from_response

DEFAULT_PORT = 11435
DEFAULT_HOST = f"http://127.0.0.1:{DEFAULT_PORT}"
_MAX_RETRY_AFTER = 60.0


def resolve_host(value: Optional[str]) -> str:
    """Normalises a host setting like OLLAMA_HOST: URL, ``host:port``, ``host`` or a bare port."""
    raw = (value or "").strip()
    if not raw:
        return DEFAULT_HOST
    if re.fullmatch(r":?\d+", raw):
        return f"http://127.0.0.1:{raw.lstrip(':')}"
    has_scheme = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", raw) is not None
    parsed = urllib.parse.urlsplit(raw if has_scheme else f"http://{raw}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"invalid llmos host: {value!r}")
    host = parsed.hostname
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    port = parsed.port if parsed.port is not None else (None if has_scheme else DEFAULT_PORT)
    netloc = host if port is None else f"{host}:{port}"
    return f"{parsed.scheme}://{netloc}{parsed.path}".rstrip("/")


def _retry_after(headers: Any) -> Optional[float]:
    ms = headers.get("retry-after-ms") if headers is not None else None
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _backoff(attempt: int) -> float:
    return min(0.5 * 2 ** attempt, 8.0) * (1 - random.random() * 0.25)


class Transport:
    """Sends JSON requests to the daemon."""

    def __init__(self, base_url: str, api_key: Optional[str], timeout: float, max_retries: int,
                 default_headers: Optional[Dict[str, str]] = None) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})

    def open(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None,
             idempotent: Optional[bool] = None, timeout: Optional[float] = None) -> Any:
        """Sends a request and returns the open 2xx response (caller reads and closes it)."""
        url = self.base_url + path
        if query:
            qs = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
            if qs:
                url += "?" + qs
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"accept": "application/json", **self.default_headers}
        if data is not None:
            headers["content-type"] = "application/json"
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "DELETE")
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                return urllib.request.urlopen(request, timeout=timeout or self.timeout)
            except urllib.error.HTTPError as response:
                request_id = response.headers.get("x-request-id")
                text = response.read().decode("utf-8", "replace")
                response.close()
                try:
                    parsed = json.loads(text) if text else None
                except ValueError:
                    parsed = {"error": text[:500]}
                retry_after = _retry_after(response.headers)
                error = error_from_response(response.code, parsed, request_id, retry_after)
                retryable = (response.code == 429 and error.code != "quota_exceeded") or response.code == 503
                if (not retryable or attempt >= self.max_retries
                        or (retry_after is not None and retry_after > _MAX_RETRY_AFTER)):
                    raise error from None
                time.sleep(retry_after if retry_after is not None else _backoff(attempt))
            except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, (socket.timeout, TimeoutError)):
                    error: LlmosError = APITimeoutError(f"request timed out after {timeout or self.timeout} s", "timeout")
                else:
                    error = APIConnectionError(f"connection to {self.base_url} failed: {reason}", "connection_error")
                if not idempotent or attempt >= self.max_retries:
                    raise error from None
                time.sleep(_backoff(attempt))
            attempt += 1

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """Sends a request and parses the JSON response."""
        response = self.open(method, path, body, **kwargs)
        try:
            text = response.read().decode("utf-8")
        except (OSError, socket.timeout) as exc:
            raise APIConnectionError(f"reading the response failed: {exc}", "connection_error") from None
        finally:
            response.close()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise LlmosError("response body is not valid JSON", "invalid_response", response.status,
                             response.headers.get("x-request-id")) from None


def _event(text: str, request_id: Optional[str]) -> Any:
    try:
        event = json.loads(text)
    except ValueError:
        raise LlmosError(f"stream event is not valid JSON: {text[:200]}", "invalid_response", None, request_id) from None
    if isinstance(event, dict) and event.get("error"):
        raise error_from_response(None, event, request_id)
    return event


def iter_sse(response: Any) -> Iterator[Any]:
    """Yields JSON payloads of an SSE response until ``[DONE]``; an ``{"error":...}`` payload is raised."""
    request_id = response.headers.get("x-request-id")
    data = []
    try:
        while True:
            raw = response.readline()
            if not raw:
                break
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if not data:
                    continue
                payload = "\n".join(data)
                data = []
                if payload == "[DONE]":
                    return
                yield _event(payload, request_id)
            elif line.startswith("data:"):
                data.append(line[6:] if line[5:6] == " " else line[5:])
        if data and "\n".join(data) != "[DONE]":
            yield _event("\n".join(data), request_id)
    finally:
        response.close()


def iter_ndjson(response: Any) -> Iterator[Any]:
    """Yields the JSON objects of an NDJSON response; an ``{"error":...}`` line is raised."""
    request_id = response.headers.get("x-request-id")
    try:
        while True:
            raw = response.readline()
            if not raw:
                break
            line = raw.decode("utf-8").strip()
            if line:
                yield _event(line, request_id)
    finally:
        response.close()
