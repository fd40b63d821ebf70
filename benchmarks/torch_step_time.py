"""Step time of vradam.torch.VRAdam next to torch.optim.AdamW, measured in one run.

Two synthetic models: about 10M parameters in 200 tensors, where the step is bound
by memory traffic, and about 2M parameters in 2000 tensors, where it is bound by
per-tensor overhead. Every optimizer owns its own copy of the parameters and a
fixed gradient. The optimizers take turns, one step each per round, so a load
change on a shared machine hits them all alike. The table reports the median
step time and its ratio to AdamW's default path.

The capturable rows keep the step counts on the device. On CUDA the graphed rows
replay a step captured with torch.cuda.graph, for VRAdam and for AdamW, both
with capturable=True; torch's AdamW refuses capturable=True on the CPU.

Usage:
    python benchmarks/torch_step_time.py --device cpu --threads 1 --repeats 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch.optim.optimizer import _default_to_fused_or_foreach

from vradam.torch import VRAdam
from vradam.torch.optimizer import _use_foreach

MODELS = {
    # name: (number of tensors, shape of each)
    "10M-in-200": (200, (224, 224)),
    "2M-in-2000": (2000, (32, 32)),
}


class NaiveVRAdam:
    """The baseline: a per-tensor loop that reads S back to the host as a Python float."""

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        beta3=1.0,
        alpha1=10.0,
        eps=1e-8,
        weight_decay=1e-5,
    ):
        self.params, self.lr, self.betas = list(params), lr, betas
        self.beta3, self.alpha1, self.eps, self.weight_decay = beta3, alpha1, eps, weight_decay
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self):
        beta1, beta2 = self.betas
        self.t += 1
        sq_norm = 0.0
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            sq_norm += float(m.pow(2).sum())  # one host sync per tensor
        lr = self.lr / (1 + min(self.beta3 * sq_norm, self.alpha1))
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            p.mul_(1 - lr * self.weight_decay)
            denom = (v / (1 - beta2**self.t)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / (1 - beta1**self.t))


class GraphedStep:
    """A step captured once in a CUDA graph; ``step()`` replays it."""

    def __init__(self, optimizer, warmup=3):
        # Warm up on a side stream, as torch.cuda.graph requires, so the state exists.
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                optimizer.step()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            optimizer.step()

    def step(self):
        self.graph.replay()


def make_optimizers(params_of, device):
    """Return (label, optimizer) pairs, each optimizer over its own parameter copy."""
    probe = params_of()
    vradam_default = "foreach" if _use_foreach(None, probe) else "for-loop"
    _, adamw_foreach_default = _default_to_fused_or_foreach(
        probe, differentiable=False, use_fused=False
    )
    adamw_default = "foreach" if adamw_foreach_default else "for-loop"
    optimizers = [
        (f"VRAdam default ({vradam_default})", VRAdam(params_of())),
        ("VRAdam for-loop", VRAdam(params_of(), foreach=False)),
        ("VRAdam foreach", VRAdam(params_of(), foreach=True)),
        ("VRAdam foreach capturable", VRAdam(params_of(), foreach=True, capturable=True)),
        (f"AdamW default ({adamw_default})", torch.optim.AdamW(params_of(), weight_decay=1e-5)),
        ("AdamW for-loop", torch.optim.AdamW(params_of(), weight_decay=1e-5, foreach=False)),
        ("AdamW foreach", torch.optim.AdamW(params_of(), weight_decay=1e-5, foreach=True)),
        ("AdamW fused", torch.optim.AdamW(params_of(), weight_decay=1e-5, fused=True)),
        ("naive VRAdam (float(S) per tensor)", NaiveVRAdam(params_of())),
    ]
    if device.type == "cuda":

        def adamw_capturable():
            return torch.optim.AdamW(
                params_of(), weight_decay=1e-5, foreach=True, capturable=True
            )

        optimizers += [
            ("AdamW foreach capturable", adamw_capturable()),
            (
                "VRAdam graphed (foreach capturable)",
                GraphedStep(VRAdam(params_of(), foreach=True, capturable=True)),
            ),
            ("AdamW graphed (foreach capturable)", GraphedStep(adamw_capturable())),
        ]
    return optimizers


def measure(model, device, repeats, warmup, dtype):
    count, shape = MODELS[model]
    generator = torch.Generator().manual_seed(0)
    values = [torch.randn(shape, generator=generator) for _ in range(count)]
    grads = [torch.randn(shape, generator=generator) for _ in range(count)]

    def params_of():
        params = []
        for value, grad in zip(values, grads, strict=True):
            p = value.to(device, dtype).requires_grad_()
            p.grad = grad.to(device, dtype)
            params.append(p)
        return params

    optimizers = make_optimizers(params_of, device)
    times = {label: [] for label, _ in optimizers}
    for round_index in range(warmup + repeats):
        for label, optimizer in optimizers:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if round_index >= warmup:
                times[label].append(time.perf_counter() - start)
    return {label: statistics.median(samples) for label, samples in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU")
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per optimizer")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per optimizer")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", help="also write the medians to this JSON file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    print(
        f"torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        + f", {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"{args.threads} threads, {args.dtype}, median of {args.repeats} steps"
    )

    results = {}
    for model in args.models:
        medians = measure(model, device, args.repeats, args.warmup, dtype)
        results[model] = medians
        reference = next(v for k, v in medians.items() if k.startswith("AdamW default"))
        print(f"\n{model}\n")
        print("| optimizer | median step (ms) | ratio to AdamW default |")
        print("|---|---:|---:|")
        for label, seconds in medians.items():
            print(f"| {label} | {seconds * 1e3:.2f} | {seconds / reference:.2f} |")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "device": str(device),
                    "threads": args.threads,
                    "dtype": args.dtype,
                    "torch": torch.__version__,
                    "median_seconds": results,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
