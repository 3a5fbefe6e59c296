"""Optimization results: recommendations computed from recorded history."""

from typing import Any, Literal

from pydantic import Field

from schemas.envelope import Envelope, FrozenModel

Strategy = Literal["performance", "cost", "reliability", "hybrid"]


class Recommendation(FrozenModel):
    kind: str = Field(max_length=64, description="parallelize, cache, batch, retry, ...")
    step_ids: tuple[str, ...] = ()
    rationale: str = Field(max_length=2048)
    evidence: dict[str, Any] = Field(default_factory=dict)
    estimated_effect: dict[str, Any] = Field(default_factory=dict)
    applied: bool = Field(default=True, description="False: advice for a person, not in the optimized definition.")


class OptimizationAnalyzedPayload(FrozenModel):
    strategy: Strategy
    weights: dict[str, float] = Field(default_factory=dict)
    definition_version: int | None = Field(default=None, ge=1)
    draft: bool = Field(default=False, description="A definition sent without a workflow: nothing to apply it to.")
    history: Literal["recorded", "catalog"] = "recorded"
    """recorded: the workflow's own runs were replayed; catalog: too few runs, catalog latencies and prices."""
    recommendations: tuple[Recommendation, ...] = ()
    optimized_definition: dict[str, Any] | None = None
    prediction: dict[str, Any] = Field(default_factory=dict)


class OptimizationAnalyzed(Envelope):
    type: Literal["OptimizationAnalyzed"] = "OptimizationAnalyzed"
    schema_version: Literal[1] = 1
    payload: OptimizationAnalyzedPayload


OPTIMIZATION_RECORDS = (OptimizationAnalyzed,)
