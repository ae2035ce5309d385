"""The package's floor plan: no import circle, one lazy-import list per package, old names as aliases.

The graph is grimp's, as ``lint-imports`` builds it: every import of the package's own modules
counts, those inside functions and under ``if TYPE_CHECKING:`` included.  No test here loads a model.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import grimp
import pytest

PACKAGE = "inbedder_integrations"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

#: Imports that close a circle, each with why it is still there (the same ones
#: pyproject.toml's [tool.importlinter] contract ignores).
KNOWN_CIRCLE_EDGES = {
    (f"{PACKAGE}.corpus", f"{PACKAGE}.langchain"): "deprecated alias InstructedCorpus.langchain()",
    (f"{PACKAGE}.corpus", f"{PACKAGE}.llama_index"): "deprecated alias InstructedCorpus.llama_index()",
}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def _edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    return {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(edges.get(module, ())):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_the_cycle_finder_finds_a_circle_and_no_false_one() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) == []


def test_no_module_of_the_package_imports_itself_back(graph: grimp.ImportGraph) -> None:
    edges = _edges(graph)
    for importer, imported in KNOWN_CIRCLE_EDGES:
        edges[importer].discard(imported)
    assert _circles(edges) == []


def test_each_known_exception_is_still_there_and_still_closes_a_circle(graph: grimp.ImportGraph) -> None:
    """An exception that no longer exists, or no longer closes a circle, is dropped from the list."""
    edges = _edges(graph)
    for edge, reason in KNOWN_CIRCLE_EDGES.items():
        importer, imported = edge
        assert imported in edges[importer], f"{edge} ({reason}) is gone: drop it here and in pyproject.toml"
        assert any(importer in circle and imported in circle for circle in _circles(edges)), edge


def test_deferred_imports_count(graph: grimp.ImportGraph) -> None:
    """grimp sees an import inside a function as it sees any other: lint-imports checks those too."""
    deferred = graph.get_import_details(importer=f"{PACKAGE}.corpus", imported=f"{PACKAGE}.langchain")
    assert deferred and all(detail["line_contents"].startswith("from .langchain") for detail in deferred)


LAZY_PACKAGES = [PACKAGE, f"{PACKAGE}.engine", f"{PACKAGE}.serving"]


def _type_checking_imports(package: str) -> dict[str, str]:
    """Name -> home, from the ``if TYPE_CHECKING:`` block of ``package``'s ``__init__.py``."""
    path = ROOT.joinpath(*package.split(".")[1:], "__init__.py")
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                for alias in statement.names:
                    assert alias.asname == alias.name, f"{package}: re-export {alias.name} as itself"
                    found[alias.name] = "." * statement.level + (statement.module or "")
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_type_checkers_read_the_names_the_lazy_loader_serves(package: str) -> None:
    module = importlib.import_module(package)
    served = {name: home for home, names in module._HOMES.items() for name in names}
    assert _type_checking_imports(package) == served
    assert sorted(set(module.__all__) - {"__version__"}) == sorted(served)
    for name, home in served.items():
        assert getattr(module, name) is getattr(importlib.import_module(home, package), name)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_an_unknown_name_fails_like_any_module_attribute(package: str) -> None:
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


#: (old home, name) -> (new home, name): every name that moved stays importable where it was.
ALIASES = {
    **{
        ("engine.prompting", name): ("validation", name)
        for name in ("validate_texts", "validate_instruction", "validate_instructions", "validate_unicode")
    },
    ("cache", "text_sha256"): ("hashing", "text_sha256"),
    ("engine.digests", "cache_root"): ("paths", "cache_root"),
    ("engine", "cache_root"): ("paths", "cache_root"),
    ("instructed", "missing_extra"): ("errors", "missing_extra"),
    ("instructed", "InstructedEmbedder"): ("local", "InstructedEmbedder"),
    ("instructed", "QUERY_SUFFIX"): ("embedder", "QUERY_SUFFIX"),
    ("instructed", "cache_namespace"): ("embedder", "cache_namespace"),
    ("serving.config", "QUERY_SUFFIX"): ("embedder", "QUERY_SUFFIX"),
    ("routing", "INSTRUCTION_METADATA_KEY"): ("documents", "INSTRUCTION_KEY"),
    ("corpus", "INSTRUCTION_KEY"): ("documents", "INSTRUCTION_KEY"),
    ("training.train", "TrainConfig"): ("training.config", "TrainConfig"),
    ("training.train", "TrainResult"): ("training.config", "TrainResult"),
    ("", "__version__"): ("version", "__version__"),
}


@pytest.mark.parametrize(("old", "new"), ALIASES.items(), ids=lambda pair: ".".join(filter(None, pair)))
def test_a_moved_name_is_the_same_object_where_it_was(old: tuple[str, str], new: tuple[str, str]) -> None:
    def resolve(home: str, name: str) -> object:
        return getattr(importlib.import_module(f"{PACKAGE}.{home}".rstrip(".")), name)

    assert resolve(*old) is resolve(*new)
    assert resolve(*old) is not None


def test_the_corpus_views_are_deprecated_aliases_of_the_adapters(tmp_path: Path) -> None:
    """``corpus.langchain()`` / ``.llama_index()`` warn and then do what ``corpus_store`` /
    ``corpus_index`` do: here, on a real (embedded) Chroma with nothing indexed, refuse the same way."""
    chromadb = pytest.importorskip("chromadb")
    from inbedder_integrations.corpus import InstructedCorpus
    from inbedder_integrations.errors import MissingError
    from inbedder_integrations.langchain import corpus_store
    from inbedder_integrations.llama_index import corpus_index

    corpus = InstructedCorpus(chromadb.PersistentClient(str(tmp_path)), "news", cache=False)
    for new in (corpus_store, corpus_index):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(MissingError, match="has not been indexed under"):
                new(corpus, "What is the topic?")
        assert not [w for w in caught if "deprecated" in str(w.message)], "the new names do not warn"
    for old, new_name in ((corpus.langchain, "corpus_store"), (corpus.llama_index, "corpus_index")):
        with (
            pytest.warns(DeprecationWarning, match=new_name) as caught,
            pytest.raises(MissingError, match="has not been indexed under"),
        ):
            old("What is the topic?")
        ours = [w for w in caught if new_name in str(w.message)]
        assert [w.filename for w in ours] == [__file__], "one warning, pointing at the caller's line"


#: Issue 36: a function is read at once or split into named steps.
MAX_FUNCTION_LINES = 60


def test_no_function_in_the_package_is_over_60_lines() -> None:
    long_ones = [
        f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name}"
        for path in sorted(ROOT.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long_ones == []
