"""How long the default model's first load takes in a fresh process, cold and warm.

Cold: an empty conversion cache (``$INBEDDER_CACHE``), so the load converts the default model
once into a safetensors folder, as a new user's first run does.  Warm: the next fresh process,
which finds that folder.  Each run is a new ``python`` process that imports the package, loads
``InBedder.from_pretrained("default", dtype=...)`` and embeds one text; the wheel files are in
the OS page cache either way (this measures the package's work, not a cold disk).

    python benchmarks/first_load.py                      # writes docs/results/first_load.json
    python benchmarks/first_load.py --dtype bfloat16 --output first_load_bf16.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
from inbedder_integrations import InBedder
engine = InBedder.from_pretrained("default", dtype=sys.argv[1])
load_wall, load_cpu = time.perf_counter() - wall, time.process_time() - cpu
engine.embed(["Our team won the cup!"], "What is the topic of this text?")
print(json.dumps({
    "import + load wall s": round(load_wall, 2),
    "import + load cpu s": round(load_cpu, 2),
    "first embed wall s": round(time.perf_counter() - wall - load_wall, 2),
    "dtype": engine.dtype,
}))
"""


def one_run(cache: Path, dtype: str) -> dict[str, object]:
    env = {**os.environ, "INBEDDER_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, dtype], env=env, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    # CPU seconds are what an idle core would take; wall seconds grow with other jobs' load.
    return {"process wall s": round(wall, 2), "process cpu s": round(cpu, 2), **measured}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "results" / "first_load.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from inbedder_integrations.engine.loading import cpu_has_native_bf16

    with tempfile.TemporaryDirectory(prefix="inbedder-first-load-") as folder:
        cold = one_run(Path(folder), args.dtype)
        warm = one_run(Path(folder), args.dtype)
    report = {
        "command": "python benchmarks/first_load.py"
        + ("" if args.dtype == "float32" else f" --dtype {args.dtype}"),
        "cpu": cpu_name(),
        "native bf16": cpu_has_native_bf16(),
        "cores usable": len(os.sched_getaffinity(0)),
        "load average at start": round(os.getloadavg()[0], 1),
        "cold (empty conversion cache)": cold,
        "warm (converted folder cached)": warm,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
