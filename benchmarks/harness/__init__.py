"""Benchmark harness: VRAdam against AdamW and other baselines on real tasks.

Run it with ``./compare`` from the repository root, or ``python -m harness`` with
``benchmarks/`` on ``sys.path``. The harness is a plain folder, not part of the
installed ``vradam`` package.
"""
