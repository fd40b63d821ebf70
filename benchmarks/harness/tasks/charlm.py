"""Character-level language modelling with a small pre-LayerNorm GPT on Shakespeare."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from harness import data as datasets
from harness.tasks.base import RunResult, Task, train_torch

# Seed of the fixed validation and test windows, independent of the run's seed.
EVAL_SEED = 1234


@dataclass(frozen=True)
class CharLMConfig:
    steps: int
    batch_size: int
    block: int  # context length in characters
    width: int  # embedding width
    layers: int
    heads: int
    eval_every: int
    eval_windows: int  # number of fixed windows scored per evaluation


def build_gpt(config: CharLMConfig, vocab_size: int):
    """Return a pre-LayerNorm decoder-only Transformer with learned positions."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_attn = nn.LayerNorm(config.width)
            self.qkv = nn.Linear(config.width, 3 * config.width)
            self.proj = nn.Linear(config.width, config.width)
            self.ln_mlp = nn.LayerNorm(config.width)
            self.mlp = nn.Sequential(
                nn.Linear(config.width, 4 * config.width),
                nn.GELU(),
                nn.Linear(4 * config.width, config.width),
            )

        def forward(self, x):
            batch, length, width = x.shape
            q, k, v = self.qkv(self.ln_attn(x)).split(width, dim=-1)
            heads = [t.view(batch, length, config.heads, -1).transpose(1, 2) for t in (q, k, v)]
            attended = F.scaled_dot_product_attention(*heads, is_causal=True)
            x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
            return x + self.mlp(self.ln_mlp(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens = nn.Embedding(vocab_size, config.width)
            self.positions = nn.Parameter(torch.zeros(config.block, config.width))
            self.blocks = nn.Sequential(*[Block() for _ in range(config.layers)])
            self.ln_out = nn.LayerNorm(config.width)
            self.head = nn.Linear(config.width, vocab_size)
            nn.init.normal_(self.positions, std=0.02)

        def forward(self, ids):
            x = self.tokens(ids) + self.positions[: ids.shape[1]]
            return self.head(self.ln_out(self.blocks(x)))

    return GPT()


def window_starts(n: int, block: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``count`` random starts of (block + 1)-character windows in n characters."""
    return rng.integers(0, n - block - 1, size=count)


class CharLM(Task):
    """Mean next-character cross-entropy on held-out Shakespeare."""

    name = "charlm"
    title = "Char-level GPT on Shakespeare"
    metric = "cross-entropy (nats/char)"
    lr_grid: ClassVar[Mapping[str, Sequence[float]]] = {
        "tiny": (1e-3, 1e-2),
        "quick": (3e-3, 1e-2, 3e-2),
        "full": (1e-3, 3e-3, 1e-2),
    }
    optimizers: ClassVar[Mapping[str, Sequence[str]]] = {
        tier: ("vradam", "adamw") for tier in ("tiny", "quick", "full")
    }

    def make_config(self, tier: str) -> CharLMConfig:
        if tier == "full":
            return CharLMConfig(
                steps=1000,
                batch_size=32,
                block=64,
                width=64,
                layers=2,
                heads=4,
                eval_every=100,
                eval_windows=256,
            )
        if tier == "quick":
            return CharLMConfig(
                steps=300,
                batch_size=16,
                block=64,
                width=64,
                layers=2,
                heads=4,
                eval_every=50,
                eval_windows=128,
            )
        return CharLMConfig(
            steps=10,
            batch_size=4,
            block=16,
            width=16,
            layers=1,
            heads=2,
            eval_every=5,
            eval_windows=8,
        )

    def prepare(self):
        splits, vocab = datasets.load_shakespeare()
        cfg = self.config
        rng = np.random.default_rng(EVAL_SEED)
        windows = {
            split: window_starts(len(splits[split]), cfg.block, cfg.eval_windows, rng)
            for split in ("val", "test")
        }
        return {"splits": splits, "vocab": vocab, "windows": windows}

    def run(self, data, spec, hparams, seed) -> RunResult:
        import torch
        import torch.nn.functional as F

        cfg = self.config
        torch.manual_seed(seed)
        splits = {k: torch.from_numpy(v.astype(np.int64)) for k, v in data["splits"].items()}
        model = build_gpt(cfg, vocab_size=len(data["vocab"]))
        starts = window_starts(
            len(splits["train"]), cfg.block, cfg.steps * cfg.batch_size, np.random.default_rng(seed)
        ).reshape(cfg.steps, cfg.batch_size)
        offsets = torch.arange(cfg.block + 1)

        def windows(text, first):
            chunk = text[torch.as_tensor(first)[:, None] + offsets]
            return chunk[:, :-1], chunk[:, 1:]

        def loss_at(step):
            inputs, targets = windows(splits["train"], starts[step - 1])
            logits = model(inputs)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

        @torch.no_grad()
        def score(split):
            model.eval()
            inputs, targets = windows(splits[split], data["windows"][split])
            total = 0.0
            for i in range(0, len(inputs), 64):
                logits = model(inputs[i : i + 64])
                total += float(
                    F.cross_entropy(
                        logits.reshape(-1, logits.shape[-1]),
                        targets[i : i + 64].reshape(-1),
                        reduction="sum",
                    )
                )
            model.train()
            return total / targets.numel()

        result, _ = train_torch(
            task=self.name,
            spec=spec,
            hparams=hparams,
            seed=seed,
            param_groups=[{"params": list(model.parameters())}],
            loss_at=loss_at,
            evaluate=lambda: score("val"),
            steps=cfg.steps,
            eval_every=cfg.eval_every,
        )
        if not result.diverged:
            result.val = result.val_curve[-1][1]
            result.test = score("test")
        return result
