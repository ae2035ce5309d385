"""Instruction-aware RAG with LangChain (LCEL), offline on the default models.

One BBC News sample is indexed into Chroma under two instructions, one
collection each.  For every question the chain picks the collection whose
instruction fits it (the package's ``InstructedRetriever``: see ``inbedder_integrations.routing``), or
the one you name with ``--instruction``, retrieves from it, and answers with a
local generator (SmolLM2-135M-Instruct through ``transformers``), citing the
retrieved sources as [1], [2]...

    python recipes/rag_langchain.py
    python recipes/rag_langchain.py --question "Which stories are about films?" \\
        --generator HuggingFaceTB/SmolLM2-1.7B-Instruct          # any hub chat model, given internet
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from _rag_common import EXAMPLE_ROUTES, index_sample, print_answer, recipe_main
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

from inbedder_integrations.corpus import InstructedCorpus
from inbedder_integrations.langchain import InstructedRetriever
from inbedder_integrations.rag import ANSWER_PROMPT, format_sources, generator_path
from inbedder_integrations.routing import INSTRUCTION_KEY


def local_chat_model(model: str = "default", max_new_tokens: int = 80) -> ChatHuggingFace:
    """A greedy ``transformers`` chat model: SmolLM2-135M-Instruct offline, or any hub id."""
    pipeline = HuggingFacePipeline.from_model_id(
        model_id=generator_path(model),
        task="text-generation",
        pipeline_kwargs={"max_new_tokens": max_new_tokens, "do_sample": False, "return_full_text": False},
    )
    return ChatHuggingFace(llm=pipeline)


def build_chain(corpus: InstructedCorpus, llm: Any, routes: Mapping[str, str], *, k: int = 3) -> Runnable:
    """``{"question", "instruction"?}`` -> the inputs plus ``documents``, ``sources`` and ``answer``.

    ``routes`` maps each indexed instruction to a description of its answers; the package's
    ``InstructedRetriever`` picks the one that fits each question, unless the input names it.
    """

    def retrieve(inputs: dict[str, Any]) -> dict[str, Any]:
        question, named = inputs["question"], inputs.get("instruction")
        if named is not None and named not in routes:
            raise LookupError(f"no collection for {named!r}; indexed: {list(routes)}")
        descriptions = dict(routes) if named is None else {named: routes[named]}
        documents = InstructedRetriever(corpus=corpus, descriptions=descriptions, k=k).invoke(question)
        return {
            "question": question,
            "instruction": documents[0].metadata[INSTRUCTION_KEY] if documents else named,
            "documents": documents,
            "sources": format_sources([d.page_content for d in documents]),
        }

    prompt = ChatPromptTemplate.from_messages([("human", ANSWER_PROMPT)])
    return RunnableLambda(retrieve) | RunnablePassthrough.assign(answer=prompt | llm | StrOutputParser())


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
    chain = build_chain(corpus, local_chat_model(generator), EXAMPLE_ROUTES)
    results = []
    for question in questions:
        result = chain.invoke({"question": question, "instruction": instruction})
        sources = [(d.metadata.get("label", "?"), d.page_content) for d in result["documents"]]
        print_answer(question, result["instruction"], result["answer"], sources)
        results.append(result)
    return results


if __name__ == "__main__":
    recipe_main(run, __doc__ or "")
