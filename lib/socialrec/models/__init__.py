"""Recommenders: the blockwise retrieval kernel, popularity, content (Word2Vec / transformer), implicit ALS with its cold-start bridge, and the hybrid's candidates and rankers."""
