"""The shape of one MolBERT encoder (pydantic, no torch: a family config is validated
before anything heavy is imported)."""

from __future__ import annotations

from pydantic import Field, model_validator

from molw2s.config import StrictModel


class ModelSizeConfig(StrictModel):
    """Shape of one BERT encoder."""

    num_layers: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    intermediate_size: int = Field(ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    attention_dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ModelSizeConfig:
        if self.num_heads > self.hidden_size or self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}: "
                "each attention head needs hidden_size / num_heads dimensions"
            )
        return self
