"""The exact terminating distribution of a hypergrid GFlowNet against enumeration."""

import numpy as np
import pytest
from harness.tasks.gflownet import (
    action_mask,
    all_states,
    l1_to_reward,
    rewards,
    terminating_distribution,
)


def random_log_probs(dim, side, seed):
    """Return a random legal forward policy as masked log-probabilities per state."""
    states = all_states(dim, side)
    logits = np.random.default_rng(seed).normal(size=(len(states), dim + 1))
    logits[~action_mask(states, side)] = -np.inf
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def enumerate_terminating(log_probs, dim, side):
    """Return P_T by walking every trajectory from the origin, one by one."""
    index = {tuple(s): i for i, s in enumerate(all_states(dim, side))}
    probs = np.exp(log_probs)
    result = np.zeros(len(index))

    def walk(state, p):
        i = index[state]
        result[i] += p * probs[i, dim]
        for d in range(dim):
            if state[d] < side - 1:
                child = tuple(x + (k == d) for k, x in enumerate(state))
                walk(child, p * probs[i, d])

    walk((0,) * dim, 1.0)
    return result


@pytest.mark.parametrize(("dim", "side"), [(2, 3), (3, 3), (2, 5)])
def test_terminating_matches_enumeration(dim, side):
    log_probs = random_log_probs(dim, side, seed=dim * 10 + side)
    exact = terminating_distribution(log_probs, dim, side)
    brute = enumerate_terminating(log_probs, dim, side)
    np.testing.assert_allclose(exact, brute, rtol=1e-12, atol=1e-15)


def test_terminating_sums_to_one():
    log_probs = random_log_probs(4, 4, seed=0)
    assert terminating_distribution(log_probs, 4, 4).sum() == pytest.approx(1.0, abs=1e-12)


def test_l1_matches_direct_sum():
    dim, side = 2, 3
    log_probs = random_log_probs(dim, side, seed=1)
    reward = rewards(all_states(dim, side), side)
    brute = enumerate_terminating(log_probs, dim, side)
    expected = sum(abs(p - r / reward.sum()) for p, r in zip(brute, reward, strict=True))
    assert l1_to_reward(terminating_distribution(log_probs, dim, side), reward) == (
        pytest.approx(expected, rel=1e-12)
    )


def test_l1_zero_for_reward_policy():
    """A policy built from the exact flows samples x with probability R(x)/Z."""
    dim, side = 2, 3
    states = all_states(dim, side)
    reward = rewards(states, side)
    index = {tuple(s): i for i, s in enumerate(states)}
    # A state's outflow is R(x) plus the flow into each child. A child's outflow is
    # split evenly among its parents, because the backward policy is uniform.
    # The forward policy is then each edge's flow divided by the state's outflow.
    outflow = np.zeros(len(states))
    edge = np.zeros((len(states), dim))
    for i in np.argsort(-states.sum(1), kind="stable"):
        s = states[i]
        for d in range(dim):
            if s[d] < side - 1:
                child = tuple(s + np.eye(dim, dtype=int)[d])
                j = index[child]
                edge[i, d] = outflow[j] / np.count_nonzero(states[j])
        outflow[i] = reward[i] + edge[i].sum()
    probs = np.concatenate([edge, reward[:, None]], axis=1) / outflow[:, None]
    with np.errstate(divide="ignore"):
        log_probs = np.log(probs)
    assert l1_to_reward(terminating_distribution(log_probs, dim, side), reward) < 1e-12


def test_reward_modes_on_side_8():
    side = 8
    coords = np.arange(side)[:, None]
    reward = rewards(coords, side)
    # |x/7 − 0.5| is in (0.25, 0.5] for x in {0, 1, 6, 7} and in (0.3, 0.4) for {1, 6}.
    np.testing.assert_allclose(reward, [0.51, 2.51, 0.01, 0.01, 0.01, 0.01, 2.51, 0.51])
