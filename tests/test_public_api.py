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


@pytest.mark.parametrize("name", [n for n in inbedder_integrations.__all__ if n != "__version__"])
def test_every_root_name_is_its_modules_object(name: str) -> None:
    module = importlib.import_module(inbedder_integrations._EXPORTS[name], "inbedder_integrations")
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
