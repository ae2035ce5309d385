"""Reopening an inbedder collection in a fresh process (issue 37, item 6), as docs/chroma.md says.

Chroma finds a persisted embedding function by name in a registry that fills as classes are
imported (chromadb 1.x has no entry point for it), so a fresh process that has not imported
``inbedder_integrations.chroma`` opens the collection but fails on its first query.  Each case
runs in a real subprocess: this test process has long since imported the package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import chromadb
import pytest

from inbedder_integrations.chroma import open_collection
from tests.conftest import FLOAT32

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "What is the topic of this text?"
TEXTS = ["The striker scored twice in the cup final.", "Shares fell after the bank cut its forecast."]
#: Chroma's own words, quoted in docs/chroma.md.
NOT_FOUND = "Embedding function inbedder not found"

FRESH = """
import json, sys
import chromadb
{imports}
collection = chromadb.PersistentClient(path=sys.argv[1]).get_collection("news")
print(json.dumps(collection.query(query_texts=["football"], n_results=1)["documents"]))
print(json.dumps("inbedder_integrations" in sys.modules))
"""


def _fresh(path: Path, imports: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = FRESH.format(imports=imports)
    return subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reopen")
    client = chromadb.PersistentClient(path=str(path))
    open_collection(client, "news", instruction=TOPIC, model_kwargs=FLOAT32).add(
        ids=["a", "b"], documents=TEXTS
    )
    return path


def test_the_documented_failure_is_chromas_message(store):
    assert NOT_FOUND in (ROOT / "docs" / "chroma.md").read_text()
    for imports in ("", "import inbedder_integrations  # lazy: registers nothing"):
        result = _fresh(store, imports)
        assert result.returncode != 0
        assert NOT_FOUND in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_a_fresh_process_that_imports_the_chroma_module_queries(store):
    result = _fresh(store, "import inbedder_integrations.chroma  # registers 'inbedder' with Chroma")
    assert result.returncode == 0, result.stderr[-2000:]
    documents, imported = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    assert documents == [[TEXTS[0]]] and imported is True
