"""Step time of VRAdam's foreach path over its for-loop path, by tensor size, on CPU.

``foreach=None`` on CPU picks the foreach path only for groups of small tensors.
This script measures where the crossover lies: a model of about 2M float32
parameters split into square tensors of each size, both paths taking turns step
by step, median step time of each, printed as a ratio.

Usage:
    python benchmarks/torch_foreach_threshold.py --threads 1 --repeats 15
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vradam.torch import VRAdam

SIDES = (16, 32, 64, 128, 160, 224)
TOTAL_PARAMETERS = 2_000_000


def make_params(side: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    params = []
    for _ in range(TOTAL_PARAMETERS // (side * side)):
        param = torch.randn(side, side, generator=generator).requires_grad_()
        param.grad = torch.randn(side, side, generator=generator)
        params.append(param)
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=15, help="timed steps per path")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per path")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} steps")
    print("| elements per tensor | tensors | for-loop (ms) | foreach (ms) | foreach / for-loop |")
    print("|---:|---:|---:|---:|---:|")
    for side in SIDES:
        paths = {
            "for-loop": VRAdam(make_params(side), foreach=False),
            "foreach": VRAdam(make_params(side), foreach=True),
        }
        times = {name: [] for name in paths}
        for round_index in range(args.warmup + args.repeats):
            for name, optimizer in paths.items():
                start = time.perf_counter()
                optimizer.step()
                if round_index >= args.warmup:
                    times[name].append(time.perf_counter() - start)
        loop = statistics.median(times["for-loop"])
        foreach = statistics.median(times["foreach"])
        count = len(paths["for-loop"].param_groups[0]["params"])
        print(
            f"| {side * side} | {count} | {loop * 1e3:.1f} | {foreach * 1e3:.1f} "
            f"| {foreach / loop:.2f} |"
        )


if __name__ == "__main__":
    main()
