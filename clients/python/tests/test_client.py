"""Tests of the llmos Python client.

The offline tests always run. The daemon tests need a running llmos daemon with the stories260K model imported
as ``stories``; give its URL in ``LLMOS_TEST_HOST`` (``packages/sdk/test/python-client.test.ts`` does this).
"""

import os
import sys
import unittest

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

    def test_not_found_is_typed(self):
        with self.assertRaises(llmos.ModelNotFoundError) as cm:
            self.client.show("no-such-model")
        e = cm.exception
        self.assertEqual(e.code, "model_not_found")
        self.assertEqual(e.status, 404)
        self.assertTrue(e.request_id)
        with self.assertRaises(llmos.NotFoundError):
            self.client.model("no-such-model").generate_text("x", max_tokens=1)


if __name__ == "__main__":
    unittest.main()
