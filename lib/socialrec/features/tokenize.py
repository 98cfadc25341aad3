"""Tokenisation of item text, distributed: ``tokens(item_id, tokens)``.

Two engines behind one function, chosen by ``tokenize.engine``:

* ``spark-ml`` — Spark built-ins and ``RegexTokenizer`` + ``StopWordsRemover``; needs no
  extra jar. Steps: strip HTML tags and entities, strip URLs, lower-case (all optional),
  put spaces around every CJK ideograph and kana (scripts that do not separate words
  with spaces: each such character becomes a token, instead of a whole sentence
  becoming one token; Thai runs stay whole), split on anything that is not a letter, digit or
  apostrophe (emoji and punctuation are separators), drop tokens shorter than
  ``min_token_length`` (CJK characters are exempt) and English stop words.
* ``spark-nlp`` — Spark NLP annotators that need no pretrained download:
  DocumentAssembler, DocumentNormalizer (script/style blocks, tags, entities and URLs
  out, lower case, a space around every CJK ideograph and kana), Tokenizer (splitting
  inside tokens where the spark-ml engine splits), Normalizer (apostrophes at token
  edges), StopWordsCleaner (Spark's English list), Finisher. Needs the Spark NLP jar,
  which Maven Central serves for the Spark 3.5 line (``SPARK_LINE=3.5``); on Spark 4.1
  it refuses with a message until a Scala 2.13 jar is served. Where the two engines'
  tokens differ on hard text is written down in ``tests/test_tokenize.py``.

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
EDGE_APOSTROPHES = r"^'+|'+$"
SCRIPT_STYLE = r"(?is)<(script|style)[^>]*>.*?</\1>"
TAG = r"<[^>]*>"
ENTITY = r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);"
APOSTROPHE_ENTITY = r"&#39;|&#x27;|&apos;"


def _long_enough(tokens: Column, min_token_length: int) -> Column:
    """The tokens of at least ``min_token_length`` characters (one CJK character is a word)."""
    return F.filter(tokens, lambda t: (F.length(t) >= min_token_length) | t.rlike(NO_SPACE_SCRIPTS))


def has_text() -> Column:
    """True for an item with a title or a text that is not blank (the text stages skip the others)."""
    return (F.coalesce(F.trim(F.col(C.TITLE)), F.lit("")) != "") | (F.coalesce(F.trim(F.col(C.TEXT)), F.lit("")) != "")


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
    if engine == "spark-nlp":
        df = _spark_nlp_tokens(items.select(col_item, item_text(items).alias("_text")), lowercase=lowercase,
                               html=strip_html, urls=strip_urls, stopwords=stopwords)
        return df.select(col_item, _long_enough(F.col("_raw"), min_token_length).alias("tokens")).select(
            col_item, "tokens", F.size("tokens").alias("n_tokens"))
    df = items.select(col_item, normalise(item_text(items), lowercase=lowercase, html=strip_html,
                                          urls=strip_urls).alias("_text"))
    tok = RegexTokenizer(inputCol="_text", outputCol="_raw", pattern=TOKEN_SPLIT, gaps=True,
                         toLowercase=False, minTokenLength=1)
    df = tok.transform(df)
    # Strip apostrophes at token edges, then the length filter (one CJK character is a word).
    cleaned = F.transform(F.col("_raw"), lambda t: F.regexp_replace(t, EDGE_APOSTROPHES, ""))
    df = df.withColumn("_kept", _long_enough(cleaned, min_token_length))
    if stopwords != "none":
        words = StopWordsRemover.loadDefaultStopWords(stopwords)
        df = StopWordsRemover(inputCol="_kept", outputCol="_tokens", stopWords=words,
                              caseSensitive=not lowercase).transform(df)
    else:
        df = df.withColumn("_tokens", F.col("_kept"))
    return df.select(col_item, F.col("_tokens").alias("tokens"), F.size("_tokens").alias("n_tokens"))


def _spark_nlp_tokens(df: DataFrame, *, lowercase: bool, html: bool, urls: bool, stopwords: str) -> DataFrame:
    """The Spark NLP pipeline over ``_text``; output column ``_raw`` (array<string>):
    tokens cleaned, edge apostrophes and stop words removed (the length filter follows)."""
    try:
        from sparknlp.annotator import DocumentNormalizer, Normalizer, StopWordsCleaner, Tokenizer
        from sparknlp.base import DocumentAssembler, Finisher
    except ImportError as exc:  # pragma: no cover - the package is pinned
        raise RuntimeError("tokenize.engine=spark-nlp needs the spark-nlp Python package") from exc
    conf = df.sparkSession.conf
    if "spark-nlp" not in conf.get("spark.jars", "") + conf.get("spark.jars.packages", ""):
        from socialrec.core.jars import spark_line

        raise RuntimeError(
            "tokenize.engine=spark-nlp: the Spark NLP jar is not on the classpath (jars.use_spark_nlp); "
            + ("Maven Central serves no Scala 2.13 Spark NLP jar for Spark 4.1: run it on the Spark 3.5 line "
               "(SPARK_LINE=3.5 make setup) or use tokenize.engine=spark-ml" if spark_line() == "4.1"
               else "run `SPARK_LINE=3.5 make setup` to fetch it")
        )
    from pyspark.ml import Pipeline

    removed = [*([SCRIPT_STYLE, TAG] if html else []), *([URL_PATTERN] if urls else [])]
    stages = [DocumentAssembler().setInputCol("_text").setOutputCol("_doc").setCleanupMode("disabled")]
    if html:  # an apostrophe written as an entity stays one (don&#39;t is one word); other entities separate
        stages.append(DocumentNormalizer().setInputCols(["_doc"]).setOutputCol("_apos").setAction("clean")
                      .setPatterns([APOSTROPHE_ENTITY]).setReplacement("'").setPolicy("all"))
        removed.append(ENTITY)
    last = stages[-1].getOutputCol()
    stages += [
        DocumentNormalizer().setInputCols([last]).setOutputCol("_clean").setAction("clean")
        .setPatterns(removed or ["(?!)"]).setReplacement(" ").setPolicy("all").setLowercase(lowercase),
        DocumentNormalizer().setInputCols(["_clean"]).setOutputCol("_spaced").setAction("clean")
        .setPatterns([NO_SPACE_SCRIPTS]).setReplacement(" $1 ").setPolicy("all"),
        Tokenizer().setInputCols(["_spaced"]).setOutputCol("_tok").setSplitPattern(TOKEN_SPLIT),
        Normalizer().setInputCols(["_tok"]).setOutputCol("_norm").setLowercase(False)
        .setCleanupPatterns([TOKEN_SPLIT, EDGE_APOSTROPHES]).setMinLength(1),
    ]
    out = "_norm"
    if stopwords != "none":
        stages.append(StopWordsCleaner().setInputCols(["_norm"]).setOutputCol("_clean_tok")
                      .setStopWords(StopWordsRemover.loadDefaultStopWords(stopwords))
                      .setCaseSensitive(not lowercase))
        out = "_clean_tok"
    stages.append(Finisher().setInputCols([out]).setOutputCols(["_raw"]).setCleanAnnotations(True)
                  .setIncludeMetadata(False).setOutputAsArray(True))
    return Pipeline(stages=stages).fit(df).transform(df)
