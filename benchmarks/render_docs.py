"""Every performance figure in the docs, rendered from docs/performance.json (written by run.py).

    python benchmarks/render_docs.py           # rewrite the generated blocks from the JSON
    python benchmarks/render_docs.py --check   # exit 1 if a block is stale or a page quotes a
                                               # performance figure outside a generated block

A generated block is the text between

    <!-- figures:begin NAME -->
    <!-- figures:end -->

on a page of docs/ (or README.md); NAME is a key of ``BLOCKS``.  Text outside the blocks is
never touched.  Standard library only, so the check runs without torch or the model.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
JSON_PATH = ROOT / "docs" / "performance.json"

BLOCK = re.compile(
    r"(?P<begin><!-- figures:begin (?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<end><!-- figures:end -->)",
    re.DOTALL,
)
#: Pages whose figures are not performance figures (training and evaluation runs); not scanned.
NOT_SCANNED = ("docs/training.md", "docs/evaluation.md")
#: What a performance figure looks like: a speed or memory ratio (2.9x), a throughput (59 texts/s),
#: a fraction of a peak (56% of the bf16 matmul peak) or a FLOP rate (912 GFLOP/s).
PERFORMANCE_FIGURE = re.compile(
    r"\b\d+(?:\.\d+)?x\b"
    r"|\d[\d,]*(?:\.\d+)?\s*(?:texts|vectors|documents|docs|tokens)/s\b"
    r"|\d+(?:\.\d+)?%\s+of\b[^\n]{0,60}?\bpeak\b"
    r"|\d[\d,]*(?:\.\d+)?\s*[GT]FLOP/s"
)
PERFORMANCE_SKELETON = (
    "# Performance\n\n<!-- figures:begin performance-header -->\n<!-- figures:end -->\n\n"
    "<!-- figures:begin performance-tables -->\n<!-- figures:end -->\n"
)

# Inputs of the derived estimates in docs/scaling.md (counts and spec-sheet peaks, not measurements).
#: FLOPs of one ~500-token BBC article under 2 instructions through embed_many (default model).
ARTICLE_GFLOP = 123
#: Dense bf16 peaks of three GPUs, TFLOP/s.
GPU_PEAKS = (("L4", 121), ("A100", 312), ("H100", 989))
#: Model, weights in linear layers, GFLOP per 256-token document under 2 instructions (embed_many).
CHECKPOINT_GFLOP = (
    ("`default` (SmolLM2-135M + adapter)", "106M", 66),
    ("`BrandonZYW/opt-350m-InBedder`", "302M", 182),
    ("`BrandonZYW/opt-1.3b-InBedder`", "1,208M", 721),
    ("`BrandonZYW/opt-2.7b-InBedder`", "2,517M", 1499),
    ("`BrandonZYW/llama-2-7b-InBedder`", "6,476M", 3844),
)


# --------------------------------------------------------------------------- formatting


def cell(value: Any) -> str:
    """A table cell: 4 decimals under 1, 2 above."""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows])


def wrap(markdown: str, width: int = 100) -> str:
    """Prose paragraphs wrapped at ``width``; tables and headings as they are."""
    paragraphs = markdown.split("\n\n")
    return "\n\n".join(
        part
        if part.startswith(("|", "#"))
        else textwrap.fill(part, width, break_long_words=False, break_on_hyphens=False)
        for part in paragraphs
    )


SHORT = {"float32": "fp32", "bfloat16": "bf16"}


def faster(*speed_ups: float) -> str:
    """Speed-ups in words: '2.87x faster', '2.92x / 4.40x faster', or '2.70x slower' below 1."""
    if all(value >= 1 for value in speed_ups):
        return " / ".join(ratio(value) for value in speed_ups) + " faster"
    if all(value < 1 for value in speed_ups):
        return " / ".join(ratio(1 / value) for value in speed_ups) + " slower"
    return " / ".join(faster(value) for value in speed_ups)


def ratio(value: float) -> str:
    return f"{value:.0f}x" if value >= 100 else f"{value:.2f}x"


def percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def at_least(value: float) -> str:
    """A cosine as a lower bound: rounded down, so '>= 0.9998' stays true."""
    return f"{math.floor(value * 1e4) / 1e4:.4f}"


# --------------------------------------------------------------------------- reading the JSON


def load(path: Path = JSON_PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def row(data: dict[str, Any], section: str, column: str, value: Any) -> dict[str, Any]:
    """The row of ``section`` whose ``column`` is ``value``."""
    for candidate in data["results"][section]:
        if candidate[column] == value:
            return candidate
    raise KeyError(f"performance.json: no row with {column}={value!r} in section {section!r}")


def machine(data: dict[str, Any]) -> str:
    """Where and in which dtype the figures were measured, in words."""
    cpu = f"{data['cpu']}, " if data.get("cpu") else ""
    bf16 = "with native bf16" if data["native_bf16"] else "without native bf16"
    return f'{cpu}{data["machine"]}, a CPU {bf16}, so `dtype="auto"` ran {data["dtype"]}'


def section_markdown(number: int, section: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0]) if rows else []
    return "\n\n".join(
        [
            f"### {number}. {section['title']}",
            f"Target: {section['target']}",
            f"Timing: {section['timing']}",
            table(columns, [[r.get(column, "") for column in columns] for r in rows]),
            *([section["note"]] if section.get("note") else []),
        ]
    )


# --------------------------------------------------------------------------- the blocks


def performance_header(data: dict[str, Any]) -> str:
    quick = (
        " (`--quick`: tiny sizes that check every benchmark runs; these are not speed figures)"
        if data["quick"]
        else ""
    )
    return (
        f"Measured by `{data['command']}`{quick} in {data['seconds']:.0f} s on {machine(data)}; "
        f"default model ({data['model']}), dtype {data['dtype']} unless a row says otherwise. "
        "Every section ran side by side in this one run; how each is timed is said under its title. "
        'On another kind of CPU they differ (whether it has native bf16 decides what `dtype="auto"` '
        "runs; without it bf16 is emulated and slow): rerun the benchmark there."
    )


def performance_tables(data: dict[str, Any]) -> str:
    sections = sorted(data["sections"].items(), key=lambda item: item[1]["number"])
    return "\n\n".join(
        section_markdown(section["number"], section, data["results"][key]) for key, section in sections
    )


def engine_dtype(data: dict[str, Any]) -> str:
    fp32, bf16 = row(data, "dtype", "dtype", "float32"), row(data, "dtype", "dtype", "bfloat16")
    return (
        f"Measured by `benchmarks/run.py` on {machine(data)} ([performance.md](performance.md), "
        f"section {data['sections']['dtype']['number']}): {rate(bf16['texts/s'])} texts/s in bf16 "
        f"against {rate(fp32['texts/s'])} in fp32 (bf16 {faster(bf16['speed-up over fp32'])}), with "
        f"cosine between the two >= {at_least(bf16['min cosine to fp32'])}."
    )


def engine_fast_paths(data: dict[str, Any]) -> str:
    many = {k: row(data, "embed_many", "K", k)["speed-up"] for k in (4, 8)}
    warm = row(data, "cache", "run", "warm (SQLite lookup)")["speed-up"]
    bf16 = row(data, "dtype", "dtype", "bfloat16")
    st = row(data, "sentence_transformers", "path", "sentence-transformers, batch 32")
    paper = [row(data, "original", "path", f"paper's encoder, max_new_tokens={n}") for n in (3, 20)]
    generated = [r["mean tokens generated"] for r in paper]
    flops = {SHORT[r["dtype"]]: r["fraction of peak"] for r in data["results"]["flops"]}
    ran, other = SHORT[data["dtype"]], next(name for name in flops if name != SHORT[data["dtype"]])
    tokens = data["sections"]["embed_many"]["params"]["tokens per document"]
    why = (
        "the trained model's answers end at EOS, so 20 costs little more than 3"
        if generated[1] < 10
        else "20 are generated at their full length"
    )
    return (
        f"Measured on {machine(data)} (`benchmarks/run.py`; every number, and the targets, in "
        f"[performance.md](performance.md)): `embed_many` is {faster(many[4])} than separate calls at "
        f"K=4 and {faster(many[8])} at K=8 on ~{tokens:.0f}-token documents; a warm cache is "
        f"{faster(warm)} than the model; bf16 is {faster(bf16['speed-up over fp32'])} than fp32 "
        f"(cosine >= {at_least(bf16['min cosine to fp32'])}); the engine is "
        f"{faster(st['engine speed-up'])} than sentence-transformers running the same model, prompt "
        f"and last-token pooling (cosine >= {at_least(st['min cosine to engine'])}), and "
        f"{faster(*(r['engine speed-up'] for r in paper))} than the "
        f"paper's encoder with `max_new_tokens` 3 / 20 ({generated[0]:.1f} / {generated[1]:.1f} tokens "
        f"generated per text on average: {why}). The forward pass reaches {percent(flops[ran])} of "
        f"the {ran} matmul peak measured in the same run ({percent(flops[other])} in {other}). "
        + streaming(data)
    )


PEAK_GROWTH = "peak RSS growth while streaming MB"


def streaming(data: dict[str, Any]) -> str:
    rows = data["results"]["scale"]
    first, last = rows[0], rows[-1]
    growth = [r["RSS growth while streaming MB"] for r in rows]
    peaks = [r[PEAK_GROWTH] for r in rows if PEAK_GROWTH in r]
    peak = f", {max(peaks):.0f} MB at its peak" if peaks else ""
    slowdown = last["time per text vs smallest"]
    if abs(slowdown - 1) <= 0.1:
        time = f"time per text at {last['texts']:,} is {ratio(slowdown)} that at {first['texts']:,} (linear)"
    else:
        time = (
            f"time per text at {last['texts']:,} was {ratio(slowdown)} that at {first['texts']:,} "
            f"({rate(last['texts/s'])} against {rate(first['texts/s'])} texts/s; one run per size), "
            "so time did not grow linearly in that run"
        )
    return (
        f"Streaming {first['texts']:,} to {last['texts']:,} short texts adds at most {max(growth):.0f} MB "
        f"to the loaded model's resident memory{peak}, whatever the count; {time}."
    )


def scaling_prediction(data: dict[str, Any]) -> str:
    ran = row(data, "flops", "dtype", data["dtype"])
    peak_gflops = next(value for key, value in ran.items() if key.startswith("matmul"))
    predicted = ran["fraction of peak"] * peak_gflops / ARTICLE_GFLOP
    return (
        f"The FLOP count predicts this measurement roughly: about {ARTICLE_GFLOP} GFLOP per article "
        f"with 2 instructions, at the {percent(ran['fraction of peak'])} of the {peak_gflops:.0f} "
        f"GFLOP/s {SHORT[data['dtype']]} matmul peak that the benchmark's forward pass reached "
        f"({where(data, 'flops')}), gives {predicted:.1f} documents/s, against the 2 x 1 row above "
        "(whose wall time also includes each actor loading the model, and the Chroma upserts)."
    )


def where(data: dict[str, Any], section: str) -> str:
    """A short pointer to a figure's machine: the dtype, and the section that says the rest."""
    bf16 = "with" if data["native_bf16"] else "without"
    number = data["sections"][section]["number"]
    return f"{data['dtype']}, on a CPU {bf16} native bf16: [performance.md](performance.md) section {number}"


def scaling_capacity(data: dict[str, Any]) -> str:
    efficiency = row(data, "flops", "dtype", data["dtype"])["fraction of peak"]
    peaks = ", ".join(f"{peak} ({name})" for name, peak in GPU_PEAKS[:-1])
    rows = [
        [name, weights, f"{gflop:,}"] + [f"{efficiency * peak * 1000 / gflop:,.0f}" for _, peak in GPU_PEAKS]
        for name, weights, gflop in CHECKPOINT_GFLOP
    ]
    columns = ["model", "weights in linear layers", "GFLOP per document"]
    return (
        f"Efficiency is the {percent(efficiency)} of the matmul peak that the engine's forward pass "
        f"reached in the benchmark ({where(data, 'flops')}), applied to peaks of {peaks} and "
        f"{GPU_PEAKS[-1][1]} ({GPU_PEAKS[-1][0]} SXM) TFLOP/s.\n\n"
        + table(columns + [f"{name} docs/s" for name, _ in GPU_PEAKS], rows)
    )


SERVING_JSON = ROOT / "docs" / "serving.json"


def serving_benchmark(data: dict[str, Any]) -> str:
    """docs/serving.md's figures, from docs/serving.json (written by benchmarks/serving.py, not
    run.py: ``data`` is performance.json's, taken only because every block is called with it)."""
    serving = json.loads(SERVING_JSON.read_text(encoding="utf-8"))
    batched, single = serving["load"]["dynamic batching"], serving["load"]["one request at a time"]
    speed_up, bound = serving["batching speed-up"], serving["engine batching"]
    checked = sum(mode["answered"] for mode in serving["load"].values())
    wrong = sum(mode["wrong"] + mode["lost"] for mode in serving["load"].values())
    return (
        f"Measured by `{serving['command']}` on {serving.get('cpu') or 'an unnamed CPU'} "
        f"({serving['dtype']}, {serving['torch threads']} torch threads, no cache): "
        f"{serving['clients']} concurrent clients, each sending single texts for "
        f"{serving['seconds per mode']:.0f} s, got {rate(batched['texts/s'])} texts/s with dynamic "
        f"batching (p50 {batched['p50 s']:.2f} s, p99 {batched['p99 s']:.2f} s) against "
        f"{rate(single['texts/s'])} texts/s served one request at a time (p50 {single['p50 s']:.2f} s, "
        f"p99 {single['p99 s']:.2f} s): {ratio(speed_up)} (target: at least 3x, "
        f"{'met' if speed_up >= 3 else 'not met on this CPU'}). What bounds it is the engine: "
        f"in-process, one `embed` of {bound['texts']} single texts took {bound['one call s']:.2f} s "
        f"against {bound['one call per text s']:.2f} s for one call per text, {ratio(bound['speed-up'])}; "
        f"{_auto_bound(serving)}a server that batched perfectly would gain no more than that, and the "
        "rest of its gain is the per-request cost (HTTP, JSON, the clients themselves on the same "
        "cores) that batching spreads over many texts. "
        f"{_overheads(serving)} All {checked:,} answers were compared with the engine's vectors: "
        f"{wrong} wrong or lost."
    )


def _auto_bound(serving: dict[str, Any]) -> str:
    auto = serving.get("engine batching, dtype auto")
    if not auto:
        return ""
    seconds = f"{auto['one call s']:.2f} s against {auto['one call per text s']:.2f} s"
    return f"in {auto['dtype']}, {ratio(auto['speed-up'])} ({seconds}); "


def _overheads(serving: dict[str, Any]) -> str:
    """The server's overhead per batch size, now and at the commit before tokenising once."""
    before = serving.get("overhead before tokenising once") or {}
    parts = []
    for size, now in serving["overhead"].items():
        text = "text" if size == "1" else "texts"
        part = (
            f"{size} {text}: {now['over HTTP s']:.3f} s over HTTP against {now['in-process s']:.3f} s "
            f"in-process, {percent(now['overhead'])} (from {percent(now['overhead range'][0])} to "
            f"{percent(now['overhead range'][1])})"
        )
        if size in before:
            then = percent(before[size]["overhead"])
            part += f"; at commit {serving['before commit']}, which tokenised twice: {then}"
        parts.append(part)
    worst = max(now["overhead"] for now in serving["overhead"].values())
    return (
        "The server's overhead, HTTP over in-process `engine.embed` of the same batch (the median of "
        f"{next(iter(serving['overhead'].values()))['repeats']} paired runs): "
        + "; ".join(parts)
        + f" (target: at most 15%, {'met' if worst <= 0.15 else 'not met'})."
    )


CLI_JSON = ROOT / "docs" / "cli_latency.json"


def cli_latency(data: dict[str, Any]) -> str:
    """docs/recipes.md's CLI figures, from docs/cli_latency.json (benchmarks/cli_latency.py)."""
    cli = json.loads(CLI_JSON.read_text(encoding="utf-8"))
    search, passes, command = cli["search"], cli["cluster embedding"], cli["cluster command"]
    before = next((key for key in command if key.startswith("commit ")), None)
    old = (
        f" At {before.removesuffix(' s')}, before this change, the whole command took "
        f"{command[before]:.0f} s (no cache): today's cold run is {ratio(command['speed-up, cold'])} "
        "faster."
        if before
        else ""
    )
    return (
        f"Measured by `{cli['command']}` on {cli.get('cpu') or 'an unnamed CPU'} "
        f"({cli['torch threads']} torch threads): `inbedder --help` answers in {cli['help s']:.2f} s. "
        f"A second `inbedder search` over {search['corpus texts']} BBC articles took "
        f"{search['without --server s']:.1f} s loading the model and {search['with --server s']:.1f} s "
        f"with `--server` against a running `inbedder serve` ({search['speed-up']:.0f}x). "
        f"`inbedder cluster bbc --limit {cli['cluster texts']}` under its {cli['cluster instructions']} "
        f"instructions ({passes['dtype']}): embedding one pass per instruction, as the command did, took "
        f"{passes['separate embed passes s']:.0f} s against {passes['one embed_many s']:.0f} s for the one "
        f"`embed_many` pass it runs now ({ratio(passes['speed-up'])}); the whole command took "
        f"{command['cold cache s']:.0f} s with an empty cache and {command['warm cache s']:.0f} s when run "
        f"again (the vectors come from the cache; naming still asks the model).{old}"
    )


HOSTILE_JSON = ROOT / "docs" / "hostile_clients.json"


def hostile_clients(data: dict[str, Any]) -> str:
    """docs/reliability.md's hostile-client table, from docs/hostile_clients.json (written by
    benchmarks/hostile_clients.py; ``data`` is performance.json's and unused here)."""
    hostile = json.loads(HOSTILE_JSON.read_text(encoding="utf-8"))
    rows = [
        [
            row["what"],
            row["count"],
            ", ".join(f"{outcome} x{count}" for outcome, count in row["outcomes"].items()),
            "" if row["slowest s"] is None else f"{row['slowest s']:.2f} s",
            row["texts embedded"],
        ]
        for row in hostile["rows"]
    ]
    timeouts, threads = hostile["timeouts s"], hostile["torch threads"]
    return (
        f"Sent by `{hostile['command']}` to real servers on 127.0.0.1 (the default model, fp32, "
        f"{threads} torch thread{'s' * (threads != 1)}, on {hostile['cpu']}, "
        f"{'with' if hostile['native bf16'] else 'without'} native bf16); the slow clients went to a "
        f"server with header, body and keep-alive timeouts of {timeouts['header']:g} s and "
        f"`max_connections` 32.\n\n"
        + table(["sent", "how many", "answers", "slowest", "texts embedded"], rows)
    )


BLOCKS: dict[str, Callable[[dict[str, Any]], str]] = {
    "serving-benchmark": serving_benchmark,
    "hostile-clients": hostile_clients,
    "cli-latency": cli_latency,
    "performance-header": performance_header,
    "performance-tables": performance_tables,
    "engine-dtype": engine_dtype,
    "engine-fast-paths": engine_fast_paths,
    "scaling-prediction": scaling_prediction,
    "scaling-capacity": scaling_capacity,
}


# --------------------------------------------------------------------------- pages


def pages(root: Path = ROOT) -> list[tuple[Path, str]]:
    """(page, text) for every docs page and the README."""
    candidates = [*sorted((root / "docs").glob("*.md")), root / "README.md"]
    return [(page, page.read_text(encoding="utf-8")) for page in candidates if page.exists()]


def render_text(text: str, data: dict[str, Any]) -> str:
    """``text`` with every generated block's body rendered from ``data``."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise KeyError(f"unknown figures block {name!r} (known: {', '.join(BLOCKS)})")
        return match["begin"] + wrap(BLOCKS[name](data).strip()) + "\n" + match["end"]

    return BLOCK.sub(replace, text)


def outside_blocks(text: str) -> str:
    """``text`` with every generated block's body blanked (line numbers kept)."""
    return BLOCK.sub(lambda m: m["begin"] + "\n" * m["body"].count("\n") + m["end"], text)


def stray_figures(text: str) -> list[tuple[int, str]]:
    """(line number, figure) for every performance figure outside a generated block."""
    found = []
    for number, line in enumerate(outside_blocks(text).splitlines(), start=1):
        found += [(number, match.group(0)) for match in PERFORMANCE_FIGURE.finditer(line)]
    return found


def problems(root: Path = ROOT, data: dict[str, Any] | None = None) -> list[str]:
    """Stale or unclosed blocks and performance figures outside blocks, one line each; empty if none."""
    data = load(root / "docs" / "performance.json") if data is None else data
    found = []
    for page, text in pages(root):
        name = page.relative_to(root).as_posix()
        if text.count("<!-- figures:begin ") != len(BLOCK.findall(text)):
            found.append(f"{name}: a figures:begin without its figures:end")
        if render_text(text, data) != text:
            found.append(f"{name}: a generated block differs from performance.json (run render_docs.py)")
        if name not in NOT_SCANNED:
            found += [
                f"{name}:{line}: {figure!r} outside a generated block (performance figures come from "
                "performance.json: render them in a block or link docs/performance.md)"
                for line, figure in stray_figures(text)
            ]
    return found


def write(root: Path = ROOT, data: dict[str, Any] | None = None) -> list[Path]:
    """Render every page's blocks in place; returns the pages that changed."""
    data = load(root / "docs" / "performance.json") if data is None else data
    changed = []
    for page, text in pages(root):
        rendered = render_text(text, data)
        if rendered != text:
            page.write_text(rendered, encoding="utf-8")
            changed.append(page)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on any problem")
    args = parser.parse_args(argv)
    if args.check:
        found = problems()
        print("\n".join(found) if found else "every performance figure is rendered from performance.json")
        return 1 if found else 0
    for page in write():
        print(f"rendered {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
