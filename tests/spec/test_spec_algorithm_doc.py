"""The numerical claims in docs/algorithm.md come from snippets that still print them."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "algorithm.md"

# A python block followed by "It prints" and the output indented by four spaces.
SNIPPET_WITH_OUTPUT = re.compile(
    r"```python\n(?P<code>.*?)```\s*\n\s*It prints\s*\n\n(?P<output>(?:    [^\n]*\n)+)", re.DOTALL
)


def test_doc_has_printed_snippets():
    snippets = SNIPPET_WITH_OUTPUT.findall(DOC.read_text(encoding="utf-8"))
    assert snippets


def test_doc_snippets_print_what_doc_says():
    for code, output in SNIPPET_WITH_OUTPUT.findall(DOC.read_text(encoding="utf-8")):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, str(DOC), "exec"), {})
        expected = "".join(line[4:] + "\n" for line in output.rstrip("\n").split("\n"))
        assert buffer.getvalue() == expected
