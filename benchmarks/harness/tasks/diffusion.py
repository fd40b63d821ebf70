"""A small DDPM on the 8×8 digits, scored by held-out denoising loss."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from harness import data as datasets
from harness.tasks.base import RunResult, Task, train_torch

# Seed of the fixed (t, noise) draws for the held-out loss, independent of the run's seed.
EVAL_SEED = 4321


@dataclass(frozen=True)
class DiffusionConfig:
    steps: int
    batch_size: int
    timesteps: int  # T, the length of the noising chain
    hidden: int
    eval_every: int
    draws: int  # fixed (t, noise) draws per held-out image
    samples: int  # images generated at the end of a run, for the samples plot


def cosine_betas(timesteps: int, offset: float = 0.008) -> np.ndarray:
    """Return β_1..β_T of the cosine noise schedule, capped at 0.999.

    ᾱ(t) = cos²(π/2 · (t/T + s)/(1 + s)) / ᾱ(0) with s = ``offset``; unlike a linear
    schedule it stays valid for any T, including the tiny ones used in tests.
    """
    t = np.arange(timesteps + 1) / timesteps
    f = np.cos((t + offset) / (1 + offset) * np.pi / 2) ** 2
    return np.minimum(1.0 - f[1:] / f[:-1], 0.999)


def alpha_bars(betas: np.ndarray) -> np.ndarray:
    """Return ᾱ_t = Π_{s≤t} (1 − β_s) for t = 1..T."""
    return np.cumprod(1.0 - betas)


def noise_draws(n: int, draws: int, timesteps: int, pixels: int, seed: int):
    """Return fixed draws for n images: t in 1..T of shape (n, draws), noise (n, draws, pixels)."""
    rng = np.random.default_rng(seed)
    t = rng.integers(1, timesteps + 1, size=(n, draws))
    noise = rng.standard_normal((n, draws, pixels)).astype(np.float32)
    return t, noise


def denoising_loss(predict, x0, t, noise, alpha_bar):
    """Return the mean squared error of the noise prediction, averaged over images, draws, pixels.

    ``predict(x_t, t)`` maps noisy images (N, P) and 1-based timesteps (N,) to
    predicted noise (N, P). ``x0`` is (n, P); ``t`` (n, K) and ``noise`` (n, K, P) are
    the fixed draws; ``alpha_bar[t - 1]`` is ᾱ_t. Works on torch tensors.
    """
    n, draws, pixels = noise.shape
    x0 = x0[:, None, :].expand(n, draws, pixels).reshape(-1, pixels)
    t = t.reshape(-1)
    noise = noise.reshape(-1, pixels)
    a = alpha_bar[t - 1][:, None]
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
    return ((predict(noisy, t) - noise) ** 2).mean()


def build_denoiser(config: DiffusionConfig, pixels: int):
    """Return an MLP that predicts the noise from x_t and a sinusoidal embedding of t."""
    import torch
    import torch.nn as nn

    class Denoiser(nn.Module):
        def __init__(self):
            super().__init__()
            self.frequencies = nn.Buffer(torch.exp(-math.log(1000.0) * torch.arange(16) / 16))
            self.net = nn.Sequential(
                nn.Linear(pixels + 32, config.hidden),
                nn.SiLU(),
                nn.Linear(config.hidden, config.hidden),
                nn.SiLU(),
                nn.Linear(config.hidden, config.hidden),
                nn.SiLU(),
                nn.Linear(config.hidden, pixels),
            )

        def forward(self, x, t):
            angles = t[:, None].float() * self.frequencies
            return self.net(torch.cat([x, angles.sin(), angles.cos()], dim=1))

    return Denoiser()


class Diffusion(Task):
    """DDPM noise-prediction loss on held-out digits with fixed (t, noise) draws."""

    name = "ddpm"
    title = "DDPM on 8×8 digits"
    metric = "denoising MSE"
    lr_grid: ClassVar[Mapping[str, Sequence[float]]] = {
        "tiny": (1e-3, 1e-2),
        "quick": (1e-3, 3e-3, 1e-2),
        "full": (3e-4, 1e-3, 3e-3, 1e-2),
    }
    optimizers: ClassVar[Mapping[str, Sequence[str]]] = {
        "tiny": ("vradam", "adamw"),
        "quick": ("vradam", "adamw", "rmsprop"),
        "full": ("vradam", "adamw", "rmsprop"),
    }

    def make_config(self, tier: str) -> DiffusionConfig:
        if tier == "full":
            return DiffusionConfig(
                steps=2000,
                batch_size=128,
                timesteps=200,
                hidden=256,
                eval_every=250,
                draws=8,
                samples=64,
            )
        if tier == "quick":
            return DiffusionConfig(
                steps=1000,
                batch_size=64,
                timesteps=100,
                hidden=128,
                eval_every=100,
                draws=4,
                samples=64,
            )
        return DiffusionConfig(
            steps=10, batch_size=16, timesteps=10, hidden=16, eval_every=5, draws=1, samples=4
        )

    def prepare(self):
        cfg = self.config
        splits = datasets.load_digits()
        # Scale pixels to [-1, 1] and flatten, as DDPMs expect data of unit scale.
        images = {
            k: (2.0 * x.reshape(len(x), -1) - 1.0).astype(np.float32)
            for k, (x, _) in splits.items()
        }
        draws = {}
        for offset, split in enumerate(("val", "test")):
            draws[split] = noise_draws(
                len(images[split]),
                cfg.draws,
                cfg.timesteps,
                images[split].shape[1],
                EVAL_SEED + offset,
            )
        return {"images": images, "draws": draws}

    def run(self, data, spec, hparams, seed) -> RunResult:
        import torch

        cfg = self.config
        torch.manual_seed(seed)
        images = {k: torch.from_numpy(v) for k, v in data["images"].items()}
        pixels = images["train"].shape[1]
        model = build_denoiser(cfg, pixels)
        betas = cosine_betas(cfg.timesteps)
        alpha_bar = torch.from_numpy(alpha_bars(betas)).float()

        rng = np.random.default_rng(seed)
        batches = datasets.batch_indices(len(images["train"]), cfg.batch_size, cfg.steps, seed)
        train_t = rng.integers(1, cfg.timesteps + 1, size=(cfg.steps, cfg.batch_size, 1))
        train_noise = rng.standard_normal((cfg.steps, cfg.batch_size, 1, pixels))

        def loss_at(step):
            i = step - 1
            return denoising_loss(
                model,
                images["train"][batches[i]],
                torch.from_numpy(train_t[i]),
                torch.from_numpy(train_noise[i].astype(np.float32)),
                alpha_bar,
            )

        @torch.no_grad()
        def score(split):
            t, noise = data["draws"][split]
            return float(
                denoising_loss(
                    model, images[split], torch.from_numpy(t), torch.from_numpy(noise), alpha_bar
                )
            )

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
            result.artifacts["samples"] = sample(
                model, torch.from_numpy(betas), cfg.samples, pixels, seed
            )
        return result


def sample(model, betas, count: int, pixels: int, seed: int) -> np.ndarray:
    """Return ``count`` images drawn by ancestral sampling, shape (count, pixels), in [-1, 1].

    Each step predicts x_0 from the noise estimate, clips it to the data range and
    samples x_{t−1} from the Gaussian posterior q(x_{t−1} | x_t, x_0). Without the
    clip, the 1/√α_t factor of the last steps (up to 1/√0.001) amplifies a small
    model's errors until every pixel saturates.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    betas = betas.float()
    alphas = 1.0 - betas
    alpha_bar = torch.cumprod(alphas, 0)
    x = torch.randn(count, pixels, generator=generator)
    with torch.no_grad():
        for t in range(len(betas), 0, -1):
            a_t, a_bar = alphas[t - 1], alpha_bar[t - 1]
            a_bar_prev = alpha_bar[t - 2] if t > 1 else torch.tensor(1.0)
            eps = model(x, torch.full((count,), t))
            x0 = ((x - (1 - a_bar).sqrt() * eps) / a_bar.sqrt()).clamp(-1, 1)
            mean = (a_bar_prev.sqrt() * betas[t - 1] * x0 + a_t.sqrt() * (1 - a_bar_prev) * x) / (
                1 - a_bar
            )
            if t > 1:
                variance = betas[t - 1] * (1 - a_bar_prev) / (1 - a_bar)
                x = mean + variance.sqrt() * torch.randn(count, pixels, generator=generator)
            else:
                x = mean
    return x.clamp(-1, 1).numpy()
