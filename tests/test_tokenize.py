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


def _has_spark_nlp(spark) -> bool:
    return "spark-nlp" in spark.conf.get("spark.jars", "")


def test_spark_nlp_engine_says_why_it_cannot_run(spark):
    from socialrec.core.jars import spark_line

    if spark_line() != "4.1":
        pytest.skip("the Spark 3.5 line has the Spark NLP jar: the engine runs (tests below)")
    df = spark.createDataFrame([("1", "t", "x")], "item_id string, title string, text string")
    with pytest.raises(RuntimeError, match="no Scala 2.13 Spark NLP jar for Spark 4.1: run it on the Spark 3.5 "
                                           r"line \(SPARK_LINE=3.5 make setup\) or use tokenize.engine=spark-ml"):
        tokenize(df, engine="spark-nlp")


# Hard text beyond ROWS, and what each engine makes of it where they differ.
HARD = [
    ("hyphen", None, "state-of-the-art e-mail"),
    ("contraction", None, "don't won't it's rock'n'roll 'quoted'"),
    ("apos_entity", None, "don&#39;t stop &apos;believin&apos;"),
    ("named_entity", None, "caf&eacute; cr&egrave;me"),
    ("numeric_entity", None, "beer &#8211; ale &#x2014; stout"),
    ("numbers", None, "3.5% ABV, 12oz, 1,000 IBU v2.0"),
    ("email", None, "mail me at brewer@example.com now"),
    ("link", None, '<a href="https://x.org/a-b">link text</a> and http://y.com/q?a=1&b=2 done'),
    ("markdown", None, "**bold** _italic_ `code` [link](http://z.io)"),
    ("korean", None, "나는 맥주를 좋아해"),
    ("hindi", None, "मुझे बियर पसंद है"),
    ("combining", None, "cafe\u0301 nai\u0308ve"),
    ("zwj_emoji", None, "family \U0001F468\u200d\U0001F469\u200d\U0001F467 time"),
    ("mixed_cjk", None, "IPA啤酒good"),
    ("whitespace", None, "tab\there\nnewline\u00a0nbsp"),
]
# Where the engines differ (everything else in ROWS and HARD is token for token equal):
# Spark NLP's DocumentNormalizer removes every HTML entity it does not decode, while the
# spark-ml engine decodes the common ones (&amp; &lt; &gt; &quot; &#39; &nbsp;) and
# leaves the rest as text that becomes tokens. Neither decodes accented-letter entities.
DIFFERENT = {
    "apos_entity": (["stop", "apos", "believin", "apos"], ["stop", "believin"]),
    "named_entity": (["caf", "eacute", "cr", "egrave"], ["caf", "cr"]),
    "numeric_entity": (["beer", "8211", "ale", "x2014", "stout"], ["beer", "ale", "stout"]),
}


def test_spark_nlp_engine_on_hard_text(spark):
    """The Spark NLP pipeline (DocumentAssembler -> DocumentNormalizer -> Tokenizer ->
    Normalizer -> StopWordsCleaner -> Finisher) beside the spark-ml engine, row by row."""
    if not _has_spark_nlp(spark):
        pytest.skip("the Spark NLP jar is served for the Spark 3.5 line only: SPARK_LINE=3.5 make test")
    df = spark.createDataFrame(ROWS + HARD, "item_id string, title string, text string")
    ml = {r.item_id: (r.tokens, r.n_tokens) for r in tokenize(df).collect()}
    nlp = {r.item_id: (r.tokens, r.n_tokens) for r in tokenize(df, engine="spark-nlp").collect()}
    assert set(nlp) == set(ml)
    for key, (ml_tokens, nlp_tokens) in DIFFERENT.items():
        assert (ml[key][0], nlp[key][0]) == (ml_tokens, nlp_tokens), key
    same = {k for k in ml if k not in DIFFERENT}
    assert {k: nlp[k] for k in same} == {k: ml[k] for k in same}
    # and those equal rows are the expected ones
    assert nlp["html"][0] == ["hops", "ipa", "dry", "hopping", "works"]  # script body and tags out
    assert nlp["chinese"][0] == ["我", "喜", "欢", "喝", "啤", "酒"]
    assert nlp["hyphen"][0] == ["state", "art", "mail"] and nlp["contraction"][0] == ["rock'n'roll", "quoted"]
    assert nlp["link"][0] == ["link", "text", "done"] and nlp["mixed_cjk"][0] == ["ipa", "啤", "酒", "good"]
    assert nlp["combining"][0] == ["cafe\u0301", "nai\u0308ve"] and nlp["empty"] == ([], 0)  # marks kept
    options = dict(lowercase=False, strip_html=False, stopwords="none", min_token_length=1)
    one = spark.createDataFrame([("1", "The IPA", "and <b>HOPS</b>")], "item_id string, title string, text string")
    assert tokenize(one, engine="spark-nlp", **options).first().tokens == ["The", "IPA", "and", "b", "HOPS", "b"]
