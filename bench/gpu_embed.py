"""GPU embedding benchmark: the engine exactly as the Spark UDF runs it, without Spark.

Several worker processes share one GPU, as Spark tasks with
``spark.task.resource.gpu.amount < 1`` do: each loads the model once
(``socialrec.features.encoder.get_encoder``), takes whole "partitions" (lists of Arrow-batch-sized
chunks) and streams them through ``Encoder.encode_iter`` (next chunk tokenised in a
thread while the GPU runs the current one), returning the vectors to the parent like
the UDF returns them to Spark. Needs only torch, transformers, numpy (no Java, no
pyspark), so it runs on a bare GPU machine:

    PYTHONPATH=lib python bench/gpu_embed.py --model /path/to/minilm --texts 200000 --workers 14
    PYTHONPATH=lib python bench/gpu_embed.py --make-fp16 /tmp/minilm-fp16   # a 45 MB copy to carry
    PYTHONPATH=lib python bench/gpu_embed.py --device cpu --texts 2000 --workers 2 --check 200   # smoke run

Prints and writes (``--out``, default bench/results/gpu-embed-<time>.json):
end-to-end sentences/s over all workers; the forward-only ceiling of one process
(pre-tokenised, fp16, at 64 tokens and at the texts' own lengths); and the cosine
agreement of the run's vectors with an fp32 CPU reference on ``--check`` texts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))  # run as a plain script too

from socialrec.data.vocab import NAMES, TOPICS  # noqa: E402
from socialrec.features.encoder import default_model_path, get_encoder, inspect_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def post_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` post-like texts of 8-48 words from the generator's topic vocabularies."""
    rng = np.random.default_rng(seed)
    topics = list(TOPICS.values())
    fillers = ["the", "a", "with", "and", "my", "this", "for", "about", "really", "so", "today", "new"]
    out = []
    for _ in range(n):
        nouns, adjs, verbs = topics[rng.integers(len(topics))]
        words = []
        for _ in range(int(rng.integers(8, 49))):
            pool = (nouns, adjs, verbs, fillers, NAMES)[int(rng.choice(5, p=[0.35, 0.15, 0.1, 0.35, 0.05]))]
            words.append(pool[int(rng.integers(len(pool)))])
        words[0] = words[0].capitalize()
        out.append(" ".join(words) + rng.choice([".", "!", "?", " #" + nouns[0]]))
    return out


# --------------------------------------------------------------------------- workers

_SETTINGS: dict = {}


def _init(settings: dict) -> None:
    _SETTINGS.update(settings)
    enc = get_encoder(settings["model"], device=settings["device"], dtype=settings["dtype"],
                      batch_size=settings["batch_size"], threads=1)
    enc.encode(["warm up the kernels"] * 8)


def _ready(_):
    return os.getpid()


def _partition(chunks: list[list[str]]):
    s = _SETTINGS
    enc = get_encoder(s["model"], device=s["device"], dtype=s["dtype"], batch_size=s["batch_size"], threads=1)
    return [v.astype(np.float32) for v in enc.encode_iter(chunks)]


def make_fp16(dest: str, src: str | None = None) -> None:
    """Copy a model folder with its safetensors converted to fp16 (for a machine that
    only takes small uploads); tokenizer and config files are copied as they are."""
    import torch
    from safetensors.torch import load_file, save_file

    src = src or default_model_path()
    inspect_model(src)
    shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx",
                                                                                   "*.h5", "*.msgpack", "*.ot"))
    tensors = load_file(os.path.join(src, "model.safetensors"))
    save_file({k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()},
              os.path.join(dest, "model.safetensors"), metadata={"format": "pt"})
    print(f"fp16 copy in {dest}: {sum(f.stat().st_size for f in Path(dest).rglob('*') if f.is_file()) / 2**20:.1f} MiB")


# --------------------------------------------------------------------------- measurements


def forward_only(model: str, device: str, dtype: str, texts: list[str], batch: int, repeats: int = 5) -> dict:
    """Sentences/s of the model alone on pre-tokenised input (the ceiling for the engine)."""
    import torch

    enc = get_encoder(model, device=device, dtype=dtype, batch_size=batch, threads=os.cpu_count())
    sync = torch.cuda.synchronize if enc.device.type == "cuda" else (lambda: None)
    out = {}
    fixed = enc._prepare([" ".join(["token"] * 62)] * batch)  # [CLS] + 62 + [SEP] = 64 tokens
    own = enc._prepare(texts[: batch * 4])
    for name, prep in (("forward_64_tokens", fixed), ("forward_own_lengths", own)):
        enc._forward(prep)  # warm up
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            enc._forward(prep)
        sync()
        out[name] = round(prep.n * repeats / (time.perf_counter() - start), 1)
    lengths = [m.sum(axis=1) for _, m in own.chunks]
    out["mean_tokens"] = round(float(np.concatenate(lengths).mean()), 1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--texts", type=int, default=200_000)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--batch-size", type=int, default=1024, help="texts per forward pass")
    p.add_argument("--chunk", type=int, default=8192, help="texts per Arrow-like batch")
    p.add_argument("--partitions", type=int, default=0, help="default: 4 per worker")
    p.add_argument("--check", type=int, default=2000, help="texts compared with the fp32 CPU reference")
    p.add_argument("--out", default=None)
    p.add_argument("--make-fp16", metavar="DIR", help="write an fp16 copy of the model to DIR and exit")
    args = p.parse_args(argv)
    if args.make_fp16:
        make_fp16(args.make_fp16, args.model)
        return 0
    model = args.model or default_model_path()
    texts = post_texts(args.texts)
    chunks = [texts[i:i + args.chunk] for i in range(0, len(texts), args.chunk)]
    n_parts = args.partitions or args.workers * 4
    parts = [chunks[i::n_parts] for i in range(n_parts)]
    settings = {"model": model, "device": args.device, "dtype": args.dtype, "batch_size": args.batch_size}

    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    t0 = time.perf_counter()
    with ctx.Pool(args.workers, initializer=_init, initargs=(settings,)) as pool:
        pool.map(_ready, range(args.workers * 4), chunksize=1)
        startup = time.perf_counter() - t0
        start = time.perf_counter()
        results = pool.map(_partition, parts, chunksize=1)
        e2e_s = time.perf_counter() - start
    vectors = np.empty((len(texts), inspect_model(model).dim), dtype=np.float32)
    for i, part in enumerate(results):  # partition i holds chunks i, i + n_parts, ...
        for j, vecs in enumerate(part):
            c = i + j * n_parts
            vectors[c * args.chunk:c * args.chunk + len(vecs)] = vecs

    ceiling = forward_only(model, args.device, args.dtype, texts, args.batch_size)
    check = min(args.check, len(texts))
    ref = get_encoder(model, device="cpu", dtype="float32", batch_size=64, threads=os.cpu_count()).encode(texts[:check])
    cos = (vectors[:check] * ref).sum(axis=1)
    import torch

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "cpus": os.cpu_count(), "platform": platform.platform()},
        "model": model, "device": args.device, "dtype": args.dtype, "texts": len(texts), "workers": args.workers,
        "batch_size": args.batch_size, "chunk": args.chunk, "partitions": n_parts,
        "startup_s": round(startup, 1), "e2e_s": round(e2e_s, 2),
        "e2e_sentences_per_s": round(len(texts) / e2e_s, 1),
        **ceiling,
        "check_texts": check, "cosine_vs_fp32_cpu_min": round(float(cos.min()), 6),
        "cosine_vs_fp32_cpu_mean": round(float(cos.mean()), 6),
    }
    result["e2e_over_forward_own_lengths"] = round(result["e2e_sentences_per_s"] / result["forward_own_lengths"], 3)
    out = Path(args.out) if args.out else RESULTS / f"gpu-embed-{datetime.now():%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for k, v in result.items():
        print(f"{k:>32}: {v}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
