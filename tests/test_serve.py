"""`bertforge serve` over real HTTP on loopback: answers, every kind of bad input, and load.

Two servers run as `python -m bertforge serve` subprocesses for the whole module: a
small fine-tuned classifier (all-MiniLM-L6-v2 with a random three-label head, texts
cut to 32 tokens) and the plain MiniLM encoder. They are stopped with SIGINT at the end.
"""

import asyncio
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="install the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="install the serve extra: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx", reason="install the test extra: pip install -e '.[test]'")

from bertforge.apps.predictor import Classifier  # noqa: E402
from bertforge.apps.embedding import Embedder  # noqa: E402
from bertforge.serving.batcher import MicroBatcher  # noqa: E402
from serving_helpers import Server, ThreadServer  # noqa: E402

MAX_TEXTS = 8
MAX_TEXT_BYTES = 120_000
MAX_LENGTH = 32
LABELS = ["DESC", "HUM", "NUM"]
TEXTS = [
    "Who wrote The Raven ?", "How far is it from Denver to Aspen ?", "What is a caldera ?",
    "When did the Berlin Wall fall ?", "What does NASA stand for ?", "How many bones are in the human body ?",
    "Who painted the Mona Lisa ?", "Why is the sky blue ?", "What is the capital of Australia ?",
    "How tall is Mount Everest ?", "Who invented the telephone ?", "What is photosynthesis ?",
    "Where is the Great Barrier Reef ?", "How do bees make honey ?", "What year did World War II end ?",
    "Which planet has the most moons ?",
]
# Texts a tokenizer or model might trip over; each must get a proper answer.
ODD_TEXTS = [
    "😀🎉🔥", "a\u200bb", "a\u0000b\u0007c", "مرحبا بالعالم", "東京は日本の首都です", "e\u0301\u0301\u0301",
    "x" * 100_000, "word " * 20_000, "\U0001F600" * 25_000, "[CLS] [SEP] [MASK] [PAD] [UNK]",
]


def make_classifier(directory: Path, minilm_dir: Path) -> Path:
    """A classifier directory as bertforge finetune writes it: MiniLM plus a random head."""
    import torch

    from bertforge import BertForSequenceClassification, Tokenizer, save_pretrained
    from bertforge.data.labeled import LabelEncoder

    torch.manual_seed(0)
    encoder = LabelEncoder.fit(LABELS)
    model = BertForSequenceClassification.from_pretrained(minilm_dir, id2label=dict(encoder.id2label))
    with torch.no_grad():  # a head with clear preferences, so labels differ from text to text
        model.classifier.weight.mul_(40)
    save_pretrained(model, directory, tokenizer=Tokenizer.from_pretrained(minilm_dir),
                    metadata={"task": encoder.task, "label_encoder": encoder.to_dict(), "max_seq_length": MAX_LENGTH})
    return directory


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, minilm_dir) -> Path:
    return make_classifier(tmp_path_factory.mktemp("serve") / "classifier", minilm_dir)


@pytest.fixture(scope="module")
def servers(classifier_dir, minilm_dir, tmp_path_factory):
    """The classifier served by the `bertforge serve` command in a subprocess; the plain encoder
    served in a thread here while that process starts."""
    from bertforge.serving.limits import Limits
    from bertforge.serving.service import ModelService

    logs = tmp_path_factory.mktemp("serve-logs")
    started = {"classifier": Server(classifier_dir, logs / "classifier.log", "--max-texts", str(MAX_TEXTS),
                                    "--max-text-bytes", str(MAX_TEXT_BYTES), "--max-batch", "32")}
    try:
        started["encoder"] = ThreadServer(ModelService.load(minilm_dir, max_length=MAX_LENGTH, normalize=True,
                                                            device="cpu", limits=Limits()))
        urls = {name: server.wait_ready() for name, server in started.items()}
        yield urls
    finally:
        codes = {name: server.stop() for name, server in started.items()}
    assert codes == {"classifier": 0, "encoder": 0}, f"servers did not shut down cleanly: {codes}"
    assert "bertforge: stopped" in started["classifier"].log.read_text()


@pytest.fixture(scope="module")
def classifier_url(servers) -> str:
    return servers["classifier"]


@pytest.fixture(scope="module")
def encoder_url(servers) -> str:
    return servers["encoder"]


@pytest.fixture(scope="module")
def library_classifier(classifier_dir) -> Classifier:
    return Classifier.load(classifier_dir, device="cpu")


@pytest.fixture(scope="module")
def reference(library_classifier):
    """What the library answers for TEXTS: predictions and raw (unnormalized) embeddings."""
    classifier = library_classifier
    embedder = Embedder(classifier.model.bert, classifier.tokenizer, max_length=MAX_LENGTH)
    predictions = classifier.predict(TEXTS)
    return {"predictions": dict(zip(TEXTS, predictions)), "embeddings": dict(zip(TEXTS, embedder.encode(TEXTS)))}


def post(url: str, body, **kwargs) -> httpx.Response:
    return httpx.post(url, json=body, timeout=120, **kwargs)


def detail(response: httpx.Response) -> str:
    """The one-line ``detail`` of a refusal (it must be JSON, and one line)."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    message = response.json()["detail"]
    assert isinstance(message, str) and message and "\n" not in message, message
    return message


# -- answers ---------------------------------------------------------------------------------


def test_predict_answers_what_the_classifier_answers(classifier_url, reference):
    texts = TEXTS[:5]
    response = post(classifier_url + "/predict", {"texts": texts})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(texts)
    for text, prediction in zip(texts, predictions):
        expected = reference["predictions"][text]
        assert prediction["label"] == expected["label"]
        assert sorted(prediction["probabilities"]) == LABELS
        assert prediction["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-4)
    assert len({p["label"] for p in reference["predictions"].values()}) > 1  # the check above can tell texts apart


def test_embed_answers_what_the_embedder_answers(classifier_url, reference):
    texts = TEXTS[3:7]
    raw = post(classifier_url + "/embed", {"texts": texts}).json()
    unit = post(classifier_url + "/embed", {"texts": texts, "normalize": True}).json()
    expected = np.stack([reference["embeddings"][text] for text in texts])
    assert raw["dimension"] == 384
    np.testing.assert_allclose(np.array(raw["embeddings"]), expected, atol=1e-4)
    np.testing.assert_allclose(np.array(unit["embeddings"]),
                               expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


def test_plain_encoder_embeds_but_has_nothing_to_predict(encoder_url, minilm_dir):
    response = post(encoder_url + "/predict", {"texts": ["Who wrote The Raven ?"]})
    assert response.status_code == 404
    assert "no classifier head" in detail(response) and "/embed" in detail(response)

    vectors = np.array(post(encoder_url + "/embed", {"texts": TEXTS[:3]}).json()["embeddings"])
    expected = Embedder.load(minilm_dir, max_length=MAX_LENGTH, normalize=True).encode(TEXTS[:3])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)  # the server's --normalize is the default
    raw = np.array(post(encoder_url + "/embed", {"texts": TEXTS[:1], "normalize": False}).json()["embeddings"])
    assert abs(np.linalg.norm(raw) - 1) > 1e-3

    health = httpx.get(encoder_url + "/health").json()
    assert health["endpoints"] == ["/embed"] and health["model"]["task"] == "embedding"


def test_an_empty_list_gets_an_empty_answer(classifier_url):
    assert post(classifier_url + "/predict", {"texts": []}).json() == {"predictions": []}
    assert post(classifier_url + "/embed", {"texts": []}).json() == {"embeddings": [], "dimension": 384}


def test_odd_texts_get_proper_answers(classifier_url):
    for text in ODD_TEXTS:
        assert len(text.encode("utf-8")) <= MAX_TEXT_BYTES
        for endpoint, key in (("/predict", "predictions"), ("/embed", "embeddings")):
            response = post(classifier_url + endpoint, {"texts": [text, "Who wrote The Raven ?"]})
            assert response.status_code == 200, (text[:20], endpoint, response.text)
            answers = response.json()[key]
            assert len(answers) == 2
            if key == "embeddings":
                assert np.isfinite(answers).all() and len(answers[0]) == 384
            else:
                assert answers[0]["label"] in LABELS


def test_health_reports_model_limits_and_counters(classifier_url, classifier_dir):
    health = httpx.get(classifier_url + "/health").json()
    assert health["status"] == "ok"
    assert Path(health["model"]["path"]) == classifier_dir
    assert health["model"]["task"] == "classification" and health["model"]["labels"] == LABELS
    assert health["endpoints"] == ["/predict", "/embed"]
    assert health["limits"]["max_texts"] == MAX_TEXTS and health["limits"]["max_text_bytes"] == MAX_TEXT_BYTES
    assert health["embedding"] == {"dimension": 384, "pooling": "mean", "normalize": False, "max_length": MAX_LENGTH}
    assert set(health["batching"]) == {"predict", "embed"}


def test_openapi_description_and_docs(classifier_url):
    spec = httpx.get(classifier_url + "/openapi.json").json()
    assert {"/predict", "/embed", "/health"} <= set(spec["paths"])
    predict = spec["paths"]["/predict"]["post"]
    assert {"200", "400", "404", "413", "422"} <= set(predict["responses"])
    assert "texts" in json.dumps(spec["components"]["schemas"])
    docs = httpx.get(classifier_url + "/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text


def test_the_server_listens_on_loopback_by_default(servers):
    assert all(url.startswith("http://127.0.0.1:") for url in servers.values())


# -- bad input -------------------------------------------------------------------------------

JSON = {"content-type": "application/json"}
BAD_REQUESTS = [
    # (endpoint, raw body, headers, status, words in the message)
    ("/predict", b'{"texts": ["a", ', JSON, 400, "not valid JSON"),
    ("/embed", b"texts=a", JSON, 400, "not valid JSON"),
    ("/embed", b'{"texts": ["a"]}', {"content-type": "text/plain"}, 415, "Content-Type: application/json"),
    ("/predict", b'{"texts": ["a"]}', {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    ("/predict", b"", JSON, 422, "body is missing"),
    ("/predict", b'{"text": ["a"]}', JSON, 422, "texts is missing; text is not a field"),
    ("/predict", b'{"texts": "a"}', JSON, 422, "texts is a string, not a list of strings"),
    ("/embed", b'{"texts": ["a", 5]}', JSON, 422, "texts[1] is a number, not a string"),
    ("/embed", b'{"texts": [null]}', JSON, 422, "texts[0] is null"),
    ("/embed", b'{"texts": [["a"]]}', JSON, 422, "texts[0] is an array"),
    ("/embed", b'["a"]', JSON, 422, "body is an array, not a JSON object"),
    ("/embed", b"null", JSON, 422, "body is null"),
    ("/embed", b'{"texts": ["a"], "normalize": "yes"}', JSON, 422, "normalize is a string, not true or false"),
    ("/predict", b'{"texts": ["a", "  \\n\\t "]}', JSON, 422, "texts[1] is empty or only whitespace"),
    ("/embed", b'{"texts": [""]}', JSON, 422, "texts[0] is empty"),
    ("/embed", b'{"texts": ["a\\ud800"]}', JSON, 422, "unpaired surrogate"),
    ("/predict", b'{"texts": ["a", "b"], "text_pairs": ["c"]}', JSON, 422, "text_pairs has 1 item but texts has 2"),
    ("/predict", json.dumps({"texts": ["a"] * (MAX_TEXTS + 1)}).encode(), JSON, 413, "--max-texts"),
    ("/embed", json.dumps({"texts": ["a", "é" * (MAX_TEXT_BYTES // 2 + 1)]}).encode(), JSON, 413,
     "texts[1] is 120,002 bytes"),
    ("/predict", json.dumps({"texts": ["a"], "text_pairs": ["b" * (MAX_TEXT_BYTES + 1)]}).encode(), JSON, 413,
     "text_pairs[0]"),
]


@pytest.mark.parametrize("endpoint, body, headers, status, words", BAD_REQUESTS,
                         ids=[f"{case[3]}-{case[4][:30]}" for case in BAD_REQUESTS])
def test_bad_requests_get_a_clear_refusal(classifier_url, endpoint, body, headers, status, words):
    response = httpx.post(classifier_url + endpoint, content=body, headers=headers, timeout=120)
    assert response.status_code == status, response.text
    assert words in detail(response)


def test_an_oversized_body_is_refused_before_it_is_parsed(classifier_url):
    limit = httpx.get(classifier_url + "/health").json()["limits"]["max_body_bytes"]
    too_big = b'{"texts": ["' + b"a" * limit + b'"]}'
    response = httpx.post(classifier_url + "/embed", content=too_big, headers=JSON, timeout=120)
    assert response.status_code == 413 and "request body is" in detail(response)

    def chunks():  # no Content-Length: the limit must hold for a streamed body too
        yield b'{"texts": ["'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536

    response = httpx.post(classifier_url + "/embed", content=chunks(), headers=JSON, timeout=120)
    assert response.status_code == 413 and "more than" in detail(response)
    assert httpx.get(classifier_url + "/health").status_code == 200  # and the server carries on


def test_unknown_routes_and_methods(classifier_url):
    assert httpx.get(classifier_url + "/nothing").status_code == 404
    assert httpx.get(classifier_url + "/predict").status_code == 405


# -- under load ------------------------------------------------------------------------------

CLIENTS = 50
LOAD_SECONDS = 10
MOST_REQUESTS_PER_CLIENT = 400


async def run_clients(url: str, reference: dict) -> dict:
    """CLIENTS clients, each sending requests one after another for LOAD_SECONDS, checking every answer."""
    counts = {"sent": 0, "answered": 0, "texts": 0, "predict": 0, "embed": 0}
    errors: list[str] = []
    end = time.monotonic() + LOAD_SECONDS
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async def client(number: int, session: httpx.AsyncClient) -> None:
        rng = random.Random(number)
        for _ in range(MOST_REQUESTS_PER_CLIENT):
            if time.monotonic() >= end:
                return
            texts = rng.sample(TEXTS, rng.randint(1, 4))
            endpoint = rng.choice(["predict", "embed"])
            counts["sent"] += 1
            counts[endpoint] += 1
            try:
                response = await session.post(f"/{endpoint}", json={"texts": texts})
                if response.status_code != 200:
                    errors.append(f"{endpoint}: {response.status_code} {response.text[:200]}")
                    continue
                answers = response.json()["predictions" if endpoint == "predict" else "embeddings"]
                if len(answers) != len(texts):
                    errors.append(f"{endpoint}: {len(answers)} answers for {len(texts)} texts")
                    continue
                for text, answer in zip(texts, answers):  # each request gets its own texts' answers
                    if endpoint == "predict":
                        right = answer["probabilities"] == pytest.approx(
                            reference["predictions"][text]["probabilities"], abs=1e-4)
                    else:
                        right = np.allclose(answer, reference["embeddings"][text], atol=1e-4)
                    if not right:
                        errors.append(f"{endpoint}: wrong answer for {text!r}")
                counts["answered"] += 1
                counts["texts"] += len(texts)
            except httpx.HTTPError as error:
                errors.append(f"{endpoint}: {type(error).__name__}: {error}")

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as session:
        await asyncio.gather(*(client(number, session) for number in range(CLIENTS)))
    counts["errors"] = errors
    return counts


def test_fifty_concurrent_clients_are_all_answered_and_batched(classifier_url, reference):
    before = httpx.get(classifier_url + "/health").json()["batching"]
    counts = asyncio.run(run_clients(classifier_url, reference))
    after = httpx.get(classifier_url + "/health").json()["batching"]

    assert counts["errors"] == [], counts["errors"][:5]
    assert counts["sent"] >= CLIENTS
    assert counts["answered"] == counts["sent"]  # none lost
    served = {name: after[name]["requests"] - before[name]["requests"] for name in ("predict", "embed")}
    assert served == {"predict": counts["predict"], "embed": counts["embed"]}  # the server saw each one once
    batches = sum(after[name]["batches"] - before[name]["batches"] for name in ("predict", "embed"))
    texts = sum(after[name]["items"] - before[name]["items"] for name in ("predict", "embed"))
    assert texts == counts["texts"]
    # Concurrent requests really shared model runs. On 2 cores with the 50 clients on the same
    # machine a run holds about two requests (0.44-0.51 runs per request measured), so the bound
    # leaves room for the machine's noise and still fails when nothing is batched.
    assert batches < counts["sent"] * 0.75
    assert max(after[name]["most_requests_in_batch"] for name in after) > 1
    assert all(after[name]["largest_batch"] <= 32 for name in after)  # --max-batch holds
    print(f"\n{counts['sent']} requests ({counts['texts']} texts) from {CLIENTS} clients in {LOAD_SECONDS} s, "
          f"{batches} model runs, {counts['texts'] / max(batches, 1):.1f} texts per run")


# -- the batcher on its own ------------------------------------------------------------------


def test_batcher_keeps_every_request_and_isolates_a_failing_one():
    seen_batches = []

    def run(items):
        seen_batches.append(len(items))
        if "boom" in items:
            raise ValueError("the model cannot take 'boom'")
        return [item * 2 for item in items]

    async def main():
        batcher = MicroBatcher(run, max_batch=8, max_wait=0.01)
        batcher.start()
        rng = random.Random(0)
        requests = [[f"r{n}i{i}" for i in range(rng.randint(1, 5))] for n in range(60)]
        requests[17] = ["fine", "boom"]
        requests[40] = [f"big{i}" for i in range(12)]  # larger than max_batch: runs alone, unsplit
        answers = await asyncio.gather(*(batcher.submit(r) for r in requests), return_exceptions=True)
        await batcher.stop()
        return requests, answers, batcher.stats

    requests, answers, stats = asyncio.run(main())
    for number, (request, answer) in enumerate(zip(requests, answers)):
        if number == 17:
            assert isinstance(answer, ValueError)
        else:
            assert answer == [item * 2 for item in request]
    assert stats.requests == 60 and stats.failed_requests == 1
    assert stats.batches < 60 and stats.most_requests_in_batch > 1
    assert max(seen_batches) == 12 and sorted(seen_batches)[-2] <= 8


def test_stopping_the_batcher_answers_the_request_it_was_gathering():
    from bertforge.serving.limits import RequestError

    async def main():
        batcher = MicroBatcher(lambda items: items, max_batch=8, max_wait=30)  # a long pause for company
        batcher.start()
        waiting = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.1)  # the worker has taken the request and waits for others to join
        await batcher.stop()
        return await asyncio.wait_for(waiting, 5)  # answered, not left waiting forever

    with pytest.raises(RequestError, match="shutting down") as refused:
        asyncio.run(main())
    assert refused.value.status == 503


def test_a_classifier_without_an_encoder_predicts_but_does_not_embed(library_classifier):
    from bertforge.serving.limits import RequestError
    from bertforge.serving.service import ModelService

    service = ModelService(None, predictor=library_classifier)  # as for a graph exported to ONNX

    async def main():
        await service.start()
        try:
            with pytest.raises(RequestError, match="no PyTorch encoder") as refused:
                await service.embed(["Who wrote The Raven ?"])
            return refused.value.status, await service.predict({"texts": ["Who wrote The Raven ?"]})
        finally:
            await service.stop()

    status, predictions = asyncio.run(main())
    assert status == 404 and predictions[0]["label"] in LABELS
    assert service.health()["endpoints"] == ["/predict"]


# -- the command line ------------------------------------------------------------------------


def run_cli(capsys, *args: str) -> tuple[int, str]:
    from bertforge.cli.app import main

    code = main(["serve", *args])
    return code, capsys.readouterr().err


def test_cli_refuses_a_missing_model_in_one_line(tmp_path, capsys):
    code, stderr = run_cli(capsys, "--model", str(tmp_path / "nothing-here"), "--port", "0")
    assert code == 1
    assert stderr.strip().count("\n") == 0 and "no such model directory" in stderr


def test_cli_refuses_a_port_in_use_in_one_line(classifier_url, minilm_dir, capsys):
    port = classifier_url.rsplit(":", 1)[1]
    code, stderr = run_cli(capsys, "--model", str(minilm_dir), "--port", port)
    assert code == 1
    assert "cannot listen on 127.0.0.1:" in stderr and "--port" in stderr
    assert stderr.strip().count("\n") == 0


def test_cli_refuses_bad_limits_in_one_line(minilm_dir, capsys):
    with pytest.raises(SystemExit) as refused:  # bad usage, refused as the command line is read
        run_cli(capsys, "--model", str(minilm_dir), "--port", "0", "--max-texts", "0")
    stderr = capsys.readouterr().err
    assert refused.value.code == 2 and stderr.strip().count("\n") == 0
    assert "argument --max-texts: must be a whole number of at least 1, got 0" in stderr


def test_cli_warns_when_listening_beyond_loopback(tmp_path, capsys):
    code, stderr = run_cli(capsys, "--model", str(tmp_path / "nothing-here"), "--host", "0.0.0.0", "--port", "0")
    assert "warning: listening on http://0.0.0.0:" in stderr and "no authentication" in stderr
    assert code == 1  # and then the missing model stops it


def test_a_missing_serve_extra_is_one_line(monkeypatch, capsys, minilm_dir):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # what an environment without the extra looks like
    code, stderr = run_cli(capsys, "--model", str(minilm_dir), "--port", "0")
    assert code == 1
    assert "needs the serve extra" in stderr and "pip install 'bertforge[serve]'" in stderr
    assert stderr.strip().count("\n") == 0
