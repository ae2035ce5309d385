"""Security defaults and broken model files: refused by name, nothing overwritten.

The small models here are *randomly initialised* tiny Llamas built from a
config (with the real SmolLM2 tokenizer): they exercise loading rules, not
embedding quality.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inbedder_integrations import InBedder
from inbedder_integrations.chroma import InstructionMismatchError
from inbedder_integrations.corpus import InstructedCorpus, collection_name
from inbedder_integrations.engine.conversion import CONVERSION_MANIFEST, conversion_damage
from inbedder_integrations.engine.digests import cache_root
from inbedder_integrations.engine.weights import WeightsError
from tests.conftest import FLOAT32

PACKAGE = Path(__file__).resolve().parents[2] / "inbedder_integrations"
TOPIC = "What is the topic?"


def tiny_llama(folder: Path, engine: InBedder, *, hidden: int = 16, pickle_weights: bool = False) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(engine.tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if pickle_weights:
        folder.mkdir(parents=True)
        config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    else:
        model.save_pretrained(folder)
    engine.tokenizer.save_pretrained(folder)
    return folder


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------- remote code, pickle


@pytest.mark.parametrize("model_type", ["llama", "evil-llama"])
def test_models_with_their_own_code_never_run_it(tmp_path: Path, engine: InBedder, model_type: str) -> None:
    """A known architecture loads with transformers' own class; an unknown one is refused."""
    folder = tiny_llama(tmp_path / "custom", engine)
    marker = tmp_path / "code-ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))

    if model_type == "llama":
        loaded = InBedder.from_pretrained(str(folder), dtype="float32")
        assert type(loaded.model).__module__.startswith("transformers.models.llama")
    else:
        with pytest.raises(ValueError, match="trust_remote_code"):
            InBedder.from_pretrained(str(folder), dtype="float32")
    assert not marker.exists()


def test_pickle_weights_are_read_weights_only_and_converted_once(
    tmp_path: Path, engine: InBedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pickle-only folder loads without allow_pickle: its tensors are read by torch's
    weights-only unpickler into a cached safetensors copy; the folder itself is untouched."""
    import torch

    monkeypatch.setenv("INBEDDER_CACHE", str(tmp_path / "cache"))
    folder = tiny_llama(tmp_path / "pickled", engine, pickle_weights=True)
    torch.save({"not": "weights"}, folder / "training_args.bin")  # what a Trainer leaves beside them
    before = digests(folder)
    converted = InBedder.from_pretrained(str(folder), dtype="float32")
    source = Path(converted.info()["source"])
    assert source.parent == tmp_path / "cache" / "converted"
    assert not list(source.glob("*.bin")), "no pickle is copied into the converted folder"
    manifest = json.loads((source / CONVERSION_MANIFEST).read_text())
    assert manifest["source_sha256"] == {"pytorch_model.bin": before["pytorch_model.bin"]}
    assert conversion_damage(source) == ""
    assert digests(folder) == before
    expected = torch.load(folder / "pytorch_model.bin", weights_only=True)
    for name, tensor in converted.model.state_dict().items():
        if name in expected:
            assert torch.equal(tensor, expected[name]), name
    vectors = converted.embed(["a pickled model, read as plain tensors"], TOPIC)
    assert vectors.shape == (1, 16) and np.isfinite(vectors).all()


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {_RunsCode.marker}",))

    marker = ""


def test_a_pickle_that_carries_code_is_refused_without_running_it(tmp_path: Path, engine: InBedder) -> None:
    import torch

    folder = tiny_llama(tmp_path / "hostile", engine, pickle_weights=True)
    marker = tmp_path / "code-ran"
    _RunsCode.marker = str(marker)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    torch.save({**state, "payload": _RunsCode()}, folder / "pytorch_model.bin")
    with pytest.raises(
        WeightsError, match=r"pytorch_model\.bin cannot be read as plain weights.*allow_pickle=True"
    ):
        InBedder.from_pretrained(str(folder), dtype="float32")
    assert not marker.exists(), "the weights-only unpickler must not run the payload"


def test_pickles_that_are_not_model_weights_need_allow_pickle(tmp_path: Path, engine: InBedder) -> None:
    import torch

    folder = tiny_llama(tmp_path / "odd", engine, pickle_weights=True)
    (folder / "pytorch_model.bin").rename(folder / "weights.pt")
    with pytest.raises(WeightsError, match=r"only pickle weights \['weights.pt'\].*allow_pickle=True"):
        InBedder.from_pretrained(str(folder), dtype="float32")
    assert torch.load(folder / "weights.pt", weights_only=True)


def test_pickle_adapter_needs_allow_pickle(tmp_path: Path) -> None:
    from inbedder_integrations.engine.loading import DEFAULT_ADAPTER_DIR

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    shutil.copy(DEFAULT_ADAPTER_DIR / "adapter_config.json", adapter)
    (adapter / "adapter_model.bin").write_bytes(b"not even read")
    with pytest.raises(WeightsError, match=r"adapter folder .* only pickle weights .*allow_pickle=True"):
        InBedder.from_pretrained("default", adapter=str(adapter), dtype="float32")


# --------------------------------------------------------------------------- broken files


def test_missing_weights_are_named(tmp_path: Path, engine: InBedder) -> None:
    folder = tiny_llama(tmp_path / "no-weights", engine)
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"has no weights file \(expected \*\.safetensors\)"):
        InBedder.from_pretrained(str(folder))


def test_missing_shard_is_named(tmp_path: Path, engine: InBedder) -> None:
    folder = tiny_llama(tmp_path / "sharded", engine)
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(WeightsError, match=r"model-00002-of-00002.safetensors'\] but they are missing"):
        InBedder.from_pretrained(str(folder))


@pytest.mark.parametrize("damage", ["truncated", "garbage header", "empty"])
def test_corrupt_weights_are_named_and_left_as_they_are(
    tmp_path: Path, engine: InBedder, damage: str
) -> None:
    folder = tiny_llama(tmp_path / "corrupt", engine)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],
        "garbage header": data[:8] + b"\x00{garbage" + data[18:],
        "empty": b"",
    }[damage]
    weights.write_bytes(damaged)
    before = digests(folder)
    with pytest.raises(WeightsError, match=r"model.safetensors is corrupt or truncated"):
        InBedder.from_pretrained(str(folder))
    assert digests(folder) == before  # nothing "repaired" in the user's folder


def test_adapter_for_another_base_model_is_refused_by_name(tmp_path: Path, engine: InBedder) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = tiny_llama(tmp_path / "tiny-base", engine, hidden=32)
    adapter = tmp_path / "tiny-adapter"
    model = AutoModelForCausalLM.from_pretrained(base)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    before = digests(adapter)
    with pytest.raises(
        WeightsError, match=r"does not fit SmolLM2-135M-Instruct: it was trained on .*tiny-base"
    ):
        InBedder.from_pretrained("default", adapter=str(adapter), dtype="float32")
    assert digests(adapter) == before


def test_a_collection_made_with_another_model_is_refused_and_kept(tmp_path: Path, engine: InBedder) -> None:
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    InstructedCorpus(client, "news", model_kwargs=FLOAT32, cache=False).index(
        ["one text", "two texts"], [TOPIC]
    )
    collection = client.get_collection(collection_name("news", TOPIC))
    stored = collection.get(include=["embeddings", "documents"])
    config = collection.configuration_json

    # Another setting that changes what the vectors mean (another dtype would not: see test_portability).
    other_model = InstructedCorpus(client, "news", model_kwargs={**FLOAT32, "max_length": 256}, cache=False)
    with pytest.raises(InstructionMismatchError, match="fingerprint"):
        other_model.index(["one text", "a third text"], [TOPIC])

    after = client.get_collection(collection_name("news", TOPIC))
    assert after.configuration_json == config
    kept = after.get(include=["embeddings", "documents"])
    assert kept["ids"] == stored["ids"] and kept["documents"] == stored["documents"]
    assert np.array_equal(np.asarray(kept["embeddings"]), np.asarray(stored["embeddings"]))


# --------------------------------------------------------------------------- files we write


def test_converted_model_is_user_only_and_its_damage_is_detected(tmp_path: Path, engine: InBedder) -> None:
    folder = Path(engine.info()["source"])
    assert folder.parent == cache_root() / "converted"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert conversion_damage(folder) == ""

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    weights = copy / "model.safetensors"
    with weights.open("r+b") as handle:  # flip bytes inside the tensor data: the header stays valid
        handle.seek(weights.stat().st_size // 2)
        handle.write(b"\xff" * 64)
    assert conversion_damage(copy) == "model.safetensors does not match its recorded sha256"
    (copy / CONVERSION_MANIFEST).unlink()
    assert conversion_damage(copy) == f"no readable {CONVERSION_MANIFEST}"


@pytest.mark.slow
def test_a_damaged_converted_model_is_rebuilt(tmp_path: Path, engine: InBedder) -> None:
    """In a fresh process with its own cache folder holding a damaged conversion."""
    source = Path(engine.info()["source"])
    private = tmp_path / "cache"
    shutil.copytree(source, private / "converted" / source.name)
    weights = private / "converted" / source.name / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.seek(weights.stat().st_size // 2)
        handle.write(b"\xff" * 64)
    script = textwrap.dedent(
        """
        import json, sys
        from inbedder_integrations import InBedder
        vector = InBedder.from_pretrained("default", dtype="float32").embed(["a rebuilt model"], "What?")
        json.dump(vector[0].tolist(), sys.stdout)
        """
    )
    env = {**os.environ, "INBEDDER_CACHE": str(private)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "is damaged (model.safetensors does not match its recorded sha256); converting again" in result.stderr
    )
    assert conversion_damage(private / "converted" / source.name) == ""
    expected = engine.embed(["a rebuilt model"], "What?")[0]
    assert float(np.dot(np.asarray(json.loads(result.stdout)), expected)) >= 0.99999


# --------------------------------------------------------------------------- network, code, names

NO_NETWORK = textwrap.dedent(
    """
    import socket

    attempts = []

    def refuse(kind):
        def blocked(*args, **kwargs):
            attempts.append((kind, repr(args)[:200]))
            raise OSError(f"network disabled by the test ({kind})")
        return blocked

    _connect = socket.socket.connect

    def connect(self, address):
        if self.family == socket.AF_UNIX:
            return _connect(self, address)
        return refuse("connect")(address)

    socket.socket.connect = connect
    socket.socket.connect_ex = lambda self, address: refuse("connect_ex")(address)
    socket.create_connection = refuse("create_connection")
    socket.getaddrinfo = refuse("getaddrinfo")
    """
)

LOCAL_WORK = textwrap.dedent(
    """
    import sys, tempfile
    import chromadb
    import inbedder_integrations
    from inbedder_integrations import InBedder
    from inbedder_integrations.corpus import InstructedCorpus
    from inbedder_integrations.langchain import InBedderEmbeddings
    from inbedder_integrations.llama_index import InBedderEmbedding
    print("imported", flush=True)
    engine = InBedder.from_pretrained("default", dtype="float32")
    assert engine.embed(["offline"], "What?").shape == (1, engine.dim)
    InBedderEmbeddings(instruction="What?", model_kwargs={"dtype": "float32"}).embed_query("offline")
    InBedderEmbedding(instruction="What?", model_kwargs={"dtype": "float32"}).get_text_embedding("offline")
    corpus = InstructedCorpus(chromadb.PersistentClient(path=tempfile.mkdtemp()), "offline")
    corpus.index(["a local text", "another local text"], ["What?"])
    assert corpus.search("local", "What?", k=1)
    print("attempts:", attempts, flush=True)
    sys.exit(1 if attempts else 0)
    """
)


@pytest.mark.slow
def test_no_network_connection_at_import_or_on_local_models() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK + LOCAL_WORK], capture_output=True, text=True, env=env, timeout=600
    )
    assert "imported" in result.stdout, result.stderr[-3000:]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "attempts: []" in result.stdout


def test_the_package_never_evaluates_strings_or_unpickles() -> None:
    forbidden_names = {"eval", "exec", "compile", "__import__"}
    forbidden_attributes = {("pickle", "load"), ("pickle", "loads"), ("torch", "load"), ("os", "system")}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            function = node.func
            if isinstance(function, ast.Name) and function.id in forbidden_names:
                found.append(f"{path.name}:{node.lineno} {function.id}()")
            weights_only = any(
                k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords
            )  # torch's weights-only unpickler runs no code: the one torch.load allowed
            if (
                isinstance(function, ast.Attribute)
                and isinstance(function.value, ast.Name)
                and (function.value.id, function.attr) in forbidden_attributes
                and not (function.attr == "load" and function.value.id == "torch" and weights_only)
            ):
                found.append(f"{path.name}:{node.lineno} {function.value.id}.{function.attr}()")
            if any(k.arg == "shell" and getattr(k.value, "value", False) is True for k in node.keywords):
                found.append(f"{path.name}:{node.lineno} shell=True")
    assert found == []


CHROMA_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$"


@settings(max_examples=300, deadline=None)
@given(first=st.text(min_size=1, max_size=300), second=st.text(min_size=1, max_size=300))
def test_collection_names_are_safe_for_any_instruction(first: str, second: str) -> None:
    import re

    if not first.strip() or not second.strip():
        return
    name = collection_name("corpus", first)
    assert re.match(CHROMA_NAME, name) and ".." not in name and "/" not in name
    assert name == collection_name("corpus", first)  # stable
    if first != second:
        assert name != collection_name("corpus", second)


def test_a_hostile_instruction_makes_a_real_collection(tmp_path: Path) -> None:
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    for instruction in [
        "../../etc/passwd?",
        "'; DROP TABLE collections; --",
        "\u202eevil\u202c",
        "..",
        "\x00",
    ]:
        name = collection_name("corpus", instruction)
        client.create_collection(name, embedding_function=None)
    assert len(client.list_collections()) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chroma"]
