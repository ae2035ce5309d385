"""A server that documents itself: schemas in /openapi.json, one tokenisation per request,
batches cut by real token counts, one ``max_batch_tokens``, routes declared once.

Real servers on 127.0.0.1 sharing the session's fp32 weights, and a real batcher.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest

from inbedder_integrations import InBedder

pytest.importorskip("fastapi", reason="the 'serve' extra is part of the test install")
from inbedder_integrations.engine import engine as engine_module
from inbedder_integrations.engine.prompting import validate_instruction
from inbedder_integrations.errors import InvalidArgumentError
from inbedder_integrations.serving import (
    DynamicBatcher,
    EmbedRequest,
    ServeConfig,
    ServedInstruction,
    create_app,
    serve_in_background,
)
from inbedder_integrations.serving.config import RESERVED_NAMES, ROUTE_PATHS, check_route_names
from inbedder_integrations.serving.schemas import BLANKS, NON_BLANK
from tests.serving.test_serve_cli import start_server_process, wait_until_healthy

TOPIC = "What is the topic of this text?"
TEXTS = ["The striker scored twice.", "Shares fell after the loss.", "I love this phone!"]


def config(**changes: object) -> ServeConfig:
    settings = {"port": 0, "cache": False}
    return ServeConfig((ServedInstruction("topic", TOPIC),), **{**settings, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server_engine(engine: InBedder) -> InBedder:
    return InBedder.from_pretrained("default", dtype="float32", cache=False)


@pytest.fixture(scope="module")
def server(server_engine: InBedder):
    with serve_in_background(config(), server_engine) as running:
        yield running.url


def test_openapi_shows_every_routes_request_and_response_schema(server: str) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    embeddings = spec["paths"]["/v1/embeddings"]["post"]
    request = embeddings["requestBody"]["content"]["application/json"]["schema"]
    assert {"input", "model", "instruction", "encoding_format", "dimensions"} <= set(request["properties"])
    assert request["required"] == ["input"]
    answer = embeddings["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/OpenAIEmbeddingResponse"}
    schemas = spec["components"]["schemas"]
    assert {"data", "model", "usage"} <= set(schemas["OpenAIEmbeddingResponse"]["properties"])
    assert "OpenAIError" in schemas and "TEIError" in schemas
    tei = spec["paths"]["/embed"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"inputs", "prompt_name", "normalize", "truncate"} <= set(tei["properties"])
    for path in ("/v1/models", "/info", "/health"):
        operation = spec["paths"][path]["get"]
        assert "$ref" in operation["responses"]["200"]["content"]["application/json"]["schema"], path
    assert {"max_batch_tokens", "fingerprint", "instructions"} <= set(schemas["InfoResponse"]["properties"])


def test_a_wrong_field_gets_a_422_in_each_apis_shape(server: str) -> None:
    openai = httpx.post(f"{server}/v1/embeddings", json={"input": "x", "model": "topic", "dimensions": "9"})
    assert openai.status_code == 422
    assert (
        openai.json()["error"]["param"] == "dimensions" and "an integer" in openai.json()["error"]["message"]
    )
    tei = httpx.post(f"{server}/embed", json={"inputs": "x", "normalize": "yes"})
    assert tei.status_code == 422
    assert (
        tei.json()["error_type"] == "Validation" and "normalize must be true or false" in tei.json()["error"]
    )


def test_usage_counts_the_real_prompt_tokens(server: str, engine: InBedder) -> None:
    response = httpx.post(f"{server}/v1/embeddings", json={"model": "topic", "input": TEXTS})
    tokens = sum(size.tokens for size in engine.prompt_sizes(TEXTS, TOPIC))
    assert response.json()["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_each_text_is_checked_and_tokenised_once_on_its_way_to_the_model(
    server: str, server_engine: InBedder, engine: InBedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = server_engine._live_runner.prompts
    calls = {"tokenised": 0, "checked": 0}
    encode, check = prompts.encode_and_tell, engine_module.validate_texts

    def counting_encode(text: str, instruction: str) -> tuple[list[int], bool]:
        calls["tokenised"] += 1
        return encode(text, instruction)

    def counting_check(*args: object, **kwargs: object) -> list[str]:
        calls["checked"] += 1
        return check(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prompts, "encode_and_tell", counting_encode)
    monkeypatch.setattr(engine_module, "validate_texts", counting_check)
    texts = [f"{text} (once)" for text in TEXTS]
    response = httpx.post(f"{server}/v1/embeddings", json={"model": "topic", "input": texts})
    vectors = np.asarray([item["embedding"] for item in response.json()["data"]], dtype=np.float32)
    assert calls == {"tokenised": len(texts), "checked": 1}
    monkeypatch.undo()
    assert np.abs(vectors - engine.embed(texts, TOPIC)).max() <= 1e-5


def test_info_reports_the_one_token_budget_the_engine_runs_under(
    server: str, server_engine: InBedder
) -> None:
    assert httpx.get(f"{server}/info").json()["max_batch_tokens"] == server_engine.max_batch_tokens == 4096
    with pytest.raises(InvalidArgumentError, match="max_batch_tokens=1000 differs"):
        create_app(config(max_batch_tokens=1000), server_engine)
    own = InBedder.from_pretrained("default", dtype="float32", cache=False, max_batch_tokens=1000)
    with serve_in_background(config(max_batch_tokens=1000), own) as running:
        assert httpx.get(f"{running.url}/info").json()["max_batch_tokens"] == 1000


def test_batches_are_cut_by_real_token_counts(engine: InBedder) -> None:
    """Four requests of one text whose prompt is long in tokens but short in characters (CJK):
    a budget of two prompts takes two requests per batch.  A characters/3 estimate counted
    each as a fifth of its real size and would have taken all four at once."""
    text = "数据科学家们在研究机器学习。" * 12
    tokens = engine.prompt_sizes([text], TOPIC)[0].tokens
    assert len(text) // 3 < tokens / 2, "the text must be one a character estimate gets wrong"
    budget = InBedder.from_pretrained(
        "default", dtype="float32", cache=False, max_batch_tokens=2 * tokens + 10
    )
    batches: list[int] = []
    batcher = DynamicBatcher(
        budget, max_batch_texts=64, max_batch_tokens=budget.max_batch_tokens, max_wait_s=0.3, max_queue=100,
        on_batch=lambda requests, texts: batches.append(requests),
    )  # fmt: skip

    async def four() -> list[np.ndarray]:
        requests = [EmbedRequest(budget.encode_prompts([f"{i} {text}"], TOPIC)) for i in range(4)]
        results = await asyncio.gather(*(batcher.embed(request) for request in requests))
        return [result.vectors for result in results]

    batcher.start()
    try:
        vectors = asyncio.run(four())
    finally:
        batcher.close()
    assert batches == [2, 2]
    expected = engine.embed([f"{i} {text}" for i in range(4)], TOPIC)
    assert np.abs(np.concatenate(vectors) - expected).max() <= 1e-5


def test_route_names_and_metrics_labels_come_from_the_routes(server: str, server_engine: InBedder) -> None:
    assert set(RESERVED_NAMES) == {
        "v1",
        "embed",
        "health",
        "info",
        "metrics",
        "docs",
        "openapi.json",
        "redoc",
    }
    with pytest.raises(InvalidArgumentError, match="taken by an endpoint"):
        ServedInstruction("openapi.json", TOPIC)
    with pytest.raises(RuntimeError, match=r"\['/v1/rerank'\]"):
        check_route_names([*ROUTE_PATHS, "/v1/rerank"])
    app = create_app(config(), server_engine)
    assert {route.path for route in app.routes} == set(ROUTE_PATHS)  # type: ignore[attr-defined]
    httpx.post(f"{server}/topic", json={"inputs": "x"})
    httpx.post(f"{server}/a/b/c", json={"inputs": "x"})
    text = httpx.get(f"{server}/metrics").text
    assert 'endpoint="/{name}",status="200"' in text and 'endpoint="other",status="404"' in text


def test_tokenising_does_not_wait_for_a_running_batch(server_engine: InBedder) -> None:
    """The request side tokenises under the tokenizer's lock, not the model's: while a
    forward pass holds the model, a new request's prompts are still made."""
    done = threading.Event()
    with server_engine._loaded.lock:  # a batch "running"
        worker = threading.Thread(
            target=lambda: (server_engine.encode_prompts(TEXTS, TOPIC), done.set()), daemon=True
        )
        worker.start()
        assert done.wait(10), "encode_prompts waited for the model's lock"


# --------------------------------------------------------------- the schema says what the server does


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_the_schema_declares_path_parameters_every_status_and_the_key(
    server: str, server_engine: InBedder
) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    for path in ("/{name}", "/{name}/embed"):
        (parameter,) = spec["paths"][path]["post"]["parameters"]
        assert (parameter["name"], parameter["in"], parameter["required"]) == ("name", "path", True)
        assert parameter["schema"] == {"type": "string", "enum": ["topic", "topic:query"]}
    posts = [op for _, method, op in operations(spec) if method == "post"]
    assert len(posts) == 5
    for operation in posts:
        assert {"200", "400", "404", "408", "413", "415", "422", "500", "503"} == set(operation["responses"])
    for path, method, operation in operations(spec):
        assert "401" not in operation["responses"] and "security" not in operation, (path, method)
        assert "400" in operation["responses"], "a key-less server refuses foreign Host names on every route"
    assert "securitySchemes" not in spec["components"]

    with serve_in_background(config(api_key="k"), server_engine) as keyed:
        headers = {"Authorization": "Bearer k"}
        spec = httpx.get(f"{keyed.url}/openapi.json", headers=headers).json()
        assert spec["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, method, operation in operations(spec):
            sent = httpx.request(method, f"{keyed.url}{path.replace('{name}', 'topic')}")
            if path == "/health":
                assert "401" not in operation["responses"] and "security" not in operation
                assert sent.status_code == 200
                continue
            assert operation["security"] == [{"bearer": []}], (path, method)
            unauthorized = operation["responses"]["401"]
            assert sent.status_code == 401 and sent.headers["www-authenticate"] == "Bearer", (path, method)
            assert unauthorized["headers"]["WWW-Authenticate"]["required"] is True
        refused = httpx.post(f"{keyed.url}/embed", content=b'{"inputs": "x"}', headers=headers)
        assert refused.status_code == 415 and "415" in spec["paths"]["/embed"]["post"]["responses"]
    for _, _, operation in operations(spec):
        for status, answer in operation["responses"].items():
            reference = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
            assert reference is None or reference.split("/")[-1] in spec["components"]["schemas"], status


#: (path, body) sent to a server with max_inputs=3 and the instruction field on; the schema
#: must allow exactly the ones the server embeds.
AGREEMENT: list[tuple[str, dict[str, Any]]] = [
    ("/v1/embeddings", {"model": "topic", "input": "x"}),
    ("/v1/embeddings", {"model": "topic", "input": ""}),  # an empty text is embedded
    ("/v1/embeddings", {"model": "topic:query", "input": ["a", "b", "c"]}),
    ("/v1/embeddings", {"model": "topic", "input": []}),
    ("/v1/embeddings", {"model": "topic", "input": ["a", "b", "c", "d"]}),
    ("/v1/embeddings", {"input": "x"}),
    ("/v1/embeddings", {"model": None, "input": "x"}),
    ("/v1/embeddings", {"model": "default", "input": "x"}),
    ("/v1/embeddings", {"model": "nope", "input": "x"}),
    ("/v1/embeddings", {"model": "default", "input": "x", "instruction": "Is it late?"}),
    ("/v1/embeddings", {"model": "nope", "input": "x", "instruction": "Is it late?"}),
    ("/v1/embeddings", {"input": "x", "instruction": "Is it late?"}),
    ("/v1/embeddings", {"model": "topic", "input": "x", "instruction": ""}),
    ("/v1/embeddings", {"model": "topic", "input": "x", "instruction": " \u3000\n\x1c"}),
    ("/v1/embeddings", {"model": "topic", "input": "x", "instruction": " ?\n"}),
    ("/v1/embeddings", {"model": "topic", "input": "x", "dimensions": 576}),
    ("/v1/embeddings", {"model": "topic", "input": "x", "dimensions": 575}),
    ("/v1/embeddings", {"model": "topic", "input": "x", "encoding_format": "int8"}),
    ("/embed", {"inputs": "x"}),
    ("/embed", {"inputs": ""}),
    ("/embed", {"inputs": []}),
    ("/embed", {"inputs": ["a", "b", "c", "d"]}),
    ("/embed", {"inputs": "x", "instruction": ""}),
    ("/embed", {"inputs": "x", "instruction": "\u2028"}),
    ("/embed", {"inputs": "x", "prompt_name": "topic:query"}),
    ("/embed", {"inputs": "x", "prompt_name": ""}),
    ("/embed", {"inputs": "x", "prompt_name": "default"}),
    ("/embed", {"inputs": "x", "prompt_name": "default", "instruction": "Is it late?"}),
    ("/", {"inputs": ["x"], "normalize": False, "truncate": True}),
    ("/topic", {"inputs": "x", "prompt_name": "nope"}),  # the path's name wins
    ("/topic:query/embed", {"inputs": "x"}),
    ("/nope/embed", {"inputs": "x"}),
    ("/nope", {"inputs": "x"}),
]


def schema_allows(spec: dict[str, Any], path: str, body: dict[str, Any]) -> bool:
    """Whether ``spec`` allows ``body`` sent to ``path`` (its ``{name}`` filled in)."""
    template, name = path, None
    for candidate in ("/{name}/embed", "/{name}"):
        prefix, _, suffix = candidate.partition("{name}")
        if path not in spec["paths"] and path.startswith(prefix) and path.endswith(suffix):
            template, name = candidate, path[len(prefix) : len(path) - len(suffix)]
            break
    operation = spec["paths"][template]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    if not jsonschema.Draft202012Validator(schema).is_valid(body):
        return False
    return all(
        jsonschema.Draft202012Validator(parameter["schema"]).is_valid(name)
        for parameter in operation.get("parameters", [])
    )


@pytest.mark.parametrize("instruction_field", [True, False])
def test_the_request_schemas_allow_exactly_what_the_server_embeds(
    server_engine: InBedder, instruction_field: bool
) -> None:
    settings = config(max_inputs=3, allow_instruction_field=instruction_field)
    with serve_in_background(settings, server_engine) as running:
        spec = httpx.get(f"{running.url}/openapi.json").json()
        disagreements = []
        for path, body in AGREEMENT:
            answer = httpx.post(f"{running.url}{path}", json=body)
            assert answer.status_code == 200 or 400 <= answer.status_code < 500, (path, body, answer.text)
            if schema_allows(spec, path, body) != (answer.status_code == 200):
                disagreements.append((path, body, answer.status_code, answer.text[:120]))
    assert disagreements == []
    assert server_engine.dim == 576, "AGREEMENT's dimensions rows are written for this width"


def test_blank_instructions_are_what_str_strip_removes() -> None:
    """The schema's pattern and the parser's rule (``instruction.strip()``) are one rule."""
    blanks = "".join(char for char in map(chr, range(sys.maxunicode + 1)) if char.isspace())
    assert blanks == BLANKS
    pattern = re.compile(NON_BLANK)
    for text in [*BLANKS, BLANKS, "", "?", "\u200b", "\ufeff", " a ", "\x00", "\x7f"]:
        try:
            validate_instruction(text)
            taken = True
        except InvalidArgumentError:
            taken = False
        assert taken == bool(pattern.search(text)), repr(text)


def test_routes_match_whole_paths_only(server: str) -> None:
    """A path ending in a newline was served by the route without it (``$`` matches before
    a final newline): ``POST /%0A`` embedded as ``POST /`` did, ``GET /info%0A`` answered."""

    def embedded() -> float:
        lines = httpx.get(f"{server}/metrics").text.splitlines()
        return sum(float(line.split()[-1]) for line in lines if line.startswith("inbedder_texts_total{"))

    before = embedded()
    for path in ("/%0A", "/embed%0A", "/topic%0A", "/%0A/embed", "/topic/embed%0A"):
        answer = httpx.post(f"{server}{path}", json={"inputs": "x"})
        assert answer.status_code == 404 and "error" in answer.json(), (path, answer.text)
    newline = httpx.post(f"{server}/%0A", json={"inputs": "x"}).json()["error"]
    assert newline.startswith("the model '\\n' is not served here"), newline
    openai = httpx.post(f"{server}/v1/embeddings%0A", json={"model": "topic", "input": "x"})
    assert (
        openai.status_code == 404
        and "no endpoint at '/v1/embeddings\\n'" in openai.json()["error"]["message"]
    )
    for path in ("/info%0A", "/health%0A", "/metrics%0A", "/v1/models%0A"):
        answer = httpx.get(f"{server}{path}")
        assert answer.status_code in (404, 405) and "error" in answer.json(), (path, answer.text)
    assert httpx.post(f"{server}/", json={"inputs": "x"}).status_code == 200
    assert embedded() == before + 1, "only the last request reached the model"


def test_no_route_and_another_methods_route_answer_in_the_apis_error_shape(server: str) -> None:
    missing = httpx.get(f"{server}/a/b/c")
    assert missing.status_code == 404 and missing.json()["error"] == "no endpoint at '/a/b/c'"
    openai = httpx.get(f"{server}/v1/nope")
    assert openai.status_code == 404 and openai.json()["error"]["type"] == "invalid_request_error"
    wrong = httpx.put(f"{server}/embed")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json() == {"error": "'/embed' answers POST, not PUT", "error_type": "Validation"}


#: A server for schemathesis: few texts per request (its boundary cases embed little), and
#: a cache, as schemathesis repeats its texts.
FUZZED_TOML = """\
model = "default"
cache = "cache.db"
max_inputs = 3
{key}
[model_kwargs]
dtype = "float32"

[instructions]
topic = "What is the topic of this text?"
mood = "How does the writer feel?"

[query_instructions]
topic = "Which topic is this question about?"
"""

#: Every check of schemathesis 4 that a stateless API has (ignored_auth: a keyed route
#: answers 401 without the key).
CHECKS = (
    "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,"
    "response_headers_conformance,negative_data_rejection,positive_data_acceptance,"
    "missing_required_header,unsupported_method,ignored_auth"
)

#: schemathesis counts only 400, 401, 404, 405, 415, 422 ... as rejections of invalid data;
#: 413 is how this server refuses more texts than max_inputs (the schema's maxItems).
ST_CONFIG = """\
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "404", "405", "413", "415", "422"]
"""


@pytest.mark.slow
def test_schemathesis_finds_keyed_and_key_less_servers_as_their_schema_says(tmp_path: Path) -> None:
    """Real ``inbedder serve`` processes, keyed and key-less, each fuzzed by schemathesis' CLI
    (its coverage phase's boundary cases, then 5 random cases per operation): no 5xx, no
    answer outside the schema, no schema-valid request refused, no invalid one embedded.

    The bound is the CPU's forward passes.  TEI's four routes share two request schemas (with
    and without a path's name): each server is sent one route of each, the other server the
    other two, so every route is fuzzed and each server embeds a third fewer requests; the
    two servers load and are fuzzed at once."""
    pytest.importorskip("schemathesis", reason="the 'dev' extra installs it")
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis' st command"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INBEDDER_")}
    servers = {}
    for name, key in (("keyed", 'api_key_file = "key.txt"'), ("key-less", "")):
        (tmp_path / name).mkdir()
        servers[name] = start_server_process(tmp_path / name, FUZZED_TOML.format(key=key), environment)
    (tmp_path / "schemathesis.toml").write_text(ST_CONFIG, encoding="utf-8")
    runs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for seed, (name, (process, url, auth)) in enumerate(servers.items()):
            wait_until_healthy(url, process, tmp_path / name / "server.log")
            headers = auth if name == "keyed" else {}
            skipped = ("/", "/{name}") if name == "keyed" else ("/embed", "/{name}/embed")
            runs[name] = start_schemathesis(st, tmp_path / name, url, headers, seed, skipped)
        for name, run in runs.items():
            report = finished_schemathesis(run, tmp_path / name)
            assert report["operations"]["tested"] == 8 and report["operations"]["errored"] == 0, report
            assert report["test_cases"]["generated"] > 250, report["test_cases"]
            assert report["failures"] == [] and report["errors"] == [], report
            assert {kind: found for kind, found in report["warnings"].items() if found} == {}
            for operation, rates in report["valid_rates"].items():
                assert sum(rate["accepted"] for rate in rates.values()) > 0, (name, operation, rates)
            log = (tmp_path / name / "server.log").read_text()
            assert "Traceback" not in log and "Exception in ASGI" not in log, log
    finally:
        for process in [*runs.values(), *(server for server, _, _ in servers.values())]:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)


def start_schemathesis(
    st: str, folder: Path, url: str, headers: dict[str, str], seed: int, skipped: tuple[str, ...]
) -> subprocess.Popen[bytes]:
    """``st run`` against the server at ``url``, from the schema it serves, but for the routes
    ``skipped``; its output and JSON report go to ``folder``."""
    spec = httpx.get(f"{url}/openapi.json", headers=headers)
    assert spec.status_code == 200, spec.text
    (folder / "openapi.json").write_bytes(spec.content)
    command = [
        st, "--config-file", "../schemathesis.toml", "--no-color", "run", "openapi.json", "--url", url,
        "--checks", CHECKS, "--phases", "coverage,fuzzing", "--max-examples", "5", "--workers", "1",
        "--seed", str(seed), "--generation-database", "none", "--request-timeout", "60",
        "--report", "json", "--report-json-path", "report.json",
    ]  # fmt: skip
    for header, value in headers.items():
        command += ["--header", f"{header}: {value}"]
    for path in skipped:
        command += ["--exclude-path", path]
    with (folder / "schemathesis.log").open("wb") as log:
        return subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def finished_schemathesis(run: subprocess.Popen[bytes], folder: Path) -> dict[str, Any]:
    """The JSON report of ``run``, once it has exited without finding anything."""
    code = run.wait(timeout=240)
    output = (folder / "schemathesis.log").read_text(encoding="utf-8", errors="replace")
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert code == 0 and report["exit_code"] == 0, output[-8000:]
    return report
