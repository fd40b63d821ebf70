"""docs/conformance.md stays in sync with the catalogue, and its adapter example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vradam.conformance.cases import markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


def test_case_table_in_sync():
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- cases:begin -->\n")[1].split("<!-- cases:end -->")[0]
    assert table == markdown_table()


def test_adapter_example_passes_adamw_cases(capsys):
    pytest.importorskip("torch")
    text = DOC.read_text(encoding="utf-8")
    example = re.search(r"```python\n(import numpy as np\n.*?)```", text, re.DOTALL).group(1)
    namespace = {}
    exec(compile(example, str(DOC), "exec"), namespace)
    assert namespace["report"].ok, str(namespace["report"])
    assert namespace["report"].cases_run == ["beta3-zero", "alpha1-zero", "adamw-groups"]


def test_adapter_example_fails_gated_case():
    pytest.importorskip("torch")
    text = DOC.read_text(encoding="utf-8")
    example = re.search(r"```python\n(import numpy as np\n.*?)```", text, re.DOTALL).group(1)
    example = example.replace('tags=["adamw-equivalent", "replay"]', 'cases=["defaults"]')
    namespace = {}
    exec(compile(example, str(DOC), "exec"), namespace)
    assert not namespace["report"].ok
