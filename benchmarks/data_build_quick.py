"""How long ``inbedder data build --quick`` takes: the command once, in a fresh process.

    taskset -c 1 python benchmarks/data_build_quick.py   # writes docs/data_build_quick.json

Records the wall time, the CPU time of the process (user + system: what the build costs on a
core of its own, whatever else the machine runs), the load average around it, and the rows
written (from the build's provenance file).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "data_build_quick.json"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "qa-quick.jsonl.gz"
        command = [sys.executable, "-m", "inbedder_integrations.cli", "data", "build", "--quick",
                   "--output", str(target)]  # fmt: skip
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        provenance = json.loads(Path(f"{target}.provenance.json").read_text())
    result = {
        "command": "inbedder data build --quick",
        "rows": provenance["rows"],
        "per_family": provenance["per_family"],
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "load_average_before": round(load_before, 1),
        "load_average_after": round(os.getloadavg()[0], 1),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    OUTPUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
