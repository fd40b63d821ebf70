"""Image classification with a small CNN: 8×8 digits (quick) and Fashion-MNIST (full)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from harness import data as datasets
from harness.tasks.base import RunResult, Task, train_torch


@dataclass(frozen=True)
class ClassificationConfig:
    dataset: str  # "digits" or "fashion_mnist"
    steps: int
    batch_size: int
    eval_every: int
    channels: tuple[int, int]  # widths of the two convolution stages
    hidden: int


def build_cnn(config: ClassificationConfig, image_side: int):
    """Return conv-conv-pool twice (once for 8×8 inputs), then a two-layer head."""
    import torch.nn as nn

    c1, c2 = config.channels
    layers = [
        nn.Conv2d(1, c1, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c1, c1, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
    ]
    side = image_side // 2
    if image_side >= 16:
        layers += [
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c2, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        side //= 2
        width = c2
    else:
        width = c1
    layers += [
        nn.Flatten(),
        nn.Linear(width * side * side, config.hidden),
        nn.ReLU(),
        nn.Linear(config.hidden, 10),
    ]
    return nn.Sequential(*layers)


class Classification(Task):
    """Cross-entropy of a small CNN; also reports accuracy."""

    name = "classify"
    metric = "cross-entropy (nats)"
    lr_grid: ClassVar[Mapping[str, Sequence[float]]] = {
        "tiny": (1e-3, 1e-2),
        "quick": (1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
        "full": (3e-4, 1e-3, 3e-3, 1e-2),
    }
    # SGD and RMSProp run where a run costs about a second; Fashion-MNIST runs are
    # about 20 times dearer, so the full tier compares VRAdam and AdamW only.
    optimizers: ClassVar[Mapping[str, Sequence[str]]] = {
        "tiny": ("vradam", "adamw", "sgd", "rmsprop"),
        "quick": ("vradam", "adamw", "sgd", "rmsprop"),
        "full": ("vradam", "adamw"),
    }

    @property
    def title(self) -> str:
        return {"digits": "CNN on 8×8 digits", "fashion_mnist": "CNN on Fashion-MNIST"}[
            self.config.dataset
        ]

    def make_config(self, tier: str) -> ClassificationConfig:
        if tier == "full":
            return ClassificationConfig(
                "fashion_mnist",
                steps=1000,
                batch_size=64,
                eval_every=250,
                channels=(16, 32),
                hidden=128,
            )
        if tier == "quick":
            return ClassificationConfig(
                "digits", steps=300, batch_size=64, eval_every=50, channels=(16, 32), hidden=64
            )
        return ClassificationConfig(
            "digits", steps=20, batch_size=32, eval_every=10, channels=(4, 8), hidden=16
        )

    def prepare(self):
        if self.config.dataset == "fashion_mnist":
            return datasets.load_fashion_mnist()
        return datasets.load_digits()

    def run(self, data, spec, hparams, seed) -> RunResult:
        import torch
        import torch.nn.functional as F

        cfg = self.config
        torch.manual_seed(seed)
        train_x, train_y = (torch.from_numpy(a) for a in data["train"])
        model = build_cnn(cfg, image_side=train_x.shape[-1])
        batches = torch.from_numpy(
            datasets.batch_indices(len(train_y), cfg.batch_size, cfg.steps, seed)
        )

        def loss_at(step):
            idx = batches[step - 1]
            return F.cross_entropy(model(train_x[idx]), train_y[idx])

        @torch.no_grad()
        def scores(split):
            model.eval()
            x, y = (torch.from_numpy(a) for a in data[split])
            losses, correct = [], 0
            for start in range(0, len(y), 1024):
                logits = model(x[start : start + 1024])
                target = y[start : start + 1024]
                losses.append(F.cross_entropy(logits, target, reduction="sum"))
                correct += int((logits.argmax(1) == target).sum())
            model.train()
            return float(sum(losses)) / len(y), correct / len(y)

        result, _ = train_torch(
            task=self.name,
            spec=spec,
            hparams=hparams,
            seed=seed,
            param_groups=[{"params": list(model.parameters())}],
            loss_at=loss_at,
            evaluate=lambda: scores("val")[0],
            steps=cfg.steps,
            eval_every=cfg.eval_every,
        )
        if not result.diverged:
            result.val = result.val_curve[-1][1]
            result.test, accuracy = scores("test")
            result.extra["test_accuracy"] = accuracy
            result.extra["val_accuracy"] = scores("val")[1]
        return result
