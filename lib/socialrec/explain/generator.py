"""The text generation engine: prompts in, greedy continuations out, from a local causal LM.

Plain Python (torch + transformers, no Spark), so the same code runs inside the Spark
pandas UDF of the explain stage (``socialrec.explain``), in its benchmark and in a notebook::

    >>> gen = get_generator("/models/SmolLM2-135M-Instruct", max_new_tokens=40)
    >>> gen.generate(["Why was this post recommended? ..."])
    ['It is similar to "Hop harvest notes", which you liked.']

Any Hugging Face causal-LM folder (``AutoModelForCausalLM``) is accepted under the same
rules as the embedding engine (``socialrec.features.encoder.check_model_dir``): config.json without
``auto_map`` (custom code is never run, ``trust_remote_code`` is never set), safetensors
weights only, a tokenizer in the folder, every load ``local_files_only``. A folder whose
config is not a causal language model is refused before its weights are read.

Decoding is greedy (``do_sample=False``, one beam, no repeated trigram), whatever the
folder's ``generation_config.json`` says: the same prompt gives the same text on the same
hardware, so a rerun of the stage leaves the same table. When the tokenizer has a chat
template (instruct models) the prompt is sent as one user turn through it; otherwise it
is sent as plain text. Prompts are sorted by length and batched with left padding, each
batch padded only to its own longest prompt. Device and dtype: CUDA when present (bf16
where the GPU has it, else fp16), else the CPU in fp32 with ``threads`` torch threads.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Sequence

from socialrec.features.encoder import ModelError, check_model_dir, placement, resolve_device

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


@dataclass(frozen=True)
class GenerateSettings:
    """What every executor needs to build the same engine (picklable, no Spark inside)."""

    model_path: str
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 16
    max_new_tokens: int = 48
    threads: int | None = None


def inspect_causal_model(path: str | os.PathLike) -> str:
    """Check a causal-LM folder without loading its weights; return its model type.
    Raises ``ModelError`` naming the missing files or what is refused."""
    root, conf, missing = check_model_dir(path, setting="explain.model_path", tokenizer_files=TOKENIZER_FILES)
    if missing:
        raise ModelError(f"model directory {root}: missing {', '.join(missing)}")
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = conf.get("model_type")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ModelError(f"model directory {root}: model_type {model_type!r} is not a causal language model "
                         f"(explain.model_path needs one AutoModelForCausalLM can load, e.g. llama, qwen2, gpt2)")
    AutoConfig.from_pretrained(str(root), local_files_only=True, trust_remote_code=False)  # parses, or says why not
    return str(model_type)


class Generator:
    """One loaded causal LM. Use ``get_generator`` to share it within a process."""

    def __init__(self, path: str, *, device: str = "auto", dtype: str = "auto", batch_size: int = 16,
                 max_new_tokens: int = 48, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size and max_new_tokens must be at least 1, got {batch_size}, {max_new_tokens}")
        self.model_type = inspect_causal_model(path)
        self.path = str(path)
        cuda_dtype = "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float16"
        self.device, dtype = placement(device, dtype, threads, cuda_dtype=cuda_dtype)
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True, trust_remote_code=False)
        tok.padding_side = "left"  # decoder-only: the continuation follows the last real token
        tok.truncation_side = "left"  # a long prompt loses its start, never the cue at its end
        if tok.pad_token_id is None:
            if tok.eos_token_id is None:
                raise ModelError(f"model directory {path}: the tokenizer has neither a pad nor an end-of-text token")
            tok.pad_token = tok.eos_token
        self.tokenizer = tok
        self.chat = bool(getattr(tok, "chat_template", None))
        model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True, trust_remote_code=False,
                                                     use_safetensors=True, dtype=getattr(torch, dtype))
        self.model = model.to(self.device).eval()
        context = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
        self.max_prompt = max(16, min(1024, context - self.max_new_tokens))
        self.config = GenerationConfig(max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1,
                                       no_repeat_ngram_size=3, pad_token_id=tok.pad_token_id,
                                       eos_token_id=self._stop_ids(tok), bos_token_id=tok.bos_token_id)
        self._torch = torch
        self._lock = threading.Lock()
        log.info("generator: %s (%s) on %s (%s), chat template %s, batch %d, %d new tokens", self.path,
                 self.model_type, self.device, dtype, "yes" if self.chat else "no", self.batch_size,
                 self.max_new_tokens)

    def _stop_ids(self, tok) -> list[int] | None:
        """The tokenizer's end-of-text id and those of the folder's generation_config.json
        (instruct models end a turn with their own token, e.g. ``<|im_end|>``)."""
        from transformers import GenerationConfig

        ids = [tok.eos_token_id] if tok.eos_token_id is not None else []
        try:
            own = GenerationConfig.from_pretrained(self.path, local_files_only=True).eos_token_id
        except (OSError, ValueError):  # no generation_config.json
            own = None
        ids += [i for i in ([own] if isinstance(own, int) else (own or [])) if i not in ids]
        return ids or None

    def _format(self, prompt: str) -> str:
        if self.chat:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
        return prompt

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """The greedy continuation of each prompt (special tokens removed), in order."""
        torch = self._torch
        prompts = [str(p) for p in prompts]
        if not prompts:
            return []
        ids = self.tokenizer([self._format(p) for p in prompts], truncation=True, max_length=self.max_prompt,
                             add_special_tokens=not self.chat, padding=False)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))  # similar lengths share a batch
        out: list[str] = [""] * len(ids)
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                sel = order[start:start + self.batch_size]
                batch = self.tokenizer.pad({"input_ids": [ids[i] for i in sel]}, padding=True, return_tensors="pt")
                input_ids = batch["input_ids"].to(self.device)
                mask = batch["attention_mask"].to(self.device)
                seqs = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=self.config)
                new = seqs[:, input_ids.shape[1]:].cpu()
                for i, text in zip(sel, self.tokenizer.batch_decode(new, skip_special_tokens=True)):
                    out[i] = text
        return out


_GENERATORS: dict[tuple, Generator] = {}
_GENERATORS_LOCK = threading.Lock()


def get_generator(path: str, *, device: str = "auto", dtype: str = "auto", batch_size: int = 16,
                  max_new_tokens: int = 48, threads: int | None = None) -> Generator:
    """The process's engine for these settings, loaded on first use (once per Python worker)."""
    key = (str(path), str(resolve_device(device)), dtype, batch_size, max_new_tokens, threads)
    with _GENERATORS_LOCK:
        gen = _GENERATORS.get(key)
        if gen is None:
            gen = _GENERATORS[key] = Generator(path, device=device, dtype=dtype, batch_size=batch_size,
                                               max_new_tokens=max_new_tokens, threads=threads)
        return gen


def random_causal_lm(dest: str | os.PathLike, *, words: Sequence[str] | None = None,
                     tokenizer_from: str | os.PathLike | None = None, hidden: int = 32, layers: int = 2,
                     heads: int = 4, kv_heads: int | None = None, intermediate: int | None = None,
                     context: int = 512, seed: int = 0) -> str:
    """Save a randomly initialised Llama-architecture causal LM (safetensors) with a
    tokenizer into ``dest`` and return it: for tests (a word-level vocabulary of
    ``words``: every output token is one of them) and for speed benchmarks (the shape of a
    real model, e.g. hidden 576 x 30 layers for a 135M one, with ``tokenizer_from``'s
    tokenizer files). Nothing is downloaded; its text is noise, its cost per token real."""
    import shutil
    from pathlib import Path

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerFast

    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    if words is not None:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        vocab = {w: i for i, w in enumerate(dict.fromkeys(["<pad>", "<s>", "</s>", "<unk>", *words]))}
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece(prefix="##")  # joins the words with spaces
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                       unk_token="<unk>")
        fast.save_pretrained(out)
    elif tokenizer_from is not None:
        src = Path(tokenizer_from)
        for f in src.iterdir():
            if f.is_file() and ("token" in f.name or f.name in ("vocab.txt", "vocab.json", "merges.txt")):
                shutil.copy(f, out / f.name)
    else:
        raise ValueError("random_causal_lm: give words (a test vocabulary) or tokenizer_from (a model folder)")
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=intermediate or 4 * hidden,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
                      max_position_embeddings=context, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(out, safe_serialization=True)
    return str(out)
