"""GFlowNet on the hypergrid, trained with trajectory balance and scored exactly.

A state is a point x in {0, ..., H−1}^D, starting at the origin. An action adds 1
to one coordinate (if it stays inside the grid) or stops, which makes x terminal.
The learned sampler's terminating distribution P_T(x) is computed exactly by
dynamic programming over all H^D states, and the score is the L1 distance
Σ_x |P_T(x) − R(x)/Z| to the normalized reward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from harness.tasks.base import RunResult, Task, train_torch

# Reward R(x) = R0 + R1·Π_d[0.25 < |x_d/(H−1) − 0.5| ≤ 0.5] + R2·Π_d[0.3 < |…| < 0.4]:
# 2^D modes near the corners, each with a higher-reward core. R0 sets how much mass
# lies between the modes; the smaller it is, the harder the modes are to find.
REWARD_R0, REWARD_R1, REWARD_R2 = 1e-2, 0.5, 2.0
# log Z learns in its own parameter group with this multiple of the tuned lr, as is
# usual for trajectory balance: it must move much further than any policy weight.
LOG_Z_LR_SCALE = 10.0


@dataclass(frozen=True)
class GFlowNetConfig:
    dim: int  # D
    side: int  # H
    steps: int
    batch_size: int  # trajectories per step
    hidden: int
    eval_every: int
    eval_last: int  # the score is the mean L1 of this many final evaluations


def all_states(dim: int, side: int) -> np.ndarray:
    """Return every state as an int array (side**dim, dim), in C order of the grid."""
    return np.indices((side,) * dim).reshape(dim, -1).T.copy()


def rewards(states: np.ndarray, side: int) -> np.ndarray:
    """Return R(x) for each row of ``states``."""
    distance = np.abs(states / (side - 1) - 0.5)
    outer = np.all((distance > 0.25) & (distance <= 0.5), axis=1)
    inner = np.all((distance > 0.3) & (distance < 0.4), axis=1)
    return REWARD_R0 + REWARD_R1 * outer + REWARD_R2 * inner


def action_mask(states: np.ndarray, side: int) -> np.ndarray:
    """Return a bool (N, D + 1) mask of the legal actions; the last action is stop."""
    increments = states < side - 1
    return np.concatenate([increments, np.ones((len(states), 1), dtype=bool)], axis=1)


def terminating_distribution(log_probs: np.ndarray, dim: int, side: int) -> np.ndarray:
    """Return P_T(x) for every state from the forward policy's log-probabilities.

    ``log_probs`` is (side**dim, dim + 1) in the order of :func:`all_states`, with
    column d the log-probability of adding 1 to coordinate d and the last column
    that of stopping. The probability of reaching each state is pushed forward
    level by level (a level is a coordinate sum), because every edge goes from one
    level to the next; then P_T(x) = P(reach x)·P(stop | x).
    """
    states = all_states(dim, side)
    probs = np.exp(log_probs.astype(np.float64))
    levels = states.sum(axis=1)
    strides = np.array([side ** (dim - 1 - d) for d in range(dim)])
    reach = np.zeros(len(states))
    reach[0] = 1.0
    for level in range(levels.max()):
        level_states = np.flatnonzero(levels == level)
        for d in range(dim):
            movable = level_states[states[level_states, d] < side - 1]
            reach[movable + strides[d]] += reach[movable] * probs[movable, d]
    return reach * probs[:, dim]


def l1_to_reward(terminating: np.ndarray, reward: np.ndarray) -> float:
    """Return Σ_x |P_T(x) − R(x)/Z|, between 0 and 2."""
    return float(np.abs(terminating - reward / reward.sum()).sum())


def build_policy(config: GFlowNetConfig):
    """Return an MLP from the one-hot coordinates (D·H inputs) to D + 1 action logits."""
    import torch.nn as nn

    inputs = config.dim * config.side
    return nn.Sequential(
        nn.Linear(inputs, config.hidden),
        nn.LeakyReLU(),
        nn.Linear(config.hidden, config.hidden),
        nn.LeakyReLU(),
        nn.Linear(config.hidden, config.dim + 1),
    )


def masked_log_probs(policy: Callable, states, side: int):
    """Return log-softmax of the policy's logits with illegal actions at −inf (torch)."""
    import torch
    import torch.nn.functional as F

    one_hot = F.one_hot(states, side).flatten(1).float()
    logits = policy(one_hot)
    legal = torch.cat([states < side - 1, torch.ones_like(states[:, :1], dtype=torch.bool)], 1)
    return torch.log_softmax(logits.masked_fill(~legal, -torch.inf), dim=1)


def trajectory_balance_loss(policy, log_z, uniforms: np.ndarray, config: GFlowNetConfig):
    """Sample a batch of trajectories on-policy and return the mean trajectory-balance loss.

    ``uniforms`` (batch, D·(H−1) + 1) are the numpy draws that pick each action by
    inverse CDF, so the trajectories depend only on the policy and the seed. The
    backward policy is uniform over a state's parents, so log P_B of an increment
    is −log(number of nonzero coordinates of the state it reaches).
    """
    import torch

    dim, side = config.dim, config.side
    batch = uniforms.shape[0]
    states = torch.zeros(batch, dim, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    log_pf = torch.zeros(batch)
    log_pb = torch.zeros(batch)
    u = torch.from_numpy(uniforms)
    for i in range(uniforms.shape[1]):
        log_probs = masked_log_probs(policy, states, side)
        cdf = log_probs.detach().exp().cumsum(1)
        # Clamp guards against a cdf that rounds to just under 1 at the last action.
        actions = torch.searchsorted(cdf, u[:, i : i + 1].float()).squeeze(1).clamp(max=dim)
        log_pf = log_pf + torch.where(done, 0.0, log_probs.gather(1, actions[:, None]).squeeze(1))
        moving = ~done & (actions < dim)
        step = torch.nn.functional.one_hot(actions.clamp(max=dim - 1), dim) * moving[:, None]
        states = states + step
        parents = (states > 0).sum(1).clamp(min=1).float()
        log_pb = log_pb - torch.where(moving, parents.log(), 0.0)
        done = done | (actions == dim)
        if bool(done.all()):
            break
    log_reward = torch.from_numpy(np.log(rewards(states.numpy(), side))).float()
    return ((log_z + log_pf - log_reward - log_pb) ** 2).mean()


class GFlowNet(Task):
    """Exact L1 between the terminating distribution and the normalized reward."""

    name = "gflownet"
    title = "GFlowNet on the 4-D hypergrid, side 8"
    metric = "L1 to target (exact)"
    lr_grid: ClassVar[Mapping[str, Sequence[float]]] = {
        "tiny": (1e-3, 1e-2),
        "quick": (1e-3, 3e-3, 1e-2, 3e-2),
        "full": (1e-3, 3e-3, 1e-2, 3e-2),
    }
    optimizers: ClassVar[Mapping[str, Sequence[str]]] = {
        tier: ("vradam", "adamw") for tier in ("tiny", "quick", "full")
    }
    seeds = 5

    def make_config(self, tier: str) -> GFlowNetConfig:
        if tier == "full":
            return GFlowNetConfig(
                dim=4, side=8, steps=1500, batch_size=16, hidden=128, eval_every=50, eval_last=10
            )
        if tier == "quick":
            return GFlowNetConfig(
                dim=4, side=8, steps=400, batch_size=16, hidden=64, eval_every=25, eval_last=5
            )
        return GFlowNetConfig(
            dim=2, side=4, steps=10, batch_size=4, hidden=8, eval_every=5, eval_last=2
        )

    def prepare(self):
        cfg = self.config
        states = all_states(cfg.dim, cfg.side)
        return {"states": states, "rewards": rewards(states, cfg.side)}

    def run(self, data, spec, hparams, seed) -> RunResult:
        import torch

        cfg = self.config
        torch.manual_seed(seed)
        policy = build_policy(cfg)
        log_z = torch.nn.Parameter(torch.zeros(()))
        rng = np.random.default_rng(seed)
        horizon = cfg.dim * (cfg.side - 1) + 1
        states = torch.from_numpy(data["states"])

        def loss_at(step):
            uniforms = rng.random((cfg.batch_size, horizon))
            return trajectory_balance_loss(policy, log_z, uniforms, cfg)

        @torch.no_grad()
        def score():
            log_probs = masked_log_probs(policy, states, cfg.side).numpy()
            return l1_to_reward(
                terminating_distribution(log_probs, cfg.dim, cfg.side), data["rewards"]
            )

        result, _ = train_torch(
            task=self.name,
            spec=spec,
            hparams=hparams,
            seed=seed,
            param_groups=[
                {"params": list(policy.parameters())},
                {"params": [log_z], "lr_scale": LOG_Z_LR_SCALE},
            ],
            loss_at=loss_at,
            evaluate=score,
            steps=cfg.steps,
            eval_every=cfg.eval_every,
        )
        if not result.diverged:
            last = [value for _, value in result.val_curve[-cfg.eval_last :]]
            # The metric is exact, so there is no separate test split: both report it.
            result.val = result.test = float(np.mean(last))
            result.extra["log_z"] = float(log_z.detach())
            result.extra["true_log_z"] = float(np.log(data["rewards"].sum()))
        return result
