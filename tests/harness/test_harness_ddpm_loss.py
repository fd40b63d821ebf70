"""The held-out DDPM loss against a per-sample loop, and its noise schedule."""

import numpy as np
import pytest
import torch
from harness.tasks.diffusion import alpha_bars, cosine_betas, denoising_loss, noise_draws


def brute_force_loss(predict, x0, t, noise, betas):
    """Return the mean over images, draws and pixels of (ε − ε̂)², one sample at a time."""
    total, count = 0.0, 0
    for i in range(x0.shape[0]):
        for k in range(t.shape[1]):
            alpha_bar = np.prod(1.0 - betas[: t[i, k]])
            noisy = np.sqrt(alpha_bar) * x0[i] + np.sqrt(1 - alpha_bar) * noise[i, k]
            predicted = predict(noisy, t[i, k])
            for p in range(x0.shape[1]):
                total += (noise[i, k, p] - predicted[p]) ** 2
                count += 1
    return total / count


def test_loss_matches_brute_force():
    rng = np.random.default_rng(0)
    timesteps, pixels = 7, 5
    betas = cosine_betas(timesteps)
    x0 = rng.uniform(-1, 1, size=(3, pixels))
    t, noise = noise_draws(3, 4, timesteps, pixels, seed=1)
    weight = rng.normal(size=(pixels, pixels))

    def predict_np(noisy, step):
        return np.tanh(noisy @ weight) * step / timesteps

    def predict_torch(noisy, step):
        return torch.tanh(noisy @ torch.from_numpy(weight)) * step[:, None] / timesteps

    expected = brute_force_loss(predict_np, x0, t, noise.astype(np.float64), betas)
    actual = denoising_loss(
        predict_torch,
        torch.from_numpy(x0),
        torch.from_numpy(t),
        torch.from_numpy(noise.astype(np.float64)),
        torch.from_numpy(alpha_bars(betas)),
    )
    assert float(actual) == pytest.approx(expected, rel=1e-12)


def test_draws_fixed_by_seed():
    first = noise_draws(4, 2, 10, 3, seed=5)
    second = noise_draws(4, 2, 10, 3, seed=5)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_draws_cover_timesteps():
    t, _ = noise_draws(500, 2, 10, 1, seed=0)
    assert t.min() == 1
    assert t.max() == 10


@pytest.mark.parametrize("timesteps", [2, 10, 100, 1000])
def test_schedule_is_valid(timesteps):
    betas = cosine_betas(timesteps)
    assert np.all(betas > 0)
    assert np.all(betas <= 0.999)
    assert alpha_bars(betas)[-1] < 0.01
