"""Quality of word vectors: word similarity (WordSim-353), analogies (Mikolov's
questions-words) — both shipped with gensim's test data — and nearest-neighbour
agreement between two engines trained on the same tokens.

On a corpus whose vocabulary barely meets the benchmark's (the generated network, a
beer forum), coverage is low and the scores say little; the coverage is reported with
every score so that nobody reads more into them than is there.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _test_data(name: str) -> str:
    import gensim

    path = Path(gensim.__file__).parent / "test" / "test_data" / name
    if not path.is_file():
        raise FileNotFoundError(f"gensim's {name} is missing from {path.parent}")
    return str(path)


def keyed_vectors(words: list[str], vectors: np.ndarray):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors.astype(np.float32))
    return kv


def word_quality(words: list[str], vectors: np.ndarray) -> dict[str, float]:
    """wordsim353 Spearman and its pairs used / OOV share; analogy accuracy and questions used."""
    kv = keyed_vectors(words, vectors)
    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("gensim").setLevel(logging.ERROR)
        try:
            pearson, spearman, oov = kv.evaluate_word_pairs(_test_data("wordsim353.tsv"))
        except ValueError:  # gensim: "No valid similarity judgements found" (no pair in the vocabulary)
            spearman, oov = None, 100.0
        out["wordsim353_spearman"] = float(spearman[0]) if spearman is not None else float("nan")
        out["wordsim353_oov_ratio"] = float(oov) / 100.0
        try:
            score, sections = kv.evaluate_word_analogies(_test_data("questions-words.txt"))
        except ValueError:  # no question whose four words are all in the vocabulary
            score, sections = float("nan"), []
    total = next((s for s in sections if s["section"] == "Total accuracy"), None)
    used = len(total["correct"]) + len(total["incorrect"]) if total else 0
    out["analogy_accuracy"] = float(score) if used else float("nan")
    out["analogy_questions"] = float(used)
    return out


def neighbour_agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray], words: list[str],
                        topn: int = 10) -> float:
    """Mean overlap of the ``topn`` nearest neighbours of ``words`` in two vector sets."""
    common = [w for w in words if w in a and w in b]
    if not common:
        return float("nan")
    ka = keyed_vectors(list(a), np.stack(list(a.values())))
    kb = keyed_vectors(list(b), np.stack(list(b.values())))
    overlaps = []
    for w in common:
        na = {x for x, _ in ka.most_similar(w, topn=topn)}
        nb = {x for x, _ in kb.most_similar(w, topn=topn)}
        overlaps.append(len(na & nb) / topn)
    return float(np.mean(overlaps))
