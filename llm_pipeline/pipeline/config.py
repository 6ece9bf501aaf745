"""Pipeline settings that are not about the API: taxonomy, thresholds, limits, where data lives.

Each setting comes from resource config, else from its environment variable, else a default
(ARCHITECTURE §2: config wins over env). The environment is read when a run asks for the settings,
never at import or when `Definitions` is built, so `LLM_PIPELINE_DATA_DIR=... dagster ...` works.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
from pydantic import Field
from upath import UPath

from llm_pipeline.prompts.classifications import DEFAULT_TAXONOMY
from llm_pipeline.settings import integer, labels, number, resolve_data_dir, setting
from llm_pipeline.warehouse.documents import DEFAULT_MAX_CHARS

__all__ = ["DEFAULT_MAX_ERROR_RATE", "PipelineConfig", "PipelineSettings"]

DEFAULT_MAX_ERROR_RATE = 0.05


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """The resolved, validated values a run works with."""

    taxonomy: tuple[str, ...]
    max_error_rate: float
    max_doc_chars: int
    data_dir: UPath
    entities_max_tokens: int
    classification_max_tokens: int
    report_max_tokens: int

    def raw_path(self, partition_key: str) -> UPath:
        """Where the input of one daily partition lives (a local path or a URL on a store)."""
        return self.data_dir / "raw" / f"{partition_key}.jsonl"


class PipelineConfig(dg.ConfigurableResource):
    """Taxonomy, error threshold, input limits and output sizes; unset fields fall back to env."""

    taxonomy: list[str] | None = Field(
        default=None, description="Labels for classification; env LLM_PIPELINE_TAXONOMY (comma-separated)."
    )
    max_error_rate: float | None = Field(
        default=None, description="Highest error rate the checks accept; env LLM_PIPELINE_MAX_ERROR_RATE."
    )
    max_doc_chars: int | None = Field(
        default=None, description="Longer texts are truncated and flagged; env LLM_PIPELINE_MAX_DOC_CHARS."
    )
    data_dir: str | None = Field(
        default=None,
        description=(
            "Root of raw/ and warehouse/: a local path or an fsspec URL (s3://bucket/prefix, ...); "
            "env LLM_PIPELINE_DATA_DIR, default 'data'."
        ),
    )
    entities_max_tokens: int = Field(default=1024, description="max_tokens of an extraction call.")
    classification_max_tokens: int = Field(default=512, description="max_tokens of a classification call.")
    report_max_tokens: int = Field(default=1500, description="max_tokens of the corpus report call.")

    def settings(self) -> PipelineSettings:
        """Resolve config over env over defaults, now; raise ValueError naming a bad setting."""
        taxonomy = setting(self.taxonomy, "LLM_PIPELINE_TAXONOMY", labels, list(DEFAULT_TAXONOMY))
        max_error_rate = setting(
            self.max_error_rate, "LLM_PIPELINE_MAX_ERROR_RATE", number, DEFAULT_MAX_ERROR_RATE
        )
        max_doc_chars = setting(self.max_doc_chars, "LLM_PIPELINE_MAX_DOC_CHARS", integer, DEFAULT_MAX_CHARS)

        if not taxonomy or any(not label for label in taxonomy) or len(set(taxonomy)) != len(taxonomy):
            raise ValueError(f"taxonomy must be distinct non-empty labels, got {taxonomy!r}")
        if not 0.0 <= max_error_rate <= 1.0:
            raise ValueError(f"max_error_rate must be between 0 and 1, got {max_error_rate}")
        if max_doc_chars < 1:
            raise ValueError(f"max_doc_chars must be positive, got {max_doc_chars}")
        for name in ("entities_max_tokens", "classification_max_tokens", "report_max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        return PipelineSettings(
            taxonomy=tuple(taxonomy),
            max_error_rate=float(max_error_rate),
            max_doc_chars=int(max_doc_chars),
            data_dir=resolve_data_dir(self.data_dir),
            entities_max_tokens=self.entities_max_tokens,
            classification_max_tokens=self.classification_max_tokens,
            report_max_tokens=self.report_max_tokens,
        )
