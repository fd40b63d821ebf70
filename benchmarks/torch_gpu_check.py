"""The GPU check of vradam.torch in one run: conformance, host-sync check and step times.

1. The conformance suite in float32 and bfloat16, through the for-loop and the
   foreach path, with the step counts on the host and with capturable=True.
2. The host-sync check: steps run under ``torch.cuda.set_sync_debug_mode("error")``,
   which raises on any device-to-host synchronization. A naive step that reads
   S with ``float()`` runs first as a control, and it must raise.
3. The CUDA-graph check: a step captured with ``torch.cuda.graph`` and replayed
   must follow the eager trajectory, and a capture without capturable=True must
   raise.
4. The step-time comparison of benchmarks/torch_step_time.py on the device.

Each part writes its output under ``--out``; the exit code is 1 if a part failed.
Without CUDA, and without ``--device cpu``, every part is skipped with a message
and the exit code is 0. ``--device cpu`` runs parts 1 and 4 on the CPU to test
this script.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parent


def check_conformance(device: str, out: Path) -> bool:
    from vradam.conformance import run_suite
    from vradam.torch.conformance import TorchAdapter

    ok = True
    lines = []
    for dtype in ("float32", "bfloat16"):
        for foreach in (False, True):
            for capturable in (False, True):
                adapter = TorchAdapter(foreach=foreach, capturable=capturable)
                start = time.perf_counter()
                report = run_suite(adapter, dtype=dtype, device=device)
                seconds = time.perf_counter() - start
                status = "passed" if report.ok else "FAILED"
                lines.append(
                    f"{dtype} {adapter.name}: {status}, "
                    f"{len(report.cases_run)} cases in {seconds:.1f} s"
                )
                if not report.ok:
                    lines.append(str(report))
                ok &= report.ok
    text = "\n".join(lines)
    print(text)
    (out / "conformance.txt").write_text(text + "\n")
    return ok


def _naive_step(params, exp_avgs):
    sq_norm = 0.0
    for p, m in zip(params, exp_avgs, strict=True):
        m.mul_(0.9).add_(p.grad, alpha=0.1)
        sq_norm += float(m.pow(2).sum())
    return sq_norm


def _make_params(device, dtype, seed=0):
    """Return parameters with gradients on ``device``, the same values for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(256, 128), (128,), (), (0, 4), (64, 64)]
    params = []
    for shape in shapes:
        p = torch.randn(shape, generator=generator).to(device, dtype).requires_grad_()
        p.grad = torch.randn(shape, generator=generator).to(device, dtype)
        params.append(p)
    return params


def check_host_sync(device: str, out: Path) -> bool:
    from vradam.torch import VRAdam

    lines = []
    ok = True

    def make_params(dtype):
        return _make_params(device, dtype)

    # Control: the check must catch a step that reads S as a Python float.
    params = make_params(torch.float32)
    exp_avgs = [torch.zeros_like(p) for p in params]
    torch.cuda.set_sync_debug_mode("error")
    try:
        _naive_step(params, exp_avgs)
        lines.append("control: FAILED, a float() of a CUDA tensor did not raise")
        ok = False
    except RuntimeError:
        lines.append("control: passed, float(S) raised under sync debug mode 'error'")
    finally:
        torch.cuda.set_sync_debug_mode("default")

    configs = [
        ("for-loop float32", torch.float32, {"foreach": False}),
        ("foreach float32", torch.float32, {"foreach": True}),
        ("default bfloat16", torch.bfloat16, {}),
        ("for-loop capturable float32", torch.float32, {"foreach": False, "capturable": True}),
        ("foreach capturable float32", torch.float32, {"foreach": True, "capturable": True}),
        (
            "foreach lr tensor on device",
            torch.float32,
            {"foreach": True, "lr": torch.tensor(1e-3, device=device)},
        ),
    ]
    for label, dtype, options in configs:
        params = make_params(dtype)
        optimizer = VRAdam(params, **options)
        optimizer.step()  # the first step creates the state, outside the check
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(3):
                optimizer.step()
            lines.append(f"{label}: passed, 3 steps without a host sync")
        except RuntimeError as error:
            lines.append(f"{label}: FAILED, {error}")
            ok = False
        finally:
            torch.cuda.set_sync_debug_mode("default")
    text = "\n".join(lines)
    print(text)
    (out / "host_sync.txt").write_text(text + "\n")
    return ok


def check_cuda_graph(device: str, out: Path) -> bool:
    from torch_step_time import GraphedStep

    from vradam.torch import VRAdam

    lines = []
    ok = True
    warmup, replays = 3, 10
    for foreach in (False, True):
        label = "foreach" if foreach else "for-loop"
        eager_params = _make_params(device, torch.float32)
        graphed_params = _make_params(device, torch.float32)
        eager = VRAdam(eager_params, lr=0.01, foreach=foreach, capturable=True)
        try:
            for _ in range(warmup + replays):
                eager.step()
            graphed = GraphedStep(
                VRAdam(graphed_params, lr=0.01, foreach=foreach, capturable=True), warmup=warmup
            )
            for _ in range(replays):
                graphed.step()
            torch.cuda.synchronize()
            error = max(
                (a - b).abs().max().item() if a.numel() else 0.0
                for a, b in zip(graphed_params, eager_params, strict=True)
            )
            passed = error <= 1e-6
            lines.append(
                f"{label}: {'passed' if passed else 'FAILED'}, {replays} replays against "
                f"eager steps, max |difference| {error:.3g}"
            )
            ok &= passed
        except RuntimeError as exc:
            lines.append(f"{label}: FAILED, {exc}")
            ok = False

    # Control: capturing with the step counts on the host must raise.
    params = _make_params(device, torch.float32)
    optimizer = VRAdam(params)
    optimizer.step()
    torch.cuda.synchronize()
    raised = _step_error_under_capture(optimizer)
    if raised is None:
        lines.append("control: FAILED, a capture with capturable=False did not raise")
        ok = False
    else:
        passed = "capturable=False" in str(raised)
        lines.append(f"control: {'passed' if passed else 'FAILED'}, raised: {raised}")
        ok &= passed
    text = "\n".join(lines)
    print(text)
    (out / "cuda_graph.txt").write_text(text + "\n")
    return ok


def _step_error_under_capture(optimizer) -> RuntimeError | None:
    """Return the error that ``optimizer.step()`` raises while a graph is captured.

    The error is caught inside the capture, so ending the (empty) capture cannot
    replace it with an error of its own.
    """
    raised = None
    with torch.cuda.graph(torch.cuda.CUDAGraph()):
        try:
            optimizer.step()
        except RuntimeError as exc:
            raised = exc
    return raised


def check_step_time(device: str, out: Path, repeats: int, models: list[str]) -> bool:
    command = [
        sys.executable,
        str(BENCHMARKS / "torch_step_time.py"),
        "--device",
        device,
        "--repeats",
        str(repeats),
        "--json",
        str(out / "step_time.json"),
        "--models",
        *models,
    ]
    if device == "cpu":
        command += ["--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    text = f"$ {' '.join(command)}\n{result.stdout}{result.stderr}"
    print(text)
    (out / "step_time.txt").write_text(text)
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the GPU check of vradam.torch.")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    parser.add_argument(
        "--out",
        default=os.environ.get("OUT") or "gpu_check_out",
        help="folder for the outputs (default: $OUT, else ./gpu_check_out)",
    )
    parser.add_argument("--repeats", type=int, default=50, help="timed steps per optimizer")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["10M-in-200", "2M-in-2000"],
        help="models for the step-time comparison",
    )
    args = parser.parse_args()

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "CUDA is not available: skipped conformance, host-sync check, "
            "CUDA-graph check and step times."
        )
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, device {args.device}, outputs in {out}")

    results = {}
    results["conformance"] = check_conformance(args.device, out)
    if args.device.startswith("cuda"):
        results["host sync"] = check_host_sync(args.device, out)
        results["cuda graph"] = check_cuda_graph(args.device, out)
    else:
        print("host-sync check: skipped, torch.cuda.set_sync_debug_mode needs CUDA")
        print("CUDA-graph check: skipped, torch.cuda.graph needs CUDA")
    results["step time"] = check_step_time(args.device, out, args.repeats, args.models)

    summary = ", ".join(f"{name}: {'passed' if ok else 'FAILED'}" for name, ok in results.items())
    print(summary)
    (out / "summary.txt").write_text(summary + "\n")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
