"""Tokenisation on awkward text: HTML, URLs, emoji, empty and very long texts, and
scripts without spaces or outside Latin."""

from __future__ import annotations

import pytest

from socialrec.features.tokenize import tokenize

ROWS = [
    ("html", "Hops &amp; <b>IPA</b>", "<p>Dry <i>hopping</i> &lt;works&gt;</p><script>alert('x')</script>"),
    ("url", "Links", "See https://beer.example.com/x?y=1 and www.foo.org/bar — it's GREAT!!!"),
    ("emoji", "Cheers 🍺🎉", "Brewing day 🍺 with friends"),
    ("emoji_only", "🍺🎉", "!!! ..."),
    ("empty", "", None),
    ("null", None, None),
    ("stop_only", "The", "and of the"),
    ("long", "Long", "lager " * 20000),
    ("chinese", None, "我喜欢喝啤酒"),
    ("japanese", None, "日本のビールが好き"),
    ("russian", "Пиво", "Я люблю пиво и хмель"),
    ("arabic", None, "أحب البيرة كثيرا"),
    ("greek", None, "Μου αρέσει η μπύρα"),
    ("thai", None, "ฉันชอบเบียร์ มาก"),
    ("accents", "Café naïve", "l'amour d'été"),
]


@pytest.fixture(scope="module")
def tokens(spark):
    df = spark.createDataFrame(ROWS, "item_id string, title string, text string")
    return {r.item_id: (r.tokens, r.n_tokens) for r in tokenize(df).collect()}


def test_html_and_urls_are_stripped(tokens):
    assert tokens["html"][0] == ["hops", "ipa", "dry", "hopping", "works"]  # script body dropped too
    assert tokens["url"][0] == ["links", "see", "great"]


def test_emoji_are_separators(tokens):
    assert tokens["emoji"][0] == ["cheers", "brewing", "day", "friends"]
    assert tokens["emoji_only"] == ([], 0)


def test_empty_and_stop_word_only_texts_keep_their_row(tokens):
    assert tokens["empty"] == ([], 0) and tokens["null"] == ([], 0) and tokens["stop_only"] == ([], 0)


def test_very_long_text(tokens):
    toks, n = tokens["long"]
    assert n == 20001 and toks[0] == "long" and set(toks[1:]) == {"lager"}


def test_cjk_text_becomes_character_tokens(tokens):
    assert tokens["chinese"][0] == ["我", "喜", "欢", "喝", "啤", "酒"]
    assert tokens["japanese"][0][:4] == ["日", "本", "の", "ビ"]
    assert tokens["japanese"][1] >= 7


def test_other_scripts_split_on_spaces(tokens):
    assert tokens["russian"][0] == ["пиво", "люблю", "пиво", "хмель"]  # one-letter words below min length
    assert tokens["arabic"][0] == ["أحب", "البيرة", "كثيرا"]
    assert tokens["greek"][0] == ["μου", "αρέσει", "μπύρα"]
    assert tokens["thai"][0] == ["ฉันชอบเบียร์", "มาก"]  # Thai runs stay whole (documented)
    assert tokens["accents"][0] == ["café", "naïve", "l'amour", "d'été"]


def test_options(spark):
    df = spark.createDataFrame([("1", "The IPA", "and <b>HOPS</b>")], "item_id string, title string, text string")
    raw = tokenize(df, lowercase=False, strip_html=False, stopwords="none", min_token_length=1).first().tokens
    assert raw == ["The", "IPA", "and", "b", "HOPS", "b"]
    with pytest.raises(ValueError, match="tokenize.engine: 'nltk'"):
        tokenize(df, engine="nltk")


def test_spark_nlp_engine_says_why_it_cannot_run(spark):
    df = spark.createDataFrame([("1", "t", "x")], "item_id string, title string, text string")
    if "spark-nlp" in spark.conf.get("spark.jars", ""):
        pytest.skip("Spark NLP jar present: covered by the engine test")
    with pytest.raises(RuntimeError, match="Spark NLP jar is not on the classpath.*use tokenize.engine=spark-ml"):
        tokenize(df, engine="spark-nlp")
