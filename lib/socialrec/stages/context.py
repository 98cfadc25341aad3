"""What a model's builder reads (``RecommendContext``), returns (``Built``) and is
registered as (``ModelSpec``); the registry itself is ``stages.recommend.MODEL_REGISTRY``."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pyspark.sql import DataFrame, SparkSession

from socialrec.core.config import ALSConfig, ContentConfig, GraphConfig, HybridConfig
from socialrec.core.storage import Storage

if TYPE_CHECKING:
    from socialrec.models.als import ALSParams
    from socialrec.stages.als import ALSFits


@dataclasses.dataclass
class RecommendContext:
    """What a model's builder reads in the recommend stage: the split (``train``,
    ``test``, ``users``: everyone in either), ``newest`` (the newest train pair, epoch
    microseconds), the users' own posts known by then (``own``; None when there are
    none), the cold-start protocol's item list (``cold_items``; None otherwise), the
    list length ``depth`` and the cut-off ``k`` tuning optimises, the content models'
    arguments (``by_content``), the sections of the configuration, and the ALS fits the
    models share. ``chosen_als``: the values ALS was tuned to in this stage, which the
    hybrids reuse (set by the ``als`` builder)."""

    spark: SparkSession
    storage: Storage
    run_id: str
    dataset: str
    protocol: str
    seed: int
    k: int
    depth: int
    train: DataFrame
    test: DataFrame
    users: DataFrame
    newest: int | None
    own: DataFrame | None
    cold_items: list[str] | None
    by_content: dict
    content: ContentConfig
    als: ALSConfig
    hybrid: HybridConfig
    graph: GraphConfig | None
    embed_model: str
    w2v_engine: str
    cold_share: float
    cold_history: int
    fits: ALSFits
    chosen_als: ALSParams | None = None


# What a builder returns: (recommendations (user, item, rank, score, components map),
# values for runs.params, frames to unpersist once the recommendations are written).
Built = tuple[DataFrame, dict, list]

# What a model may need computed before the recommend stage (``pipeline`` runs the
# feature stages that make them): item vectors of a kind, the social graph's node
# embeddings and user profiles, or the kinds listed in ``als.bridge``.
NEEDS = ("transformer", "w2v", "graph", "bridge")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model ``evaluation.models`` may name: its ``name``, its ``build`` function
    ``(context, spec) -> Built``, what it ``needs`` (of ``NEEDS``) and the ``options``
    its builder reads (e.g. the signals a hybrid variant leaves out), so that variants
    of one builder are parameters, not parsed names."""

    name: str
    build: Callable[[RecommendContext, ModelSpec], Built]
    needs: frozenset[str] = frozenset()
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"model {self.name}: unknown needs {sorted(unknown)}; known: {', '.join(NEEDS)}")
