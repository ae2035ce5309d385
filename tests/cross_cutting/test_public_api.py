"""The public API: declared in every module, re-exported lazily from the package root."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import inbedder_integrations

FRAMEWORKS = ("torch", "transformers", "langchain_core", "llama_index", "chromadb", "ray")
MODULES = sorted(
    module.name
    for module in pkgutil.walk_packages(inbedder_integrations.__path__, "inbedder_integrations.")
    if module.name.rsplit(".", 1)[-1] != "__main__"
)


def test_importing_the_package_loads_no_framework_and_no_torch() -> None:
    code = (
        "import sys, inbedder_integrations as p; "
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)); print(p.__version__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, _ = result.stdout.splitlines()
    assert loaded == "[]", f"import inbedder_integrations imported {loaded}"


HOME_OF = {name: home for home, names in inbedder_integrations._HOMES.items() for name in names}


@pytest.mark.parametrize("name", [n for n in inbedder_integrations.__all__ if n != "__version__"])
def test_every_root_name_is_its_modules_object(name: str) -> None:
    module = importlib.import_module(HOME_OF[name], "inbedder_integrations")
    assert getattr(inbedder_integrations, name) is getattr(module, name)
    assert name in module.__all__, f"{module.__name__} does not declare {name} public"


def test_unknown_root_names_fail_like_any_module() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'recipe_main'"):
        inbedder_integrations.recipe_main  # noqa: B018


@pytest.mark.parametrize("module_name", MODULES)
def test_every_module_declares_its_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    declared = getattr(module, "__all__", None)
    assert isinstance(declared, list), f"{module_name} has no __all__"
    for name in declared:
        assert hasattr(module, name), f"{module_name}.__all__ names {name!r}, which it does not define"
    accidental = {"recipe_main", "print_answer", "index_sample", "file_digest", "html_report"}
    if module_name in {"inbedder_integrations.rag", "inbedder_integrations.engine.loading"}:
        assert not accidental & set(declared)


QUIET = """
import warnings
from transformers.utils import logging
from inbedder_integrations import InBedder
warnings.simplefilter("default")  # the caller's own filters: every warning shown once
engine = InBedder.from_pretrained("default", dtype="float32", cache=False)
print(engine.embed(["a text"], "What is the topic?").shape)
print(logging.is_progress_bar_enabled())
warnings.warn("the caller's own warning", FutureWarning)
"""


def test_library_calls_print_nothing_the_caller_did_not_ask_for(tmp_path) -> None:
    """A first load (the GGUF conversion included, into an empty cache) prints no load bar and no
    transformers deprecation warning, and leaves the caller's bars and warnings as they were."""
    environment = {**__import__("os").environ, "INBEDDER_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", QUIET], capture_output=True, text=True, check=True, env=environment
    )
    assert result.stdout.split("\n")[:2] == ["(1, 576)", "True"], result.stdout
    assert result.stderr.count("Warning") == 1 and "the caller's own warning" in result.stderr, result.stderr
    for noise in ("Loading weights", "is_gradient_checkpointing", "de-quantizing", "%|"):
        assert noise not in result.stderr, result.stderr


@pytest.mark.parametrize(
    "code",
    [
        "import inbedder_integrations.cache",
        "from inbedder_integrations.cli import build_parser; build_parser()",
        "import inbedder_integrations.serving.config, inbedder_integrations.instructed",
    ],
)
def test_the_cli_parser_and_the_cache_load_no_torch(code: str) -> None:
    probe = f"import sys; {code}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", f"{code} imported torch"
