"""Command line: ``python -m vradam.conformance MODULE:ATTR --dtype float32 [--device cuda]``.

MODULE:ATTR names an :class:`~vradam.conformance.adapter.Adapter` subclass (built
with no arguments) or instance. Prints the report and exits with 1 if any case
fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vradam.conformance import tolerances
from vradam.conformance.adapter import Adapter
from vradam.conformance.runner import run_suite


def load_adapter(target: str) -> Adapter:
    """Import ``MODULE:ATTR`` and return an Adapter instance from it."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"Invalid adapter {target!r}: expected MODULE:ATTR, "
                         "for example vradam.conformance.spec_adapter:SpecAdapter.")
    value = getattr(importlib.import_module(module_name), attribute)
    if isinstance(value, type) and issubclass(value, Adapter):
        value = value()
    if not isinstance(value, Adapter):
        raise TypeError(f"Invalid adapter {target!r}: expected an Adapter subclass or "
                        f"instance, received {type(value).__name__}.")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vradam.conformance",
        description="Check a VRAdam implementation against the golden trajectories.",
    )
    parser.add_argument("adapter", help="MODULE:ATTR of an Adapter subclass or instance")
    parser.add_argument("--dtype", default="float64", choices=tuple(tolerances.UNIT_ROUNDOFF),
                        help="parameter dtype to run in (default: float64)")
    parser.add_argument("--device", default="cpu", help="device name passed to the adapter")
    parser.add_argument("--case", action="append", dest="cases", metavar="NAME",
                        help="run only this case; repeat for several")
    parser.add_argument("--tag", action="append", dest="tags", metavar="TAG",
                        help="run only cases with this tag; repeat to require several")
    args = parser.parse_args(argv)

    try:
        adapter = load_adapter(args.adapter)
        report = run_suite(adapter, dtype=args.dtype, device=args.device,
                           cases=args.cases, tags=args.tags)
    except (ImportError, AttributeError, TypeError, ValueError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    sys.stdout.write(f"{report}\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
