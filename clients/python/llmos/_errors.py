"""Typed exceptions of the llmos client, mirroring the TypeScript SDK's classes and codes."""

from typing import Any, Dict, Optional, Type


class LlmosError(Exception):
    """Base class of every error the client raises.

    Attributes:
        code: stable machine-readable code (see llmos' protocol error codes, plus ``connection_error``,
            ``timeout``, ``invalid_response`` and ``invalid_output`` for client-side failures).
        status: HTTP status, or None when no response arrived.
        request_id: the server's ``x-request-id`` header, when there was a response.
        details: extra data from the error body.
    """

    def __init__(
        self,
        message: str,
        code: str,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
        details: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.details = details

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class BadRequestError(LlmosError):
    """400: the request was invalid."""


class ContextLengthExceededError(BadRequestError):
    """400 ``context_length_exceeded``: the prompt does not fit the model's context."""


class AuthenticationError(LlmosError):
    """401: missing, unknown, expired or revoked API key."""


class PermissionDeniedError(LlmosError):
    """403: the key lacks the scope or model permission."""


class NotFoundError(LlmosError):
    """404: the resource does not exist."""


class ModelNotFoundError(NotFoundError):
    """404 ``model_not_found``."""


class ConflictError(LlmosError):
    """409: conflicts with the current state."""


class PayloadTooLargeError(LlmosError):
    """413: the request body is too large."""


class RateLimitError(LlmosError):
    """429: rate limit hit; ``retry_after`` (seconds) when the server said."""

    retry_after: Optional[float] = None


class QuotaExceededError(RateLimitError):
    """429 ``quota_exceeded``: the key's token quota is spent."""


class InternalServerError(LlmosError):
    """5xx: the server failed."""


class ServiceUnavailableError(InternalServerError):
    """503: the server cannot take the request now."""


class QueueFullError(ServiceUnavailableError):
    """503 ``queue_full``."""


class QueueTimeoutError(InternalServerError):
    """504 ``queue_timeout``."""


class InsufficientMemoryError(InternalServerError):
    """507 ``insufficient_memory``."""


class APIConnectionError(LlmosError):
    """The request could not be sent or the connection broke."""


class APITimeoutError(APIConnectionError):
    """The client-side timeout expired."""


class OutputParseError(LlmosError):
    """The model's output was not valid JSON for a structured-output request; ``text`` holds it."""

    def __init__(self, message: str, text: str, request_id: Optional[str] = None) -> None:
        super().__init__(message, "invalid_output", None, request_id)
        self.text = text


CODE_STATUS: Dict[str, int] = {
    "invalid_request": 400,
    "invalid_model_name": 400,
    "invalid_model_file": 400,
    "invalid_reference": 400,
    "context_length_exceeded": 400,
    "imatrix_required": 400,
    "imatrix_mismatch": 400,
    "requantize_not_allowed": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "model_not_found": 404,
    "not_found": 404,
    "conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "client_closed": 499,
    "internal": 500,
    "runner_crashed": 502,
    "model_load_failed": 500,
    "queue_full": 503,
    "unavailable": 503,
    "insufficient_memory": 507,
    "queue_timeout": 504,
    "upstream_error": 502,
    "insufficient_storage": 507,
}

_BY_CODE: Dict[str, Type[LlmosError]] = {
    "context_length_exceeded": ContextLengthExceededError,
    "model_not_found": ModelNotFoundError,
    "quota_exceeded": QuotaExceededError,
    "queue_full": QueueFullError,
    "queue_timeout": QueueTimeoutError,
    "insufficient_memory": InsufficientMemoryError,
    "payload_too_large": PayloadTooLargeError,
}

_FALLBACK_CODE = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                  409: "conflict", 413: "payload_too_large", 429: "rate_limited", 503: "unavailable",
                  504: "queue_timeout"}


def _class_for_status(status: int) -> Type[LlmosError]:
    if status in (400, 415, 422):
        return BadRequestError
    table = {401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError, 409: ConflictError,
             413: PayloadTooLargeError, 429: RateLimitError, 503: ServiceUnavailableError}
    if status in table:
        return table[status]
    if status >= 500:
        return InternalServerError
    return LlmosError


def error_from_response(
    status: Optional[int], body: Any, request_id: Optional[str] = None, retry_after: Optional[float] = None
) -> LlmosError:
    """Builds the typed error for a native, OpenAI or Ollama error body and/or an HTTP status."""
    err = body.get("error") if isinstance(body, dict) else None
    code: Optional[str] = None
    message: Optional[str] = None
    details: Optional[Dict[str, Any]] = None
    if isinstance(err, str):
        message = err
    elif isinstance(err, dict):
        if isinstance(err.get("code"), str) and err["code"] in CODE_STATUS:
            code = err["code"]
        if isinstance(err.get("message"), str):
            message = err["message"]
        if isinstance(err.get("details"), dict):
            details = err["details"]
        if isinstance(err.get("param"), str):
            details = dict(details or {}, param=err["param"])
    if status is None and code is not None:
        status = CODE_STATUS[code]
    if code is None:
        code = "invalid_response" if status is None else _FALLBACK_CODE.get(status, "internal" if status >= 500 else "invalid_request")
    cls = _BY_CODE.get(code) or (LlmosError if status is None else _class_for_status(status))
    error = cls(message or f"HTTP {status}", code, status, request_id, details)
    if isinstance(error, RateLimitError):
        error.retry_after = retry_after
    return error
