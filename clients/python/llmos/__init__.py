"""llmos: Python client for the llmos daemon (standard library only, Python 3.9+).

Example::

    import llmos
    client = llmos.Client()
    model = client.load_model("stories")
    print(model.generate_text("The quick brown fox jumps over the lazy dog."))
"""

from ._client import ChatResult, Client, Model, ToolCall, Usage
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContextLengthExceededError,
    InsufficientMemoryError,
    InternalServerError,
    LlmosError,
    ModelNotFoundError,
    NotFoundError,
    OutputParseError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QueueFullError,
    QueueTimeoutError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
)
from ._http import DEFAULT_HOST, DEFAULT_PORT, resolve_host

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChatResult",
    "Client",
    "ConflictError",
    "ContextLengthExceededError",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "InsufficientMemoryError",
    "InternalServerError",
    "LlmosError",
    "Model",
    "ModelNotFoundError",
    "NotFoundError",
    "OutputParseError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QueueFullError",
    "QueueTimeoutError",
    "QuotaExceededError",
    "RateLimitError",
    "ServiceUnavailableError",
    "ToolCall",
    "Usage",
    "resolve_host",
]
