"""The KL term towards the untuned base (``--kl-to-base``): which positions it reads, and that it holds."""

from __future__ import annotations

import json
import re

import pytest
import torch

from inbedder_integrations import DEFAULT_TEMPLATE
from inbedder_integrations.errors import InvalidArgumentError
from inbedder_integrations.training.base_kl import answer_kl
from inbedder_integrations.training.train import (
    IGNORE_INDEX,
    ExampleEncoder,
    TrainConfig,
    answer_end_id,
    train,
)
from tests.training.tiny import tiny_rows, write_rows

VOCAB = 11


def _labels(answer_at: list[int], length: int = 6) -> torch.Tensor:
    labels = torch.full((1, length), IGNORE_INDEX)
    labels[0, answer_at] = 7
    return labels


def test_causal_kl_reads_the_positions_that_predict_an_answer_token():
    """Answer tokens at 3 and 4 are predicted by the logits at 2 and 3: only those count."""
    torch.manual_seed(0)
    base = torch.randn(1, 6, VOCAB)
    labels = _labels([3, 4])
    assert answer_kl(base.clone(), base, labels, causal=True).item() == pytest.approx(0.0, abs=1e-6)
    for position, counts in [(1, False), (2, True), (3, True), (4, False), (5, False)]:
        tuned = base.clone()
        tuned[0, position] += 3.0 * torch.randn(VOCAB)
        moved = answer_kl(tuned, base, labels, causal=True).item()
        assert (moved > 1e-3) is counts, f"position {position}"


def test_masked_kl_reads_the_mask_positions_themselves_and_averages_them():
    torch.manual_seed(1)
    base = torch.randn(1, 6, VOCAB)
    tuned = base.clone()
    tuned[0, 4] += 3.0 * torch.randn(VOCAB)
    one = answer_kl(tuned, base, _labels([4]), causal=False).item()
    assert one > 1e-3
    assert answer_kl(tuned, base, _labels([3]), causal=False).item() == pytest.approx(0.0, abs=1e-6)
    assert answer_kl(tuned, base, _labels([3, 4]), causal=False).item() == pytest.approx(one / 2, rel=1e-5)
    no_answer = answer_kl(tuned.requires_grad_(), base, _labels([]), causal=False)
    no_answer.backward()  # a batch of prompts only still trains (nothing to pull towards)
    assert no_answer.item() == 0.0


def test_kl_to_base_is_a_lora_option_and_not_negative(tmp_path, capsys):
    from inbedder_integrations.cli import main

    with pytest.raises(InvalidArgumentError, match="kl_to_base are LoRA options"):
        train(TrainConfig(data="unused", output_dir=str(tmp_path), lora=False, kl_to_base=1.0))
    with pytest.raises(InvalidArgumentError, match=r"kl_to_base must be 0 \(off\) or more, got -1"):
        train(TrainConfig(data="unused", output_dir=str(tmp_path), kl_to_base=-1.0))
    with pytest.raises(InvalidArgumentError, match=r"kl_to_base must be 0 \(off\) or more, got nan"):
        train(TrainConfig(data="unused", output_dir=str(tmp_path), kl_to_base=float("nan")))
    for value in ["-0.5", "nan", "x"]:
        with pytest.raises(SystemExit):
            main(["train", "--data", "d.jsonl", "--output", str(tmp_path), "--kl-to-base", value])
        assert re.search(
            f"--kl-to-base: must be a number of 0 or more, got '{value}'", capsys.readouterr().err
        )


def _kl_after_training(folder, source: str, rows: list[dict[str, str]]) -> float:
    """Mean answer KL of the trained adapter against the base, on the training rows."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    encoder = ExampleEncoder(tokenizer, DEFAULT_TEMPLATE, 64, masked=False, eos_id=answer_end_id(base))
    values = []
    with torch.no_grad():
        for row in rows:
            example = encoder.encode(row)
            input_ids = torch.tensor([example["input_ids"]])
            tuned = model(input_ids=input_ids).logits
            with model.disable_adapter():
                untuned = model(input_ids=input_ids).logits
            values.append(answer_kl(tuned, untuned, torch.tensor([example["labels"]]), causal=True).item())
    return sum(values) / len(values)


@pytest.mark.slow
def test_the_kl_term_keeps_the_adapter_near_the_base_while_it_learns(engine, tmp_path):
    """Same rows, seed and steps: with the term the answers move much less far from the base's."""
    source = engine.info()["source"]
    rows = tiny_rows()
    write_rows(tmp_path / "rows.jsonl", rows)
    kl, logged = {}, {}
    for weight in (0.0, 5.0):
        folder = tmp_path / f"kl-{weight}"
        config = TrainConfig(
            data=str(tmp_path / "rows.jsonl"), output_dir=str(folder), max_steps=8, batch_size=4,
            learning_rate=2e-3, logging_steps=1, save_steps=100, warmup_ratio=0.0, seed=0, lora_layers=4,
            max_length=64, kl_to_base=weight, bf16=False,
        )  # fmt: skip
        train(config)
        card = json.loads((folder / "inbedder_card.json").read_text())
        assert card["config"]["kl_to_base"] == weight
        kl[weight] = _kl_after_training(folder, source, rows)
        logged[weight] = card.get("first_kl_to_base"), card.get("last_kl_to_base")
    assert kl[0.0] > 1.0, "without the term the adapter learns answers the base does not give"
    assert kl[5.0] < 0.5 * kl[0.0], kl
    # The unweighted term is logged apart from the loss: zero at the first step (a fresh LoRA
    # update is zero), then how far the adapter has moved; not logged at all without the term.
    assert logged[0.0] == (None, None)
    first, last = logged[5.0]
    assert first[0] == pytest.approx(0.0, abs=1e-6) and len(last) == 3
    assert 0.5 * kl[5.0] < last[-1] < 2 * kl[5.0], (last, kl[5.0])  # unweighted, as measured after
