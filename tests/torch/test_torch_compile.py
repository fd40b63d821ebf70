"""VRAdam.step under torch.compile(fullgraph=True): no graph break, no recompile per step.

fullgraph=True turns any graph break (such as reading S with ``.item()``) into an
error, so a passing compile is the proof that the step never reads S or η on the host.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from vradam.torch import VRAdam

# The compiled function calls VRAdam.step, not the bound method that the scheduler
# wraps, so the scheduler cannot see the call and warns about the order.
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")


def _model_and_data(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    return model, torch.randn(16, 4)


def _train(step_fn, model, optimizer, scheduler, data, steps, set_to_none=True):
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=set_to_none)
        model(data).pow(2).mean().backward()
        step_fn()
        scheduler.step()


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


TORCH_VERSION = torch.torch_version.TorchVersion(torch.__version__)

# The first step creates the state and the second reuses it, so two graphs. A 0-d
# tensor lr never recompiles. A float lr is specialized: torch 2.6 and newer
# recompile at its first change and then treat it as dynamic, while torch 2.4.1
# recompiles at every change. Measured with torch 2.4.1, 2.6.0, 2.8.0 and 2.13.0.
LR_CHANGES = 3
FLOAT_LR_RECOMPILES = 1 if TORCH_VERSION >= "2.6" else LR_CHANGES
EXPECTED_GRAPHS = {"lr-float": 2 + FLOAT_LR_RECOMPILES, "lr-tensor": 2}

# torch 2.8 and older guard on each gradient through the optimizer state's keys
# and recompile once such a gradient is freed, so zero_grad() with the default
# set_to_none=True recompiles every step. Keeping the gradients avoids that.
SET_TO_NONE_KEEPS_GRAPH = TORCH_VERSION >= "2.9"


@pytest.mark.parametrize("lr_type", [float, torch.tensor], ids=["lr-float", "lr-tensor"])
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
@pytest.mark.parametrize("capturable", [False, True], ids=["host-steps", "capturable"])
def test_scheduler_recompile_count(foreach, lr_type, capturable):
    # A fresh lr per test: the scheduler writes a tensor lr in place.
    lr = lr_type(0.01)
    model, data = _model_and_data()
    optimizer = VRAdam(model.parameters(), lr=lr, foreach=foreach, capturable=capturable)
    # lr changes after steps 3, 6 and 9, all after the two warm-up steps.
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)

    # The scheduler wraps the bound optimizer.step in a function that dynamo skips,
    # so the compiled function calls the class's step.
    @torch.compile(fullgraph=True, backend="eager")
    def compiled_step():
        VRAdam.step(optimizer)

    _train(
        compiled_step,
        model,
        optimizer,
        scheduler,
        data,
        steps=10,
        set_to_none=SET_TO_NONE_KEEPS_GRAPH,
    )

    expected = EXPECTED_GRAPHS["lr-float" if lr_type is float else "lr-tensor"]
    assert counters["stats"]["unique_graphs"] == expected
    assert len(counters["graph_break"]) == 0
    assert optimizer.effective_lrs[0].item() == pytest.approx(
        0.01 * 0.5**3 / (1 + min(optimizer.velocity_sq_norm.item(), 10.0)), rel=1e-6
    )


@pytest.mark.slow
def test_inductor_matches_eager():
    model, data = _model_and_data()
    optimizer = VRAdam(model.parameters(), lr=torch.tensor(0.01), foreach=False)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    eager_model, _ = _model_and_data()
    eager_optimizer = VRAdam(eager_model.parameters(), lr=torch.tensor(0.01), foreach=False)
    eager_scheduler = torch.optim.lr_scheduler.StepLR(eager_optimizer, step_size=1, gamma=0.5)

    compiled_step = torch.compile(lambda: VRAdam.step(optimizer), fullgraph=True)
    _train(compiled_step, model, optimizer, scheduler, data, steps=4)
    _train(
        lambda: VRAdam.step(eager_optimizer),
        eager_model,
        eager_optimizer,
        eager_scheduler,
        data,
        steps=4,
    )

    for a, b in zip(model.parameters(), eager_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        optimizer.velocity_sq_norm, eager_optimizer.velocity_sq_norm, rtol=1e-5, atol=0
    )


def _two_group_optimizer(model):
    first, second = model[0], model[2]
    return VRAdam(
        [
            {"params": first.parameters()},
            {"params": second.parameters(), "lr": 0.03, "weight_decay": 0.1},
        ],
        lr=0.01,
    )


@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_compiled_groups_match_eager(foreach):
    model, data = _model_and_data()
    eager_model, _ = _model_and_data()
    optimizer = _two_group_optimizer(model)
    eager_optimizer = _two_group_optimizer(eager_model)
    for group in (*optimizer.param_groups, *eager_optimizer.param_groups):
        group["foreach"] = foreach
    compiled_step = torch.compile(lambda: VRAdam.step(optimizer), fullgraph=True, backend="eager")

    for _ in range(3):
        for net, step_fn in ((model, compiled_step), (eager_model, eager_optimizer.step)):
            net.zero_grad()
            net(data).pow(2).mean().backward()
            # A tensor without a gradient is skipped and left out of S.
            net[2].bias.grad = None
            step_fn()

    # Compiled, the bias corrections come from t as a float64 tensor, and in eager
    # mode from t as a Python float, so float32 results differ in the last bit.
    for a, b in zip(model.parameters(), eager_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(
        optimizer.velocity_sq_norm, eager_optimizer.velocity_sq_norm, rtol=1e-6, atol=0
    )
    assert model[2].bias not in optimizer.state


def test_compiled_sparse_grad_raises_on_first_step():
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    linear = torch.nn.Linear(3, 1)
    optimizer = VRAdam([{"params": linear.parameters()}, {"params": embedding.parameters()}])
    compiled_step = torch.compile(lambda: VRAdam.step(optimizer), fullgraph=True, backend="eager")
    linear(embedding(torch.tensor([1, 2]))).sum().backward()

    # torch.compile rejects the sparse tensor before VRAdam's own check runs.
    with pytest.raises(RuntimeError):
        compiled_step()
    assert len(optimizer.state) == 0


def _compiled_steps(model, data, steps):
    optimizer = VRAdam(model.parameters(), lr=0.01)
    compiled_step = torch.compile(lambda: VRAdam.step(optimizer), fullgraph=True, backend="eager")
    for _ in range(steps):
        model.zero_grad()
        model(data).pow(2).mean().backward()
        compiled_step()
    return optimizer, compiled_step


def test_compiled_step_after_cast_raises():
    model, data = _model_and_data()
    optimizer, compiled_step = _compiled_steps(model, data, steps=2)
    model.double()
    model.zero_grad()
    model(data.double()).pow(2).mean().backward()
    before = [p.detach().clone() for p in model.parameters()]

    # The cast fails a dtype guard, so the step is traced again and the check
    # raises. torch 2.8 and older leave VRAdam's message out of the error.
    message = "cast after the first step" if TORCH_VERSION >= "2.9" else None
    with pytest.raises(RuntimeError, match=message):
        compiled_step()
    for p, saved in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, saved)
    assert all(optimizer.state[p]["step"].item() == 2 for p in model.parameters())


def test_compiled_step_after_sparse_grad_raises():
    embedding = torch.nn.Embedding(10, 3)
    optimizer, compiled_step = _compiled_steps(embedding, torch.tensor([1, 2]), steps=2)
    embedding.weight.grad = embedding.weight.grad.to_sparse()
    before = embedding.weight.detach().clone()

    # torch.compile rejects the sparse tensor before VRAdam's own check runs.
    with pytest.raises(RuntimeError):
        compiled_step()
    assert torch.equal(embedding.weight, before)
    assert optimizer.state[embedding.weight]["step"].item() == 2
