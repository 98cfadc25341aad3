"""Tokenisation of item text, distributed: ``tokens(item_id, tokens)``.

Two engines behind one function, chosen by ``tokenize.engine``:

* ``spark-ml`` — Spark built-ins and ``RegexTokenizer`` + ``StopWordsRemover``; needs no
  extra jar. Steps: strip HTML tags and entities, strip URLs, lower-case (all optional),
  put spaces around every CJK ideograph and kana (scripts that do not separate words
  with spaces: each such character becomes a token, instead of a whole sentence
  becoming one token; Thai runs stay whole), split on anything that is not a letter, digit or
  apostrophe (emoji and punctuation are separators), drop tokens shorter than
  ``min_token_length`` (CJK characters are exempt) and English stop words.
* ``spark-nlp`` — DocumentAssembler, Tokenizer, Normalizer, StopWordsCleaner, Finisher:
  annotators that need no pretrained download. Needs the Spark NLP jar on the
  classpath (``jars.use_spark_nlp``); CJK text gets the same spacing first.

A text that yields no token (empty, only emoji or punctuation, only stop words) keeps
its row with an empty list and ``n_tokens`` 0; the stage counts and logs them.
"""

from __future__ import annotations

from pyspark.ml.feature import RegexTokenizer, StopWordsRemover
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.choices import TOKENIZE_ENGINES as ENGINES
from socialrec.data.readers import strip_html

URL_PATTERN = r"(?i)\b(?:https?://|www\.)\S+"
# Chinese and Japanese are written without spaces between words: each ideograph or kana
# becomes a token (character unigrams). Korean separates words with spaces already. Thai
# also omits spaces; its runs stay whole (one token per space-separated phrase), since
# splitting it per character would cut vowel marks from their consonants.
NO_SPACE_SCRIPTS = r"([\p{IsHan}\p{IsHiragana}\p{IsKatakana}])"
TOKEN_SPLIT = r"[^\p{L}\p{N}\p{M}']+"


def item_text(items: DataFrame) -> Column:
    """Title and text of an item joined (either may be null)."""
    return F.concat_ws(". ", F.col(C.TITLE), F.col(C.TEXT))


def normalise(text: Column, *, lowercase: bool = True, html: bool = True, urls: bool = True) -> Column:
    out = F.coalesce(text, F.lit(""))
    if html:
        out = strip_html(out)
    if urls:
        out = F.regexp_replace(out, URL_PATTERN, " ")
    if lowercase:
        out = F.lower(out)
    return F.regexp_replace(out, NO_SPACE_SCRIPTS, " $1 ")


def tokenize(
    items: DataFrame,
    *,
    engine: str = "spark-ml",
    lowercase: bool = True,
    strip_html: bool = True,
    strip_urls: bool = True,
    stopwords: str = "english",
    min_token_length: int = 2,
    col_item: str = C.ITEM,
) -> DataFrame:
    """(item_id, tokens, n_tokens) for each row of ``items`` (title + text)."""
    if engine not in ENGINES:
        raise ValueError(f"tokenize.engine: {engine!r} is not one of {', '.join(ENGINES)}")
    df = items.select(col_item, normalise(item_text(items), lowercase=lowercase, html=strip_html,
                                          urls=strip_urls).alias("_text"))
    if engine == "spark-ml":
        tok = RegexTokenizer(inputCol="_text", outputCol="_raw", pattern=TOKEN_SPLIT, gaps=True,
                             toLowercase=False, minTokenLength=1)
        df = tok.transform(df)
    else:
        df = _spark_nlp_tokens(df)
    # Strip apostrophes at token edges, then the length filter (one CJK character is a word).
    cleaned = F.transform(F.col("_raw"), lambda t: F.regexp_replace(t, r"^'+|'+$", ""))
    keep = F.filter(cleaned, lambda t: (F.length(t) >= min_token_length) | t.rlike(NO_SPACE_SCRIPTS))
    df = df.withColumn("_kept", keep)
    if stopwords != "none":
        words = StopWordsRemover.loadDefaultStopWords(stopwords)
        df = StopWordsRemover(inputCol="_kept", outputCol="_tokens", stopWords=words,
                              caseSensitive=not lowercase).transform(df)
    else:
        df = df.withColumn("_tokens", F.col("_kept"))
    return df.select(col_item, F.col("_tokens").alias("tokens"), F.size("_tokens").alias("n_tokens"))


def _spark_nlp_tokens(df: DataFrame) -> DataFrame:
    """Spark NLP annotators that need no download; output column ``_raw`` (array<string>)."""
    try:
        from sparknlp.annotator import Normalizer, Tokenizer
        from sparknlp.base import DocumentAssembler, Finisher
    except ImportError as exc:  # pragma: no cover - the package is pinned
        raise RuntimeError("tokenize.engine=spark-nlp needs the spark-nlp Python package") from exc
    conf = df.sparkSession.conf
    if "spark-nlp" not in conf.get("spark.jars", "") + conf.get("spark.jars.packages", ""):
        raise RuntimeError(
            "tokenize.engine=spark-nlp: the Spark NLP jar is not on the classpath (jars.use_spark_nlp); "
            "com.johnsnowlabs.nlp:spark-nlp_2.13:7.0.0 is not served by Maven Central here; "
            "use tokenize.engine=spark-ml"
        )
    from pyspark.ml import Pipeline

    stages = [
        DocumentAssembler().setInputCol("_text").setOutputCol("_doc").setCleanupMode("shrink"),
        Tokenizer().setInputCols(["_doc"]).setOutputCol("_tok"),
        Normalizer().setInputCols(["_tok"]).setOutputCol("_norm").setLowercase(False)
        .setCleanupPatterns([TOKEN_SPLIT]),
        Finisher().setInputCols(["_norm"]).setOutputCols(["_raw"]).setCleanAnnotations(True),
    ]
    return Pipeline(stages=stages).fit(df).transform(df)
