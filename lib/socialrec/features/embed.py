"""Transformer embeddings of item text in Spark: an iterator pandas UDF around the engine.

``embedding_column(F.col("text"), settings)`` is a column of ``array<float>`` vectors
(null where the text is null or blank). Each Python worker loads the model once
(``socialrec.features.encoder.get_encoder``) and streams its Arrow batches through
``Encoder.encode_iter``, so on a GPU the next batch is tokenised while the current one
runs. The task's device and CPU threads come from the task itself: a GPU address from
Spark's resource scheduling (``spark.task.resource.gpu.amount``), else CUDA when the
worker has it, else the CPU with ``spark.task.cpus`` torch threads.

``embedding_text`` builds the text that is embedded from the configured item fields, and
``content_hash`` fingerprints it together with the truncation length: the embed stage
(``socialrec.stages.embed.embed_stage``) re-embeds only items whose hash or model changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
from pyspark import TaskContext
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType

from socialrec.core import columns as C
from socialrec.core.choices import EMBED_FIELDS as FIELDS
from socialrec.data.readers import strip_html


@dataclass(frozen=True)
class EmbedSettings:
    """What every executor needs to build the same engine (picklable, no Spark inside)."""

    model_path: str | None  # None: each worker uses its own installed copy of the packaged MiniLM
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 64
    max_length: int | None = None
    threads: int | None = None


def embedding_text(fields: list[str] | tuple[str, ...] = (C.TITLE, C.TEXT), *, html: bool = True) -> Column:
    """The text to embed: the non-blank ``fields`` of an item joined by ". " (tags by
    ", "); null when all are blank. With ``html`` (``embed.strip_html``) markup is
    removed first, as the tokenizer does: a ``<script>`` in a post is text to ignore."""
    parts = []
    for f in fields:
        if f not in FIELDS:
            raise ValueError(f"embed.fields: unknown item field {f!r}; known: {', '.join(FIELDS)}")
        col = F.array_join(F.col(f), ", ") if f == C.TAGS else F.col(f)
        if html and f != C.TAGS:
            col = strip_html(col)
        parts.append(F.nullif(F.trim(col), F.lit("")))
    return F.nullif(F.concat_ws(". ", *parts), F.lit(""))


def content_hash(text: Column, max_length: int) -> Column:
    """SHA-256 of the embedded text and the truncation length (either changing the vector)."""
    return F.sha2(F.concat_ws("\u0001", F.lit(str(max_length)), F.coalesce(text, F.lit(""))), 256)


def _task_device(device: str) -> str:
    if device in ("auto", "cuda"):
        ctx = TaskContext.get()
        gpus = ctx.resources().get("gpu") if ctx is not None else None
        if gpus is not None and gpus.addresses:
            return f"cuda:{gpus.addresses[0]}"
    return device


def _task_threads(threads: int | None) -> int:
    if threads:
        return threads
    ctx = TaskContext.get()
    return max(1, ctx.cpus()) if ctx is not None else 1


def embedding_column(text: Column, settings: EmbedSettings, *, embedded=None, blank=None) -> Column:
    """``array<float>`` L2-normalised vectors of ``text``; null for null or blank text.

    ``embedded`` / ``blank``: optional Spark accumulators counting the texts encoded and
    the blank ones (a retried task counts twice)."""

    @F.pandas_udf(ArrayType(FloatType()))
    def embed(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        from socialrec.features.encoder import get_encoder

        enc = get_encoder(settings.model_path, device=_task_device(settings.device), dtype=settings.dtype,
                          batch_size=settings.batch_size, max_length=settings.max_length,
                          threads=_task_threads(settings.threads))
        for vecs in enc.encode_iter(s.tolist() for s in batches):
            missing = np.isnan(vecs[:, 0]) if vecs.shape[1] else np.ones(len(vecs), dtype=bool)
            if embedded is not None:
                embedded.add(int(len(vecs)))
            if blank is not None:
                blank.add(int(missing.sum()))
            yield pd.Series([None if miss else v for v, miss in zip(vecs, missing)], dtype=object)

    return embed(text)


@dataclass(frozen=True)
class EmbedPlan:
    """The configured model as the executors will run it: ``dim`` and ``max_length``
    (the configured length, at most the model's own) and the executors' ``settings``."""

    model: str
    dim: int
    max_length: int
    settings: EmbedSettings
    partitions: int | None


def plan(emb) -> EmbedPlan:
    """Check the configured model folder (an ``EmbedConfig``) on the driver, before any
    Spark work, and say how it will run. ``model_path`` None travels as None: executors
    resolve the packaged model in their own environment, whose site-packages path need
    not be the driver's."""
    from socialrec.features.encoder import default_model_path, inspect_model

    info = inspect_model(emb.model_path or default_model_path())  # a bad model folder fails here
    max_length = min(emb.max_length or info.max_seq_length, info.max_seq_length)
    settings = EmbedSettings(model_path=emb.model_path, device=emb.device, dtype=emb.dtype,
                             batch_size=emb.batch_size, max_length=max_length, threads=emb.threads)
    return EmbedPlan(model=emb.model, dim=info.dim, max_length=max_length, settings=settings,
                     partitions=emb.partitions)


def embed_texts(todo, p: EmbedPlan, *, dataset: str, embedded=None, blank=None):
    """``item_embeddings`` rows for ``todo`` (``item_id``, ``_text``, ``content_hash``):
    the texts spread over ``p.partitions`` tasks (else Spark's default parallelism; hashed
    by item, so a rerun gives each task the same rows) and embedded by
    ``embedding_column``. The one way texts are embedded, by the embed stage and the
    stream alike; lazy (the caller decides when it runs and whether to persist it)."""
    parts = p.partitions or todo.sparkSession.sparkContext.defaultParallelism
    return (todo.repartition(parts, C.ITEM)
            .select(F.lit(dataset).alias(C.DATASET), C.ITEM, F.lit(p.model).alias(C.MODEL), F.lit(p.dim).alias("dim"),
                    embedding_column(F.col("_text"), p.settings, embedded=embedded, blank=blank).alias("vector"),
                    C.CONTENT_HASH, F.current_timestamp().alias("computed_at")))
