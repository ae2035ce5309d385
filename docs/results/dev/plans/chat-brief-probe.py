"""Issue 35, self-distillation: does the untuned base answer briefly when its chat template asks it to?

The InBedder template gets sentences from the untuned base ("The text is about ..."), so
``recipes/self_distill.py`` keeps ~1.6% of its answers.  SmolLM2-135M-Instruct is a chat model:
asked in its own template to "Answer in one to three words", would it give short answers to keep?
Five of the open questions of ``training/selfdistill.py`` and their paraphrases, 12 seeded texts
of the wide set, greedy, 10 new tokens, fp32.  Writes ``docs/results/dev/chat-brief-probe.txt``.

    python docs/results/dev/plans/chat-brief-probe.py
"""

import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from inbedder_integrations import InBedder
from inbedder_integrations.training.selfdistill import OPEN_QUESTIONS, source_texts

source = InBedder.from_pretrained("default", dtype="float32").info()["source"]
model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
tokenizer = AutoTokenizer.from_pretrained(source, padding_side="left")
texts = source_texts(Path("data/inbedder-qa-v2.jsonl.gz"), 12, seed=1)


def ask(question: str) -> list[str]:
    chats = [[{"role": "user", "content": f"{text}\n\nQuestion: {question}\nAnswer in one to three words."}]
             for text in texts]  # fmt: skip
    prompts = [
        tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) for chat in chats
    ]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=10, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return [
        tokenizer.decode(ids[batch.input_ids.shape[1] :], skip_special_tokens=True).strip() for ids in out
    ]


lines, start, answers, short = [], time.time(), 0, 0
for question, paraphrase in OPEN_QUESTIONS[:5]:
    firsts, seconds = ask(question), ask(paraphrase)
    answers += len(firsts) + len(seconds)
    short += sum(len(answer.split()) <= 3 for answer in firsts + seconds)
    lines.append(f"== {question} | {paraphrase}")
    lines += [f"{text[:60]!r} | {a} | {b}" for text, a, b in zip(texts, firsts, seconds, strict=True)]
lines.append(
    f"{answers} answers in {time.time() - start:.0f} s; {short} of {answers} are three words or fewer"
)
Path("docs/results/dev/chat-brief-probe.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
