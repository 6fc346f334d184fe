"""Tests of the llmos Python client.

The offline tests always run. The daemon tests need a running llmos daemon with the stories260K model imported
as ``stories``; give its URL in ``LLMOS_TEST_HOST`` (``packages/sdk/test/python-client.test.ts`` does this).
"""

import json
import os
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import llmos  # noqa: E402
from llmos._errors import error_from_response  # noqa: E402

HOST = os.environ.get("LLMOS_TEST_HOST")


class OfflineTest(unittest.TestCase):
    def test_resolve_host_like_ollama_host(self):
        self.assertEqual(llmos.resolve_host(None), "http://127.0.0.1:11435")
        self.assertEqual(llmos.resolve_host("8080"), "http://127.0.0.1:8080")
        self.assertEqual(llmos.resolve_host("example.com"), "http://example.com:11435")
        self.assertEqual(llmos.resolve_host("0.0.0.0:9"), "http://127.0.0.1:9")
        self.assertEqual(llmos.resolve_host("https://h.example/p/"), "https://h.example/p")
        with self.assertRaises(ValueError):
            llmos.resolve_host("ftp://x")

    def test_error_mapping(self):
        e = error_from_response(404, {"error": {"code": "model_not_found", "message": "no"}}, "r1")
        self.assertIsInstance(e, llmos.ModelNotFoundError)
        self.assertIsInstance(e, llmos.NotFoundError)
        self.assertEqual((e.code, e.status, e.request_id), ("model_not_found", 404, "r1"))
        e = error_from_response(None, {"error": {"message": "x", "type": "server_error", "param": None, "code": "queue_full"}})
        self.assertIsInstance(e, llmos.QueueFullError)
        self.assertEqual(e.status, 503)
        e = error_from_response(401, {"error": "nope"})
        self.assertIsInstance(e, llmos.AuthenticationError)
        self.assertEqual(e.code, "unauthorized")

    def test_connection_error_is_typed(self):
        with self.assertRaises(llmos.APIConnectionError) as cm:
            llmos.Client(host="127.0.0.1:1", max_retries=0).list()
        self.assertEqual(cm.exception.code, "connection_error")
        self.assertIsNone(cm.exception.status)


class _MockHandler(BaseHTTPRequestHandler):
    """A few daemon behaviours the real daemon cannot be made to show on demand."""

    hits = {}

    def log_message(self, *args):
        pass

    def _json(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", "mock-1")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        n = _MockHandler.hits[self.path] = _MockHandler.hits.get(self.path, 0) + 1
        if self.path == "/api/models":
            if n <= 2:
                return self._json(503, {"error": {"code": "queue_full", "message": "busy"}}, {"retry-after": "0"})
            return self._json(200, {"models": [{"name": "a:latest"}]})
        if self.path == "/api/models/a%3Ab%2Fc":
            return self._json(404, {"error": {"code": "model_not_found", "message": "no such model"}})
        self._json(404, {"error": {"code": "not_found", "message": "no route"}})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/v1/completions" and body.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for payload in ({"choices": [{"text": body["prompt"][::-1]}]},
                            {"error": {"message": "runner died", "type": "server_error", "param": None, "code": "runner_crashed"}}):
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        self._json(404, {"error": {"code": "not_found", "message": "no route"}})


class MockDaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), _MockHandler)
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.client = llmos.Client(host=f"127.0.0.1:{cls.server.server_address[1]}", api_key="k")

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def test_503_is_retried_honouring_retry_after(self):
        self.assertEqual(self.client.list()[0]["name"], "a:latest")
        self.assertEqual(_MockHandler.hits["/api/models"], 3)

    def test_path_parameters_are_encoded_and_errors_typed(self):
        with self.assertRaises(llmos.ModelNotFoundError) as cm:
            self.client.show("a:b/c")
        self.assertEqual((cm.exception.status, cm.exception.request_id), (404, "mock-1"))

    def test_mid_stream_error_is_raised_typed(self):
        pieces = []
        with self.assertRaises(llmos.InternalServerError) as cm:
            for piece in self.client.model("m").stream_text("abc"):
                pieces.append(piece)
        self.assertEqual(pieces, ["cba"])
        self.assertEqual(cm.exception.code, "runner_crashed")
        self.assertEqual(cm.exception.status, 502)


@unittest.skipUnless(HOST, "LLMOS_TEST_HOST is not set")
class DaemonTest(unittest.TestCase):
    def setUp(self):
        os.environ["LLMOS_HOST"] = HOST or ""
        self.client = llmos.Client()

    def test_seed_example(self):
        model = self.client.load_model("stories")
        text = model.generate_text("The quick brown fox jumps over the lazy dog.")
        self.assertIsInstance(text, str)
        self.assertGreater(len(text), 0)

    def test_greedy_generation_and_stream_agree(self):
        model = self.client.load_model("stories")
        text = model.generate_text("Once upon a time", max_tokens=24, temperature=0)
        self.assertTrue(text.startswith(", there was a little girl named Lily"), repr(text))
        pieces = list(model.stream_text("Once upon a time", max_tokens=24, temperature=0))
        self.assertGreater(len(pieces), 1)
        self.assertEqual("".join(pieces), text)

    def test_load_with_a_cpu_floor(self):
        model = self.client.load_model("stories", min_threads=1)
        self.assertEqual(model.info["cpu"]["minThreads"], 1)
        self.assertEqual(model.info["cpu"]["threads"], 0)

    def test_chat_and_stream_chat(self):
        model = self.client.model("stories")
        result = model.chat([{"role": "user", "content": "Tell me a story."}], max_tokens=12, temperature=0)
        self.assertIsInstance(result.text, str)
        self.assertIn(result.finish_reason, ("stop", "length"))
        self.assertGreater(result.usage.completion_tokens, 0)
        streamed = "".join(model.stream_chat([{"role": "user", "content": "Tell me a story."}], max_tokens=12, temperature=0))
        self.assertEqual(streamed, result.text)

    def test_embed(self):
        model = self.client.model("stories")
        info = self.client.show("stories")
        vector = model.embed("hello")
        self.assertEqual(len(vector), info["details"]["embeddingLength"])
        vectors = model.embed(["a", "b c"])
        self.assertEqual(len(vectors), 2)
        self.assertEqual(len(vectors[1]), len(vector))

    def test_list_show_tokenize(self):
        names = [m["name"] for m in self.client.list()]
        self.assertIn("stories:latest", names)
        tokens = self.client.tokenize("stories", "Once upon a time")
        self.assertGreater(len(tokens), 0)
        self.assertIn("Once upon a time", self.client.detokenize("stories", tokens))

    def test_generate_object_follows_the_schema(self):
        schema = {"type": "object", "properties": {"mood": {"type": "string", "enum": ["happy", "sad"]}},
                  "required": ["mood"], "additionalProperties": False}
        value = self.client.model("stories").generate_object("How was the day?", schema, max_tokens=40, temperature=0)
        self.assertIn(value["mood"], ("happy", "sad"))

    def test_create_copy_remove(self):
        events = list(self.client.create("py-tuned", "FROM stories\nPARAMETER temperature 0.5\n"))
        self.assertEqual(events[-1]["status"], "success")
        self.assertEqual(events[-1]["model"]["name"], "py-tuned:latest")
        self.assertEqual(self.client.copy("py-tuned", "py-copy")["name"], "py-copy:latest")
        self.client.remove("py-copy")
        self.client.remove("py-tuned")
        with self.assertRaises(llmos.ModelNotFoundError):
            self.client.show("py-copy")

    def test_quantize_and_eval(self):
        events = list(self.client.quantize("stories", "py-q8", "Q8_0"))
        self.assertEqual(events[-1]["status"], "success")
        self.assertTrue(any(e.get("total") == 48 and e.get("completed") == 48 for e in events))
        self.assertEqual(self.client.show("py-q8")["details"]["quantization"], "Q8_0")
        text = " ".join(["Once upon a time there was a little girl named Lily. She liked to play in the park."] * 40)
        view = self.client.eval("py-q8", text, base="stories", maxChunks=2)
        self.assertEqual(view["state"], "succeeded")
        self.assertLess(view["result"]["kld"]["mean"], 0.05)
        with self.assertRaises(llmos.BadRequestError) as cm:
            list(self.client.quantize("stories", "py-bad", "Q9"))
        self.assertEqual(cm.exception.code, "invalid_request")
        self.client.remove("py-q8")

    def test_not_found_is_typed(self):
        with self.assertRaises(llmos.ModelNotFoundError) as cm:
            self.client.show("no-such-model")
        e = cm.exception
        self.assertEqual(e.code, "model_not_found")
        self.assertEqual(e.status, 404)
        self.assertTrue(e.request_id)
        with self.assertRaises(llmos.NotFoundError):
            self.client.model("no-such-model").generate_text("x", max_tokens=1)

    @unittest.skipUnless(os.environ.get("LLMOS_TEST_REGISTRY"), "LLMOS_TEST_REGISTRY is not set")
    def test_push_then_pull_back(self):
        target = "oci://%s/py/stories:v1" % os.environ["LLMOS_TEST_REGISTRY"]
        pushed = list(self.client.push("stories", target, insecure=True))
        self.assertEqual(pushed[-1]["status"], "success")
        self.assertTrue(pushed[-1]["manifestDigest"].startswith("sha256:"))
        pulled = list(self.client.pull(target, name="py-back", insecure=True))
        self.assertEqual(pulled[-1]["model"]["name"], "py-back:latest")
        self.assertEqual(self.client.show("py-back")["origin"]["manifestDigest"], pushed[-1]["manifestDigest"])


if __name__ == "__main__":
    unittest.main()
