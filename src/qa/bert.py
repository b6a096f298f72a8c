"""A BERT encoder in plain torch, for fast starts: safetensors weights → token vectors.

In: a sentence-transformers model folder whose transformer is a standard BERT
(`config.json` with model_type "bert", absolute positions, GELU) and token ids. Out: the
last hidden states, the same numbers `transformers.BertModel` computes (checked to 1e-6 in
the tests). Importing `transformers` costs a cold `qa ask` over 3 s of imports before the
first question; these 60 lines cost none. Any other architecture goes through
sentence-transformers instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class _Layer(nn.Module):
    def __init__(self, size: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(size, size) for _ in range(3))
        self.attention_out = nn.Linear(size, size)
        self.attention_norm = nn.LayerNorm(size, eps=eps)
        self.intermediate = nn.Linear(size, inner)
        self.output = nn.Linear(inner, size)
        self.output_norm = nn.LayerNorm(size, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, size = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, size // self.heads).transpose(1, 2)

        context = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=mask
        )
        context = context.transpose(1, 2).reshape(batch, length, size)
        x = self.attention_norm(x + self.attention_out(context))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))


class BertEncoder(nn.Module):
    """Embeddings + transformer layers of BERT (no pooler: pooling is the caller's)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        size, eps = config["hidden_size"], config.get("layer_norm_eps", 1e-12)
        self.words = nn.Embedding(config["vocab_size"], size)
        self.positions = nn.Embedding(config["max_position_embeddings"], size)
        self.token_types = nn.Embedding(config.get("type_vocab_size", 2), size)
        self.norm = nn.LayerNorm(size, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(size, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"])
        )

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.words(ids) + self.positions(positions)[None] + self.token_types.weight[0]
        x = self.norm(x)
        # padded positions take no attention: a boolean mask, True where attending is allowed
        mask = attention_mask.bool()[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return x

    @classmethod
    def load(cls, folder: Path) -> BertEncoder:
        """Build from `config.json` and `model.safetensors` (names as transformers saves them)."""
        from safetensors.torch import load_file

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        model = cls(config)
        weights = {k.removeprefix("bert."): v for k, v in
                   load_file(str(folder / "model.safetensors")).items()}
        renamed = {
            "embeddings.word_embeddings": "words",
            "embeddings.position_embeddings": "positions",
            "embeddings.token_type_embeddings": "token_types",
            "embeddings.LayerNorm": "norm",
            "attention.self.query": "query",
            "attention.self.key": "key",
            "attention.self.value": "value",
            "attention.output.dense": "attention_out",
            "attention.output.LayerNorm": "attention_norm",
            "intermediate.dense": "intermediate",
            "output.dense": "output",
            "output.LayerNorm": "output_norm",
            "encoder.layer": "layers",
        }
        state = {}
        for name, tensor in weights.items():
            if name.startswith("pooler.") or name.endswith("position_ids"):
                continue
            for old, new in renamed.items():
                name = name.replace(old, new)
            state[name] = tensor
        model.load_state_dict(state, strict=True)
        return model.eval()
