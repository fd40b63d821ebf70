"""Command line: ``python -m vradam.conformance MODULE:ATTR --dtype float32 [--device cuda]``.

MODULE:ATTR names an :class:`~vradam.conformance.adapter.Adapter` subclass (built
with no arguments) or instance. Prints the report and exits with 1 if any case
fails, 0 otherwise. Usage errors exit with 2: an adapter that cannot be loaded, a
filter that selects no case that applies to the dtype, an adapter whose
``create`` raised in every case, or a missing or corrupt golden file.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vradam.conformance import tolerances
from vradam.conformance.adapter import Adapter
from vradam.conformance.golden_files import read_manifest
from vradam.conformance.runner import Report, case_names, run_suite

EXAMPLE_TARGET = "vradam.conformance.spec_adapter:SpecAdapter"


def load_adapter(target: str) -> Adapter:
    """Import ``MODULE:ATTR`` and return an Adapter instance from it."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"Invalid adapter {target!r}: expected MODULE:ATTR, "
                         f"for example {EXAMPLE_TARGET}.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"Invalid adapter {target!r}: module {module_name!r} could not be imported "
            f"({type(error).__name__}: {error}). The module must be importable: install its "
            "package, or add its folder to sys.path (for example through PYTHONPATH)."
        ) from error
    try:
        value = getattr(module, attribute)
    except AttributeError as error:
        raise AttributeError(
            f"Invalid adapter {target!r}: module {module_name!r} has no attribute {attribute!r}."
        ) from error

    if isinstance(value, type) and issubclass(value, Adapter):
        try:
            value = value()
        except TypeError as error:
            raise TypeError(f"Invalid adapter {target!r}: the class must be constructible "
                            f"with no arguments, but {attribute}() raised: {error}") from error
    if not isinstance(value, Adapter):
        raise TypeError(
            f"Invalid adapter {target!r}: expected an Adapter subclass or instance, "
            f"received {_describe(value)}. Subclass vradam.conformance.Adapter and pass "
            "MODULE:CLASS, or MODULE:NAME of an instance of such a subclass."
        )
    return value


def _describe(value: object) -> str:
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}, which is not an Adapter"
    kind = type(value)
    return f"{value!r:.60} of type {kind.__module__}.{kind.__qualname__}"


def check_selection(cases: Sequence[str] | None, tags: Sequence[str] | None) -> None:
    """Raise ValueError if the ``--tag`` and ``--case`` filters select no case."""
    manifest_cases = read_manifest()["cases"]
    if not tags or any(name not in manifest_cases for name in cases or ()):
        # run_suite rejects unknown --case names and lists the known ones.
        return
    selected = case_names(tags)
    if cases is not None:
        selected = [name for name in selected if name in cases]
    if selected:
        return
    known = sorted({tag for entry in manifest_cases.values() for tag in entry["tags"]})
    unknown = [tag for tag in tags if tag not in known]
    if unknown:
        reason = f"unknown tag(s) {', '.join(unknown)}"
    elif cases is not None:
        reason = f"no case among {', '.join(cases)} carries every tag in {', '.join(tags)}"
    else:
        reason = f"no case carries every tag in {', '.join(tags)}"
    raise ValueError(f"The filter selects no case: {reason}. Known tags: {', '.join(known)}.")


def setup_error_message(report: Report) -> str:
    """Describe a report in which ``Adapter.create`` raised in every case run."""
    details = list(dict.fromkeys(f.detail for f in report.failures if f.setup))
    count = len(report.cases_run)
    head = (f"adapter {report.adapter!r} failed to set up any of the {count} selected "
            f"{'case' if count == 1 else 'cases'} in {report.dtype} on {report.device}")
    if len(details) == 1:
        return f"{head}: {details[0]}"
    return "\n".join([f"{head}:", *(f"  {detail}" for detail in details)])


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
        check_selection(args.cases, args.tags)
        report = run_suite(adapter, dtype=args.dtype, device=args.device,
                           cases=args.cases, tags=args.tags)
    except (ImportError, AttributeError, TypeError, ValueError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    except (RuntimeError, OSError) as error:
        # A missing or corrupt golden file: the installation is broken, not the adapter.
        sys.stderr.write(f"error: cannot read the golden files: {error}\n")
        return 2

    if not report.cases_run:
        skipped = "; ".join(f"{case} {reason}" for case, reason in report.skipped)
        sys.stderr.write(f"error: no selected case applies to {args.dtype}: {skipped}.\n")
        return 2
    if report.setup_failed():
        sys.stderr.write(f"error: {setup_error_message(report)}\n")
        return 2
    sys.stdout.write(f"{report}\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
