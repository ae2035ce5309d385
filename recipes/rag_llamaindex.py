"""Instruction-aware RAG with LlamaIndex, offline on the default models.

The LlamaIndex twin of ``rag_langchain.py``: one BBC News sample indexed into
Chroma under two instructions, a ``VectorStoreIndex`` per instruction, each
answered by a ``CitationQueryEngine`` (sources numbered, answers cite them)
over the package's ``InstructedRetriever``, which picks the instruction's
collection for each question (``inbedder_integrations.routing``), unless you
name the instruction.  The generator is SmolLM2-135M-Instruct through
``transformers`` (``HuggingFaceLLM``), or any hub chat model with ``--generator``.

    python recipes/rag_llamaindex.py
    python recipes/rag_llamaindex.py --instruction "What is the topic of this news?" \\
        --question "Which stories are about films?"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from _rag_common import EXAMPLE_ROUTES, index_sample, print_answer, recipe_main
from llama_index.core import PromptTemplate
from llama_index.core.query_engine import CitationQueryEngine
from llama_index.llms.huggingface import HuggingFaceLLM

from inbedder_integrations.corpus import InstructedCorpus
from inbedder_integrations.llama_index import InstructedRetriever, corpus_index
from inbedder_integrations.rag import ANSWER_PROMPT, generator_path
from inbedder_integrations.routing import INSTRUCTION_KEY

CITATION_PROMPT = PromptTemplate(ANSWER_PROMPT.format(sources="{context_str}", question="{query_str}"))


def local_llm(model: str = "default", max_new_tokens: int = 80) -> HuggingFaceLLM:
    """A greedy ``transformers`` chat model: SmolLM2-135M-Instruct offline, or any hub id."""
    path = generator_path(model)
    return HuggingFaceLLM(
        model_name=path,
        tokenizer_name=path,
        context_window=4096,
        max_new_tokens=max_new_tokens,
        generate_kwargs={"do_sample": False},
        is_chat_model=True,
    )


def build_query_engine(
    corpus: InstructedCorpus, llm: Any, routes: Mapping[str, str], *, k: int = 3
) -> CitationQueryEngine:
    """A citing query engine whose retriever picks, per question, the collection of the route
    that fits it (one route: always that one)."""
    retriever = InstructedRetriever(corpus, similarity_top_k=k, descriptions=dict(routes))
    index = corpus_index(corpus, next(iter(routes)))  # from_args wants one; the retriever decides
    return CitationQueryEngine.from_args(
        index, llm=llm, retriever=retriever, citation_qa_template=CITATION_PROMPT
    )


def run(
    questions: Sequence[str],
    *,
    store: str,
    limit: int = 100,
    instruction: str | None = None,
    model: str = "default",
    generator: str = "default",
) -> list[dict[str, Any]]:
    corpus = index_sample(store, limit=limit, model=model)
    if instruction is not None and instruction not in EXAMPLE_ROUTES:
        raise LookupError(f"no collection for {instruction!r}; indexed: {list(EXAMPLE_ROUTES)}")
    routes = EXAMPLE_ROUTES if instruction is None else {instruction: EXAMPLE_ROUTES[instruction]}
    engine = build_query_engine(corpus, local_llm(generator), routes)
    results = []
    for question in questions:
        response = engine.query(question)
        chosen = response.source_nodes[0].node.metadata[INSTRUCTION_KEY]
        sources = [(s.node.metadata.get("label", "?"), s.node.get_content()) for s in response.source_nodes]
        print_answer(question, chosen, str(response), sources)
        results.append({"question": question, "instruction": chosen, "response": response})
    return results


if __name__ == "__main__":
    recipe_main(run, __doc__ or "")
