"""VRAdam in two CPU processes (gloo): FSDP2 shards get the global S; DDP adds no communication.

One spawn runs every scenario, because starting the processes costs more than the
scenarios themselves. Each rank writes its results to a file that the test reads
back and compares with a single-process run.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vradam.torch import VRAdam

WORLD_SIZE = 2
STEPS = 3

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="needs torch.distributed with the gloo backend",
)

try:
    from torch.distributed.fsdp import fully_shard
except ImportError:
    # Before torch 2.6 FSDP2 was private, and in torch 2.4.1 it needs CUDA.
    fully_shard = None
# FSDP2 on the CPU fails in torch 2.6.0, and with gloo in torch 2.8.0 it sums the
# gradients of the ranks instead of averaging them (2.9.1 averages), so the
# single-process reference does not apply before 2.9.
FSDP2_ON_CPU = (
    fully_shard is not None and torch.torch_version.TorchVersion(torch.__version__) >= "2.9"
)
needs_fsdp2_on_cpu = pytest.mark.skipif(
    not FSDP2_ON_CPU,
    reason="needs torch 2.9 or newer, whose FSDP2 averages gradients over gloo",
)


def _model():
    torch.manual_seed(0)
    # 5 rows do not split evenly over 2 ranks, so uneven shards are covered.
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def _data():
    return torch.randn(8, 6, generator=torch.Generator().manual_seed(1))


def _train(model, optimizer, data):
    """Train and return the names of the c10d collectives called inside optimizer.step."""
    collectives = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        model(data).pow(2).mean().backward()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            optimizer.step()
        collectives += [e.name for e in prof.events() if e.name.startswith("c10d::")]
    return collectives


def _worker(rank, store_path, out_dir):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group(
        "gloo", init_method=f"file://{store_path}", rank=rank, world_size=WORLD_SIZE
    )
    mesh = init_device_mesh("cpu", (WORLD_SIZE,))
    results = {}
    try:
        for foreach in (False, True) if FSDP2_ON_CPU else ():
            model = _model()
            for layer in model:
                if isinstance(layer, torch.nn.Linear):
                    fully_shard(layer, mesh=mesh)
            fully_shard(model, mesh=mesh)
            optimizer = VRAdam(model.parameters(), lr=0.05, foreach=foreach)
            collectives = _train(model, optimizer, _data())
            results[f"fsdp-{foreach}"] = {
                "params": [p.full_tensor().detach() for p in model.parameters()],
                "sq_norm": optimizer.velocity_sq_norm.detach().clone(),
                "lr": optimizer.effective_lrs[0].detach().clone(),
                "collectives": collectives,
            }

        model = DistributedDataParallel(_model())
        optimizer = VRAdam(model.parameters(), lr=0.05)
        collectives = _train(model, optimizer, _data())
        results["ddp"] = {
            "params": [p.detach().clone() for p in model.parameters()],
            "sq_norm": optimizer.velocity_sq_norm.clone(),
            "collectives": collectives,
        }
    finally:
        dist.destroy_process_group()
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    mp.spawn(_worker, args=(str(tmp / "store"), str(tmp)), nprocs=WORLD_SIZE, join=True)
    return [torch.load(tmp / f"rank{rank}.pt", weights_only=True) for rank in range(WORLD_SIZE)]


@pytest.fixture(scope="module")
def reference():
    model = _model()
    optimizer = VRAdam(model.parameters(), lr=0.05)
    _train(model, optimizer, _data())
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "sq_norm": optimizer.velocity_sq_norm,
    }


@needs_fsdp2_on_cpu
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_fsdp2_matches_single_process(results, reference, foreach):
    for rank_results in results:
        got = rank_results[f"fsdp-{foreach}"]
        # FSDP2 averages gradients with a reduce-scatter, which rounds differently.
        torch.testing.assert_close(got["sq_norm"], reference["sq_norm"], rtol=1e-5, atol=0)
        for a, b in zip(got["params"], reference["params"], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@needs_fsdp2_on_cpu
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_fsdp2_ranks_share_lr(results, foreach):
    first, second = (r[f"fsdp-{foreach}"] for r in results)
    assert torch.equal(first["lr"], second["lr"])


@needs_fsdp2_on_cpu
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_fsdp2_one_all_reduce_per_step(results, foreach):
    for rank_results in results:
        assert rank_results[f"fsdp-{foreach}"]["collectives"] == ["c10d::allreduce_"] * STEPS


def test_ddp_matches_single_process(results, reference):
    for rank_results in results:
        got = rank_results["ddp"]
        torch.testing.assert_close(got["sq_norm"], reference["sq_norm"], rtol=1e-6, atol=0)
        for a, b in zip(got["params"], reference["params"], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_ddp_step_adds_no_communication(results):
    for rank_results in results:
        assert rank_results["ddp"]["collectives"] == []
