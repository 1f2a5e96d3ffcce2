"""`bertforge serve` against hostile and slow clients, over real sockets on loopback.

One `bertforge serve` subprocess (a tiny random classifier on MiniLM's vocabulary, trained
on single texts) runs with short timeouts and a low file-descriptor limit, so that a few
dozen slow sockets are enough to exhaust it on a server without guards. The tests that need
a deliberately slowed model run the same application in a thread of this process.
"""

import asyncio
import json
import random
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="install the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="install the serve extra: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx", reason="install the test extra: pip install -e '.[test]'")

from bertforge.text.long_text import LongText, encode_windows  # noqa: E402
from bertforge.text.tokenizer import Tokenizer  # noqa: E402
from bertforge.text.window_cut import window_texts  # noqa: E402
from serving_helpers import Server, ThreadServer  # noqa: E402

MAX_LENGTH = 32
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
MAX_HEADER_BYTES = 4096
REQUEST_TOKENS = 200
DESCRIPTORS = 48  # the server's soft RLIMIT_NOFILE: about 9 are open once it is up
SLOW_SOCKETS = 45
WORDS = ["caldera", "volcanic", "unbelievably", "Raven", "photosynthesis", "don't", "e\u0301te\u0301", "東京",
         "antidisestablishmentarianism", "[MASK]", "x" * 130, "...", "a-b", "Ünïcödé", "😀"]


def random_text(rng: random.Random, words: int) -> str:
    return "".join(rng.choice(WORDS) + rng.choice([" ", " ", "", "\n", ", "]) for _ in range(words))


def make_classifier(directory: Path, minilm_dir: Path) -> Path:
    """A tiny random classifier as bertforge finetune writes it for single texts."""
    import torch

    from bertforge import BertForSequenceClassification, save_pretrained
    from bertforge.data.labeled import LabelEncoder
    from bertforge.model.config import BertConfig

    torch.manual_seed(0)
    tokenizer = Tokenizer.from_pretrained(minilm_dir)
    encoder = LabelEncoder.fit(["a", "b"])
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, id2label=dict(encoder.id2label))
    save_pretrained(BertForSequenceClassification(config), directory, tokenizer=tokenizer,
                    metadata={"task": encoder.task, "label_encoder": encoder.to_dict(), "max_seq_length": MAX_LENGTH,
                              "text_pairs": False})
    return directory


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, minilm_dir) -> Path:
    return make_classifier(tmp_path_factory.mktemp("hostile") / "classifier", minilm_dir)


@pytest.fixture(scope="module")
def server(classifier_dir, tmp_path_factory):
    started = Server(classifier_dir, tmp_path_factory.mktemp("hostile-logs") / "server.log",
                     "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
                     "--max-header-bytes", str(MAX_HEADER_BYTES), "--max-request-tokens", str(REQUEST_TOKENS),
                     descriptors=DESCRIPTORS)
    try:
        started.wait_ready()
        yield started
    finally:
        code = started.stop()
    assert code == 0, started.log.read_text()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (b"" if it just closes it)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def status_and_detail(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), answer
    message = json.loads(body)["detail"]
    assert isinstance(message, str) and message and "\n" not in message, message
    return status, message


def detail(response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    message = response.json()["detail"]
    assert isinstance(message, str) and message and "\n" not in message, message
    return message


# -- slow and many clients -------------------------------------------------------------------


def test_slow_clients_are_cut_off_while_normal_requests_are_served(server):
    """More trickling sockets than the server has descriptors for: normal requests still get
    answers, the slow sockets are closed after the header timeout, and the log stays short."""
    lines_before = len(server.log_lines())
    slow = [connect(server.port) for _ in range(SLOW_SOCKETS)]
    stop = threading.Event()

    def trickle():
        for sock in slow:
            try:
                sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                pass
        while not stop.wait(0.3):
            for sock in slow:
                try:
                    sock.send(b"X")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(1.0)  # the attack is under way
        answers = [httpx.post(server.url + "/embed", json={"texts": ["Who wrote The Raven ?"]}, timeout=30)
                   for _ in range(5)]
        assert [answer.status_code for answer in answers] == [200] * 5
        time.sleep(HEADER_TIMEOUT + 1.5)
        closed = 0
        for sock in slow:
            sock.settimeout(5)
            try:
                answer = read_answer(sock)
            except socket.timeout:
                continue
            closed += 1
            if answer:  # 408 after the timeout, 503 for those beyond the cap when all were new
                assert status_and_detail(answer)[0] in (408, 503)
        assert closed == SLOW_SOCKETS  # none of them kept its descriptor past the timeout
        assert httpx.get(server.url + "/health", timeout=30).status_code == 200
    finally:
        stop.set()
        trickler.join()
        for sock in slow:
            sock.close()
    new_lines = server.log_lines()[lines_before:]
    assert len(new_lines) < 15, new_lines[:20]  # one line per kind of refusal, not one per socket
    assert not any("Traceback" in line for line in new_lines), new_lines[:20]


def test_when_every_connection_is_busy_a_new_one_gets_503(server):
    cap = server_cap(server)
    busy = []
    try:
        for _ in range(cap + 2):  # headers done, the body never sent: busy until the body timeout
            sock = connect(server.port)
            sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n")
            busy.append(sock)
        time.sleep(0.5)
        late = connect(server.port)
        late.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, message = status_and_detail(read_answer(late))
        assert status == 503 and "--max-connections" in message
        late.close()
        for sock in busy[:cap]:  # the body timeout frees them: each is told so
            assert status_and_detail(read_answer(sock))[0] in (408, 503)
    finally:
        for sock in busy:
            sock.close()
    assert httpx.get(server.url + "/health", timeout=30).status_code == 200


def server_cap(server) -> int:
    found = re.search(r"at most (\d+) connections at once", server.log.read_text())
    assert found, "the server did not say that it lowered its connection cap to its descriptors"
    cap = int(found.group(1))
    assert cap < DESCRIPTORS
    return cap


def test_a_huge_header_gets_431(server):
    sock = connect(server.port)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES * 4) + b"\r\n\r\n")
    status, message = status_and_detail(read_answer(sock))
    sock.close()
    assert status == 431 and "--max-header-bytes" in message


def test_a_request_that_is_not_http_gets_a_json_400(server):
    sock = connect(server.port)
    sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n")
    status, message = status_and_detail(read_answer(sock))
    sock.close()
    assert status == 400 and "not valid HTTP" in message


# -- bodies and texts ------------------------------------------------------------------------

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("body", [b'{"texts": ["caf\xe9"]}', b"[" * 100_000], ids=["latin-1", "deeply-nested"])
def test_an_unreadable_body_gets_a_json_one_line_400(server, body):
    response = httpx.post(server.url + "/embed", content=body, headers=JSON, timeout=30)
    assert response.status_code == 400
    assert "cannot be read as JSON" in detail(response) and '{"texts"' in detail(response)


@pytest.mark.parametrize("text", ["\u200b\u200b", "\x00\x07\ufeff", " \u200d\u2060 "])
def test_a_text_with_nothing_visible_is_a_422(server, text):
    for endpoint in ("/embed", "/predict"):
        response = httpx.post(server.url + endpoint, json={"texts": ["fine", text]}, timeout=30)
        assert response.status_code == 422, response.text
        assert "texts[1]" in detail(response) and "invisible" in detail(response)


def test_text_pairs_for_a_single_text_model_is_a_422(server):
    response = httpx.post(server.url + "/predict", json={"texts": ["a cat"], "text_pairs": ["a dog"]}, timeout=30)
    assert response.status_code == 422
    assert "text_pairs" in detail(response) and "single texts" in detail(response)
    assert httpx.post(server.url + "/predict", json={"texts": ["a cat"]}, timeout=30).status_code == 200


def test_a_request_above_the_token_budget_gets_413(server):
    texts = ["word " * 100] * 8  # 8 windows of 32 tokens: 256, above the budget of 200
    response = httpx.post(server.url + "/embed", json={"texts": texts}, timeout=30)
    assert response.status_code == 413
    assert "200 per request" in detail(response) and "--max-request-tokens" in detail(response)
    assert httpx.post(server.url + "/embed", json={"texts": texts[:5]}, timeout=30).status_code == 200


def test_a_slow_body_gets_408(server):
    sock = connect(server.port)
    sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{")
    status, message = status_and_detail(read_answer(sock))
    sock.close()
    assert status == 408 and "--body-timeout" in message


# -- what is tokenized -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_tokenizer(minilm_dir) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_dir)


@pytest.mark.parametrize("mode", ["truncate", "head-tail"])
def test_a_cut_text_gives_the_ids_of_the_whole_text(minilm_tokenizer, mode):
    rng = random.Random(mode)
    inside_words = 0
    for _ in range(40):
        text = random_text(rng, rng.randint(200, 3000))
        length = rng.choice([8, 13, 32, 64, 128])
        cut = window_texts(minilm_tokenizer, [text], length, mode)[0]
        assert len(cut) < len(text)
        if mode == "truncate":
            inside_words += cut[-1:].isalnum() and text[len(cut):len(cut) + 1].isalnum()
        whole = encode_windows(minilm_tokenizer, [text], None, length, LongText(mode))
        again = encode_windows(minilm_tokenizer, [cut], None, length, LongText(mode))
        assert whole.input_ids.tolist() == again.input_ids.tolist(), (length, text[:80])
    if mode == "truncate":
        assert inside_words >= 5  # the check above covered cuts that fall inside a word


def test_cut_text_pairs_give_the_ids_of_the_whole_pairs(minilm_tokenizer):
    rng = random.Random(1)
    for _ in range(40):
        # Short enough for the whole pairs to be truncated at all: the tokenizer lists every
        # overflowing window of a pair, thousands for two long texts.
        texts = [random_text(rng, rng.randint(1, 300)) for _ in range(4)]
        pairs = [random_text(rng, rng.randint(1, 300)) for _ in range(4)]
        length = rng.choice([13, 32, 64])  # rooms of 10, 29 (odd: the longer text keeps a piece more), 61
        cut_texts, cut_pairs = window_texts(minilm_tokenizer, texts, length, "truncate", pairs)
        assert (minilm_tokenizer.encode_batch(texts, pairs, max_length=length)["input_ids"].tolist()
                == minilm_tokenizer.encode_batch(cut_texts, cut_pairs, max_length=length)["input_ids"].tolist())


class CountingBackend:
    """Stands in for a tokenizer's Rust backend, counting the characters it is asked to encode."""

    def __init__(self, backend):
        self._backend = backend
        self.characters = 0

    def _count(self, inputs):
        for item in inputs:
            self.characters += sum(map(len, item)) if isinstance(item, (tuple, list)) else len(item)

    def encode(self, text, pair=None, *args, **kwargs):
        self._count([text] + ([pair] if pair else []))
        return self._backend.encode(text, pair, *args, **kwargs)

    def encode_batch(self, inputs, *args, **kwargs):
        self._count(inputs)
        return self._backend.encode_batch(inputs, *args, **kwargs)

    def encode_batch_fast(self, inputs, *args, **kwargs):
        self._count(inputs)
        return self._backend.encode_batch_fast(inputs, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._backend, name)


def serve_in_thread(classifier_dir, cost_delay=1e-4, **limits):
    from bertforge.serving.limits import Limits
    from bertforge.serving.service import ModelService

    service = ModelService.load(classifier_dir, device="cpu", limits=Limits(**limits), batch_wait_ms=0,
                                cost_delay=cost_delay)
    server = ThreadServer(service)
    server.wait_ready()
    return service, server


def test_a_long_text_is_not_tokenized_whole(classifier_dir):
    service, server = serve_in_thread(classifier_dir, max_texts=4, max_text_bytes=2_000_000)
    tokenizer = service.embedder.tokenizer
    counting = CountingBackend(tokenizer._backend)
    tokenizer._backend, tokenizer._encode_many = counting, counting.encode_batch_fast
    rng = random.Random(3)
    try:
        read = {}
        for size in (1_000, 1_000_000):
            text = random_text(rng, size // 4)[:size]
            before = counting.characters
            answer = httpx.post(server.url + "/embed", json={"texts": [text]}, timeout=120)
            assert answer.status_code == 200, answer.text
            read[size] = counting.characters - before
            tokenizer._backend, tokenizer._encode_many = counting._backend, counting._backend.encode_batch_fast
            expected = service.embedder.encode([text])  # the library on the whole text
            tokenizer._backend, tokenizer._encode_many = counting, counting.encode_batch_fast
            np.testing.assert_allclose(answer.json()["embeddings"][0], expected[0], atol=1e-5)
    finally:
        server.stop()
    assert read[1_000_000] < 5 * read[1_000] + 5_000, read  # about the same work, not a thousand times it


# -- queue order and clients that leave ------------------------------------------------------


class SlowModel:
    """Wraps the service's embedding run: the first run waits for ``release``; every run is
    recorded with its texts, in the order the model thread ran them."""

    def __init__(self, service):
        self.run = service.embed_batcher.run
        self.runs: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        service.embed_batcher.run = self

    def __call__(self, texts):
        self.started.set()
        self.release.wait(60)
        self.runs.append(list(texts))
        time.sleep(0.05)
        return self.run(texts)


def test_short_requests_overtake_long_ones(classifier_dir):
    # Each token of a request counts as 10 ms of lateness: the long one (192 tokens) is queued
    # as if it came 1.9 s later, the short one (3 tokens) 30 ms later.
    service, server = serve_in_thread(classifier_dir, cost_delay=0.01, max_batch_tokens=40)
    model = SlowModel(service)
    long_texts = [f"long text number {n} " + "word " * 40 for n in range(6)]  # 34 tokens each

    async def clients():
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            blocker = asyncio.ensure_future(client.post("/embed", json={"texts": ["blocker"]}))
            while not model.started.is_set():
                await asyncio.sleep(0.01)
            long = asyncio.ensure_future(client.post("/embed", json={"texts": long_texts}))
            await asyncio.sleep(0.3)  # the long request is queued first
            short = asyncio.ensure_future(client.post("/embed", json={"texts": ["short"]}))
            await asyncio.sleep(0.3)
            model.release.set()
            return [(await task).status_code for task in (blocker, long, short)]

    try:
        assert asyncio.run(clients()) == [200, 200, 200]
    finally:
        server.stop()
    run_of = {text: index for index, run in enumerate(model.runs) for text in run}
    assert run_of["short"] < max(run_of[text] for text in long_texts), model.runs
    assert max(len(run) for run in model.runs) <= 2  # --max-batch-tokens split the long request


def test_the_queued_work_of_a_client_that_left_is_dropped(classifier_dir):
    service, server = serve_in_thread(classifier_dir)
    model = SlowModel(service)
    gone_texts = [f"never run {n}" for n in range(4)]

    async def clients():
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            blocker = asyncio.ensure_future(client.post("/embed", json={"texts": ["blocker"]}))
            while not model.started.is_set():
                await asyncio.sleep(0.01)
            body = json.dumps({"texts": gone_texts}).encode()
            sock = connect(server.port)
            sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await asyncio.sleep(0.5)  # queued behind the blocker
            sock.close()  # the client gives up
            await asyncio.sleep(0.5)
            model.release.set()
            first = await blocker
            after = await client.post("/embed", json={"texts": ["after"]})
            return first.status_code, after.status_code, (await client.get("/health")).json()

    try:
        first, after, health = asyncio.run(clients())
    finally:
        server.stop()
    ran = [text for run in model.runs for text in run]
    assert (first, after) == (200, 200)
    assert not set(gone_texts) & set(ran), model.runs
    assert ran == ["blocker", "after"]
    assert health["batching"]["embed"]["dropped_items"] == 4


def test_a_sliding_window_request_is_bounded_by_the_token_budget(classifier_dir):
    from bertforge.serving.limits import Limits, RequestError
    from bertforge.serving.service import ModelService

    service = ModelService.load(classifier_dir, device="cpu", limits=Limits(max_texts=4, max_request_tokens=1000))
    service.embedder.long_text = LongText("sliding-window")
    tokenizer = service.embedder.tokenizer
    counting = CountingBackend(tokenizer._backend)
    tokenizer._backend, tokenizer._encode_many = counting, counting.encode_batch_fast
    _, costs = service._cut_and_count({"texts": ["word " * 200]}, ["texts"], service.embedder.long_text, MAX_LENGTH)
    assert costs == [13 * MAX_LENGTH]  # 200 pieces in windows of 30 every 15: 13 windows
    huge = "word " * 100_000
    with pytest.raises(RequestError, match="budget of 1,000 per request .*--max-request-tokens") as refused:
        service._cut_and_count({"texts": [huge]}, ["texts"], service.embedder.long_text, MAX_LENGTH)
    assert refused.value.status == 413
    assert counting.characters < 50_000  # counting stopped long before the end of the 500 KB text


@pytest.mark.parametrize("mode", ["head-tail", "sliding-window"])
def test_pairs_sent_to_a_model_that_reads_long_texts_whole_are_a_422(classifier_dir, mode):
    from bertforge.serving.limits import RequestError
    from bertforge.serving.service import ModelService

    service = ModelService.load(classifier_dir, device="cpu")
    with pytest.raises(RequestError, match=f"text_pairs was sent, but this model reads long texts {mode}") as refused:
        service._cut_and_count({"texts": ["a cat"], "text_pairs": ["a dog"]}, ["texts", "text_pairs"],
                               LongText(mode), MAX_LENGTH)
    assert refused.value.status == 422
