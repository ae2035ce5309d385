"""The performance suite: every comparison side by side in one run, on the same texts and model.

    python benchmarks/run.py              # the full run: docs/performance.json says how long it took
                                          # and on what; far longer on a CPU without native bf16
    python benchmarks/run.py --quick      # minutes: checks that every benchmark runs, not speed

Each comparison is reported as a ratio of medians over repeats (section 7: one run per size),
with absolute texts/s for the record, in docs/performance.json: the numbers, the machine and
dtype they come from, and each section's title, target and timing.  benchmarks/render_docs.py
then renders every performance figure in the docs from that file (docs/performance.md's tables,
docs/engine.md, docs/scaling.md).  Speed targets live here, not in the unit tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import render_docs
import torch

from inbedder_integrations import InBedder
from inbedder_integrations.cache import EmbeddingCache
from inbedder_integrations.engine.loading import cpu_has_native_bf16
from inbedder_integrations.evaluation.loaders import load_bbc, load_polarity

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTIONS = [
    "What is the topic of this news?",
    "How does the writer feel?",
    "Which country is this news about?",
    "Is the news good or bad for the people involved?",
    "Who is the main person in the text?",
    "What happened?",
    "Who is the audience of this text?",
    "What is the tone of the text?",
]


@dataclass
class Sizes:
    """How much work each benchmark does; ``--quick`` shrinks everything."""

    repeats: int = 3
    short_texts: int = 64
    generate_texts: int = 50
    documents: int = 16
    document_tokens: int = 200
    cache_texts: int = 200
    rss_sizes: tuple[int, ...] = (1000, 5000, 20000)
    matmul: int = 2048


QUICK = Sizes(
    repeats=1,
    short_texts=4,
    generate_texts=2,
    documents=2,
    document_tokens=40,
    cache_texts=4,
    rss_sizes=(50,),
    matmul=256,
)


@dataclass
class Report:
    """What run.py writes to performance.json: per section its title, target, timing and rows."""

    repeats: int
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def medians(self) -> str:
        return f"median of {self.repeats} timed runs after a warm-up run"

    def add(
        self,
        key: str,
        number: int,
        title: str,
        target: str,
        header: Sequence[str],
        rows: list[Sequence[Any]],
        *,
        timing: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        section = {"number": number, "title": title, "target": target, "timing": timing or self.medians}
        self.sections[key] = {**section, **({"params": params} if params else {})}
        self.results[key] = [dict(zip(header, row, strict=True)) for row in rows]
        print("\n" + render_docs.section_markdown(number, section, self.results[key]), flush=True)


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` runs after one warm-up run."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def short_texts(n: int, words: int | None = None) -> list[str]:
    """Real review sentences (gensim's polarity file; the first ``words`` words of each if given),
    repeated with a counter past 200."""
    sentences, _ = load_polarity()
    if words is not None:
        sentences = [" ".join(sentence.split()[:words]) for sentence in sentences]
    return [sentences[i % len(sentences)] + ("" if i < len(sentences) else f" ({i})") for i in range(n)]


def documents(n: int, engine: InBedder, tokens: int = 200) -> list[str]:
    """BBC articles cut to about ``tokens`` tokens."""
    articles, _ = load_bbc(per_topic=max(1, n // 5 + 1), seed=0)
    cut = []
    for article in articles[:n]:
        ids = engine.tokenizer(article, add_special_tokens=False)["input_ids"][:tokens]
        cut.append(engine.tokenizer.decode(ids))
    return cut


# --------------------------------------------------------------------------- 1. the paper's code path


#: The paper's ``max_new_tokens=3`` configs sample (temperature 0.6, top-p 0.9) in batches of 50.
PAPER_GENERATION = {"do_sample": True, "temperature": 0.6, "top_p": 0.9}
PAPER_BATCH_SIZE = 50


def original_inbedder(
    engine: InBedder, texts: list[str], instruction: str, max_new_tokens: int, *, all_layers: bool = True
) -> tuple[np.ndarray, float]:
    """The InBedder repository's encoder, re-implemented step for step.

    Texts sorted by length, ``generate()`` with sampling, hidden states and scores,
    the generations decoded, then its five aggregations (mean of prompt, first
    generated, mean of all, mean of generated, last generated) for every layer
    (``all_layers=False``: the last one only, its ``last_layer_only`` option),
    one text at a time.  Its ``fst_gen`` of the last layer is the engine's vector.
    Returns the vectors and the mean number of tokens generated per text.
    """
    model, tokenizer = engine.model, engine.tokenizer
    order = np.argsort([-len(text) for text in texts])
    prompts = [engine.format_prompt(texts[i], instruction) for i in order]
    vectors, lengths = [], []
    for start in range(0, len(prompts), PAPER_BATCH_SIZE):
        batch = tokenizer(
            prompts[start : start + PAPER_BATCH_SIZE], return_tensors="pt", padding=True, padding_side="left"
        )
        with torch.inference_mode():
            out = model.generate(
                **batch,
                **PAPER_GENERATION,
                max_new_tokens=max_new_tokens,
                output_hidden_states=True,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        new_ids = out.sequences[:, batch["input_ids"].shape[1] :]
        lengths += [_generated_length(row, tokenizer) for row in new_ids.tolist()]
        tokenizer.batch_decode(new_ids, skip_special_tokens=True)
        prompt_states, step_states = out.hidden_states[0], out.hidden_states[1:]
        last = len(prompt_states) - 1
        for row in range(len(new_ids)):
            keep = batch["attention_mask"][row].bool()
            special = tokenizer.get_special_tokens_mask(
                new_ids[row][1:].tolist(), already_has_special_tokens=True
            )
            aggregated = {}
            for layer in range(len(prompt_states)) if all_layers else [last]:
                prompt = prompt_states[layer][row, keep]
                generated = [s[layer][row] for s, skip in zip(step_states, special, strict=False) if not skip]
                generated_states = torch.cat(generated) if generated else prompt[-1:]
                aggregated[layer] = {
                    "avg_ppt": prompt[:-1].mean(0),
                    "fst_gen": prompt[-1],
                    "avg_all": torch.cat([prompt, generated_states]).mean(0),
                    "avg_gen": torch.cat([prompt[-1:], generated_states]).mean(0),
                    "last_gen": generated_states[-1],
                }
            vectors.append(aggregated[last]["fst_gen"].float().numpy())
    restored = np.empty((len(texts), len(vectors[0])), dtype=np.float32)
    restored[order] = np.stack(vectors)
    return restored, float(np.mean(lengths))


def _generated_length(ids: list[int], tokenizer: Any) -> int:
    """Tokens up to and including the first EOS: generation stops a row there."""
    eos = tokenizer.eos_token_id
    return ids.index(eos) + 1 if eos in ids else len(ids)


def bench_original(report: Report, engine: InBedder, sizes: Sizes) -> None:
    texts = short_texts(sizes.generate_texts)
    instruction = INSTRUCTIONS[1]
    ours = median_seconds(lambda: engine.embed(texts, instruction), sizes.repeats)
    rows = [["InBedder engine (one forward pass)", len(texts) / ours, 1.0, 1.0, 0.0]]
    reference = engine.embed(texts, instruction)
    for all_layers, label in ((True, "paper's encoder"), (False, "paper's encoder, last layer only")):
        for new_tokens in (3, 20):
            torch.manual_seed(0)
            run = partial(original_inbedder, engine, texts, instruction, new_tokens, all_layers=all_layers)
            seconds = median_seconds(run, sizes.repeats)
            vectors, generated = run()
            rows.append([f"{label}, max_new_tokens={new_tokens}", len(texts) / seconds, seconds / ours,
                         min_cosine(vectors, reference), generated])  # fmt: skip
    report.add(
        "original",
        1,
        "The engine against the paper's code path (generate with sampling and hidden states)",
        ">= 3x faster than max_new_tokens=3, >= 10x faster than 20 (the paper's encoder as written: "
        "every layer aggregated; the last-layer-only rows show how much of the gap is generation alone; "
        "generation stops at EOS, so the trained model's short answers end it early)",
        ["path", "texts/s", "engine speed-up", "min cosine to engine", "mean tokens generated"],
        rows,
    )


# --------------------------------------------------------------------------- 2. sentence-transformers


def bench_sentence_transformers(report: Report, engine: InBedder, sizes: Sizes) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    base = InBedder.from_pretrained("default", adapter=None)  # the folder ST can read: the base weights
    folder = base.info()["source"]
    transformer = Transformer(
        folder,
        model_kwargs={"dtype": base.model.dtype},
        # Plain text in, as the InBedder prompt needs: without this, sentence-transformers 6
        # wraps every input in the model's chat template.
        modality_config={"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
        module_output_name="token_embeddings",
    )
    st = SentenceTransformer(modules=[transformer, Pooling(base.dim, pooling_mode="lasttoken")], device="cpu")
    texts = short_texts(sizes.short_texts)
    instruction = INSTRUCTIONS[0]
    prompts = [base.format_prompt(text, instruction) for text in texts]
    ours = median_seconds(lambda: base.embed(texts, instruction), sizes.repeats)
    theirs = median_seconds(lambda: st.encode(prompts, batch_size=32), sizes.repeats)
    agreement = min_cosine(st.encode(prompts, batch_size=32), base.embed(texts, instruction))
    report.add(
        "sentence_transformers",
        2,
        "The engine against sentence-transformers (same base model, last-token pooling, same prompt)",
        "not slower, ideally faster",
        ["path", "texts/s", "engine speed-up", "min cosine to engine"],
        [
            ["InBedder engine", len(texts) / ours, 1.0, 1.0],
            ["sentence-transformers, batch 32", len(texts) / theirs, theirs / ours, agreement],
        ],
    )


# --------------------------------------------------------------------------- 3 + 6. dtype and FLOP/s


def forward_flops(engine: InBedder, texts: list[str], instruction: str) -> float:
    """2 x (non-embedding weights) per real token, plus attention scores and mixing per layer."""
    model = engine.model
    config = model.config
    weights = sum(
        module.weight.numel()
        for name, module in model.base_model.named_modules()
        if isinstance(module, torch.nn.Linear)
    )
    lengths = [len(engine.tokenizer(engine.format_prompt(t, instruction))["input_ids"]) for t in texts]
    attention = sum(4 * n * n * config.hidden_size for n in lengths) * config.num_hidden_layers / 2
    return float(2 * weights * sum(lengths) + attention)


def matmul_peak(dtype: torch.dtype, n: int, repeats: int) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    seconds = median_seconds(lambda: a @ b, max(repeats, 3))
    return 2 * n**3 / seconds


def bench_dtypes(report: Report, sizes: Sizes) -> None:
    texts = short_texts(sizes.short_texts)
    instruction = INSTRUCTIONS[1]
    results = {}
    for dtype in ("float32", "bfloat16"):
        engine = InBedder.from_pretrained("default", dtype=dtype)
        seconds = median_seconds(lambda e=engine: e.embed(texts, instruction), sizes.repeats)
        results[dtype] = (engine, seconds, engine.embed(texts, instruction))
    fp32_seconds, bf16_seconds = results["float32"][1], results["bfloat16"][1]
    report.add(
        "dtype",
        3,
        "bf16 against fp32",
        "bf16 faster where the CPU has native bf16; vectors agree (cosine)",
        ["dtype", "texts/s", "speed-up over fp32", "min cosine to fp32"],
        [
            ["float32", len(texts) / fp32_seconds, 1.0, 1.0],
            ["bfloat16", len(texts) / bf16_seconds, fp32_seconds / bf16_seconds,
             min_cosine(results["bfloat16"][2], results["float32"][2])],
        ],
    )  # fmt: skip
    rows = []
    for dtype, torch_dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        engine, seconds, _ = results[dtype]
        achieved = forward_flops(engine, texts, instruction) / seconds
        peak = matmul_peak(torch_dtype, sizes.matmul, sizes.repeats)
        rows.append([dtype, achieved / 1e9, peak / 1e9, achieved / peak])
    report.add(
        "flops",
        6,
        "Achieved FLOP/s of the forward pass against the matmul peak measured in the same run",
        ">= 50% of the bf16 peak",
        ["dtype", "forward GFLOP/s", f"matmul {sizes.matmul}^3 GFLOP/s", "fraction of peak"],
        rows,
        timing=f"forward pass: section 3's {report.medians}; matmul: median of "
        f"{max(sizes.repeats, 3)} timed runs after a warm-up run",
    )


# --------------------------------------------------------------------------- 4. embed_many


def bench_embed_many(report: Report, engine: InBedder, sizes: Sizes) -> None:
    docs = documents(sizes.documents, engine, sizes.document_tokens)
    rows = []
    for k in (1, 2, 4, 8):
        instructions = INSTRUCTIONS[:k]
        separate = median_seconds(lambda q=instructions: [engine.embed(docs, i) for i in q], sizes.repeats)
        shared = median_seconds(lambda q=instructions: engine.embed_many(docs, q), sizes.repeats)
        many = engine.embed_many(docs, instructions)
        agreement = min(min_cosine(many[i], engine.embed(docs, i)) for i in instructions)
        rows.append([k, len(docs) * k / separate, len(docs) * k / shared, separate / shared, agreement])
    tokens = np.mean([len(engine.tokenizer(d)["input_ids"]) for d in docs])
    report.add(
        "embed_many",
        4,
        f"embed_many against K separate embed calls ({len(docs)} BBC documents of ~{tokens:.0f} tokens)",
        ">= 2.5x at K=4, >= 4x at K=8",
        ["K", "separate vectors/s", "embed_many vectors/s", "speed-up", "min cosine"],
        rows,
        params={"documents": len(docs), "tokens per document": float(tokens)},
    )


# --------------------------------------------------------------------------- 5. cache


def bench_cache(report: Report, sizes: Sizes) -> None:
    texts = short_texts(sizes.cache_texts)
    instruction = INSTRUCTIONS[0]
    cold_times, warm_times = [], []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(sizes.repeats):
            cache = EmbeddingCache(Path(folder) / f"cache-{repeat}.sqlite")
            engine = InBedder.from_pretrained("default", cache=cache)
            started = time.perf_counter()
            cold = engine.embed(texts, instruction)
            cold_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            warm = engine.embed(texts, instruction)
            warm_times.append(time.perf_counter() - started)
            assert warm.tobytes() == cold.tobytes()
            cache.close()
    cold_s, warm_s = statistics.median(cold_times), statistics.median(warm_times)
    report.add(
        "cache",
        5,
        f"Embedding cache warm against cold ({len(texts)} texts)",
        ">= 50x",
        ["run", "texts/s", "speed-up"],
        [
            ["cold (model)", len(texts) / cold_s, 1.0],
            ["warm (SQLite lookup)", len(texts) / warm_s, cold_s / warm_s],
        ],
        timing=CACHE_TIMING.format(repeats=sizes.repeats),
        params={"texts": len(texts)},
    )


# --------------------------------------------------------------------------- 7. memory at scale

#: Sections 5 and 7 are not timed like the others: said so in the JSON, under their titles.
CACHE_TIMING = (
    "median of {repeats} repeats, each on a new cache file: one cold pass (the model) then one warm "
    "pass (the same texts from the cache)"
)
STREAM_TIMING = "one run per size, each in a new process, timed after loading and a one-text warm-up"
SCALE_TARGET = (
    "RSS growth over the loaded model under 100 MB at every size, at its peak while streaming and "
    "at the end; time linear (time per text ratio ~1)"
)


def stream_child(n: int) -> None:
    """Run in a subprocess: stream ``n`` short texts, print seconds and resident memory as JSON.

    The process's peak RSS is set by loading the model, so the peak is reset after loading
    (``/proc/self/clear_refs``) and what streaming adds is measured over the loaded model: at its
    peak (VmHWM) and at the end (VmRSS).
    """
    engine = InBedder.from_pretrained("default")
    engine.embed(["warm-up"], INSTRUCTIONS[0])
    loaded_rss = _memory_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    started = time.perf_counter()
    count = 0
    texts = (text for text in short_texts(n, words=6))
    for _, vectors in engine.embed_stream(texts, INSTRUCTIONS[0], chunk_size=1024):
        count += len(vectors[INSTRUCTIONS[0]])
    seconds = time.perf_counter() - started
    result = {"n": count, "seconds": seconds, "loaded_rss_mb": loaded_rss}
    growth = {
        "peak_growth_mb": _memory_mb("VmHWM") - loaded_rss,
        "growth_mb": _memory_mb("VmRSS") - loaded_rss,
    }
    print(json.dumps({**result, **growth}))


def _memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (section 7 needs Linux)")


def bench_scale(report: Report, sizes: Sizes) -> None:
    rows = []
    for n in sizes.rss_sizes:
        output = subprocess.run(
            [sys.executable, __file__, "--stream-child", str(n)], capture_output=True, text=True, check=True
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        rows.append([n, result["seconds"], n / result["seconds"], result["loaded_rss_mb"]])
        rows[-1] += [result["peak_growth_mb"], result["growth_mb"]]
    first = rows[0]
    for row in rows:
        row.append(row[1] / first[1] / (row[0] / first[0]))
    report.add(
        "scale",
        7,
        "Streaming 6-word texts: resident memory and time by corpus size (one process each)",
        SCALE_TARGET,
        [
            "texts",
            "seconds",
            "texts/s",
            "RSS after loading MB",
            "peak RSS growth while streaming MB",
            "RSS growth while streaming MB",
            "time per text vs smallest",
        ],
        rows,
        timing=STREAM_TIMING,
    )


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs, not speed")
    parser.add_argument(
        "--output",
        default=None,
        help="markdown report, its JSON beside it (default: docs/performance.md, and every docs "
        "page's figures are re-rendered from the new docs/performance.json; with --quick, a "
        "temporary folder: quick figures never reach the docs)",
    )
    parser.add_argument("--stream-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stream_child is not None:
        stream_child(args.stream_child)
        return
    sizes = QUICK if args.quick else Sizes()
    started = time.perf_counter()
    engine = InBedder.from_pretrained("default")
    report = Report(repeats=sizes.repeats)
    bench_original(report, engine, sizes)
    bench_sentence_transformers(report, engine, sizes)
    bench_dtypes(report, sizes)
    bench_embed_many(report, engine, sizes)
    bench_cache(report, sizes)
    bench_scale(report, sizes)
    results = {
        "command": "python benchmarks/run.py" + (" --quick" if args.quick else ""),
        "seconds": time.perf_counter() - started,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}",
        "cpu": _cpu_name(),
        "native_bf16": cpu_has_native_bf16(),
        "dtype": engine.dtype,
        "model": f"{engine.model_name} + the shipped adapter",
        "repeats": sizes.repeats,
        "quick": args.quick,
        "sections": report.sections,
        "results": report.results,
    }
    if args.output is None and args.quick:
        args.output = str(Path(tempfile.mkdtemp(prefix="inbedder-benchmark-")) / "performance.md")
    output = Path(args.output) if args.output else ROOT / "docs" / "performance.md"
    output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.output is None:
        render_docs.write(ROOT, results)
    else:
        page = output.read_text(encoding="utf-8") if output.exists() else render_docs.PERFORMANCE_SKELETON
        output.write_text(render_docs.render_text(page, results), encoding="utf-8")
    print(f"\nwrote {output} and {output.with_suffix('.json')} in {results['seconds']:.0f} s")


def _cpu_name() -> str | None:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


if __name__ == "__main__":
    main()
