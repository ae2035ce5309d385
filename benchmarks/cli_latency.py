"""How fast the CLI answers: ``inbedder --help``, a second ``inbedder search`` with and without
``--server``, and ``inbedder cluster`` on 200 BBC articles under its 3 instructions.

    python benchmarks/cli_latency.py           # writes docs/cli_latency.json, re-renders the docs
    python benchmarks/cli_latency.py --quick   # tiny sizes into a temporary file: checks it runs
    python benchmarks/cli_latency.py --messages-only   # section 4 alone: docs/results/cli_cluster_messages.*

1. ``inbedder --help``: the process's wall time, median of 5.
2. ``inbedder search``: a corpus of BBC articles indexed in an embedded Chroma store; the
   same search run twice without ``--server`` (each run loads the model) and twice with
   ``--server`` against a real ``inbedder serve`` process; the second run of each counts.
3. ``inbedder cluster``: in one process, the 200 texts embedded as the command did before
   (one ``embed`` pass per instruction) against one ``embed_many`` pass, alternately, no
   cache; then the whole command, with a fresh cache file and again with the same file.
   ``--before``: also the whole command of commit ``BEFORE`` (a git worktree), no cache.
4. ``inbedder cluster messages --limit 30`` (the hand-written customer messages) under its two
   questions, before (commit ``MESSAGES_BEFORE``, naming uncached, a git worktree) and after, each
   cold (a fresh cache file) and warm (the same file again), and after with ``--no-names -k 5``.
   Naming's share: after, the report's own stage times (answers for k and naming, over the
   command's wall time); before, (warm wall - the warm ``--no-names`` wall) / warm wall, since its
   warm run pays for the model, the cached vectors and the naming only.

Every figure is a wall time measured in this run, on this machine (see ``cpu``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import torch

from inbedder_integrations import InBedder
from inbedder_integrations.clustering import BBC_INSTRUCTIONS, MESSAGES_INSTRUCTIONS, load_corpus
from inbedder_integrations.corpus import InstructedCorpus, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import render_docs  # noqa: E402
from run import _cpu_name  # noqa: E402

#: The last commit whose ``inbedder cluster`` embedded one instruction at a time.
BEFORE = "e37ae1e"
#: The last commit before naming was cached and k chosen from the answers (issue 37).
MESSAGES_BEFORE = "2b85375"
MESSAGES_LIMIT = 30
TOPIC = BBC_INSTRUCTIONS[0]
MESSAGES_QUESTIONS = MESSAGES_INSTRUCTIONS
CLI = [sys.executable, "-m", "inbedder_integrations.cli"]


def wall(command: Sequence[str], **kwargs: Any) -> float:
    """Seconds ``command`` took to exit (it must succeed)."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return seconds


def help_seconds(repeats: int = 5) -> float:
    return statistics.median(wall([*CLI, "--help"]) for _ in range(repeats))


def search_seconds(folder: Path, texts: int) -> dict[str, Any]:
    """The second of two ``inbedder search`` runs, without and with ``--server``."""
    store = folder / "store"
    corpus = InstructedCorpus(connect(str(store)), "bbc", cache=False)
    corpus.index(load_corpus("bbc", limit=texts).texts, [TOPIC])
    search = [*CLI, "search", "bbc", "interest rates", "--instruction", TOPIC, "--path", str(store)]
    local = [wall([*search, "--no-cache"]) for _ in range(2)]
    port = _free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--instruction", f"topic={TOPIC}", "--port", str(port), "--no-cache"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_healthy(url, server)
        remote = [wall([*search, "--server", url]) for _ in range(2)]
    finally:
        server.terminate()
        server.wait(60)
    return {
        "corpus texts": texts, "without --server s": round(local[1], 2),
        "with --server s": round(remote[1], 2), "first runs s": [round(local[0], 2), round(remote[0], 2)],
        "speed-up": round(local[1] / remote[1], 1),
    }  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not start")


def embedding_passes(texts: list[str], instructions: list[str]) -> dict[str, Any]:
    """The command's embedding before (one pass per instruction) and now (one embed_many)."""
    engine = InBedder.from_pretrained("default", cache=False)
    started = time.perf_counter()
    for instruction in instructions:
        engine.embed(texts, instruction)
    separate = time.perf_counter() - started
    started = time.perf_counter()
    engine.embed_many(texts, instructions)
    joint = time.perf_counter() - started
    return {
        "dtype": engine.dtype, "separate embed passes s": round(separate, 1),
        "one embed_many s": round(joint, 1), "speed-up": round(separate / joint, 2),
    }  # fmt: skip


def cluster_command(folder: Path, limit: int, *, before: bool) -> dict[str, Any]:
    """The whole ``inbedder cluster bbc`` with a fresh cache, again with it, and (``before``)
    the old tree's command without a cache."""
    cache = folder / "cluster-cache.sqlite"
    command = [*CLI, "cluster", "bbc", "--limit", str(limit), "--output", str(folder / "report")]
    cold = wall([*command, "--cache-path", str(cache)])
    warm = wall([*command, "--cache-path", str(cache)])
    result: dict[str, Any] = {"cold cache s": round(cold, 1), "warm cache s": round(warm, 1)}
    if before:
        result[f"commit {BEFORE} s"] = round(_old_cluster(folder, limit), 1)
        result["speed-up, cold"] = round(result[f"commit {BEFORE} s"] / cold, 2)
    return result


def _old_cluster(folder: Path, limit: int) -> float:
    tree = folder / "before"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), BEFORE], check=True
    )
    try:
        command = [
            *CLI,
            "cluster",
            "bbc",
            "--limit",
            str(limit),
            "--output",
            str(folder / "old"),
            "--no-cache",
        ]
        return wall(command, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


def _cluster_run(command: list[str], output: Path, **kwargs: Any) -> dict[str, Any]:
    """One ``inbedder cluster`` run: its wall time and, where the report has them, its stage times."""
    seconds = wall(command, **kwargs)
    saved = json.loads((output / "clusters.json").read_text(encoding="utf-8"))
    run: dict[str, Any] = {"wall s": round(seconds, 1), "k": [r["k"] for r in saved["results"]]}
    if "seconds" in saved:
        stages = saved["seconds"]
        asking = stages.get("sample answers", 0.0) + stages.get("naming", 0.0)
        run |= {"stages s": stages, "answers": saved["answers"], "answers share": round(asking / seconds, 3)}
    return run


def cluster_messages(folder: Path) -> dict[str, Any]:
    """Section 4: the messages under two questions, before and after, cold and warm."""
    base = ["cluster", "messages", "--limit", str(MESSAGES_LIMIT), "--dtype", "float32"]
    after: dict[str, Any] = {}
    for name, extra, cache in (
        ("cold", [], "after.sqlite"), ("warm", [], "after.sqlite"),
        ("no names, cold", ["--no-names", "-k", "5"], "nonames.sqlite"),
        ("no names, warm", ["--no-names", "-k", "5"], "nonames.sqlite"),
    ):  # fmt: skip
        output = folder / f"after-{name.replace(', ', '-').replace(' ', '-')}"
        command = [*CLI, *base, *extra, "--output", str(output), "--cache-path", str(folder / cache)]
        after[name] = _cluster_run(command, output)
    tree = folder / "messages-before"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), MESSAGES_BEFORE], check=True
    )
    before: dict[str, Any] = {}
    try:
        corpus = folder / "messages.jsonl"  # the old tree has no built-in "messages"
        _write_messages(corpus)
        env = {**os.environ, "PYTHONPATH": str(tree)}
        for name in ("cold", "warm"):
            output = folder / f"before-{name}"
            command = [*CLI, "cluster", str(corpus), "--dtype", "float32", "--output", str(output),
                       "--cache-path", str(folder / "before.sqlite"),
                       *(x for q in MESSAGES_QUESTIONS for x in ("--instruction", q))]  # fmt: skip
            before[name] = _cluster_run(command, output, env=env, cwd=tree)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    plain = after["no names, warm"]["wall s"]
    before["naming share, warm (estimate)"] = round(
        (before["warm"]["wall s"] - plain) / before["warm"]["wall s"], 3
    )
    return {"texts": MESSAGES_LIMIT, "questions": list(MESSAGES_QUESTIONS), "before": before, "after": after}


def _write_messages(path: Path) -> None:
    """The same sample ``load_corpus("messages", limit=...)`` takes, as JSONL for the old tree."""
    corpus = load_corpus("messages", limit=MESSAGES_LIMIT)
    rows = zip(corpus.texts, corpus.labels or [], strict=True)
    path.write_text(
        "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8"
    )


def messages_markdown(result: dict[str, Any]) -> str:
    """The table docs/recipes.md quotes."""
    lines = [
        "| tree | run | wall s | answers computed / from cache | answers' share of the wall time |",
        "|---|---|---:|---:|---:|",
    ]
    for tree in ("before", "after"):
        for name, run in result[tree].items():
            if not isinstance(run, dict):
                continue
            answers = run.get("answers")
            counts = f"{answers['computed']} / {answers['from cache']}" if answers else "not recorded"
            share = f"{run['answers share']:.0%}" if "answers share" in run else "-"
            lines.append(f"| {tree} | {name} | {run['wall s']:.1f} | {counts} | {share} |")
    estimate = result["before"].get("naming share, warm (estimate)")
    lines.append("")
    lines.append(
        f"Before, naming's share of the warm run (estimated as described in the script): {estimate:.0%}."
    )
    return "\n".join(lines) + "\n"


def messages_only() -> None:
    """Section 4 alone, into docs/results/cli_cluster_messages.{json,md}."""
    folder = Path(tempfile.mkdtemp(prefix="inbedder-cli-messages-"))
    started = time.perf_counter()
    try:
        result = {
            "command": "python benchmarks/cli_latency.py --messages-only",
            "cpu": _cpu_name(), "torch threads": torch.get_num_threads(),
            "load average at start": os.getloadavg()[0],
            "cluster messages": cluster_messages(folder),
        }  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result["load average at end"] = os.getloadavg()[0]
    result["total seconds"] = round(time.perf_counter() - started, 1)
    target = ROOT / "docs" / "results" / "cli_cluster_messages.json"
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    target.with_suffix(".md").write_text(messages_markdown(result["cluster messages"]), encoding="utf-8")
    print(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs, not speed")
    parser.add_argument("--before", action="store_true", help=f"also run commit {BEFORE}'s cluster command")
    parser.add_argument("--output", default=None, help="default: docs/cli_latency.json")
    parser.add_argument("--messages-only", action="store_true", help="section 4 alone (see above)")
    args = parser.parse_args(argv)
    if args.messages_only:
        messages_only()
        return
    limit = 12 if args.quick else 200
    folder = Path(tempfile.mkdtemp(prefix="inbedder-cli-latency-"))
    texts, instructions = load_corpus("bbc", limit=limit).texts, list(BBC_INSTRUCTIONS)
    started = time.perf_counter()
    try:
        results = {
            "command": "python benchmarks/cli_latency.py" + (" --quick" if args.quick else "")
            + (" --before" if args.before else ""),
            "cpu": _cpu_name(), "torch threads": torch.get_num_threads(),
            "help s": round(help_seconds(), 2),
            "search": search_seconds(folder, 12 if args.quick else 40),
            "cluster texts": limit, "cluster instructions": len(BBC_INSTRUCTIONS),
            "cluster embedding": embedding_passes(texts, instructions),
            "cluster command": cluster_command(folder, limit, before=args.before),
        }  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results["total seconds"] = round(time.perf_counter() - started, 1)
    output = Path(args.output) if args.output else None
    if output is None and args.quick:
        output = Path(tempfile.mkdtemp(prefix="inbedder-cli-")) / "cli_latency.json"
    target = output or ROOT / "docs" / "cli_latency.json"
    target.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if output is None:
        render_docs.write(ROOT)
    print(json.dumps(results, indent=2))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
