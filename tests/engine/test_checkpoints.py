"""Every public InBedder checkpoint family gives the original code's vectors.

No real checkpoint can be downloaded here, so the fixtures in ``tests/data/checkpoints/``
are tiny *randomly initialised* models laid out exactly like each public one (post-LN
and ``project_out`` for opt-350m, sentencepiece + an added ``[PAD]`` + pickle-only
weights for llama-2, pickle-only for KomeijiForce's RoBERTa), saved with slow-tokenizer
files.  ``tests/checkpoint_reference.py`` restates the original inference code with
plain transformers and none of the package: fp32 vectors must agree to a cosine of
0.99999 and ``engine.dim`` must be the vectors' width.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from inbedder_integrations import InBedder
from inbedder_integrations.errors import InvalidArgumentError
from tests import checkpoint_reference as reference

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
TEXTS = [
    "The striker scored twice in the cup final and the crowd sang all night.",
    "Shares fell sharply after the bank cut its profit forecast.",
    "I love my new phone, the camera is stunning!",
    "Rain again. The trains are late and nobody tells us why.",
    "Café owners in Zürich say tourists are back.",
]
INSTRUCTIONS = ["What is the topic of this text?", "How does the writer feel?"]
#: (fixture folder, checkpoint it is laid out like, how the original computes its vectors)
FAMILIES = [
    ("roberta-large-InBedder", "BrandonZYW/roberta-large-InBedder", "masked"),
    ("opt-1.3b-InBedder", "BrandonZYW/opt-1.3b-InBedder", "causal"),
    ("opt-350m-InBedder", "BrandonZYW/opt-350m-InBedder", "causal"),
    ("llama-2-7b-InBedder", "BrandonZYW/llama-2-7b-InBedder", "causal"),
    ("inbedder-roberta-large", "KomeijiForce/inbedder-roberta-large", "notebook"),
]
CAUSAL = [family for family in FAMILIES if family[2] == "causal"]
MIN_COSINE = 0.99999


@functools.cache
def original(folder: str) -> tuple[torch.nn.Module, object]:
    """The fixture loaded as the original code loads it: plain transformers, fp32."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    path = FIXTURES / folder
    masked = "roberta" in folder
    model_class = AutoModelForMaskedLM if masked else AutoModelForCausalLM
    model = model_class.from_pretrained(path, dtype=torch.float32, use_safetensors=None)
    return model.eval(), AutoTokenizer.from_pretrained(path)


def reference_vectors(folder: str, recipe: str, instruction: str, layer: int = -1) -> np.ndarray:
    model, tokenizer = original(folder)
    if recipe == "notebook":
        return reference.komeiji_recipe(model, tokenizer, TEXTS, instruction)
    if recipe == "masked":
        return reference.masked_avg_gen(model, tokenizer, TEXTS, instruction, layer=layer)
    return reference.causal_fst_gen(model, tokenizer, TEXTS, instruction, layer=layer)


def engine_for(folder: str, checkpoint: str, **options: object) -> InBedder:
    return InBedder.from_pretrained(
        str(FIXTURES / folder), checkpoint=checkpoint, dtype="float32", cache=False, **options
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize(("folder", "checkpoint", "recipe"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_family_gives_the_originals_vectors(folder, checkpoint, recipe):
    engine = engine_for(folder, checkpoint)
    assert engine.checkpoint == checkpoint
    for instruction in INSTRUCTIONS:
        expected = reference_vectors(folder, recipe, instruction)
        vectors = engine.embed(TEXTS, instruction, normalize=False)
        assert vectors.shape == expected.shape and engine.dim == expected.shape[1]
        assert cosines(vectors, expected).min() >= MIN_COSINE
        if recipe == "notebook":  # z-scored: the raw values, not only their direction
            np.testing.assert_allclose(vectors, expected, atol=1e-4)


@pytest.mark.parametrize(("folder", "checkpoint", "recipe"), CAUSAL, ids=[f[0] for f in CAUSAL])
def test_causal_families_at_a_middle_layer_and_through_the_shared_prefix(folder, checkpoint, recipe):
    """fst_gen at layer 1 (opt-350m: the hidden width, not the projected one), and embed_many's
    prefix-cache path at the last layer, both equal the original."""
    middle = engine_for(folder, checkpoint, layer=1)
    expected = reference_vectors(folder, recipe, INSTRUCTIONS[0], layer=1)
    vectors = middle.embed(TEXTS, INSTRUCTIONS[0], normalize=False)
    assert middle.dim == expected.shape[1] == original(folder)[0].config.hidden_size
    assert cosines(vectors, expected).min() >= MIN_COSINE
    together = engine_for(folder, checkpoint).embed_many(TEXTS, INSTRUCTIONS, normalize=False)
    for instruction in INSTRUCTIONS:
        expected = reference_vectors(folder, recipe, instruction)
        assert cosines(together[instruction], expected).min() >= MIN_COSINE


@pytest.mark.parametrize(("folder", "checkpoint", "recipe"), CAUSAL, ids=[f[0] for f in CAUSAL])
def test_mean_answer_tokens_is_the_originals_avg_gen(folder, checkpoint, recipe):
    """avg_gen over 3 greedy tokens; the random models' answers hold no special token, where
    the original and the package differ on purpose (docs/engine.md: one-token answers)."""
    model, tokenizer = original(folder)
    engine = engine_for(folder, checkpoint, pooling="mean_answer_tokens", answer_tokens=3)
    expected = reference.causal_avg_gen(model, tokenizer, TEXTS, INSTRUCTIONS[0], max_new_tokens=3)
    vectors = engine.embed(TEXTS, INSTRUCTIONS[0], normalize=False)
    assert engine.dim == expected.shape[1]
    assert cosines(vectors, expected).min() >= MIN_COSINE


def test_opt_350m_reports_its_projected_width_everywhere(tmp_path):
    """512 for the real checkpoint (hidden 1024); 16 for the fixture (hidden 32)."""
    from inbedder_integrations.chroma import InBedderEmbeddingFunction
    from inbedder_integrations.serving import ServeConfig, ServedInstruction, serve_in_background

    folder, checkpoint = str(FIXTURES / "opt-350m-InBedder"), "BrandonZYW/opt-350m-InBedder"
    engine = engine_for("opt-350m-InBedder", checkpoint)
    assert engine.dim == engine.info()["dim"] == 16 != engine.model.config.hidden_size
    function = InBedderEmbeddingFunction(
        INSTRUCTIONS[0], model=folder, model_kwargs={"checkpoint": checkpoint, "dtype": "float32"}
    )
    assert function.get_config()["dim"] == 16 and np.asarray(function(TEXTS[:2])).shape == (2, 16)
    config = ServeConfig(
        instructions=(ServedInstruction("topic", INSTRUCTIONS[0]),), model=folder, cache=False, port=0
    )
    with serve_in_background(config, engine) as server:
        models = httpx.get(f"{server.url}/v1/models", timeout=60).json()["data"]
        embedded = httpx.post(
            f"{server.url}/v1/embeddings", json={"model": "topic", "input": TEXTS[0]}, timeout=60
        ).json()
    assert [model["dim"] for model in models] == [16]
    assert len(embedded["data"][0]["embedding"]) == 16


def hub_cache_snapshot(hub: Path, repo: str, folder: str, commit: str = "0123456789abcdef" * 2) -> Path:
    """``folder`` laid out as the Hugging Face cache keeps a download of ``repo``."""
    root = hub / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    shutil.copytree(FIXTURES / folder, snapshot)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return snapshot


def test_a_hub_cache_snapshot_keeps_its_checkpoints_recipe_and_identity(tmp_path):
    snapshot = hub_cache_snapshot(
        tmp_path / "hub", "KomeijiForce/inbedder-roberta-large", "inbedder-roberta-large"
    )
    engine = InBedder.from_pretrained(str(snapshot), dtype="float32", cache=False)
    assert engine.checkpoint == "KomeijiForce/inbedder-roberta-large"
    assert engine.settings.input_layout == "text_pair" and engine.settings.postprocess == "zscore"
    assert engine.fingerprint.startswith("inbedder-roberta-large@")
    expected = reference_vectors("inbedder-roberta-large", "notebook", INSTRUCTIONS[1])
    assert cosines(engine.embed(TEXTS, INSTRUCTIONS[1], normalize=False), expected).min() >= MIN_COSINE
    # Without the recipe the same weights give other vectors: the entry is what makes them right.
    plain = InBedder.from_pretrained(
        str(snapshot),
        dtype="float32",
        cache=False,
        input_layout="template",
        transform="none",
        postprocess="none",
    )
    assert cosines(plain.embed(TEXTS, INSTRUCTIONS[1], normalize=False), expected).max() < 0.99


def test_the_pair_layout_cuts_only_the_texts_end():
    engine = engine_for("inbedder-roberta-large", "KomeijiForce/inbedder-roberta-large", max_length=24)
    _, tokenizer = original("inbedder-roberta-large")
    long_text = " ".join(TEXTS)
    masks = tokenizer.mask_token * 3
    expected = tokenizer(long_text, INSTRUCTIONS[0] + masks, truncation="only_first", max_length=24)[
        "input_ids"
    ]
    assert engine.format_prompt(long_text, INSTRUCTIONS[0]) == tokenizer.decode(expected)
    assert engine.prompt_sizes([long_text, TEXTS[0][:10]], INSTRUCTIONS[0])[0] == (24, True)
    assert engine.embed([long_text], INSTRUCTIONS[0]).shape == (1, 32)


def test_unknown_checkpoints_and_impossible_recipes_are_refused_before_loading():
    with pytest.raises(InvalidArgumentError, match=r"checkpoint must be one of .*KomeijiForce"):
        InBedder.from_pretrained(
            str(FIXTURES / "opt-1.3b-InBedder"), checkpoint="BrandonZYW/opt-13b-InBedder"
        )
    with pytest.raises(InvalidArgumentError, match=r"text_pair.*masked LMs only"):
        engine_for("opt-1.3b-InBedder", "BrandonZYW/opt-1.3b-InBedder", input_layout="text_pair")


@pytest.mark.slow
def test_a_pickle_only_hub_checkpoint_loads_offline_from_the_hub_cache(tmp_path):
    """llama-2-7b-InBedder's hub page lists only pytorch_model.bin: loaded by hub id, in a fresh
    process, offline from a Hugging Face cache holding it (the download code path, without the
    network), it is read weights-only, converted once, and gives the original's vectors; its
    hub id and its snapshot folder have one fingerprint."""
    repo, folder = "BrandonZYW/llama-2-7b-InBedder", "llama-2-7b-InBedder"
    snapshot = hub_cache_snapshot(tmp_path / "hub", repo, folder)
    (snapshot / "tf_model.h5").write_bytes(b"another framework's weights: neither needed nor copied")
    script = textwrap.dedent(
        f"""
        import json, sys
        from inbedder_integrations import InBedder
        by_id = InBedder.from_pretrained({repo!r}, dtype="float32", cache=False)
        by_folder = InBedder.from_pretrained({str(snapshot)!r}, dtype="float32", cache=False)
        json.dump({{
            "info": by_id.info(), "folder_fingerprint": by_folder.fingerprint,
            "vectors": by_id.embed({TEXTS!r}, {INSTRUCTIONS[0]!r}, normalize=False).tolist(),
        }}, sys.stdout)
        """
    )
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HUB_OFFLINE": "1",
        "INBEDDER_CACHE": str(tmp_path / "inbedder"),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout)
    source = Path(answer["info"]["source"])
    assert source.parent == tmp_path / "inbedder" / "converted"
    manifest = json.loads((source / "inbedder-conversion.json").read_text())
    assert (
        list(manifest["source_sha256"]) == ["pytorch_model.bin"] and "model.safetensors" in manifest["files"]
    )
    assert not (source / "tf_model.h5").exists() and (source / "tokenizer.model").is_file()
    assert answer["info"]["checkpoint"] == repo
    assert answer["info"]["fingerprint"] == answer["folder_fingerprint"]
    expected = reference_vectors(folder, "causal", INSTRUCTIONS[0])
    assert cosines(np.asarray(answer["vectors"], dtype=np.float32), expected).min() >= MIN_COSINE


def test_cli_checkpoint_applies_the_recipe_to_a_folder(tmp_path):
    command = [
        sys.executable, "-m", "inbedder_integrations.cli", "info", "--json", "--no-cache",
        "--model", str(FIXTURES / "inbedder-roberta-large"),
        "--checkpoint", "KomeijiForce/inbedder-roberta-large", "--dtype", "float32",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    assert info["checkpoint"] == "KomeijiForce/inbedder-roberta-large"
    assert (info["input_layout"], info["transform"], info["postprocess"], info["dim"]) == (
        "text_pair",
        "lm_head_transform",
        "zscore",
        32,
    )
