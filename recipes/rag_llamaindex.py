"""Instruction-aware RAG with LlamaIndex, offline on the default models.

The LlamaIndex twin of ``rag_langchain.py``: one BBC News sample indexed into
Chroma under two instructions, a ``VectorStoreIndex`` per instruction, each
wrapped in a ``CitationQueryEngine`` (sources numbered, answers cite them).  A
``RouterQueryEngine`` picks the index for each question with an
``EmbeddingSingleSelector`` over ``InBedderEmbedding(instruction=ROUTING_INSTRUCTION)``
(the same routing as ``inbedder_integrations.rag.route_question``), unless you
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
from llama_index.core.query_engine import CitationQueryEngine, RouterQueryEngine
from llama_index.core.selectors import EmbeddingSingleSelector
from llama_index.core.tools import QueryEngineTool
from llama_index.llms.huggingface import HuggingFaceLLM

from inbedder_integrations.corpus import InstructedCorpus
from inbedder_integrations.llama_index import InBedderEmbedding
from inbedder_integrations.rag import ANSWER_PROMPT, ROUTING_INSTRUCTION, generator_path

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


def build_query_engines(
    corpus: InstructedCorpus, llm: Any, instructions: Sequence[str], *, k: int = 3
) -> dict[str, CitationQueryEngine]:
    """One citing query engine per instruction."""
    return {
        instruction: CitationQueryEngine.from_args(
            corpus.llama_index(instruction),
            llm=llm,
            similarity_top_k=k,
            citation_qa_template=CITATION_PROMPT,
        )
        for instruction in instructions
    }


def build_router(
    corpus: InstructedCorpus, engines: Mapping[str, CitationQueryEngine], routes: Mapping[str, str], llm: Any
) -> RouterQueryEngine:
    """Routes each question to the engine whose description it is nearest, read by InBedder."""
    tools = [
        QueryEngineTool.from_defaults(engines[instruction], name=f"route_{position}", description=description)
        for position, (instruction, description) in enumerate(routes.items())
    ]
    selector_model = InBedderEmbedding(
        model_name=corpus.model, instruction=ROUTING_INSTRUCTION, model_kwargs=corpus.model_kwargs
    )
    return RouterQueryEngine(
        selector=EmbeddingSingleSelector.from_defaults(embed_model=selector_model),
        query_engine_tools=tools,
        llm=llm,
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
    llm = local_llm(generator)
    engines = build_query_engines(corpus, llm, list(EXAMPLE_ROUTES))
    if instruction is not None and instruction not in engines:
        raise LookupError(f"no collection for {instruction!r}; indexed: {list(engines)}")
    router = build_router(corpus, engines, EXAMPLE_ROUTES, llm)
    results = []
    for question in questions:
        if instruction is None:
            response = router.query(question)
            chosen = list(engines)[response.metadata["selector_result"].ind]
        else:
            response, chosen = engines[instruction].query(question), instruction
        sources = [(s.node.metadata.get("label", "?"), s.node.get_content()) for s in response.source_nodes]
        print_answer(question, chosen, str(response), sources)
        results.append({"question": question, "instruction": chosen, "response": response})
    return results


if __name__ == "__main__":
    recipe_main(run, __doc__ or "")
