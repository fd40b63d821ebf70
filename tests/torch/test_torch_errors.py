"""Invalid input to vradam.torch.VRAdam: the message, and an optimizer left as it was."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch_helpers import make_grads, make_params

from vradam.torch import VRAdam

# (keyword arguments, exception, the argument name the message must show, value shown)
BAD_HYPERPARAMS = [
    ({"lr": -1.0}, ValueError, "lr", "-1.0"),
    ({"lr": math.nan}, ValueError, "lr", "nan"),
    ({"lr": math.inf}, ValueError, "lr", "inf"),
    ({"lr": "0.1"}, TypeError, "lr", "'0.1'"),
    ({"betas": (1.0, 0.999)}, ValueError, "betas[0]", "1.0"),
    ({"betas": (-0.1, 0.999)}, ValueError, "betas[0]", "-0.1"),
    ({"betas": (0.9, 1.5)}, ValueError, "betas[1]", "1.5"),
    ({"betas": (0.9, None)}, TypeError, "betas[1]", "None"),
    ({"beta3": -1.0}, ValueError, "beta3", "-1.0"),
    ({"beta3": math.inf}, ValueError, "beta3", "inf"),
    ({"alpha1": -0.5}, ValueError, "alpha1", "-0.5"),
    ({"alpha1": math.nan}, ValueError, "alpha1", "nan"),
    ({"eps": -1e-8}, ValueError, "eps", "-1e-08"),
    ({"weight_decay": -0.1}, ValueError, "weight_decay", "-0.1"),
    ({"weight_decay": True}, TypeError, "weight_decay", "True"),
    ({"maximize": 1}, TypeError, "maximize", "1"),
    ({"foreach": "yes"}, TypeError, "foreach", "'yes'"),
    ({"capturable": 1}, TypeError, "capturable", "1"),
    ({"capturable": None}, TypeError, "capturable", "None"),
]
BAD_IDS = [
    f"{next(iter(kwargs))}={next(iter(kwargs.values()))!r}" for kwargs, *_ in BAD_HYPERPARAMS
]

BAD_BETAS = [
    (0.9, TypeError),
    ("ab", TypeError),
    (None, TypeError),
    ((0.9,), ValueError),
    ((0.9, 0.99, 0.999), ValueError),
]

# Hyperparameters that must be Python numbers: only lr may be a tensor.
TENSOR_HYPERPARAMS = [
    ({"betas": (torch.tensor(0.9), 0.999)}, "betas[0]"),
    ({"betas": (0.9, torch.tensor(0.999))}, "betas[1]"),
    ({"beta3": torch.tensor(1.0)}, "beta3"),
    ({"alpha1": torch.tensor(10.0)}, "alpha1"),
    ({"eps": torch.tensor(1e-8)}, "eps"),
    ({"weight_decay": torch.tensor(0.0)}, "weight_decay"),
]


@pytest.mark.parametrize(("kwargs", "error", "name", "shown"), BAD_HYPERPARAMS, ids=BAD_IDS)
def test_constructor_rejects(kwargs, error, name, shown):
    with pytest.raises(error) as excinfo:
        VRAdam(make_params(), **kwargs)
    assert f"Invalid {name}" in str(excinfo.value)
    assert shown in str(excinfo.value)


@pytest.mark.parametrize(("kwargs", "error", "name", "shown"), BAD_HYPERPARAMS, ids=BAD_IDS)
def test_add_param_group_rejects(kwargs, error, name, shown):
    first, second = make_params(shapes=[(2,), (3,)])
    optimizer = VRAdam([first])
    before = optimizer.state_dict()
    with pytest.raises(error) as excinfo:
        optimizer.add_param_group({"params": [second], **kwargs})
    assert f"Invalid {name}" in str(excinfo.value)
    assert len(optimizer.param_groups) == 1
    assert optimizer.state_dict() == before


@pytest.mark.parametrize(("betas", "error"), BAD_BETAS, ids=[repr(b) for b, _ in BAD_BETAS])
def test_betas_must_be_pair(betas, error):
    with pytest.raises(error) as excinfo:
        VRAdam(make_params(), betas=betas)
    assert "Invalid betas: expected a pair" in str(excinfo.value)
    assert repr(betas) in str(excinfo.value)


@pytest.mark.parametrize(
    ("kwargs", "name"), TENSOR_HYPERPARAMS, ids=[name for _, name in TENSOR_HYPERPARAMS]
)
def test_tensor_hyperparam_rejected(kwargs, name):
    with pytest.raises(TypeError) as excinfo:
        VRAdam(make_params(), **kwargs)
    assert f"Invalid {name}" in str(excinfo.value)
    assert "only lr may be a tensor" in str(excinfo.value)


def test_lr_tensor_must_have_one_element():
    with pytest.raises(ValueError, match=r"Invalid lr: .* shape \(2,\)"):
        VRAdam(make_params(), lr=torch.tensor([0.1, 0.2]))


def test_lr_tensor_must_be_0d():
    with pytest.raises(ValueError, match=r"Invalid lr: .* shape \(1,\)"):
        VRAdam(make_params(), lr=torch.tensor([0.1]))


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf])
def test_lr_cpu_tensor_range_checked(value):
    with pytest.raises(ValueError, match="Invalid lr"):
        VRAdam(make_params(), lr=torch.tensor(value))


def test_adamw_checkpoint_loads_with_constructor_gate():
    params = make_params()
    adamw = torch.optim.AdamW(params, lr=0.01)
    for p, g in zip(params, make_grads(params, 1)[0], strict=True):
        p.grad = g
    adamw.step()

    optimizer = VRAdam(params, beta3=2.0, alpha1=5.0)
    optimizer.load_state_dict(adamw.state_dict())
    optimizer.step()
    assert optimizer.param_groups[0]["beta3"] == 2.0
    assert optimizer.param_groups[0]["alpha1"] == 5.0
    assert optimizer.param_groups[0]["lr"] == 0.01
    assert int(optimizer.state[params[0]]["step"]) == 2


def _amsgrad_checkpoint(params):
    adamw = torch.optim.AdamW(params, lr=0.01, amsgrad=True)
    for p, g in zip(params, make_grads(params, 1)[0], strict=True):
        p.grad = g
    adamw.step()
    return adamw.state_dict()


def test_adamw_amsgrad_checkpoint_warns():
    params = make_params()
    checkpoint = _amsgrad_checkpoint(params)
    optimizer = VRAdam(params)
    with pytest.warns(UserWarning, match="amsgrad=True"):
        optimizer.load_state_dict(checkpoint)
    assert int(optimizer.state[params[0]]["step"]) == 1
    assert "amsgrad" not in optimizer.param_groups[0]
    assert "max_exp_avg_sq" not in optimizer.state[params[0]]


def test_reloaded_amsgrad_checkpoint_does_not_warn_again(recwarn):
    params = make_params()
    checkpoint = _amsgrad_checkpoint(params)
    optimizer = VRAdam(params)
    with pytest.warns(UserWarning):
        optimizer.load_state_dict(checkpoint)

    optimizer.load_state_dict(optimizer.state_dict())
    assert len(recwarn) == 0


@pytest.mark.parametrize(
    ("key", "value"), [("lr", -1.0), ("betas", (2.0, 0.5)), ("beta3", float("nan"))]
)
def test_invalid_checkpoint_rejected(key, value):
    params = make_params()
    for p, g in zip(params, make_grads(params, 1)[0], strict=True):
        p.grad = g
    optimizer = VRAdam(params, lr=0.01)
    optimizer.step()
    checkpoint = optimizer.state_dict()
    before = optimizer.state_dict()
    checkpoint["param_groups"][0][key] = value
    with pytest.raises(ValueError, match=f"Invalid {key}"):
        optimizer.load_state_dict(checkpoint)
    assert optimizer.param_groups[0]["lr"] == 0.01
    assert torch.equal(optimizer.state[params[0]]["exp_avg"], before["state"][0]["exp_avg"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fused_adamw_checkpoint_steps_on_host():
    params = [p.detach().cuda().requires_grad_() for p in make_params(torch.float32)]
    adamw = torch.optim.AdamW(params, lr=0.01, fused=True)
    for p, g in zip(params, make_grads(params, 1)[0], strict=True):
        p.grad = g.cuda()
    adamw.step()

    optimizer = VRAdam(params)
    optimizer.load_state_dict(adamw.state_dict())
    assert optimizer.state[params[0]]["step"].device.type == "cpu"


def test_lr_tensor_must_be_floating():
    with pytest.raises(ValueError, match=r"Invalid lr: .* torch\.int64"):
        VRAdam(make_params(), lr=torch.tensor(1))


def test_alpha1_inf_accepted():
    optimizer = VRAdam(make_params(), alpha1=math.inf)
    assert optimizer.param_groups[0]["alpha1"] == math.inf


@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_sparse_grad_rejected(foreach):
    dense, embedding = make_params(shapes=[(3,), (4, 2)])
    optimizer = VRAdam([{"params": [dense]}, {"params": [embedding]}], foreach=foreach)
    dense.grad = torch.ones(3, dtype=torch.float64)
    embedding.grad = torch.ones(4, 2, dtype=torch.float64).to_sparse()
    before = [p.detach().clone() for p in (dense, embedding)]

    with pytest.raises(RuntimeError) as excinfo:
        optimizer.step()

    message = str(excinfo.value)
    assert "does not support sparse gradients" in message
    assert "param group 1" in message
    assert len(optimizer.state) == 0
    assert optimizer.velocity_sq_norm is None
    assert torch.equal(dense, before[0])
    assert torch.equal(embedding, before[1])


@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_sparse_grad_after_steps_keeps_state(foreach):
    params = make_params(shapes=[(3,), (4, 2)])
    optimizer = VRAdam(params, foreach=foreach)
    for grads in make_grads(params, 2):
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        optimizer.step()
    before = {k: v.clone() for k, v in optimizer.state[params[0]].items()}
    params[1].grad = params[1].grad.to_sparse()

    with pytest.raises(RuntimeError, match="sparse gradients"):
        optimizer.step()
    for key, value in before.items():
        assert torch.equal(optimizer.state[params[0]][key], value)


def test_functional_rejects_length_mismatch():
    from vradam.torch import vradam

    params = make_params(shapes=[(2,), (3,)])
    grads = [torch.ones_like(p) for p in params]
    exp_avgs = [torch.zeros_like(p) for p in params]
    exp_avg_sqs = [torch.zeros_like(p) for p in params]
    steps = [torch.tensor(0.0) for _ in params]
    with pytest.raises(ValueError, match="params=2, grads=1"):
        vradam(params, grads[:1], exp_avgs, exp_avg_sqs, steps, lr=1e-3, beta1=0.9,
               beta2=0.999, beta3=1.0, alpha1=10.0, eps=1e-8, weight_decay=0.0)
    assert all(float(step) == 0.0 for step in steps)
    assert all(torch.count_nonzero(m) == 0 for m in exp_avgs)


def test_functional_rejects_none_grad():
    from vradam.torch import vradam

    params = make_params(shapes=[(2,)])
    steps = [torch.tensor(0.0)]
    with pytest.raises(ValueError, match=r"grads\[0\].*NoneType"):
        vradam(params, [None], [torch.zeros(2)], [torch.zeros(2)], steps, lr=1e-3,
               beta1=0.9, beta2=0.999, beta3=1.0, alpha1=10.0, eps=1e-8, weight_decay=0.0)
    assert float(steps[0]) == 0.0


def test_logged_values_reset_on_load():
    params = make_params()
    optimizer = VRAdam(params)
    for p, g in zip(params, make_grads(params, 1)[0], strict=True):
        p.grad = g
    optimizer.step()
    saved = optimizer.state_dict()
    optimizer.step()
    optimizer.load_state_dict(saved)
    assert optimizer.velocity_sq_norm is None
    assert optimizer.effective_lrs is None


@pytest.mark.parametrize("key", ["amsgrad", "fused", "differentiable"])
def test_adamw_only_group_key_rejected(key):
    with pytest.raises(ValueError, match=f"Invalid {key}: .*{key}=True"):
        VRAdam([{"params": make_params(), key: True}])


@pytest.mark.parametrize("key", ["amsgrad", "fused", "differentiable"])
def test_adamw_only_key_rejected_in_add_param_group(key):
    first, second = make_params(shapes=[(2,), (3,)])
    optimizer = VRAdam([first])
    with pytest.raises(ValueError, match=f"Invalid {key}"):
        optimizer.add_param_group({"params": [second], key: True})
    assert len(optimizer.param_groups) == 1


def test_adamw_only_key_false_accepted():
    optimizer = VRAdam([{"params": make_params(), "amsgrad": False}])
    assert optimizer.param_groups[0]["amsgrad"] is False


def _stepped_linear(dtype=torch.float32):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).to(dtype)
    optimizer = VRAdam(model.parameters())
    model(torch.randn(4, 3, dtype=dtype)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_cast_after_step_rejected():
    model, optimizer = _stepped_linear()
    model.double()
    model(torch.randn(4, 3, dtype=torch.float64)).sum().backward()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match=r"Invalid state: .* torch\.float64.* torch\.float32"):
        optimizer.step()
    for p, value in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, value)


def test_cast_state_by_reloading():
    model, optimizer = _stepped_linear()
    model.double()
    model(torch.randn(4, 3, dtype=torch.float64)).sum().backward()
    optimizer.load_state_dict(optimizer.state_dict())
    optimizer.step()
    assert optimizer.state[model.weight]["exp_avg"].dtype == torch.float64
    assert optimizer.velocity_sq_norm.dtype == torch.float64


def test_load_keeps_constructor_execution_settings():
    model, saved = _stepped_linear()
    optimizer = VRAdam(model.parameters(), foreach=True, capturable=True)
    optimizer.load_state_dict(saved.state_dict())
    assert optimizer.param_groups[0]["foreach"] is True
    assert optimizer.param_groups[0]["capturable"] is True


FUNCTIONAL_HYPERPARAMS = {
    "lr": 1e-3,
    "beta1": 0.9,
    "beta2": 0.999,
    "beta3": 1.0,
    "alpha1": 10.0,
    "eps": 1e-8,
    "weight_decay": 0.0,
}


def _functional_call(params, steps, exp_avgs=None, exp_avg_sqs=None, **options):
    from vradam.torch import vradam

    zeros = [torch.zeros_like(p) for p in params]
    return vradam(
        params,
        [torch.ones_like(p) for p in params],
        zeros if exp_avgs is None else exp_avgs,
        [z.clone() for z in zeros] if exp_avg_sqs is None else exp_avg_sqs,
        steps,
        **FUNCTIONAL_HYPERPARAMS,
        **options,
    )


@pytest.mark.parametrize(
    ("step", "shown"),
    [
        (torch.zeros(2), r"shape \(2,\)"),
        (torch.tensor(0), "torch.int64"),
        (torch.tensor(0.0, dtype=torch.bfloat16), "torch.bfloat16"),
        (0.0, "float"),
    ],
    ids=["vector", "integer", "bfloat16", "python-float"],
)
def test_functional_rejects_bad_step(step, shown):
    params = make_params(shapes=[(2,)])
    before = params[0].detach().clone()
    with pytest.raises(ValueError, match=rf"Invalid state_steps\[0\]: .*{shown}"):
        _functional_call(params, [step])
    assert torch.equal(params[0], before)


@pytest.mark.parametrize("name", ["exp_avgs", "exp_avg_sqs"])
def test_functional_rejects_bad_moment_shape(name):
    params = [torch.ones(2), torch.ones(3)]
    moments = {name: [torch.zeros(2), torch.zeros(5)]}
    steps = [torch.tensor(0.0), torch.tensor(0.0)]
    with pytest.raises(ValueError, match=rf"Invalid {name}\[1\]: .*\(3,\), received \(5,\)"):
        _functional_call(params, steps, **moments)
    assert float(steps[0]) == 0.0


def test_functional_capturable_step_device():
    params = [torch.empty(2, device="meta")]
    with pytest.raises(ValueError, match=r"state_steps\[0\].*device meta.*on cpu"):
        _functional_call(params, [torch.tensor(0.0)], capturable=True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("grads", torch.ones(3).to_sparse()),
        ("grads", torch.ones(3, dtype=torch.complex64)),
        ("exp_avgs", torch.zeros(3, dtype=torch.float64)),
        ("exp_avg_sqs", torch.zeros(3, dtype=torch.float16)),
        ("exp_avgs", torch.zeros(3, device="meta")),
    ],
    ids=["sparse-grad", "complex-grad", "float64-moment", "float16-moment", "meta-moment"],
)
def test_functional_rejects_unlike_tensor(name, value):
    from vradam.torch import vradam

    params = [torch.ones(3), torch.ones(3)]
    lists = {
        "grads": [torch.ones(3), torch.ones(3)],
        "exp_avgs": [torch.zeros(3), torch.zeros(3)],
        "exp_avg_sqs": [torch.zeros(3), torch.zeros(3)],
    }
    lists[name][1] = value
    steps = [torch.tensor(0.0), torch.tensor(0.0)]
    with pytest.raises(ValueError, match=rf"Invalid {name}\[1\]: expected a dense torch.float32"):
        vradam(params, **lists, state_steps=steps, **FUNCTIONAL_HYPERPARAMS)
    assert float(steps[0]) == 0.0


@pytest.mark.parametrize("key", ["lr", "betas", "eps", "weight_decay"])
def test_checkpoint_missing_key_rejected(key):
    _, optimizer = _stepped_linear()
    checkpoint = optimizer.state_dict()
    before = optimizer.state_dict()
    del checkpoint["param_groups"][0][key]
    with pytest.raises(ValueError, match=f"Invalid checkpoint: .* lacks '{key}'"):
        optimizer.load_state_dict(checkpoint)
    assert optimizer.state_dict()["param_groups"] == before["param_groups"]


def test_sgd_checkpoint_rejected():
    model, optimizer = _stepped_linear()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sgd.step()
    with pytest.raises(ValueError, match="lacks 'betas', 'eps'"):
        optimizer.load_state_dict(sgd.state_dict())


def test_adam_l2_checkpoint_warns():
    model, optimizer = _stepped_linear()
    adam = torch.optim.Adam(model.parameters(), weight_decay=0.1)
    adam.step()
    if "decoupled_weight_decay" not in adam.param_groups[0]:
        pytest.skip("this torch's Adam does not record decoupled_weight_decay")
    with pytest.warns(UserWarning, match="L2 penalty of weight_decay=0.1"):
        optimizer.load_state_dict(adam.state_dict())
    assert "decoupled_weight_decay" not in optimizer.param_groups[0]


def test_checkpoint_error_names_checkpoint():
    _, optimizer = _stepped_linear()
    checkpoint = optimizer.state_dict()
    checkpoint["param_groups"][0]["eps"] = -1.0
    with pytest.raises(ValueError, match="comes from param group 0 of the checkpoint"):
        optimizer.load_state_dict(checkpoint)


def test_complex_cast_state_by_reloading():
    param = torch.nn.Parameter(torch.randn(4, dtype=torch.complex64))
    optimizer = VRAdam([param])
    param.grad = torch.randn_like(param)
    optimizer.step()
    param.data = param.data.to(torch.complex128)
    param.grad = torch.randn_like(param)
    optimizer.load_state_dict(optimizer.state_dict())
    optimizer.step()
    assert optimizer.state[param]["exp_avg"].dtype == torch.complex128


def test_state_without_moments_gets_them():
    param = torch.nn.Parameter(torch.randn(3))
    optimizer = VRAdam([param])
    optimizer.state[param]["note"] = "kept"
    param.grad = torch.ones(3)
    optimizer.step()
    assert optimizer.state[param]["exp_avg"].shape == (3,)
    assert optimizer.state[param]["note"] == "kept"


def test_adamax_checkpoint_rejected():
    model, optimizer = _stepped_linear()
    before = copy.deepcopy(optimizer.state_dict())
    adamax = torch.optim.Adamax(model.parameters())
    adamax.step()

    # Adamax has Adam's hyperparameters but keeps exp_inf in place of exp_avg_sq.
    with pytest.raises(ValueError, match="state entry 0 of the checkpoint lacks 'exp_avg_sq'"):
        optimizer.load_state_dict(adamax.state_dict())
    assert "exp_inf" not in optimizer.state[model.weight]
    assert torch.equal(optimizer.state[model.weight]["exp_avg"], before["state"][0]["exp_avg"])


def test_checkpoint_number_step_loads():
    model, optimizer = _stepped_linear()
    checkpoint = copy.deepcopy(optimizer.state_dict())
    # Older torch releases saved t as a Python number, which torch.optim.Adam
    # also converts to a tensor.
    for state in checkpoint["state"].values():
        state["step"] = 1
    optimizer.load_state_dict(checkpoint)
    optimizer.step()

    step = optimizer.state[model.weight]["step"]
    assert isinstance(step, torch.Tensor)
    assert step.dtype == torch.float32
    assert step.item() == 2


@pytest.mark.parametrize(
    "step",
    [torch.tensor([1.0]), torch.tensor(1 + 0j), "1", True, None],
    ids=["1-d", "complex", "str", "bool", "none"],
)
def test_checkpoint_invalid_step_rejected(step):
    model, optimizer = _stepped_linear()
    before = copy.deepcopy(optimizer.state_dict())
    # state_dict() shares its entries with the optimizer's state, hence the copies.
    checkpoint = copy.deepcopy(before)
    checkpoint["state"][0]["step"] = step
    with pytest.raises(ValueError, match="step in state entry 0 of the checkpoint must be"):
        optimizer.load_state_dict(checkpoint)
    assert torch.equal(optimizer.state[model.weight]["step"], before["state"][0]["step"])


def test_checkpoint_moment_not_tensor_rejected():
    _, optimizer = _stepped_linear()
    checkpoint = copy.deepcopy(optimizer.state_dict())
    checkpoint["state"][1]["exp_avg_sq"] = [0.0, 0.0]
    with pytest.raises(ValueError, match="exp_avg_sq in state entry 1 of the checkpoint is a list"):
        optimizer.load_state_dict(checkpoint)
