"""Write the golden trajectories: ``python -m vradam.conformance.generate OUT_DIR``.

Runs every case of :mod:`vradam.conformance.cases` through :func:`vradam.spec.step`
in float64 and writes one ``.npz`` per case and ``manifest.json`` into OUT_DIR.
In a source checkout, ``conformance/goldens`` is the folder the package ships.
OUT_DIR has no default, so an installed package's goldens, which its checksums
protect, are never overwritten by accident. The output is byte-identical across
runs on the same numpy version.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vradam import spec
from vradam.conformance import losses, tolerances
from vradam.conformance.cases import CASES, Case, CaseData
from vradam.conformance.golden_files import (
    GOLDENS_DIR,
    Layout,
    flatten,
    sha256,
    unflatten,
    write_npz,
)

__all__ = ["GENERATOR_VERSION", "check_representable", "generate", "main", "simulate"]

#: Bump when the file format or the meaning of any array changes.
GENERATOR_VERSION = 1

# Size of the perturbation of the initial parameters used to measure how much a
# closed-loop trajectory amplifies an error (relative to 1 + |θ0|).
_PERTURBATION = 1e-7


def simulate(case: Case, data: CaseData, initial: Sequence[Sequence[np.ndarray]]) -> dict:
    """Run the spec in float64 through a built case and return the per-step arrays."""
    layout = Layout.of(initial)
    params = [[np.array(p) for p in g] for g in initial]
    states = [[spec.init_state(p) for p in g] for g in params]

    records = {key: [] for key in ("theta", "grad", "grad_present", "exp_avg", "exp_avg_sq",
                                   "step_count", "velocity_sq_norm", "effective_lr", "lr")}
    _record_state(records, params, states, layout)

    for step_index in range(case.steps):
        hyperparams = data.hyperparams[step_index]
        if case.kind == "closed-loop":
            x = flatten(params, layout)
            grads = unflatten(losses.gradient(case.loss, data.loss_data, x), layout)
        else:
            grads = data.grads[step_index]

        with np.errstate(all="ignore"):  # inf and NaN cases are meant to produce them
            params, states, info = spec.step(params, grads, states, hyperparams)

        records["grad"].append(flatten(grads, layout))
        records["grad_present"].append([g is not None for group in grads for g in group])
        records["velocity_sq_norm"].append(info.velocity_sq_norm)
        records["effective_lr"].append(info.effective_lrs)
        records["lr"].append([hp.lr for hp in hyperparams])
        _record_state(records, params, states, layout)

    arrays = {key: np.array(value, dtype=np.float64) for key, value in records.items()}
    arrays["grad_present"] = np.array(records["grad_present"], dtype=bool).reshape(case.steps, -1)
    arrays["step_count"] = np.array(records["step_count"], dtype=np.int64)
    arrays["grad"] = arrays["grad"].reshape(case.steps, layout.size)
    return arrays


def _record_state(records: dict, params, states, layout: Layout) -> None:
    records["theta"].append(flatten(params, layout))
    records["exp_avg"].append(flatten([[s.exp_avg for s in g] for g in states], layout))
    records["exp_avg_sq"].append(flatten([[s.exp_avg_sq for s in g] for g in states], layout))
    records["step_count"].append([s.step for g in states for s in g])


# Smallest normal and largest finite value of each narrow dtype. The tolerance
# model counts relative roundings only, so it holds only while no value underflows
# into subnormals or overflows.
_NORMAL_RANGE = {
    "float32": (2.0**-126, 3.4028234663852886e38),
    "bfloat16": (2.0**-126, 3.3895313892515355e38),
    "float16": (2.0**-14, 65504.0),
}


def check_representable(case: Case, arrays: dict[str, np.ndarray], layout: Layout) -> None:
    """Raise if a case lists a dtype in which one of its values would underflow or overflow.

    Checked: every nonzero gradient and its square, every nonzero v, and every
    nonzero parameter must be a normal number of the dtype, and m must be finite
    in it. Infinite and NaN values that a case injects on purpose are left out.
    """
    present = np.repeat(arrays["grad_present"], np.diff(layout.offsets), axis=1)
    grads = arrays["grad"][present]
    checks = {
        "gradient": grads,
        "gradient squared": grads**2,
        "v": arrays["exp_avg_sq"],
        "parameter": arrays["theta"],
    }
    for dtype in case.dtypes:
        if dtype not in _NORMAL_RANGE:
            continue
        smallest, largest = _NORMAL_RANGE[dtype]
        for label, values in [*checks.items(), ("m", arrays["exp_avg"])]:
            values = np.abs(values[np.isfinite(values)])
            too_large = values > largest
            too_small = (values > 0) & (values < smallest) & (label != "m")
            if np.any(too_large) or np.any(too_small):
                raise ValueError(
                    f"Case {case.name!r} lists {dtype}, but its {label} values span "
                    f"[{values[values > 0].min():.3g}, {values.max():.3g}], outside the normal "
                    f"range [{smallest:.3g}, {largest:.3g}] of {dtype}."
                )


def _sensitivity(case: Case, data: CaseData, theta: np.ndarray) -> float:
    """Return how much the closed-loop trajectory amplifies a perturbation of θ0 (>= 1)."""
    layout = Layout.of(data.params)
    x0 = flatten(data.params, layout)
    signs = np.where(np.arange(x0.size) % 2 == 0, 1.0, -1.0)
    delta = _PERTURBATION * (1.0 + np.abs(x0)) * signs
    perturbed = simulate(case, data, unflatten(x0 + delta, layout))["theta"]
    growth = np.max(np.abs(perturbed - theta), axis=1) / np.max(np.abs(delta))
    # Two significant digits, rounded up, keep the manifest readable.
    value = float(max(1.0, np.max(growth)))
    exponent = np.floor(np.log10(value)) - 1
    digits = int(np.ceil(value / 10**exponent))
    return float(f"{digits}e{int(exponent)}")


def _case_entry(case: Case, layout: Layout, file_name: str, digest: str, sensitivity: float):
    return {
        "guards": case.guards,
        "tags": list(case.tags),
        "kind": case.kind,
        "steps": case.steps,
        "dtypes": list(case.dtypes),
        "schedule": case.schedule,
        "loss": case.loss,
        "layout": layout.to_json(),
        "hyperparams": [
            {k: v for k, v in dataclasses.asdict(g.hyperparams).items()} for g in case.groups
        ],
        "sensitivity": sensitivity,
        "file": file_name,
        "sha256": digest,
    }


def generate(out_dir: Path = GOLDENS_DIR) -> dict:
    """Write every case's golden file and the manifest into ``out_dir``; return the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for case in CASES:
        data = case.build()
        layout = Layout.of(data.params)
        arrays = simulate(case, data, data.params)
        check_representable(case, arrays, layout)
        sensitivity = 1.0
        if case.kind == "closed-loop":
            sensitivity = _sensitivity(case, data, arrays["theta"])
            arrays.update({f"loss_{k}": np.asarray(v) for k, v in data.loss_data.items()})
        file_name = f"{case.name}.npz"
        write_npz(out_dir / file_name, arrays)
        entries[case.name] = _case_entry(
            case, layout, file_name, sha256(out_dir / file_name), sensitivity
        )

    manifest = {
        "generator_version": GENERATOR_VERSION,
        "tolerance_model": tolerances.describe(),
        "cases": entries,
    }
    # Insertion order, not sorted keys: cases stay in catalogue order.
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    (out_dir / "manifest.json").write_text(text, encoding="utf-8")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vradam.conformance.generate",
        description="Write the golden trajectories of every conformance case from the spec.",
    )
    parser.add_argument(
        "out_dir", type=Path,
        help="folder to write into; in a source checkout, conformance/goldens updates the "
        "shipped goldens",
    )
    args = parser.parse_args(argv)
    manifest = generate(args.out_dir)
    total = sum((args.out_dir / e["file"]).stat().st_size for e in manifest["cases"].values())
    sys.stdout.write(f"Wrote {len(manifest['cases'])} cases, {total} bytes, to {args.out_dir}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
