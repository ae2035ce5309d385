"""Training: the paper's objective on real tokenizers, a short real run, and the adapter round trip."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from inbedder_integrations import DEFAULT_TEMPLATE, InBedder
from inbedder_integrations.engine.prompting import PromptTokenizer
from inbedder_integrations.training.data import (
    EVALUATION_FILES,
    NEWSGROUP_FILE,
    SENTIMENT_QUESTIONS,
    WIKI_FILE,
    clean_answer,
    clean_rows,
    newsgroup_rows,
    package_file,
    sentiment_scorer,
    text_feature_rows,
    text_features,
    wikipedia_rows,
)
from inbedder_integrations.training.train import (
    IGNORE_INDEX,
    ExampleEncoder,
    TrainConfig,
    add_evaluation_to_card,
    load_rows,
    train,
)

from .conftest import FLOAT32

ROW = {
    "instruction": "What is the topic?",
    "input": "The striker scored twice in the final.",
    "output": "football",
}


def test_causal_labels_mask_the_prompt_exactly(engine):
    encoder = ExampleEncoder(engine.tokenizer, DEFAULT_TEMPLATE, 256, masked=False)
    example = encoder.encode(ROW)
    prompt = PromptTokenizer(engine.tokenizer, DEFAULT_TEMPLATE, 512).encode(ROW["input"], ROW["instruction"])
    answer = engine.tokenizer(" football", add_special_tokens=False)["input_ids"]
    assert example["input_ids"] == prompt + answer + [engine.tokenizer.eos_token_id]
    assert example["labels"] == [IGNORE_INDEX] * len(prompt) + answer + [engine.tokenizer.eos_token_id]


def test_long_inputs_are_cut_never_the_answer(engine):
    encoder = ExampleEncoder(engine.tokenizer, DEFAULT_TEMPLATE, 64, masked=False)
    long_row = {**ROW, "input": "The match went on and on. " * 500, "output": "a very long football final"}
    example = encoder.encode(long_row)
    answer = engine.tokenizer(" a very long football final", add_special_tokens=False)["input_ids"]
    assert len(example["input_ids"]) <= 64
    assert [t for t in example["labels"] if t != IGNORE_INDEX] == [*answer, engine.tokenizer.eos_token_id]
    assert engine.tokenizer.decode(example["input_ids"]).count("### Instruction:\nWhat is the topic?") == 1


def test_masked_labels_cover_only_the_mask_positions(tiny_masked_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_masked_model_dir)
    example = ExampleEncoder(tokenizer, DEFAULT_TEMPLATE, 128, masked=True).encode(ROW)
    masks = [i for i, t in enumerate(example["input_ids"]) if t == tokenizer.mask_token_id]
    supervised = [i for i, t in enumerate(example["labels"]) if t != IGNORE_INDEX]
    assert masks == supervised and masks
    answer = tokenizer(" football", add_special_tokens=False)["input_ids"]
    assert [example["labels"][i] for i in supervised] == answer
    assert example["input_ids"][-1] == tokenizer.sep_token_id


def test_answers_are_cleaned():
    assert clean_answer(' "Sports".', "text") == "Sports"
    assert clean_answer("the economy", "text") == "economy"
    assert clean_answer("one two three four five six seven eight nine", "text") is None
    assert clean_answer("The topic of this text is", "x") is None
    assert clean_answer("The striker scored twice", "The striker scored twice in the final") is None
    from inbedder_integrations.training.data import QARow

    duplicate = QARow("What is the topic?", "text", "Sports.", "src", "structure")
    assert clean_rows([duplicate, duplicate]) == [
        QARow("What is the topic?", "text", "Sports", "src", "structure")
    ]


def test_non_topic_answers_are_read_off_the_text():
    happy = "I love this wonderful day. We had a great, happy time! Did you enjoy it too?"
    features = text_features(happy, sentiment_scorer())
    assert features["sentiment"] == "0"  # index of the positive answer
    assert features["How long is the text?"] == "short"
    assert features["How many sentences are in the text?"] == "3"
    assert features["Is the text written in the first person?"] == "yes"
    assert features["Does the text contain a question?"] == "yes"
    assert features["What is the first word of the text?"] == "I"
    assert features["What is the last word of the text?"] == "too"
    assert "Which year is mentioned first?" not in features
    grim = "The war killed thousands in 1916 and destroyed the ruined, miserable city."
    assert text_features(grim, sentiment_scorer())["sentiment"] == "1"
    assert text_features(grim, sentiment_scorer())["Which year is mentioned first?"] == "1916"
    rows = list(text_feature_rows(grim, "src", random.Random(0), per_text=3))
    assert len({row.instruction for row in rows}) == 3
    for row in rows:
        if row.instruction in SENTIMENT_QUESTIONS:
            assert row.output == SENTIMENT_QUESTIONS[row.instruction][1]


def test_data_sources_are_real_and_exclude_evaluation_files():
    rows = list(wikipedia_rows(package_file("gensim", f"test_data/{WIKI_FILE}"), random.Random(0)))
    assert len(rows) > 5000
    assert {row.answer_by for row in rows} == {"structure"}
    # Most questions do not ask about topic: otherwise every instruction collapses onto topic.
    topical = [row for row in rows if row.output in {row.source.split(":")[2].split("#")[0]}]
    assert len(topical) < 0.3 * len(rows)
    titles = [row for row in rows if row.instruction.startswith("What is")]
    assert any(row.output == "Anarchism" for row in titles)
    posts = list(newsgroup_rows(package_file("gensim", f"test_data/{NEWSGROUP_FILE}")))
    assert {row.output for row in posts if row.instruction == "What is the topic of this post?"} == {
        "space",
        "atheism",
    }
    assert not any(name in row.source for row in rows + posts for name in EVALUATION_FILES)


def test_rows_load_and_are_validated(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + json.dumps({"instruction": "Q?", "output": ""}) + "\n")
    with pytest.raises(ValueError, match="row 1: 'output' must be a non-empty string"):
        load_rows(str(path))
    assert load_rows(str(path), max_rows=1) == [ROW]


@pytest.fixture(scope="module")
def trained_adapter(tmp_path_factory):
    """A few LoRA steps on a tiny real data set."""
    topic, feeling = "What is the topic?", "How does the writer feel?"
    rows = [{"instruction": topic, "input": f"Match report {i}: the striker scored.", "output": "football"}
            for i in range(8)]  # fmt: skip
    rows += [{"instruction": feeling, "input": f"I lost my keys again ({i}).", "output": "annoyed"}
             for i in range(8)]  # fmt: skip
    folder = tmp_path_factory.mktemp("train")
    (folder / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = TrainConfig(
        data=str(folder / "rows.jsonl"), output_dir=str(folder / "adapter"), max_steps=12, batch_size=4,
        learning_rate=2e-3, logging_steps=1, save_steps=100, warmup_ratio=0.0, seed=0,
    )  # fmt: skip
    return train(config)


@pytest.mark.slow
def test_training_loss_falls_and_writes_a_card(trained_adapter):
    losses = trained_adapter.losses
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])
    card = json.loads((Path(trained_adapter.output_dir) / "inbedder_card.json").read_text())
    assert card["kind"] == "lora-adapter" and card["data_rows"] == 16 and card["steps"] == 12
    assert len(card["data_sha256"]) == 64
    report = {"model": {"bbc": {"topic_v": 0.5}}}
    add_evaluation_to_card(Path(trained_adapter.output_dir), {"results": report, "markdown": "| t |"})
    card = json.loads((Path(trained_adapter.output_dir) / "inbedder_card.json").read_text())
    assert card["evaluation"]["results"] == report and card["steps"] == 12
    assert "## Evaluation\n\n| t |" in (Path(trained_adapter.output_dir) / "README.md").read_text()
    with pytest.raises(FileNotFoundError, match="written by `inbedder train`"):
        add_evaluation_to_card(Path(trained_adapter.output_dir) / "nowhere", {})


@pytest.mark.slow
def test_adapter_merge_round_trip_gives_identical_vectors(trained_adapter, engine):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = InBedder.from_pretrained("default", adapter=trained_adapter.output_dir, **FLOAT32)
    assert tuned.fingerprint != engine.fingerprint
    texts = ["Match report: the keeper saved a penalty.", "I lost my wallet."]
    merged = tuned.embed(texts, "What is the topic?")
    assert not np.allclose(merged, engine.embed(texts, "What is the topic?"), atol=1e-3)
    # Unmerged: base weights + LoRA branches computed separately by peft.
    base = AutoModelForCausalLM.from_pretrained(engine.info()["source"], dtype=torch.float32)
    unmerged = PeftModel.from_pretrained(base, trained_adapter.output_dir).eval()
    expected = []
    for text in texts:
        ids = torch.tensor([tuned._prompts.encode(text, "What is the topic?")])
        with torch.no_grad():
            state = unmerged(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
        expected.append((state / state.norm()).numpy())
    np.testing.assert_allclose(merged, np.stack(expected), atol=1e-5)
    assert tuned.answer(["Match report 3: the striker scored."], "What is the topic?")[0] == "football"


def test_shipped_adapter_card_matches_its_base_and_data():
    """The card of the shipped default names the weights it was trained on and the committed data."""
    from inbedder_integrations.engine.loading import DEFAULT_ADAPTER_DIR, resolve_source

    card = json.loads((DEFAULT_ADAPTER_DIR / "inbedder_card.json").read_text(encoding="utf-8"))
    assert card["base_weights"] == resolve_source("default").weights_digest
    rows = load_rows(str(Path(__file__).resolve().parent.parent / card["data"]), card["data_rows"])
    assert hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest() == card["data_sha256"]
    assert card["config"]["seed"] == card["seed"] and card["steps"] > 0
    assert card["evaluation"]["results"], "inbedder eval --card recorded its results"
    readme = (DEFAULT_ADAPTER_DIR / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# InBedder lora-adapter") and "## Evaluation" in readme
