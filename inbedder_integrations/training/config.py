"""What a training run is asked to do (:class:`TrainConfig`) and what it did (:class:`TrainResult`).

Their own module, so the model card (:mod:`.card`), LoRA (:mod:`.lora`), the rows
(:mod:`.rows`) and the run itself (:mod:`.train`) all import them from below instead of
from each other.  :mod:`.train` re-exports both, their names there as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.prompting import DEFAULT_TEMPLATE

__all__ = ["IGNORE_INDEX", "TrainConfig", "TrainResult"]

IGNORE_INDEX = -100
"""The label of a token the loss skips (transformers' convention): the prompt, the padding."""


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in the model card."""

    data: str
    """Alpaca-style JSON/JSONL file (instruction, input, output) or a hub dataset id."""
    output_dir: str
    base_model: str = "default"
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | str = "all-linear"
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 2e-4
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 256
    warmup_ratio: float = 0.03
    bf16: bool | None = None
    """None: bf16 where the hardware runs it natively."""
    gradient_checkpointing: bool = False
    save_dtype: str = "float32"
    """``bfloat16`` halves the saved adapter (or model); it is merged into the weights at load."""
    seed: int = 0
    max_rows: int | None = None
    families: list[str] | None = None
    """Train only on the rows of these question families of ``data`` (rows carry a ``family``)."""
    lora_layers: int | None = None
    """LoRA on the top N blocks only (none trainable below them, so no backward pass there)."""
    init_adapter: str | None = None
    """Continue from this LoRA adapter folder (``default``: the shipped one); its r, alpha and modules win."""
    replay: str | None = None
    """Rows of this file are mixed in against forgetting (see ``replay_fraction``)."""
    replay_fraction: float = 0.3
    """The share of the training rows drawn from ``replay``."""
    kl_to_base: float = 0.0
    """Weight of a KL term towards the untuned base on the answer positions (LoRA only; 0: off).

    Keeps what the base already answers while the adapter learns (:mod:`.base_kl`)."""
    logging_steps: int = 10
    save_steps: int = 100
    template: str = DEFAULT_TEMPLATE
    command: str = ""


@dataclass
class TrainResult:
    output_dir: str
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    examples_per_second: float | None = None
    """Steps run in this process x examples per step / their seconds (None: resumed, nothing left)."""
    bf16: bool = False
    """Whether bf16 autocast was on."""
    kl_to_base: list[float] = field(default_factory=list)
    """The answer KL to the untuned base at each log (``--kl-to-base`` only), unweighted."""
