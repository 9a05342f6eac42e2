"""Encoders and the content-addressed embedding cache."""

from rewardlab.embed.base import Encoder, make_encoder
from rewardlab.embed.cache import EmbeddingCache, default_cache_dir
from rewardlab.embed.embedding import EmbedStats, embed_texts
from rewardlab.embed.hashing import HashingEncoder

__all__ = ["EmbedStats", "EmbeddingCache", "Encoder", "HashingEncoder", "default_cache_dir", "embed_texts",
           "make_encoder"]
