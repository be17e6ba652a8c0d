"""Training recipes: the LLM, projector, LoRA, optimiser, schedule, precision and decoding settings.

Packaged recipes live in ``configs/recipes/``: ``reference`` holds every value of the reference system, ``t4``
is the same with fp16 autocast, ``demo`` a tiny random-init LLM for the offline demo. The CLI
reads its defaults from here (``--set optim.lr=3e-4`` overrides one field).
"""

from __future__ import annotations

import re
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xares_llm.config import load_config
from xares_llm.errors import ConfigError
from xares_llm.registry import Registry

SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .nan/.inf are YAML floats, never settings


class LLMConfig(Strict):
    name: str | None = None  # hub id or local dir of a pretrained causal LM
    config: dict | None = None  # a transformers config (with model_type) for a random-init LLM
    tokenizer: str | None = None  # "byte" = built in-process; None = the LLM's own tokenizer
    revision: str | None = None  # hub revision, pinned for reproducibility

    @model_validator(mode="after")
    def _one_source(self) -> LLMConfig:
        if (self.name is None) == (self.config is None):
            raise ValueError("set exactly one of 'name' (pretrained) or 'config' (random init)")
        if self.config is not None and "model_type" not in self.config:
            raise ValueError("'config' needs a 'model_type', e.g. llama")
        if self.name is None and self.tokenizer is None:
            raise ValueError("a random-init LLM needs 'tokenizer' (e.g. byte)")
        return self


# Projector classes by name (plugins through the ``xares_llm.projectors`` entry-point group),
# checked when a recipe is loaded; classes are imported only when a model is built.
PROJECTORS: Registry[type] = Registry("projector", "xares_llm.projectors")


def register_projector(name: str, target: str | type) -> None:
    """Add a projector class (or ``"module:Class"``) under `name`; see `xares_llm.lalm.model.Projector`."""
    PROJECTORS.register(name, target)


register_projector("linear", "xares_llm.lalm.model:LinearProjector")
register_projector("mlp", "xares_llm.lalm.model:MLPProjector")


class ProjectorConfig(Strict):
    type: str = "linear"  # a registered projector: linear, mlp, or a plugin's
    stack: int = Field(1, ge=1)  # frames concatenated per audio token (pads the remainder)
    hidden: int | None = None  # mlp hidden width; default = the LLM's hidden size
    args: dict = Field(default_factory=dict)  # extra settings a plugin projector reads

    @field_validator("type")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in PROJECTORS:
            raise ValueError(f"unknown projector {name!r}; allowed: {', '.join(PROJECTORS.names())}")
        return name


class LoRAConfig(Strict):
    r: int = Field(8, ge=1)
    alpha: int = 32
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"


class OptimConfig(Strict):
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(200, ge=0)
    grad_clip: float = Field(1.0, gt=0)


class DecodingConfig(Strict):
    max_new_tokens: int = Field(150, ge=1)
    repetition_penalty: float = Field(1.05, gt=0)


class Recipe(Strict):
    name: str
    llm: LLMConfig
    projector: ProjectorConfig = ProjectorConfig()
    lora: LoRAConfig | None = LoRAConfig()  # null = full fine-tuning of the LLM
    optim: OptimConfig = OptimConfig()
    steps: int = Field(100_000, ge=1)
    batch_size: int = Field(4, ge=1)
    window_seconds: float = Field(30.0, gt=0)  # random crop of each training clip, in seconds
    precision: Literal["fp32", "fp16", "bf16", "auto"] = "fp32"
    decoding: DecodingConfig = DecodingConfig()
    eval_batch_size: int = Field(8, ge=1)
    seed: int = Field(42, ge=0, lt=2**32)  # numpy and torch seeds are unsigned
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, ge=1)
    num_workers: int = Field(0, ge=0)  # DataLoader workers reading the feature stores

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def parse_overrides(pairs: list[str]) -> dict:
    """``["optim.lr=3e-4", "lora=null"]`` -> ``{"optim.lr": 0.0003, "lora": None}`` (values as YAML)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes key=value (e.g. optim.lr=3e-4), got {pair!r}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str) and SCIENTIFIC.match(parsed):
            parsed = float(parsed)  # YAML 1.1 reads 3e-4 (no dot) as a string
        overrides[key.strip()] = parsed
    return overrides


def load_recipe(name_or_path: str, overrides: dict | None = None) -> Recipe:
    return load_config(Recipe, "recipes", name_or_path, overrides)
