"""The vradam installed in this environment: its subpackages, its goldens, its footprint.

The nox ``package`` session runs this file twice, after a wheel install and after an
editable install, and sets ``VRADAM_INSTALL_MODE`` to ``wheel`` or ``editable``.
Without that variable the mode is read from the installed metadata, so the file
also checks a developer's own environment.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import json
import os
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = importlib.metadata.distribution("vradam")
DIST_INFO = f"vradam-{DISTRIBUTION.version}.dist-info"


def installed_mode() -> str:
    direct_url = DISTRIBUTION.read_text("direct_url.json")
    editable = bool(direct_url) and json.loads(direct_url).get("dir_info", {}).get("editable")
    return "editable" if editable else "wheel"


MODE = os.environ.get("VRADAM_INSTALL_MODE") or installed_mode()


def import_torch_adapter():
    # The package session installs torch and must not skip; elsewhere torch is optional.
    if "VRADAM_INSTALL_MODE" not in os.environ:
        pytest.importorskip("torch")
    return importlib.import_module("vradam.torch")


def test_mode_matches_metadata() -> None:
    assert installed_mode() == MODE


def test_imports_subpackages() -> None:
    for name in ("vradam", "vradam.spec", "vradam.conformance", "vradam.conformance.adapter"):
        assert importlib.import_module(name).__name__ == name
    assert import_torch_adapter().__name__ == "vradam.torch"


@pytest.mark.skipif(MODE != "wheel", reason="checks a wheel install")
def test_wheel_modules_in_site_packages() -> None:
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    vradam = importlib.import_module("vradam")
    conformance = importlib.import_module("vradam.conformance")
    assert Path(vradam.__file__).resolve() == site / "vradam" / "__init__.py"
    assert Path(conformance.__file__).resolve() == site / "vradam" / "conformance" / "__init__.py"
    torch_adapter = import_torch_adapter()
    assert Path(torch_adapter.__file__).resolve() == site / "vradam" / "torch" / "__init__.py"


@pytest.mark.skipif(MODE != "editable", reason="checks an editable install")
def test_editable_modules_in_checkout() -> None:
    vradam = importlib.import_module("vradam")
    conformance = importlib.import_module("vradam.conformance")
    assert Path(vradam.__file__).resolve() == ROOT / "vradam" / "__init__.py"
    assert Path(conformance.__file__).resolve() == ROOT / "conformance" / "__init__.py"
    torch_adapter = import_torch_adapter()
    assert Path(torch_adapter.__file__).resolve() == ROOT / "backends" / "torch" / "__init__.py"


def test_goldens_found() -> None:
    goldens = importlib.resources.files("vradam.conformance") / "goldens"
    names = [item.name for item in goldens.iterdir()]
    assert any(name.endswith(".npz") for name in names)
    assert any(name.endswith(".json") for name in names)


def test_goldens_manifests_parse() -> None:
    goldens = importlib.resources.files("vradam.conformance") / "goldens"
    for item in goldens.iterdir():
        if item.name.endswith(".json"):
            assert isinstance(json.loads(item.read_text(encoding="utf-8")), dict), item.name


def test_top_level_txt_only_vradam() -> None:
    assert DISTRIBUTION.read_text("top_level.txt").split() == ["vradam"]


def test_installed_files_only_vradam() -> None:
    if MODE == "wheel":
        allowed = {"vradam", DIST_INFO}
    else:
        # An editable install adds a .pth file and the import hook it loads.
        stem = f"__editable__.vradam-{DISTRIBUTION.version}"
        hook = f"__editable___vradam_{DISTRIBUTION.version.replace('.', '_')}_finder"
        allowed = {DIST_INFO, f"{stem}.pth", f"{hook}.py", "__pycache__"}
    top_level = {file.parts[0] for file in DISTRIBUTION.files}
    assert top_level <= allowed


@pytest.mark.skipif(MODE != "editable", reason="checks an editable install")
def test_editable_hook_maps_only_vradam() -> None:
    hook = f"__editable___vradam_{DISTRIBUTION.version.replace('.', '_')}_finder"
    mapping = importlib.import_module(hook).MAPPING
    outside = [name for name in mapping if name != "vradam" and not name.startswith("vradam.")]
    assert outside == []
