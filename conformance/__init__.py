"""Golden-trajectory conformance suite for VRAdam implementations on any framework.

A port subclasses :class:`Adapter` and :class:`Run` (see
:mod:`vradam.conformance.adapter`) and runs::

    from vradam.conformance import assert_conforms, run_suite

    report = run_suite(MyAdapter(), dtype="float32", device="cpu")
    print(report)  # a table of failures: case, step, tensor, errors, tolerance

or, from a shell, ``python -m vradam.conformance my_module:MyAdapter --dtype float32``.
The goldens are written from :mod:`vradam.spec` by
``python -m vradam.conformance.generate`` and ship with the package.
"""

from vradam.conformance.adapter import Adapter, Loss, Moments, Run, StepReport
from vradam.conformance.runner import Failure, Report, assert_conforms, case_names, run_suite

__all__ = [
    "Adapter",
    "Failure",
    "Loss",
    "Moments",
    "Report",
    "Run",
    "StepReport",
    "assert_conforms",
    "case_names",
    "run_suite",
]
