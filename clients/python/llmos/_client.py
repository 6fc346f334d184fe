"""Client and Model: the llmos API for Python (stdlib only)."""

import json
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

from ._errors import LlmosError, OutputParseError
from ._http import Transport, iter_ndjson, iter_sse, resolve_host

Message = Dict[str, Any]

_SAMPLING = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}


def _sampling(opts: Dict[str, Any]) -> Dict[str, Any]:
    unknown = set(opts) - set(_SAMPLING)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return {_SAMPLING[k]: v for k, v in opts.items() if v is not None}


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@dataclass
class Usage:
    """Token counts of one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @staticmethod
    def from_wire(wire: Optional[Dict[str, Any]]) -> Optional["Usage"]:
        if not wire:
            return None
        p = wire.get("prompt_tokens", 0)
        c = wire.get("completion_tokens", 0)
        return Usage(p, c, wire.get("total_tokens", p + c))


@dataclass
class ToolCall:
    """A function call the model asked for; ``arguments`` is parsed JSON (the raw string if it does not parse)."""

    id: str
    name: str
    arguments: Any
    raw_arguments: str


@dataclass
class ChatResult:
    """Reply of a chat request."""

    text: str
    message: Message
    tool_calls: List[ToolCall] = field(default_factory=list)
    finish_reason: Optional[str] = None
    usage: Optional[Usage] = None
    request_id: Optional[str] = None


def _tool_call(wire: Dict[str, Any], index: int) -> ToolCall:
    fn = wire.get("function") or {}
    raw = fn.get("arguments") or ""
    try:
        args: Any = json.loads(raw) if raw else {}
    except ValueError:
        args = raw
    return ToolCall(wire.get("id") or f"call_{index}", fn.get("name") or "", args, raw)


def _tool_to_wire(tool: Dict[str, Any]) -> Dict[str, Any]:
    if "function" in tool:
        return tool
    return {"type": "function", "function": {k: tool[k] for k in ("name", "description", "parameters") if k in tool}}


class Model:
    """A handle on one model of the daemon (from :meth:`Client.load_model` or :meth:`Client.model`)."""

    def __init__(self, client: "Client", name: str, info: Optional[Dict[str, Any]] = None) -> None:
        self._client = client
        self._t = client._transport
        #: Name as the server knows it, e.g. ``stories:latest``.
        self.name = name
        #: What the load request returned, if this handle came from ``load_model``.
        self.info = info

    def generate_text(self, prompt: str, **opts: Any) -> str:
        """Completes a raw prompt (no chat template) and returns the text.

        Options: max_tokens, temperature, top_p, top_k, min_p, seed, stop, presence_penalty, frequency_penalty.
        """
        body = {"model": self.name, "prompt": prompt, **_sampling(opts), "stream": False}
        res = self._t.json("POST", "/v1/completions", body)
        choices = res.get("choices") or [{}]
        return choices[0].get("text") or ""

    def stream_text(self, prompt: str, **opts: Any) -> Iterator[str]:
        """Streams a raw-prompt completion as text pieces (a generator over the SSE stream)."""
        body = {"model": self.name, "prompt": prompt, **_sampling(opts), "stream": True}
        response = self._t.open("POST", "/v1/completions", body)
        for chunk in iter_sse(response):
            for choice in chunk.get("choices") or []:
                if choice.get("text"):
                    yield choice["text"]

    def _chat_body(self, messages: Sequence[Message], tools: Optional[List[Dict[str, Any]]],
                   tool_choice: Any, response_format: Optional[Dict[str, Any]], stream: bool,
                   opts: Dict[str, Any]) -> Dict[str, Any]:
        body: Dict[str, Any] = {"model": self.name, "messages": list(messages), **_sampling(opts), "stream": stream}
        if tools:
            body["tools"] = [_tool_to_wire(t) for t in tools]
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
        if response_format is not None:
            body["response_format"] = response_format
        return body

    def chat(self, messages: Sequence[Message], tools: Optional[List[Dict[str, Any]]] = None,
             tool_choice: Any = None, response_format: Optional[Dict[str, Any]] = None, **opts: Any) -> ChatResult:
        """Sends OpenAI-style messages (``{"role", "content"}``) and returns the reply, including tool calls."""
        body = self._chat_body(messages, tools, tool_choice, response_format, False, opts)
        response = self._t.open("POST", "/v1/chat/completions", body)
        request_id = response.headers.get("x-request-id")
        try:
            res = json.loads(response.read().decode("utf-8"))
        finally:
            response.close()
        choice = (res.get("choices") or [{}])[0]
        message = choice.get("message") or {"role": "assistant", "content": ""}
        calls = [_tool_call(c, i) for i, c in enumerate(message.get("tool_calls") or [])]
        return ChatResult(message.get("content") or "", message, calls, choice.get("finish_reason"),
                          Usage.from_wire(res.get("usage")), request_id)

    def stream_chat(self, messages: Sequence[Message], **opts: Any) -> Iterator[str]:
        """Streams a chat reply as text pieces."""
        body = self._chat_body(messages, None, None, None, True, opts)
        response = self._t.open("POST", "/v1/chat/completions", body)
        for chunk in iter_sse(response):
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece

    def embed(self, input: Union[str, List[str]]) -> Union[List[float], List[List[float]]]:
        """Embeds a text (returns one vector) or a list of texts (returns one vector per text)."""
        res = self._t.json("POST", "/v1/embeddings", {"model": self.name, "input": input})
        vectors = [d["embedding"] for d in sorted(res.get("data") or [], key=lambda d: d.get("index", 0))]
        if isinstance(input, str):
            if not vectors:
                raise LlmosError("embedding response carried no vector", "invalid_response")
            return vectors[0]
        return vectors

    def generate_object(self, input: Union[str, Sequence[Message]], schema: Dict[str, Any], name: str = "output",
                        validate: Optional[Callable[[Any], bool]] = None, **opts: Any) -> Any:
        """Generates JSON matching ``schema`` (grammar-enforced by the server) and returns it parsed."""
        messages = [{"role": "user", "content": input}] if isinstance(input, str) else input
        fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
        result = self.chat(messages, response_format=fmt, **opts)
        try:
            value = json.loads(result.text)
        except ValueError:
            raise OutputParseError(f"model output is not valid JSON: {result.text[:200]}", result.text,
                                   result.request_id) from None
        if validate is not None and not validate(value):
            raise OutputParseError("model output failed validation", result.text, result.request_id)
        return value

    def unload(self) -> None:
        """Asks the daemon to unload this model now."""
        self._client.unload_model(self.name)

    def __repr__(self) -> str:
        return f"Model({self.name!r})"


class Client:
    """Client of an llmos daemon.

    Args:
        host: daemon address (URL, ``host:port``, ``host`` or port). Default: env ``LLMOS_HOST``,
            else ``http://127.0.0.1:11435``.
        api_key: sent as ``Authorization: Bearer``. Default: env ``LLMOS_API_KEY``.
        timeout: socket timeout in seconds (default 600).
        max_retries: retries on 429/503 and, for idempotent requests, connection errors (default 2).
        default_headers: headers added to every request.
    """

    def __init__(self, host: Optional[str] = None, api_key: Optional[str] = None, timeout: float = 600.0,
                 max_retries: int = 2, default_headers: Optional[Dict[str, str]] = None) -> None:
        self.host = resolve_host(host if host is not None else os.environ.get("LLMOS_HOST"))
        key = api_key if api_key is not None else (os.environ.get("LLMOS_API_KEY") or None)
        self._transport = Transport(self.host, key, timeout, max_retries, default_headers)

    def load_model(self, name: str, keep_alive: Union[int, str, None] = None, context_size: Optional[int] = None,
                   parallel: Optional[int] = None, pinned: Optional[bool] = None,
                   min_threads: Optional[int] = None) -> Model:
        """Loads a model (or refreshes its keep-alive) and returns a handle for inference.

        ``min_threads``: the least decode threads the model gets while busy, however many other models are."""
        body = {k: v for k, v in {"keepAlive": keep_alive, "contextSize": context_size, "parallel": parallel,
                                  "pinned": pinned, "minThreads": min_threads}.items() if v is not None}
        info = self._transport.json("POST", f"/api/models/{_seg(name)}/load", body, idempotent=True)
        return Model(self, (info or {}).get("name", name), info)

    def model(self, name: str) -> Model:
        """A handle without loading first (the daemon loads on the first request)."""
        return Model(self, name)

    def unload_model(self, name: str) -> None:
        """Unloads a model now."""
        self._transport.json("POST", f"/api/models/{_seg(name)}/unload", {}, idempotent=True)

    def list(self) -> List[Dict[str, Any]]:
        """Installed models (``ModelSummary`` dicts)."""
        return self._transport.json("GET", "/api/models")["models"]

    def show(self, name: str) -> Dict[str, Any]:
        """Details of one model (``ModelInfo`` dict)."""
        return self._transport.json("GET", f"/api/models/{_seg(name)}")

    def import_model(self, path: str, name: str) -> Dict[str, Any]:
        """Imports a GGUF file on the daemon's machine as ``name[:tag]``: an absolute path inside one of the
        daemon's ``LLMOS_IMPORT_DIRS`` (else 403 ``path_not_allowed``)."""
        return self._transport.json("POST", "/api/models/import", {"path": path, "name": name})

    def remove(self, name: str) -> None:
        """Deletes a model."""
        self._transport.json("DELETE", f"/api/models/{_seg(name)}")

    def copy(self, source: str, destination: str) -> Dict[str, Any]:
        """Copies a model to a new name."""
        return self._transport.json("POST", f"/api/models/{_seg(source)}/copy", {"destination": destination})

    def pull(
        self, reference: str, name: Optional[str] = None, revision: Optional[str] = None, insecure: bool = False
    ) -> Iterator[Dict[str, Any]]:
        """Downloads a model (``llama3.2:1b``, ``hf.co/owner/repo:Q4_K_M``, ``oci://...``, a URL); yields progress
        dicts, the last being ``{"status": "success", "model": {...}}``."""
        body = {k: v for k, v in {"reference": reference, "name": name, "revision": revision}.items() if v is not None}
        if insecure:
            body["insecure"] = True
        return iter_ndjson(self._transport.open("POST", "/api/models/pull", body))

    def push(self, name: str, reference: str, insecure: bool = False) -> Iterator[Dict[str, Any]]:
        """Uploads a model to an OCI registry; yields progress dicts, the last being
        ``{"status": "success", "reference": ..., "manifestDigest": ...}``."""
        body: Dict[str, Any] = {"name": name, "reference": reference}
        if insecure:
            body["insecure"] = True
        return iter_ndjson(self._transport.open("POST", "/api/models/push", body))

    def create(self, name: str, modelfile: str) -> Iterator[Dict[str, Any]]:
        """Creates a model from a definition file; yields progress dicts like :meth:`pull`."""
        return iter_ndjson(self._transport.open("POST", "/api/models/create", {"name": name, "modelfile": modelfile}))

    def quantize(
        self,
        model: str,
        name: str,
        type: str,
        imatrix: Optional[str] = None,
        pure: bool = False,
        allow_requantize: bool = False,
    ) -> Iterator[Dict[str, Any]]:
        """Quantizes ``model`` into the new model ``name`` (e.g. ``type="Q4_K_M"``); yields progress dicts
        (``completed``/``total`` tensors, ``bytes`` written), the last being ``{"status": "success", "model": {...}}``."""
        body: Dict[str, Any] = {"model": model, "name": name, "type": type}
        if imatrix is not None:
            body["imatrix"] = imatrix
        if pure:
            body["pure"] = True
        if allow_requantize:
            body["allowRequantize"] = True
        return iter_ndjson(self._transport.open("POST", "/api/models/quantize", body))

    def eval(self, model: str, text: str, base: Optional[str] = None, context_size: int = 128, **fields: Any) -> Dict[str, Any]:
        """Runs an eval job (perplexity; KL divergence against ``base``) to its end and returns its final view
        (``view["result"]`` is the report). Extra fields: ``maxChunks``, ``kvCacheType``, ``baseKvCacheType``."""
        body: Dict[str, Any] = {"model": model, "text": text, "contextSize": context_size, **fields}
        if base is not None:
            body["base"] = base
        job = self._transport.json("POST", "/api/jobs/eval", body)
        last = job
        for view in iter_ndjson(self._transport.open("GET", f"/api/jobs/{job['id']}/events")):
            last = view
        return last

    def ps(self) -> Dict[str, Any]:
        """Loaded models and queue state."""
        return self._transport.json("GET", "/api/ps")

    def tokenize(self, model: str, content: str) -> List[int]:
        """Token ids of ``content`` in ``model``'s vocabulary."""
        return self._transport.json("POST", "/api/tokenize", {"model": model, "content": content}, idempotent=True)["tokens"]

    def detokenize(self, model: str, tokens: List[int]) -> str:
        """Text of token ids."""
        return self._transport.json("POST", "/api/detokenize", {"model": model, "tokens": tokens}, idempotent=True)["content"]
