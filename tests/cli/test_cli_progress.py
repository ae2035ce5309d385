"""Progress on long jobs (issue 37, item 5): ``data build``, ``train`` and ``eval`` each draw one
bar with an ETA on stderr, fed by a callback from the library (which itself stays quiet), and
``data build --quick`` is a small build to try the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inbedder_integrations.cli import build_parser, main
from inbedder_integrations.cli.progress import progress_bar, training_bar
from inbedder_integrations.cli.training import BUILD_OUTPUT, build_sizes


def test_quick_build_sizes_and_explicit_sizes_win():
    parse = build_parser().parse_args
    quick = build_sizes(parse(["data", "build", "--quick"]))
    assert quick == {
        "per_family": 500, "synthetic_messages": 1000, "synthetic_posts": 250, "synthetic_briefs": 500,
        "max_real_texts": 1000,
    }  # fmt: skip
    assert build_sizes(parse(["data", "build", "--quick", "--per-family", "9"]))["per_family"] == 9
    full = build_sizes(parse(["data", "build"]))
    assert full["per_family"] == 6000 and full["max_real_texts"] is None
    assert BUILD_OUTPUT == ("data/inbedder-qa.jsonl.gz", "data/inbedder-qa-quick.jsonl.gz")


def test_the_bar_shows_the_total_and_an_eta(capsys):
    with progress_bar("data build", "unit") as advance:
        advance(0, 200)
        advance(64, 200)
        advance(200, 200)
    err = capsys.readouterr().err
    assert "data build: 100%" in err and "200/200" in err
    assert "0/200 [00:00<?" in err and "200/200 [00:00<00:00" in err  # elapsed<remaining: the ETA


def test_the_training_bar_counts_steps_and_shows_the_loss(capsys):
    """Driven through a real TrainerState, as the Trainer drives it."""
    from transformers import TrainerControl, TrainerState

    bar, state, control = training_bar(), TrainerState(max_steps=4, global_step=0), TrainerControl()
    bar.on_train_begin(None, state, control)
    for step in range(1, 5):
        state.global_step = step
        bar.on_log(None, state, control, logs={"loss": 1.0 / step, "learning_rate": 1e-4})
        bar.on_step_end(None, state, control)
    bar.on_train_end(None, state, control)
    err = capsys.readouterr().err
    assert "train: 100%" in err and "4/4" in err and "loss=0.25" in err
    assert "learning_rate" not in err  # not transformers' printed dicts


@pytest.mark.slow
def test_data_build_reports_progress_without_changing_the_rows(tmp_path):
    from inbedder_integrations.training.data import build_dataset

    sizes = {"per_family": 40, "synthetic_messages": 60, "synthetic_posts": 20, "synthetic_briefs": 20}
    calls: list[tuple[int, int]] = []
    build_dataset(tmp_path / "a.jsonl", **sizes, max_real_texts=130, progress=lambda *c: calls.append(c))
    build_dataset(tmp_path / "b.jsonl", **sizes, max_real_texts=130)  # quiet: no callback
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert calls[0] == (0, 260) and calls[-1] == (260, 260)
    assert (64, 260) in calls and (128, 260) in calls  # labelling, a unit per text
    done = [count for count, _ in calls]
    assert done == sorted(done) and {total for _, total in calls} == {260}


def test_eval_reports_each_suite_run():
    from inbedder_integrations.evaluation.baselines import MiniLMEmbedder
    from inbedder_integrations.evaluation.heldout import EvalSizes, load_eval_data, offline_report

    data = load_eval_data("dev", EvalSizes(bbc_per_topic=2, rt_per_label=1, rt_movies=2, triplets=5))
    calls: list[tuple[int, int]] = []
    report = offline_report(
        [MiniLMEmbedder()], data, ["lee", "message_answers"], progress=lambda *c: calls.append(c)
    )
    assert calls == [(0, 2), (1, 2), (2, 2)]
    assert list(next(iter(report.values()))) == ["lee", "message_answers"]


@pytest.mark.slow
def test_train_shows_a_bar_not_dicts(tmp_path, capsys):
    """A real two-step LoRA run through the CLI: the bar on stderr, no Trainer dicts on stdout."""
    row = {"instruction": "What is the topic?", "input": "The striker scored twice.", "output": "football"}
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({**row, "input": f"{row['input']} ({i})"}) + "\n" for i in range(8)))
    main(["train", "--data", str(data), "--output", str(tmp_path / "out"), "--max-steps", "2",
          "--batch-size", "4", "--logging-steps", "1", "--lora-layers", "1"])  # fmt: skip
    captured = capsys.readouterr()
    assert "{'loss'" not in captured.out and "'learning_rate'" not in captured.out, captured.out
    assert "train: 100%" in captured.err and "2/2" in captured.err and "loss=" in captured.err
    assert captured.out.startswith("trained 2 steps") and Path(tmp_path / "out").is_dir()
