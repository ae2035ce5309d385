"""Build the tiny random test checkpoints in this folder.

Run from the repository root:

    .venv/bin/python tests/data/checkpoints/build.py

Each folder imitates the *layout* of one public InBedder checkpoint (model
class, config flags, tokenizer files and special tokens, weight file format),
with tiny dimensions and random weights.  See README.md next to this file.

The tokenizer files are written by hand in the form a transformers 4.x
``tokenizer.save_pretrained`` of a slow (``use_fast=False``) tokenizer leaves
them: no ``tokenizer.json``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CORPUS = ROOT / ".venv/lib/python3.11/site-packages/gensim/test/test_data/lee_background.cor"

SEED = 1234
HIDDEN = 32
LAYERS = 2
HEADS = 2
FFN = 64
BPE_VOCAB = 603  # 4 fairseq-style specials + byte alphabet + merges
SP_VOCAB = 600  # 3 specials + 256 byte-fallback pieces + merges
MODEL_MAX_LENGTH = 512  # alpaca_train/train.py: TrainingArguments.model_max_length

FOLDERS = [
    "roberta-large-InBedder",
    "opt-1.3b-InBedder",
    "opt-350m-InBedder",
    "llama-2-7b-InBedder",
    "inbedder-roberta-large",
]


# --------------------------------------------------------------------------- helpers


def corpus_lines() -> list[str]:
    if not CORPUS.exists():
        raise SystemExit(f"training text not found: {CORPUS}")
    text = CORPUS.read_text(encoding="latin-1")
    return [line.strip() for line in text.splitlines() if line.strip()]


def dump(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def added_token(content, *, lstrip=False, rstrip=False, normalized=False, special=True, with_type=False):
    tok = {
        "content": content,
        "lstrip": lstrip,
        "normalized": normalized,
        "rstrip": rstrip,
        "single_word": False,
    }
    if with_type:  # special_tokens_map.json / old-style tokenizer_config entries
        return tok
    tok["special"] = special
    return tok


def fresh(name: str) -> Path:
    out = HERE / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def patch_config(folder: Path, **updates) -> None:
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    cfg.update(updates)
    # write the config keys as a transformers 4.x save_pretrained did
    if "dtype" in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    cfg.setdefault("torch_dtype", "float32")
    rope = cfg.pop("rope_parameters", None)
    if rope is not None:
        assert rope.get("rope_type", "default") == "default", rope
        cfg["rope_theta"] = rope["rope_theta"]
        cfg["rope_scaling"] = None
    dump(path, dict(sorted(cfg.items())))


def save_weights(model: torch.nn.Module, folder: Path, *, pickle_only: bool) -> None:
    if pickle_only:
        model.config.save_pretrained(folder)
        if model.can_generate():
            model.generation_config.save_pretrained(folder)
        state = {k: v.detach() for k, v in model.state_dict().items()}  # tied weights stay shared
        torch.save(state, folder / "pytorch_model.bin")
    else:
        model.save_pretrained(folder, safe_serialization=True)


# --------------------------------------------------------------------------- tokenizers


def train_byte_level_bpe(lines: list[str], workdir: Path) -> tuple[dict[str, int], list[str]]:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        lines,
        vocab_size=BPE_VOCAB,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        show_progress=False,
    )
    bpe.save_model(str(workdir))
    vocab = json.loads((workdir / "vocab.json").read_text(encoding="utf-8"))
    merges = (workdir / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    return vocab, merges


def write_bpe_files(folder: Path, vocab: dict[str, int], merges: list[str]) -> None:
    ordered = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
    (folder / "vocab.json").write_text(json.dumps(ordered, ensure_ascii=False) + "\n", encoding="utf-8")
    body = [m for m in merges if not m.startswith("#version")]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(body) + "\n", encoding="utf-8")


def write_roberta_tokenizer(folder: Path, vocab: dict[str, int], merges: list[str]) -> int:
    vocab = dict(vocab)
    mask_id = len(vocab)
    vocab["<mask>"] = mask_id  # roberta-large: <mask> is the last id (50264)
    write_bpe_files(folder, vocab, merges)
    plain = dict(normalized=False)
    dump(
        folder / "tokenizer_config.json",
        {
            "add_prefix_space": False,
            "added_tokens_decoder": {
                "0": added_token("<s>", **plain),
                "1": added_token("<pad>", **plain),
                "2": added_token("</s>", **plain),
                "3": added_token("<unk>", **plain),
                str(mask_id): added_token("<mask>", lstrip=True),
            },
            "bos_token": "<s>",
            "clean_up_tokenization_spaces": True,
            "cls_token": "<s>",
            "eos_token": "</s>",
            "errors": "replace",
            "mask_token": "<mask>",
            "model_max_length": MODEL_MAX_LENGTH,
            "pad_token": "<pad>",
            "padding_side": "right",
            "sep_token": "</s>",
            "tokenizer_class": "RobertaTokenizer",
            "trim_offsets": True,
            "unk_token": "<unk>",
        },
    )
    dump(
        folder / "special_tokens_map.json",
        {
            "bos_token": "<s>",
            "cls_token": "<s>",
            "eos_token": "</s>",
            "mask_token": added_token("<mask>", lstrip=True, with_type=True),
            "pad_token": "<pad>",
            "sep_token": "</s>",
            "unk_token": "<unk>",
        },
    )
    return len(vocab)


def write_opt_tokenizer(folder: Path, vocab: dict[str, int], merges: list[str]) -> int:
    # facebook/opt-*: GPT-2 BPE with fairseq-style specials at 0..3,
    # bos = eos = unk = "</s>", pad "<pad>", add_bos_token so "</s>" is prepended.
    write_bpe_files(folder, vocab, merges)
    dump(
        folder / "tokenizer_config.json",
        {
            "add_bos_token": True,
            "add_prefix_space": False,
            "added_tokens_decoder": {
                "1": added_token("<pad>", normalized=True),
                "2": added_token("</s>", normalized=True),
            },
            "bos_token": "</s>",
            "clean_up_tokenization_spaces": True,
            "eos_token": "</s>",
            "errors": "replace",
            "model_max_length": MODEL_MAX_LENGTH,
            "pad_token": "<pad>",
            "padding_side": "right",
            "tokenizer_class": "GPT2Tokenizer",
            "unk_token": "</s>",
        },
    )
    dump(
        folder / "special_tokens_map.json",
        {
            "bos_token": added_token("</s>", normalized=True, with_type=True),
            "eos_token": added_token("</s>", normalized=True, with_type=True),
            "pad_token": added_token("<pad>", normalized=True, with_type=True),
            "unk_token": added_token("</s>", normalized=True, with_type=True),
        },
    )
    return len(vocab)


def train_sentencepiece(lines: list[str]) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    # the Llama-2 tokenizer.model trainer_spec, scaled down
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="bpe",
        vocab_size=SP_VOCAB,
        byte_fallback=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        character_coverage=0.99995,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        unk_piece="<unk>",
        bos_piece="<s>",
        eos_piece="</s>",
        num_threads=1,
        max_sentence_length=100000,
        minloglevel=2,
    )
    return model.getvalue()


def write_llama_tokenizer(folder: Path, sp_model: bytes) -> int:
    import sentencepiece as spm

    (folder / "tokenizer.model").write_bytes(sp_model)
    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    sp_size = sp.get_piece_size()
    pad_id = sp_size  # alpaca's smart_tokenizer_and_embedding_resize appends "[PAD]"
    dump(folder / "added_tokens.json", {"[PAD]": pad_id})
    dump(
        folder / "tokenizer_config.json",
        {
            "add_bos_token": True,
            "add_eos_token": False,
            "added_tokens_decoder": {
                "0": added_token("<unk>"),
                "1": added_token("<s>"),
                "2": added_token("</s>"),
                str(pad_id): added_token("[PAD]"),
            },
            "bos_token": "<s>",
            "clean_up_tokenization_spaces": False,
            "eos_token": "</s>",
            "legacy": False,
            "model_max_length": MODEL_MAX_LENGTH,
            "pad_token": "[PAD]",
            "padding_side": "right",
            "sp_model_kwargs": {},
            "tokenizer_class": "LlamaTokenizer",
            "unk_token": "<unk>",
            "use_default_system_prompt": False,
        },
    )
    dump(
        folder / "special_tokens_map.json",
        {
            "bos_token": added_token("<s>", with_type=True),
            "eos_token": added_token("</s>", with_type=True),
            "pad_token": "[PAD]",
            "unk_token": added_token("<unk>", with_type=True),
        },
    )
    return sp_size


# --------------------------------------------------------------------------- models


def roberta(folder: Path, vocab_size: int, *, pickle_only: bool, name_or_path: str) -> None:
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(SEED)
    cfg = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=MODEL_MAX_LENGTH + 2,  # roberta: 514 = 512 + padding_idx + 1
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        architectures=["RobertaForMaskedLM"],
    )
    model = RobertaForMaskedLM(cfg).eval()
    save_weights(model, folder, pickle_only=pickle_only)
    patch_config(folder, _name_or_path=name_or_path, architectures=["RobertaForMaskedLM"])


def opt(folder: Path, vocab_size: int, *, pre_ln: bool, proj_dim: int, name_or_path: str) -> None:
    from transformers import OPTConfig, OPTForCausalLM

    torch.manual_seed(SEED)
    cfg = OPTConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        word_embed_proj_dim=proj_dim,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        ffn_dim=FFN,
        max_position_embeddings=MODEL_MAX_LENGTH,  # learned; facebook/opt-* use 2048
        do_layer_norm_before=pre_ln,
        activation_function="relu",
        dropout=0.1,
        attention_dropout=0.0,
        enable_bias=True,
        layer_norm_elementwise_affine=True,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=2,
        prefix="</s>",
        architectures=["OPTForCausalLM"],
    )
    model = OPTForCausalLM(cfg).eval()
    if proj_dim != HIDDEN:
        assert model.model.decoder.project_out is not None
    save_weights(model, folder, pickle_only=False)
    patch_config(
        folder,
        _name_or_path=name_or_path,
        architectures=["OPTForCausalLM"],
        _remove_final_layer_norm=False,
    )


def llama(folder: Path, sp_size: int, *, name_or_path: str) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    cfg = LlamaConfig(
        vocab_size=sp_size,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        architectures=["LlamaForCausalLM"],
    )
    model = LlamaForCausalLM(cfg).eval()
    # alpaca_train/train.py smart_tokenizer_and_embedding_resize: one token added
    # ("[PAD]"), embeddings resized by one, new rows = mean of the old rows.
    model.resize_token_embeddings(sp_size + 1, mean_resizing=False)
    with torch.no_grad():
        inp = model.get_input_embeddings().weight
        out = model.get_output_embeddings().weight
        inp[-1:] = inp[:-1].mean(dim=0, keepdim=True)
        out[-1:] = out[:-1].mean(dim=0, keepdim=True)
    model.config.pad_token_id = sp_size
    save_weights(model, folder, pickle_only=True)
    patch_config(
        folder,
        _name_or_path=name_or_path,
        architectures=["LlamaForCausalLM"],
        vocab_size=sp_size + 1,
        pad_token_id=sp_size,
    )


# --------------------------------------------------------------------------- main


def main() -> None:
    torch.manual_seed(SEED)
    lines = corpus_lines()
    with tempfile.TemporaryDirectory() as tmp:
        bpe_vocab, bpe_merges = train_byte_level_bpe(lines, Path(tmp))
    sp_model = train_sentencepiece(lines)

    # 1. roberta-large-InBedder (BrandonZYW/roberta-large-InBedder)
    out = fresh("roberta-large-InBedder")
    n = write_roberta_tokenizer(out, bpe_vocab, bpe_merges)
    roberta(out, n, pickle_only=False, name_or_path="roberta-large")

    # OPT checkpoints: config vocab is padded up to a multiple of 8, as facebook/opt-*
    # have 50272 embedding rows for a 50265-token vocabulary.
    opt_rows = -(-len(bpe_vocab) // 8) * 8
    if opt_rows == len(bpe_vocab):
        opt_rows += 8

    # 2. opt-1.3b-InBedder: pre-LN, word_embed_proj_dim == hidden_size
    out = fresh("opt-1.3b-InBedder")
    write_opt_tokenizer(out, bpe_vocab, bpe_merges)
    opt(out, opt_rows, pre_ln=True, proj_dim=HIDDEN, name_or_path="facebook/opt-1.3b")

    # 3. opt-350m-InBedder: post-LN, word_embed_proj_dim < hidden_size (project_in/out)
    out = fresh("opt-350m-InBedder")
    write_opt_tokenizer(out, bpe_vocab, bpe_merges)
    opt(out, opt_rows, pre_ln=False, proj_dim=HIDDEN // 2, name_or_path="facebook/opt-350m")

    # 4. llama-2-7b-InBedder: sentencepiece, "[PAD]" added, pickle weights only
    out = fresh("llama-2-7b-InBedder")
    sp_size = write_llama_tokenizer(out, sp_model)
    llama(out, sp_size, name_or_path="meta-llama/Llama-2-7b-hf")

    # 5. inbedder-roberta-large (KomeijiForce/inbedder-roberta-large): pickle weights only
    out = fresh("inbedder-roberta-large")
    n = write_roberta_tokenizer(out, bpe_vocab, bpe_merges)
    roberta(out, n, pickle_only=True, name_or_path="roberta-large")

    for name in FOLDERS:
        folder = HERE / name
        assert not (folder / "tokenizer.json").exists()
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"{name:28s} {size / 1024:7.1f} kB  {sorted(p.name for p in folder.iterdir())}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
