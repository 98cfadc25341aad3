"""Column names used across socialrec, declared once.

Library functions take column names as keyword arguments whose defaults come from
here (the Microsoft Recommenders habit), so callers with other names need no renames.
"""

DATASET = "dataset"
USER = "user_id"
ITEM = "item_id"
AUTHOR = "author_id"
EVENT = "event"
WEIGHT = "weight"
TS = "ts"
# What an event carried when one user can repeat it on one item at one time: the tag
# given, the comment or answer id. Part of the interactions key; null otherwise.
DETAIL = "detail"
SRC = "src"
DST = "dst"
KIND = "kind"
# Where an edge derived from interactions came from: one entry per event that made it
# (its time, its id, and the (user, item) pairs that event reveals); null for edges
# that exist independently of the interactions (follows, friendships, trust).
EVIDENCE = "evidence"
TEXT = "text"
TITLE = "title"
TAGS = "tags"
PARENT = "parent_id"
CREATED_AT = "created_at"
CONTENT_HASH = "content_hash"
SCORE = "score"
RANK = "rank"
RUN_ID = "run_id"
MODEL = "model"
SPLIT = "split"
PART = "part"
SEED = "seed"
SEGMENT = "segment"
METRIC = "metric"
K = "k"
VALUE = "value"
N_EVENTS = "n_events"

# Bookkeeping columns that source adapters attach to raw rows so that a reject can
# name the file and the row it came from.
SOURCE = "_source"
ROW = "_row"
