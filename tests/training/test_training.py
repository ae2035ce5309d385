"""Training: the paper's objective on real tokenizers, a short real run, and the adapter round trip."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from inbedder_integrations import DEFAULT_TEMPLATE, InBedder
from inbedder_integrations.engine.prompting import PromptTokenizer
from inbedder_integrations.errors import InvalidArgumentError
from inbedder_integrations.evaluation.heldout_families import forbidden_file_rows, forbidden_instruction
from inbedder_integrations.evaluation.loaders import load_rotten_tomatoes
from inbedder_integrations.evaluation.splits import held_out_movies, held_out_review_texts
from inbedder_integrations.training import (
    families,
    labellers,
    news,
    questions,
    sources,
    spans,
    synthetic,
    wide,
)
from inbedder_integrations.training.data import (
    EVALUATION_FILES,
    QARow,
    balance,
    build_dataset,
    cap_topic_answers,
    clean_answer,
    clean_rows,
    drop_forbidden,
)
from inbedder_integrations.training.leakage import LeakageIndex, check_file, evaluation_texts, shingles
from inbedder_integrations.training.lora import adapted_layers, apply_lora
from inbedder_integrations.training.train import (
    IGNORE_INDEX,
    ExampleEncoder,
    TrainConfig,
    add_evaluation_to_card,
    load_rows,
    train,
    training_rows,
)
from inbedder_integrations.wheel_data import package_file
from tests.conftest import FLOAT32, load_recipe
from tests.training.tiny import tiny_rows, write_rows

ROW = {
    "instruction": "What is the topic?",
    "input": "The striker scored twice in the final.",
    "output": "football",
}


def test_causal_labels_mask_the_prompt_exactly(engine):
    encoder = ExampleEncoder(engine.tokenizer, DEFAULT_TEMPLATE, 256, masked=False)
    example = encoder.encode(ROW)
    prompt = PromptTokenizer(engine.tokenizer, DEFAULT_TEMPLATE, 512).encode(ROW["input"], ROW["instruction"])
    # no space between "### Response:" and the answer: the paper's code concatenates them
    answer = engine.tokenizer("football", add_special_tokens=False)["input_ids"]
    assert example["input_ids"] == prompt + answer + [engine.tokenizer.eos_token_id]
    assert example["labels"] == [IGNORE_INDEX] * len(prompt) + answer + [engine.tokenizer.eos_token_id]


def test_answers_end_with_the_models_own_end_of_turn_token(engine):
    """The generation config's EOS wins over a tokenizer that names another (transformers 5.17's GGUF bug)."""
    from inbedder_integrations.training.train import answer_end_id

    assert answer_end_id(engine.model) == engine.model.generation_config.eos_token_id == 2
    encoder = ExampleEncoder(engine.tokenizer, DEFAULT_TEMPLATE, 256, masked=False, eos_id=2)
    assert encoder.encode(ROW)["labels"][-1] == 2


def test_long_inputs_are_cut_never_the_answer(engine):
    encoder = ExampleEncoder(engine.tokenizer, DEFAULT_TEMPLATE, 64, masked=False)
    long_row = {**ROW, "input": "The match went on and on. " * 500, "output": "a very long football final"}
    example = encoder.encode(long_row)
    answer = engine.tokenizer("a very long football final", add_special_tokens=False)["input_ids"]
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
    assert clean_answer("one two three four five", "text") is None  # answers are 1-4 words
    assert clean_answer("The topic of this text is", "x") is None
    assert clean_answer("The striker scored twice", "The striker scored twice in the final") is None
    duplicate = QARow("What is the topic?", "text", "Sports.", "src", "source", "topic")
    no_input = QARow("What is the topic?", " ", "Sports", "src", "source", "topic")
    assert clean_rows([duplicate, duplicate, no_input]) == [
        QARow("What is the topic?", "text", "Sports", "src", "source", "topic")
    ]


def test_synthetic_texts_carry_their_labels_by_construction():
    messages = synthetic.compose_messages(300, seed=0, places=synthetic.PLACES)
    assert len({message.text for message in messages}) == 300
    assert messages == synthetic.compose_messages(300, seed=0, places=synthetic.PLACES)  # deterministic
    for message in messages:
        labels = message.labels
        assert labels["city"] in message.text and labels["cause"] in synthetic.CAUSE_FITS[labels["intent"]]
        product = labels["product"]
        assert any(p.format(product=product) in message.text for p in synthetic.INTENTS[labels["intent"]])
        assert any(e in message.text for e in synthetic.EMOTIONS[labels["emotion"]])
    # the attributes vary independently enough that no one answers another
    pairs = {(m.labels["intent"], m.labels["emotion"]) for m in messages}
    assert len({m.labels["intent"] for m in messages}) == len(synthetic.INTENTS) and len(pairs) > 30
    posts = synthetic.compose_posts(50, seed=1, places=synthetic.PLACES)
    for post in posts:
        assert post.labels["emotion"] == synthetic.LIFE_EVENTS[post.labels["event"]][0]


def test_questions_cover_the_families_in_several_phrasings():
    families = {family for family, _ in questions.QUESTIONS.values()}
    assert families >= {"topic", "sentiment", "emotion", "intent", "cause", "place", "people", "time",
                        "audience", "genre", "yes/no"}  # fmt: skip
    labels = {"review_sentiment": "negative", "person": "Tom Hanks", "register": "movie review"}
    asked = questions.questions_for(labels, random.Random(0), ner_checked=True)
    by_label = {question.label: question for question in asked}
    sentiment = by_label["review_sentiment"]
    phrasings = dict(questions.QUESTIONS["review_sentiment"][1])
    mapping = phrasings[sentiment.instruction]
    assert sentiment.answer == (mapping["negative"] if mapping else "negative")
    assert by_label["mentions-person"].answer == "yes" and by_label["mentions-place"].answer == "no"
    assert {q.answer for q in asked if q.instruction == "Is this a movie review?"} == {"yes"}
    unchecked = questions.questions_for(labels, random.Random(0), ner_checked=False)
    assert not any(q.label.startswith("mentions-") for q in unchecked)


def test_balance_caps_every_family():
    rows = [QARow("q", f"t{i}", "a", "s", "source", "people") for i in range(50)]
    rows += [QARow("q", f"u{i}", "a", "s", "source", "intent") for i in range(5)]
    rows += [QARow("q", f"v{i}", "a", "s", "source", "topic") for i in range(50)]
    kept = balance(rows, 9, random.Random(0))
    assert sum(row.family == "people" for row in kept) == 9
    assert sum(row.family == "intent" for row in kept) == 5
    assert sum(row.family == "topic" for row in kept) == 12, "topic keeps FAMILY_SIZES['topic'] x 9"


def test_no_topic_answer_fills_more_than_its_cap():
    rows = [QARow("q", f"t{i}", "Film" if i % 2 else "film", "s", "source", "topic") for i in range(30)]
    rows += [QARow("q", f"s{i}", "sport", "s", "source", "topic") for i in range(3)]
    rows += [QARow("q", f"u{i}", "film", "s", "source", "genre") for i in range(30)]
    kept = cap_topic_answers(rows, 5, random.Random(0))
    topic = Counter(row.output.lower() for row in kept if row.family == "topic")
    assert topic == {"film": 5, "sport": 3}, "case-insensitive cap; answers under it are all kept"
    assert sum(row.family == "genre" for row in kept) == 30, "other families are not capped"


def test_topic_questions_are_answered_with_categories_and_titles_only_when_asked_for():
    labels = {"title": "Alabama", "topic": "geography"}
    for seed in range(20):
        for question in questions.questions_for(labels, random.Random(seed), ner_checked=False):
            expected = {"topic": "geography", "title": "Alabama"}[question.label]
            assert question.answer == expected
            assert question.family == ("topic" if question.label == "topic" else "subject")
    assert set(sources.WIKIPEDIA_CATEGORIES.values()) >= {"sport", "science", "politics", "geography"}


def test_news_briefs_carry_topic_valence_and_only_the_places_they_name():
    briefs = news.compose_briefs(300, 0, synthetic.PLACES)
    assert len({brief.text for brief in briefs}) == 300
    assert {brief.labels["topic"] for brief in briefs} == set(news.CATEGORIES)
    assert {brief.labels["news_valence"] for brief in briefs} == {"positive", "negative", "neutral"}
    for brief in briefs:
        assert all(brief.labels[key] in brief.text for key in ("city", "country") if key in brief.labels)
        valence = brief.labels["news_valence"]
        assert any(reaction.split("{")[0][:20] in brief.text for reaction in news.REACTIONS[valence])
    assert briefs == news.compose_briefs(300, 0, synthetic.PLACES), "deterministic for a seed"


def test_entity_and_sentiment_labellers():
    found = labellers.entity_labels(["Tony Blair met Microsoft executives in London in 2004."])[0]
    assert found == {"person": "Tony Blair", "organisation": "Microsoft", "place": "London", "date": "2004"}
    assert labellers.vader_sentiment("I love this wonderful, happy day!") == "positive"
    assert labellers.vader_sentiment("A horrible, miserable, hateful disaster.") == "negative"


def test_movie_titles_read_the_corpus_slugs():
    assert sources.movie_title("about_a_boy") == "About A Boy"
    assert sources.movie_title("gatekeeper_the") == "The Gatekeeper", "a trailing article moves to the front"
    assert sources.movie_title("d%e9rive_de_latlantic_la") == "D\u00e9rive De Latlantic La"
    assert sources.movie_title("the") == "The"


def test_real_sources_exclude_held_out_movies():
    rows = load_rotten_tomatoes()
    held_out = held_out_movies()
    assert held_out
    reviews = list(sources.rotten_tomatoes_texts(rows, held_out))
    movies = {row["movie_name"] for row in rows}
    assert len(reviews) > 5000 and movies - held_out
    held_out_texts = set(held_out_review_texts())
    assert not held_out_texts & {review.text for review in reviews}
    labels = {review.labels.get("review_sentiment") for review in reviews}
    assert labels == {"positive", "negative", None}  # None: plot summaries
    filed_under = {sources.movie_title(rows[int(r.source.rsplit(":", 1)[1])]["movie_name"]) for r in reviews}
    held_out_titles = {sources.movie_title(name) for name in held_out}
    assert not filed_under & held_out_titles, "a held-out film filed under a second slug is held out too"
    assert "ring_the" in {row["movie_name"] for row in rows} and "The Ring" in held_out_titles
    wiki = list(sources.wikipedia_texts(package_file("gensim", f"test_data/{sources.WIKI_FILE}")))
    anarchism = [text for text in wiki if text.labels["title"] == "Anarchism"]
    assert anarchism and all(text.labels["topic"] == "politics" for text in anarchism)
    titles = {text.labels["title"] for text in wiki}
    assert set(sources.WIKIPEDIA_CATEGORIES) <= titles, "every table entry names a page of the excerpt"
    assert not any(name in text.source for text in wiki + reviews for name in EVALUATION_FILES)


def test_leakage_check_finds_shared_eight_word_sequences():
    index = LeakageIndex(["The quick brown fox jumps over the lazy dog near the river bank."])
    assert index.shared("He said: the QUICK brown fox jumps over the lazy dog!") == {
        "the quick brown fox jumps over the lazy", "quick brown fox jumps over the lazy dog"
    }  # fmt: skip
    assert not index.shared("the quick brown fox jumps over a lazy dog")
    assert shingles("one two three") == set()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inbedder-qa.jsonl.gz", "inbedder-qa-v2.jsonl.gz"])
def test_committed_qa_set_shares_no_eight_words_with_any_evaluation_text(name):
    """The content-level check (not source names): every BBC, Lee, polarity and held-out review text."""
    index = LeakageIndex(evaluation_texts(held_out_review_texts()))
    assert len(index.ngrams) > 100_000
    data = Path(__file__).resolve().parents[2] / "data" / name
    assert check_file(data, index) == {}


def test_rows_load_and_are_validated(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + json.dumps({"instruction": "Q?", "output": ""}) + "\n")
    with pytest.raises(ValueError, match=r"rows\.jsonl:2: 'output' must be a non-empty string"):
        load_rows(str(path))
    with pytest.raises(ValueError, match=r"rows\.jsonl:2: 'output'"):
        load_rows(str(path), max_rows=1)  # every row of the file is checked, not only those used
    path.write_text(json.dumps(ROW) + "\n" + json.dumps({**ROW, "input": "other"}) + "\n")
    assert load_rows(str(path), max_rows=1) == [ROW]


@pytest.fixture(scope="module")
def trained_adapter(tmp_path_factory):
    """A few LoRA steps on a tiny real data set."""
    folder = tmp_path_factory.mktemp("train")
    write_rows(folder / "rows.jsonl", tiny_rows())
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
        ids = tuned.tokenizer(tuned.format_prompt(text, "What is the topic?"), return_tensors="pt").input_ids
        with torch.no_grad():
            state = unmerged(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
        expected.append((state / state.norm()).numpy())
    np.testing.assert_allclose(merged, np.stack(expected), atol=1e-5)
    assert tuned.answer(["Match report 3: the striker scored."], "What is the topic?")[0] == "football"


def _lora_tensors(folder: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "adapter_model.safetensors"))


@pytest.mark.slow
def test_continued_training_on_the_top_layers_leaves_the_rest_untouched(trained_adapter, tmp_path):
    """--init-adapter + --lora-layers: only the top blocks learn; the saved adapter keeps every block."""
    data = Path(trained_adapter.output_dir).parent / "rows.jsonl"
    config = TrainConfig(
        data=str(data), output_dir=str(tmp_path / "continued"), max_steps=4, batch_size=4,
        learning_rate=2e-3, logging_steps=1, save_steps=2, warmup_ratio=0.0, seed=0,
        init_adapter=trained_adapter.output_dir, lora_layers=2, max_rows=6,
        replay=str(data), replay_fraction=0.25,
    )  # fmt: skip
    result = train(config)
    before, after = _lora_tensors(trained_adapter.output_dir), _lora_tensors(result.output_dir)
    assert before.keys() == after.keys()
    layer = lambda key: int(re.search(r"layers\.(\d+)\.", key).group(1))  # noqa: E731
    changed = {layer(key) for key in before if not torch.equal(before[key], after[key].to(before[key].dtype))}
    assert changed == {28, 29}, "the top two blocks of 30 learned, none below"
    card = json.loads((Path(result.output_dir) / "inbedder_card.json").read_text())
    assert card["rows_by_file"] == {str(data): 6, f"replay:{data}": 2}, (
        "a quarter replayed, main rows skipped"
    )
    assert (
        card["config"]["init_adapter"] == trained_adapter.output_dir and len(card["init_adapter_digest"]) > 8
    )
    assert card["examples_per_second"] > 0 and card["bf16"] in (True, False)
    adapter_weights = Path(trained_adapter.output_dir) / "adapter_model.safetensors"
    assert card["init_adapter"]["weights_sha256"] == hashlib.sha256(adapter_weights.read_bytes()).hexdigest()
    assert card["replay"]["rows"] == 2 and card["replay"]["file_sha256"] == card["data_file_sha256"]
    top = sum(tensor.numel() for key, tensor in before.items() if layer(key) >= 28)
    assert card["trainable_parameters"] == top, "only the top two blocks' LoRA weights train"
    rerun = train(config)
    assert rerun.steps == 4, "rerun with the same output resumes from the last checkpoint"
    assert rerun.examples_per_second is None, "nothing left to run"
    again = _lora_tensors(rerun.output_dir)
    assert all(torch.equal(after[key], again[key]) for key in after), (
        "the checkpoint won over the init adapter"
    )
    shutil.rmtree(Path(result.output_dir) / "checkpoints" / "checkpoint-4")  # as if stopped after step 3
    resumed = train(config)
    assert resumed.steps == 4 and resumed.examples_per_second > 0, "steps 3 and 4 ran again"
    again = _lora_tensors(resumed.output_dir)
    changed = {layer(key) for key in before if not torch.equal(before[key], again[key].to(before[key].dtype))}
    assert changed == {28, 29}, "still frozen below the top two after the resume"
    assert all(torch.equal(after[key], again[key]) for key in after), "it ends where the unbroken run did"


def test_fresh_lora_on_the_top_layers_only(engine):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(engine.info()["source"], dtype=torch.float32)
    config = TrainConfig(data="unused", output_dir="unused", lora_layers=3)
    model = apply_lora(base, kind="causal", config=config)
    assert adapted_layers(model) == [27, 28, 29] == adapted_layers(model, trainable_only=True)
    with pytest.raises(InvalidArgumentError, match=r"lora_layers must be between 1 and 30.*got 31"):
        apply_lora(base, kind="causal", config=TrainConfig(data="", output_dir="", lora_layers=31))


def _lora_shape_count(model, layers: list[int], r: int) -> int:
    """r * (in + out) per adapted linear layer: what LoRA on those blocks must train."""
    return sum(
        r * (module.in_features + module.out_features)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and (found := re.search(r"\.layers\.(\d+)\.", name))
        and int(found.group(1)) in layers
    )


def test_fresh_lora_on_the_top_layers_trains_exactly_their_weights(engine):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(engine.info()["source"], dtype=torch.float32)
    expected = _lora_shape_count(base, [28, 29], r=4)
    model = apply_lora(
        base, kind="causal", config=TrainConfig(data="", output_dir="", lora_layers=2, lora_r=4)
    )
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    assert sum(parameter.numel() for parameter in trainable) == expected


def test_continuing_the_shipped_adapter_trains_its_top_layers_in_fp32(engine):
    """--init-adapter default --lora-layers 10: the bf16-saved adapter trains fp32 master weights."""
    from transformers import AutoModelForCausalLM

    from inbedder_integrations.engine.loading import DEFAULT_ADAPTER_DIR

    shipped = _lora_tensors(str(DEFAULT_ADAPTER_DIR))
    base = AutoModelForCausalLM.from_pretrained(engine.info()["source"], dtype=torch.float32)
    config = TrainConfig(data="", output_dir="", init_adapter="default", lora_layers=10, lora_r=4)
    model = apply_lora(base, kind="causal", config=config)
    assert adapted_layers(model) == list(range(30)) and adapted_layers(model, trainable_only=True) == list(
        range(20, 30)
    )
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    assert all(parameter.dtype == torch.float32 for parameter in trainable)
    top = sum(
        tensor.numel()
        for key, tensor in shipped.items()
        if int(re.search(r"layers\.(\d+)\.", key).group(1)) >= 20
    )
    assert sum(parameter.numel() for parameter in trainable) == top, "the adapter's r (16) won over lora_r=4"


def test_bad_training_options_are_refused_with_what_was_wrong(tmp_path, capsys):
    from inbedder_integrations.cli import main

    with pytest.raises(InvalidArgumentError, match="LoRA options: drop them or --full"):
        train(TrainConfig(data="unused", output_dir=str(tmp_path), lora=False, lora_layers=2))
    for flag, value, message in [
        ("--replay-fraction", "1", "between 0 and 1 .exclusive., got '1'"),
        ("--replay-fraction", "x", "got 'x'"),
        ("--lora-layers", "0", "--lora-layers"),
    ]:
        with pytest.raises(SystemExit):
            main(["train", "--data", "d.jsonl", "--output", str(tmp_path), flag, value])
        assert re.search(message, capsys.readouterr().err)


def test_train_flags_reach_the_config(tmp_path, monkeypatch):
    from inbedder_integrations.cli import main
    from inbedder_integrations.training import train as train_module

    seen = []

    def fake_train(config, callbacks=()):
        seen.append(config)
        return train_module.TrainResult(config.output_dir, 0)

    monkeypatch.setattr(train_module, "train", fake_train)
    monkeypatch.chdir(tmp_path)  # the CLI refuses data files that are not there
    Path("d.jsonl").write_text(json.dumps(ROW) + "\n")
    Path("r.jsonl").write_text(json.dumps(ROW) + "\n")
    common = ["train", "--data", "d.jsonl", "--output", str(tmp_path)]
    main([*common, "--init-adapter", "default", "--lora-layers", "10", "--replay", "r.jsonl",
          "--replay-fraction", "0.25", "--bf16", "--save-steps", "7", "--logging-steps", "3",
          "--max-length", "128", "--max-rows", "64"])  # fmt: skip
    main([*common, "--no-bf16"])
    main(common)
    config = seen[0]
    assert (config.init_adapter, config.lora_layers, config.replay, config.replay_fraction) == (
        "default",
        10,
        "r.jsonl",
        0.25,
    )
    assert (config.bf16, config.save_steps, config.logging_steps, config.max_length, config.max_rows) == (
        True, 7, 3, 128, 64
    )  # fmt: skip
    assert [run.bf16 for run in seen] == [True, False, None], "unset: bf16 only where native"
    assert seen[2].lora_layers is None and seen[2].init_adapter is None and seen[2].replay is None


def test_rows_by_family_and_replay_are_deterministic(tmp_path):
    main, extra = tmp_path / "main.jsonl", tmp_path / "extra.jsonl"
    rows = [{**ROW, "input": f"text {i}", "family": "topic" if i % 2 else "place"} for i in range(20)]
    main.write_text("".join(json.dumps(row) + "\n" for row in rows))
    extra.write_text("".join(json.dumps({**ROW, "input": f"old {i}"}) + "\n" for i in range(50)))
    config = TrainConfig(
        data=str(main), output_dir="", families=["topic"], replay=str(extra), replay_fraction=0.5
    )
    picked, counts = training_rows(config)
    assert counts == {str(main): 10, f"replay:{extra}": 10}
    assert all(row["input"].startswith(("text", "old")) for row in picked)
    assert {int(row["input"].split()[1]) % 2 for row in picked[:10]} == {1}, "only the topic family"
    assert picked == training_rows(config)[0]
    with pytest.raises(InvalidArgumentError, match=r"replay_fraction must be between 0 and 1, got 1\.0"):
        training_rows(TrainConfig(data=str(main), output_dir="", replay=str(extra), replay_fraction=1.0))
    with pytest.raises(InvalidArgumentError, match="no rows of the families"):
        load_rows(str(main), families=["emotion"])


def test_shipped_adapter_card_matches_its_base_and_data():
    """The card of the shipped default names the weights it was trained on and the committed data."""
    from inbedder_integrations.engine.loading import DEFAULT_ADAPTER_DIR, resolve_source

    card = json.loads((DEFAULT_ADAPTER_DIR / "inbedder_card.json").read_text(encoding="utf-8"))
    assert card["base_weights"] == resolve_source("default").weights_digest
    root = Path(__file__).resolve().parents[2]
    config = TrainConfig(**card["config"])
    config.data = str(root / config.data)
    config.replay = str(root / config.replay) if config.replay else None
    rows, _ = training_rows(config)
    assert len(rows) == card["data_rows"]
    assert hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest() == card["data_sha256"]
    assert card["config"]["seed"] == card["seed"] and card["steps"] > 0
    assert card["evaluation"]["results"], "inbedder eval --card recorded its results"
    readme = (DEFAULT_ADAPTER_DIR / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# InBedder lora-adapter") and "## Evaluation" in readme


def test_a_run_below_the_shipped_default_on_what_works_is_not_eligible():
    """recipes/choose_run.py --reference: what works must keep working (issue 27, item 5)."""
    choose_run = load_recipe("choose_run")
    reference = {"bbc_topic_place hmean": 0.80, "mean answer agreement": 0.70, "polarity knn_acc": 0.7}
    assert choose_run.eligible({**reference, "bbc_topic_place hmean": 0.785}, reference)
    assert not choose_run.eligible({**reference, "bbc_topic_place hmean": 0.779}, reference)
    assert not choose_run.eligible(
        {**reference, "mean answer agreement": 0.67, "polarity knn_acc": 1.0}, reference
    )
    assert choose_run.eligible({**reference, "bbc_topic_place hmean": 0.1}, None), (
        "no reference: all eligible"
    )


# --------------------------------------------------------------------------- the wide build (issue 35)


def _wide_labels(*texts: str, register: str = "") -> list[dict[str, str]]:
    """The wide build's labels of hand-written texts, through the builder's own labelling pass."""
    labels = {"register": register} if register else {}
    return wide.label_texts([sources.SourceText(text, "test", dict(labels)) for text in texts])[1]


def test_wide_build_asks_forty_families_none_of_them_held_out():
    older = {family for family, _ in questions.QUESTIONS.values()}
    assert not older & set(families.FAMILIES), "a new family's name would merge it with an older one"
    assert len(older | set(families.FAMILIES)) >= 40
    for name, family in families.FAMILIES.items():
        wordings = [instruction for instruction, _ in family.asks] + list(family.mentions)
        assert 3 <= len(set(wordings)) <= 6, name
        assert [w for w in wordings if forbidden_instruction(w)] == [], name
    assert set(families.FAMILIES) == set(spans.SPAN_FAMILIES) | set(spans.JUDGEMENT_FAMILIES)


def test_span_labellers_on_hand_checked_sentences():
    texts = {
        "The French president flew to Berlin on a plane and paid $5 million for the painting.": {
            "nationality": "French", "city": "Berlin", "money": "$5 million", "vehicle": "plane",
            "action": "fly", "actor": "The French president"},
        "Unemployment fell 5% in Europe after the Olympics.": {
            "percent": "5%", "continent": "Europe", "named_event": "Olympics", "actor": "Unemployment"},
        '"We will win the election," Johnson told reporters in Ohio.': {
            "us_state": "Ohio", "action": "tell", "actor": "Johnson", "acted_on": "reporters"},
        "Rescuers found the miners in Chile, and doctors treated their cancer.": {
            "country": "Chile", "disease": "cancer"},
        "I broke my knee playing football in a red shirt.": {
            "body_part": "knee", "sport": "football", "colour": "red", "clothing": "shirt"},
        "The thieves took gold and a laptop from the museum with a gun.": {
            "material": "gold", "device": "laptop", "building": "museum", "weapon": "gun"},
        "Physics students watched Mars through a telescope.": {
            "field_of_study": "physics", "celestial_body": "Mars", "device": "telescope"},
        "Email bob@example.com for tickets priced in euros.": {
            "web_address": "bob@example.com", "currency": "euros"},
        'She read "War and Peace" twice during the Second World War.': {
            "work_of_art": "War and Peace", "named_event": "Second World War"},
        "Christianity reached Japan by ship.": {"religion": "Christianity", "country": "Japan"},
        "The law punishes theft and fraud.": {"crime": spans.AMBIGUOUS},  # two crimes, once each
    }  # fmt: skip
    for text, found in zip(texts, _wide_labels(*texts), strict=True):
        assert {key: found.get(key) for key in texts[text]} == texts[text], text
    assert "geo_feature" not in _wide_labels("Physics students watched Mars through a telescope.")[0]
    assert "vehicle" not in _wide_labels("The government cut taxes.")[0], "no vehicle: a 'no'"


def test_judgement_labellers_on_hand_checked_sentences():
    question, spoken, title, mine = _wide_labels(
        "Is this the best film of the year?",
        '"We will win the election," Johnson told reporters in Ohio.',
        'She read "War and Peace" twice during the Second World War.',
        "I love this wonderful, happy day!",
    )
    assert question["sentence_type"] == "question" and mine["sentence_type"] == "exclamation"
    assert spoken["sentence_type"] == "statement"
    assert spoken["quotation"] == "yes" and "first_person" not in spoken, (
        "'we' inside a quote is not the writer"
    )
    assert "quotation" not in title, "a title in quotes quotes nobody"
    assert mine["first_person"] == "yes" and question["first_person"] == "no"
    assert mine["intensity"] == "strong" and question["length"] == "short"
    long_text = " ".join(["The committee met again and agreed on the new rules for the year."] * 9)
    review, article = _wide_labels("A dull, lifeless remake.", long_text, register="movie review")
    assert review["opinion_fact"] == "opinion" and article["length"] == "long"
    assert _wide_labels(long_text, register="encyclopedia article")[0]["opinion_fact"] == "fact"


def test_share_caps_hold():
    assert families.share_cap([100, 10, 10, 10], 0.4) == 20  # 20 <= 0.4 * (20 + 30)
    assert families.share_cap([7], 0.5) == 0, "one group can never be under half"
    rows = [QARow("q", f"t{i}", "a", "s", "spacy", "colour") for i in range(90)]
    rows += [
        QARow("q", f"u{i}", "a", "s", "spacy", name) for name in ("sport", "crime", "law") for i in range(10)
    ]
    kept = wide.cap_families(rows, 0.4, random.Random(0))
    counts = Counter(row.family for row in kept)
    assert counts == {"colour": 20, "sport": 10, "crime": 10, "law": 10}
    answers = [QARow("Which colour is mentioned?", f"t{i}", "Red" if i % 3 else "red", "s", "spacy", "colour")
               for i in range(60)]  # fmt: skip
    answers += [QARow("q", f"u{i}", f"c{i % 12}", "s", "spacy", "colour") for i in range(120)]
    answers += [QARow("q", f"v{i}", "film", "s", "source", "topic") for i in range(50)]
    capped = wide.cap_answers(answers, spans.SPAN_FAMILIES, random.Random(0))
    colour = Counter(row.output.lower() for row in capped if row.family == "colour")
    assert max(colour.values()) <= wide.MAX_ANSWER_SHARE * sum(colour.values()) and colour["red"] > 10
    assert sum(row.family == "topic" for row in capped) == 50, "older families are not capped here"


def test_family_questions_ask_no_only_where_nothing_was_found_and_balance_judgements():
    labels = [{"colour": "red", "first_person": "yes"} for _ in range(200)]
    labels += [{"colour": spans.AMBIGUOUS, "first_person": "no"} for _ in range(50)]
    labels += [{} for _ in range(300)]
    asked = families.family_questions(labels, random.Random(0))
    colour = [(position, q.answer) for position, q in asked if q.family == "colour"]
    no = [position for position, answer in colour if answer == "no"]
    assert no and all(position >= 250 for position in no), "'no' only where no colour was found"
    assert len(no) == sum(answer == "yes" for _, answer in colour)
    assert all(answer == "red" for position, answer in colour if answer not in {"yes", "no"})
    first = Counter(labels[position]["first_person"] for position, q in asked if q.family == "first_person")
    assert first == {"yes": 50, "no": 50}, "a judgement family asks each value equally often here"


def test_held_out_wordings_of_older_families_are_dropped():
    rows = [QARow("What time is mentioned?", "t", "2004", "s", "spacy", "time"),
            QARow("Is the text about music?", "t", "no", "s", "source", "yes/no"),
            QARow("Which colour is mentioned?", "t", "red", "s", "spacy", "colour")]  # fmt: skip
    kept, dropped = drop_forbidden(rows)
    assert kept == rows[2:] and dropped == {"What time is mentioned?": 1, "Is the text about music?": 1}


@pytest.mark.slow
def test_a_small_wide_build_keeps_its_caps_spans_and_held_out_families(tmp_path):
    output = tmp_path / "qa.jsonl.gz"
    provenance = build_dataset(
        output, per_family=150, synthetic_messages=200, synthetic_posts=60, synthetic_briefs=120,
        wide=True, max_family_share=0.06, max_real_texts=400,
    )  # fmt: skip
    rows = [json.loads(line) for line in gzip.decompress(output.read_bytes()).splitlines()]
    by_family = Counter(row["family"] for row in rows)
    assert provenance["families"] == len(by_family) >= 30 and provenance["rows"] == len(rows)
    assert max(by_family.values()) <= 0.06 * len(rows)
    assert provenance["max_family_share"] == 0.06
    spanned = [row for row in rows if row["family"] in spans.SPAN_FAMILIES and row["family"] != "action"]
    asked_span = [row for row in spanned if row["output"] not in {"yes", "no"}]
    assert len(asked_span) > 100
    assert [row for row in asked_span if row["output"].lower() not in row["input"].lower()] == []
    assert forbidden_file_rows(output) == {}
    assert provenance["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()


@pytest.mark.slow
def test_committed_wide_set_matches_its_provenance_and_asks_no_held_out_family():
    data = Path(__file__).resolve().parents[2] / "data" / "inbedder-qa-v2.jsonl.gz"
    provenance = json.loads(Path(f"{data}.provenance.json").read_text())
    assert hashlib.sha256(data.read_bytes()).hexdigest() == provenance["sha256"]
    assert provenance["families"] >= 40 and provenance["max_family_share"] == 0.04
    assert max(provenance["rows_by_family"].values()) <= 0.04 * provenance["rows"]
    assert forbidden_file_rows(data) == {}
