"""Shared builders for the torch tests: parameter sets, gradient streams and the spec run."""

from __future__ import annotations

import numpy as np
import torch

from vradam import spec
from vradam.hyperparams import Hyperparams

SHAPES = [(3, 4), (5,), (), (2, 0), (7, 2)]


def make_params(dtype=torch.float64, shapes=SHAPES, seed=0, complex_index=None):
    """Return leaf tensors of the given shapes; the one at ``complex_index`` is complex."""
    generator = torch.Generator().manual_seed(seed)
    params = []
    for i, shape in enumerate(shapes):
        if i == complex_index:
            real = torch.randn((*shape, 2), generator=generator, dtype=torch.float64)
            tensor = torch.view_as_complex(real).to(
                torch.complex128 if dtype == torch.float64 else torch.complex64
            )
        else:
            tensor = torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
        params.append(tensor.requires_grad_())
    return params


def make_grads(params, steps, seed=1, scale=1.0, none_at=()):
    """Return ``steps`` lists of gradients; ``(step, index)`` pairs in ``none_at`` are None."""
    generator = torch.Generator().manual_seed(seed)
    stream = []
    for k in range(steps):
        grads = []
        for i, p in enumerate(params):
            g = scale * torch.randn(p.shape, generator=generator, dtype=torch.float64)
            if p.is_complex():
                g = torch.complex(
                    g, scale * torch.randn(p.shape, generator=generator, dtype=torch.float64)
                )
            grads.append(None if (k, i) in none_at else g.to(p.dtype))
        stream.append(grads)
    return stream


def run_torch(params, grad_stream, groups_of=None, **options):
    """Run VRAdam on clones of ``params`` and return (params, optimizer, S list, η lists)."""
    from vradam.torch import VRAdam

    params = [p.detach().clone().requires_grad_() for p in params]
    groups = params if groups_of is None else groups_of(params)
    optimizer = VRAdam(groups, **options)
    sq_norms, lrs = [], []
    for grads in grad_stream:
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else g.clone()
        optimizer.step()
        sq_norms.append(optimizer.velocity_sq_norm.clone())
        lrs.append([lr.clone() for lr in optimizer.effective_lrs])
    return params, optimizer, sq_norms, lrs


def run_spec(params, grad_stream, hyperparams: Hyperparams):
    """Run the numpy spec over one group and return (params, S list, η list)."""
    values = [[_numpy(p) for p in params]]
    states = [[spec.init_state(v) for v in values[0]]]
    sq_norms, lrs = [], []
    for grads in grad_stream:
        grads_np = [[None if g is None else _numpy(g) for g in grads]]
        values, states, info = spec.step(values, grads_np, states, [hyperparams])
        sq_norms.append(info.velocity_sq_norm)
        lrs.append(info.effective_lrs[0])
    return values[0], sq_norms, lrs


def _numpy(tensor):
    wide = torch.complex128 if tensor.is_complex() else torch.float64
    return tensor.detach().to(wide).numpy().copy()


def assert_close_to_numpy(tensor, expected, rtol, atol):
    np.testing.assert_allclose(_numpy(tensor), expected, rtol=rtol, atol=atol)
