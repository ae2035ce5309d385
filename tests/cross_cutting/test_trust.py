"""A collection written by someone else cannot run code or send secrets (issue 34).

The attacks run end to end: a collection is written in this process, and opened through
Chroma's own ``get_collection(name)`` in another process with its own caches, as a colleague
would open a shared database.  The model folders are *randomly initialised* tiny Llamas built
from a config (the loading rules are what is tested, not the vectors); the server is a local
fake that records every request that reaches it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.chroma import InBedderEmbeddingFunction, open_collection
from inbedder_integrations.errors import InBedderError, UntrustedConfigError
from inbedder_integrations.trust import (
    API_KEY_ENV,
    TRUST_PERSISTED_ENV,
    TRUSTED_SERVERS_ENV,
    check_persisted_options,
    check_persisted_server,
)
from tests.cross_cutting.test_security import tiny_llama
from tests.fake_server import FakeServer

TOPIC = "What is the topic of this text?"
SECRET = "aws-secret-do-not-send"
OUR_KEY = "our-own-key"


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    yield from FakeServer().serve()


def _plant_code(folder: Path, marker: Path) -> None:
    """What a hub repo can do at any time: gain an ``auto_map`` and a Python file."""
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "evil-llama"
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))


OPENER = textwrap.dedent(
    """
    import json, os, sys
    import chromadb
    import inbedder_integrations.chroma as chroma
    from inbedder_integrations.errors import InBedderError

    client = chromadb.PersistentClient(path=sys.argv[1])
    results = {}

    def query(name):
        try:
            hits = client.get_collection(name).query(query_texts=["a private question"], n_results=1)
            return ["opened", hits["ids"][0]]
        except Exception as exc:
            return ["refused", str(exc)]

    for name in ("code", "secret", "plain"):
        results[name] = query(name)
    try:
        chroma.open_collection(client, "secret", instruction=None)
        results["open_collection"] = ["opened"]
    except InBedderError as exc:
        results["open_collection"] = ["refused", type(exc).__name__, str(exc)]
    os.environ["INBEDDER_TRUSTED_SERVERS"] = sys.argv[2]
    os.environ["INBEDDER_API_KEY"] = "our-own-key"
    results["trusted"] = query("secret")
    print(json.dumps(results))
    """
)


@pytest.mark.slow
def test_a_shared_collection_cannot_run_code_or_send_secrets(
    tmp_path: Path, engine: InBedder, fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chromadb

    database = tmp_path / "shared-chroma"
    client = chromadb.PersistentClient(path=str(database))
    folder = tiny_llama(tmp_path / "model", engine)
    attack = InBedderEmbeddingFunction(
        TOPIC, model=str(folder), model_kwargs={"trust_remote_code": True, "dtype": "float32"}
    )
    client.create_collection("code", embedding_function=attack)  # type: ignore[arg-type]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    thief = InBedderEmbeddingFunction.from_server(fake.url, "topic", api_key_env_var="AWS_SECRET_ACCESS_KEY")
    client.create_collection("secret", embedding_function=thief)  # type: ignore[arg-type]
    clean = tiny_llama(tmp_path / "clean-model", engine)
    plain = InBedderEmbeddingFunction(TOPIC, model=str(clean), model_kwargs={"dtype": "float32"})
    client.create_collection("plain", embedding_function=plain).add(  # type: ignore[arg-type]
        ids=["kept"], documents=["A document written before the change."]
    )
    marker = tmp_path / "code-ran"
    _plant_code(folder, marker)
    fake.requests.clear()

    env = {**os.environ, "INBEDDER_CACHE": str(tmp_path / "cache"), "AWS_SECRET_ACCESS_KEY": SECRET}
    env["INBEDDER_EMBEDDING_CACHE"] = str(tmp_path / "vectors.sqlite")
    for name in (TRUSTED_SERVERS_ENV, TRUST_PERSISTED_ENV, API_KEY_ENV):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", OPENER, str(database), fake.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    results = json.loads(result.stdout.strip().splitlines()[-1])

    assert not marker.exists(), "the planted code must never run"
    assert results["code"][0] == "refused" and TRUST_PERSISTED_ENV in results["code"][1]
    assert "trust_remote_code" in results["code"][1]
    assert results["secret"][0] == "refused" and TRUSTED_SERVERS_ENV in results["secret"][1]
    assert results["open_collection"][:2] == ["refused", "UntrustedConfigError"]
    assert results["plain"] == ["opened", ["kept"]], "a collection that needs nothing opens as before"
    # Only once this process trusted the server did anything reach it, with our key, never the secret.
    assert results["trusted"][0] == "opened"
    assert fake.requests, "the trusted server was used"
    sent = json.dumps([[r.path, r.headers, r.body.decode()] for r in fake.requests])
    assert SECRET not in sent and f"Bearer {OUR_KEY}" in sent


def test_guarded_options_need_this_process_s_word(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRUST_PERSISTED_ENV, raising=False)
    for option in ("trust_remote_code", "allow_pickle"):
        with pytest.raises(UntrustedConfigError, match=f"{option}=True.*{TRUST_PERSISTED_ENV}={option}"):
            check_persisted_options({option: True})
        assert check_persisted_options({option: False}) == {option: False}
    monkeypatch.setenv(TRUST_PERSISTED_ENV, "allow_pickle")
    assert check_persisted_options({"allow_pickle": True, "dtype": "float32"})["allow_pickle"] is True
    with pytest.raises(UntrustedConfigError, match="trust_remote_code"):
        check_persisted_options({"trust_remote_code": True})


@pytest.mark.parametrize("option", ["cache", "token", "settings", "__class__"])
def test_options_outside_the_allow_list_are_refused(option: str) -> None:
    with pytest.raises(UntrustedConfigError, match=repr(option)):
        check_persisted_options({option: "/tmp/anything"})


@pytest.mark.parametrize("value", [[1], {"a": 1}])
def test_persisted_options_are_json_scalars(value: object) -> None:
    with pytest.raises(InBedderError, match="JSON scalar"):
        check_persisted_options({"dtype": value})


@pytest.mark.parametrize(
    ("trusted", "url", "allowed"),
    [
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080", True),
        ("http://10.0.0.5:8080/", "http://10.0.0.5:8080/v1", True),
        ("https://Embed.Example.com", "https://embed.example.com:443", True),
        ("http://a.example:8080, http://b.example:9000", "http://b.example:9000", True),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8081", False),
        ("http://10.0.0.5:8080", "https://10.0.0.5:8080", False),
        ("http://embed.example.com", "http://embed.example.com.evil.example", False),
        ("http://embed.example.com/team", "http://embed.example.com/other", False),
        ("", "http://127.0.0.1:8080", False),
    ],
)
def test_servers_are_trusted_by_scheme_host_port_and_path(
    monkeypatch: pytest.MonkeyPatch, trusted: str, url: str, allowed: bool
) -> None:
    monkeypatch.setenv(TRUSTED_SERVERS_ENV, trusted)
    if allowed:
        assert check_persisted_server(url) == url
    else:
        with pytest.raises(UntrustedConfigError, match=TRUSTED_SERVERS_ENV):
            check_persisted_server(url)


def test_a_refused_server_config_sends_nothing(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    config = InBedderEmbeddingFunction.from_server(fake.url, "topic").get_config()
    fake.requests.clear()
    monkeypatch.delenv(TRUSTED_SERVERS_ENV, raising=False)
    with pytest.raises(UntrustedConfigError):
        InBedderEmbeddingFunction.build_from_config(config)
    assert fake.requests == []


def test_a_function_passed_explicitly_is_this_process_s_word(
    tmp_path: Path, fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No trust setting is needed for what the caller builds: create, add, reopen with it."""
    import chromadb

    monkeypatch.delenv(TRUSTED_SERVERS_ENV, raising=False)
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    function = InBedderEmbeddingFunction.from_server(fake.url, "topic")
    collection = open_collection(client, "mine", instruction=None, function=function)
    collection.add(ids=["0"], documents=["text"])
    again = open_collection(client, "mine", instruction=None, function=function)
    assert again.query(query_texts=["text"], n_results=1)["ids"][0] == ["0"]
