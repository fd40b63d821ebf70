"""capturable=True: step counts on each parameter's device, and no host reads in a step.

On the CPU the meta device takes the place of an accelerator: a meta tensor has a shape
and a dtype but no values, so any attempt to read one on the host raises. A step
that runs on meta tensors therefore reads no device value, which is what a CUDA
graph capture needs. The CUDA tests capture a real graph and run only with a GPU.
"""

from __future__ import annotations

import pytest
import torch
from torch_helpers import make_grads, make_params

from vradam.torch import VRAdam

PATHS = [pytest.param(False, id="for-loop"), pytest.param(True, id="foreach")]
SHAPES = [(3, 4), (5,), (), (2, 0)]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _meta_params():
    params = [torch.empty(shape, device="meta", requires_grad=True) for shape in SHAPES]
    for p in params:
        p.grad = torch.empty(p.shape, device="meta")
    return params


def test_meta_value_cannot_be_read():
    # The control for the tests below: reading a meta value raises.
    with pytest.raises((RuntimeError, NotImplementedError)):
        float(torch.zeros((), device="meta"))


@pytest.mark.parametrize("foreach", PATHS)
def test_step_reads_nothing_on_host(foreach):
    optimizer = VRAdam(_meta_params(), capturable=True, foreach=foreach)
    for _ in range(3):
        optimizer.step()
    assert optimizer.velocity_sq_norm.device.type == "meta"


@pytest.mark.parametrize("foreach", PATHS)
def test_steps_live_on_param_device(foreach):
    params = _meta_params()
    optimizer = VRAdam(params, capturable=True, foreach=foreach)
    optimizer.step()
    assert optimizer.state[params[0]]["step"].device.type == "meta"


def test_steps_live_on_host_by_default():
    params = _meta_params()
    optimizer = VRAdam(params)
    optimizer.step()
    assert optimizer.state[params[0]]["step"].device.type == "cpu"


def test_load_moves_steps_to_param_device():
    cpu_params = [p.detach().clone().requires_grad_() for p in make_params(torch.float32)]
    for p, g in zip(cpu_params, make_grads(cpu_params, 1)[0], strict=True):
        p.grad = g
    saved = VRAdam(cpu_params, capturable=True)
    saved.step()

    meta_params = [torch.empty_like(p, device="meta").requires_grad_() for p in cpu_params]
    loaded = VRAdam(meta_params, capturable=True)
    loaded.load_state_dict(saved.state_dict())
    assert loaded.state[meta_params[0]]["step"].device.type == "meta"


@pytest.mark.parametrize("foreach", PATHS)
def test_capturable_bit_identical_across_paths_of_steps(foreach):
    # Same operations on the same values, only the bias corrections are computed
    # differently, so the two trajectories agree to float64 rounding.
    params = make_params(torch.float64, complex_index=1)
    grads = make_grads(params, 6, none_at={(2, 0)})
    trajectories = []
    for capturable in (False, True):
        tensors = [p.detach().clone().requires_grad_() for p in params]
        optimizer = VRAdam(tensors, lr=0.01, beta3=0.3, foreach=foreach, capturable=capturable)
        for step_grads in grads:
            for p, g in zip(tensors, step_grads, strict=True):
                p.grad = g
            optimizer.step()
        trajectories.append(tensors)
    for host, device in zip(*trajectories, strict=True):
        torch.testing.assert_close(host, device, rtol=1e-14, atol=1e-16)


def _cuda_params_and_grads(steps):
    params = [p.detach().cuda().requires_grad_() for p in make_params(torch.float32)]
    grads = [[g.cuda() for g in step] for step in make_grads(params, steps)]
    return params, grads


@needs_cuda
@pytest.mark.parametrize("foreach", PATHS)
def test_cuda_graph_replay_matches_eager(foreach):
    warmup, replays = 3, 5
    params, grads = _cuda_params_and_grads(warmup + replays)
    eager = [p.detach().clone().requires_grad_() for p in params]
    eager_optimizer = VRAdam(eager, lr=0.01, foreach=foreach, capturable=True)
    for step_grads in grads:
        for p, g in zip(eager, step_grads, strict=True):
            p.grad = g.clone()
        eager_optimizer.step()

    optimizer = VRAdam(params, lr=0.01, foreach=foreach, capturable=True)
    for p, g in zip(params, grads[0], strict=True):
        p.grad = g.clone()
    # Warm up on a side stream, as torch.cuda.graph requires, so the state exists.
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for step_grads in grads[:warmup]:
            for p, g in zip(params, step_grads, strict=True):
                p.grad.copy_(g)
            optimizer.step()
    torch.cuda.current_stream().wait_stream(stream)

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        optimizer.step()
    for step_grads in grads[warmup:]:
        for p, g in zip(params, step_grads, strict=True):
            p.grad.copy_(g)
        graph.replay()
    torch.cuda.synchronize()

    for a, b in zip(params, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@needs_cuda
def test_capture_without_capturable_raises():
    params, grads = _cuda_params_and_grads(1)
    for p, g in zip(params, grads[0], strict=True):
        p.grad = g
    optimizer = VRAdam(params)
    optimizer.step()
    torch.cuda.synchronize()
    # Caught inside the capture, so ending the empty capture cannot replace it.
    raised = []
    with torch.cuda.graph(torch.cuda.CUDAGraph()):
        try:
            optimizer.step()
        except RuntimeError as exc:
            raised.append(exc)
    assert "capturable=False" in str(raised[0])
