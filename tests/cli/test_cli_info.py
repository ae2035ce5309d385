"""``inbedder info`` and ``inbedder cache info`` (issue 37, item 8): rows that line up, and sizes
in units that say something (434 vectors were "0.0 MB")."""

from __future__ import annotations

import numpy as np

from inbedder_integrations.cache import EmbeddingCache
from inbedder_integrations.cli import main
from inbedder_integrations.cli.embedding import human_bytes


def test_info_rows_line_up(engine, capsys, tmp_path):
    """Every colon in one column, the longest key ("answer_tokens", 13 letters) included."""
    main(["info", "--dtype", "float32", "--cache-path", str(tmp_path / "vectors.sqlite")])
    lines = capsys.readouterr().out.splitlines()
    keys = [line.partition(":")[0].strip() for line in lines]
    assert keys == list(engine.info()), lines
    assert {"answer_tokens", "input_layout"} <= set(keys)
    assert len({line.index(": ") for line in lines}) == 1 and lines[0].index(": ") == len("answer_tokens")


def test_cache_info_shows_a_small_cache_in_kb(tmp_path, capsys):
    path = tmp_path / "vectors.sqlite"
    cache = EmbeddingCache(path)
    texts = [f"text {i}" for i in range(434)]
    cache.put_many("k" * 16, "What is it?", texts, np.ones((434, 576), np.float32))
    main(["cache", "info", "--cache-path", str(path)])  # this process still holds the file open
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{path}: 434 vectors (999.9 KB of vectors), ")
    assert lines[0].endswith(" MB in the database") and "0.0 MB" not in lines[0], lines
    assert lines[1].startswith("limit 2.1 GB;")
    assert lines[2] == f"  {'k' * 16}: 434 vectors, 1 instruction"


def test_human_bytes_picks_the_unit():
    assert [human_bytes(n) for n in (0, 999, 1000, 999_936, 10**6, 2 * 10**9)] == [
        "0 B", "999 B", "1.0 KB", "999.9 KB", "1.0 MB", "2.0 GB"
    ]  # fmt: skip
