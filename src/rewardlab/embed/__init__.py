"""Encoders and the content-addressed embedding cache."""

from rewardlab.embed.base import DEFAULT_ENCODER, ENCODER_SPECS, Encoder, make_encoder
from rewardlab.embed.cache import EmbeddingCache, default_cache_dir
from rewardlab.embed.embedding import EmbedStats, embed_texts
from rewardlab.embed.hashing import HashingEncoder

__all__ = ["DEFAULT_ENCODER", "ENCODER_SPECS", "EmbedStats", "EmbeddingCache", "Encoder", "HashingEncoder",
           "default_cache_dir", "embed_texts", "make_encoder"]
