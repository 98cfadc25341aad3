"""The values configuration keys may take, declared once.

``core.config`` validates each section against these lists, and the modules that
implement the choices (the splitters, the engines, the encoder, ALS, the hybrid) import
them from here, so that the configuration layer imports no model code and no list is
copied. Plain tuples: importable without pyspark (``bench/gpu_embed.py`` runs where there
is none).
"""

# evaluation
PROTOCOLS = ("random", "stratified", "chrono", "leave_last", "time_cut", "cold_items", "cold_users")
METRIC_NAMES = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc", "coverage", "novelty", "diversity")
SEGMENT_NAMES = ("all", "cold_items", "light_users", "with_friends", "light_with_friends")
# hybrid-no-<signal>: the hybrid without one signal (its candidates and features), the ablation rows.
HYBRID_SIGNALS = ("als", "transformer", "w2v", "popular")
# hybrid-social: the hybrid plus the social signals (friends' items, node embeddings,
# neighbour-aggregated profiles); social: friends' items alone. The recommend stage's
# registry (socialrec.stages.recommend.MODEL_REGISTRY) has one entry per name (a test).
# hybrid-xgboost / hybrid-social-xgboost: the same two with the gradient-boosted ranker
# (hybrid.objective xgboost) whatever hybrid.objective says, to measure the rankers side by side.
MODELS = ("popularity", "als", "w2v_content", "transformer_content", "hybrid",
          *(f"hybrid-no-{s}" for s in HYBRID_SIGNALS), "hybrid-social", "social", "hybrid-xgboost",
          "hybrid-social-xgboost")

# dataset
DATASETS = ("synthetic", "movielens-100k", "movielens-latest", "lastfm-hetrec", "stackexchange", "files",
            "amazon-reviews", "mind")
FILE_TABLES = ("users", "items", "interactions", "edges")
FILE_FORMATS = ("csv", "text", "json", "parquet")
# How a file writes time (files adapter ``timestamp``); anything else is a Spark datetime pattern.
TIMESTAMP_FORMATS = ("auto", "iso", "unix-seconds", "unix-millis")
RATING_WEIGHTS = ("explicit", "binary")
# The generated network's topics, in the order of socialrec.data.vocab.TOPICS (a test).
SYNTHETIC_TOPICS = ("cooking", "football", "programming", "travel", "music", "fitness", "photography", "gardening",
                    "finance", "gaming", "astronomy", "pets", "cinema", "cycling", "books", "coffee")

# text and embeddings
TOKENIZE_ENGINES = ("spark-ml", "spark-nlp")
W2V_ENGINES = ("spark", "gensim")
CONTENT_VARIANTS = ("mean", "sif")
EMBED_FIELDS = ("title", "text", "tags")
DEVICES = ("auto", "cpu", "cuda")  # and cuda:<n>
DTYPES = ("auto", "float32", "float16", "bfloat16")

# models
CONFIDENCES = ("linear", "log", "binary")
ALS_GRID_KEYS = ("rank", "reg", "alpha", "max_iter")
BRIDGE_KINDS = ("transformer", "w2v")
HYBRID_OBJECTIVES = ("listwise", "pairwise", "pointwise", "xgboost")
XGB_DEVICES = ("cpu", "cuda")
# The hybrid's candidate features, in the order of its candidate frames' columns.
HYBRID_FEATURES = ("als", "transformer", "w2v", "als_z", "transformer_z", "w2v_z", "popularity_z", "rr_als",
                   "rr_transformer", "rr_w2v", "rr_popular", "popularity", "recency", "age", "activity",
                   # the social signal (model hybrid-social; zero elsewhere)
                   "social", "social_z", "rr_social", "social_recency", "graph", "graph_z", "rr_graph",
                   "profile", "profile_z", "rr_profile",
                   # the trending signal (hybrid.trend_hours; zero elsewhere)
                   "trending", "trending_z", "rr_trending",
                   # what a tree can use that a linear blend cannot: the cosine of the candidate to the
                   # user's most similar history item, and how many sources proposed it
                   "max_sim", "n_sources")

# platform
JAR_MODES = ("local", "packages", "none")
STREAM_TRIGGERS = ("available_now", "continuous")
STREAM_SOURCES = ("history", "social")
