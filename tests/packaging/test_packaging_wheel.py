"""The built wheel: one top-level name, every module of the source tree, the goldens.

The wheel comes from ``VRADAM_WHEEL`` when the nox ``package`` session has built
one, and is otherwise built here from the checkout into a temporary folder.
"""

from __future__ import annotations

import email.parser
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib joined the standard library in Python 3.11.
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
VERSION: str = PYPROJECT["project"]["version"]
DIST_INFO = f"vradam-{VERSION}.dist-info"


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prebuilt = os.environ.get("VRADAM_WHEEL")
    if prebuilt:
        return Path(prebuilt)

    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out)]
    # Without setuptools here, pip builds in an isolated environment from the index.
    if importlib.util.find_spec("setuptools") is not None:
        command.append("--no-build-isolation")
    subprocess.run([*command, str(ROOT)], check=True)
    (wheel,) = out.glob("vradam-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel_names(wheel_path: Path) -> list[str]:
    with zipfile.ZipFile(wheel_path) as wheel:
        return wheel.namelist()


def read_member(wheel_path: Path, name: str) -> bytes:
    with zipfile.ZipFile(wheel_path) as wheel:
        return wheel.read(name)


def wheel_path_of(source: Path) -> str:
    """Map a file of the checkout to its path in the wheel through ``package-dir``."""
    relative = source.relative_to(ROOT).as_posix()
    # The deepest source folder wins, so backends/torch/x.py maps through vradam.torch.
    for package, folder in sorted(PACKAGE_DIRS.items(), key=lambda item: -len(item[1])):
        if relative.startswith(folder + "/"):
            return package.replace(".", "/") + relative[len(folder) :]
    raise AssertionError(f"{relative} is in no package folder of pyproject.toml")


def source_modules() -> list[Path]:
    modules = []
    for folder in PACKAGE_DIRS.values():
        modules += [
            path for path in (ROOT / folder).rglob("*.py") if "__pycache__" not in path.parts
        ]
    return sorted(modules)


def golden_files() -> list[Path]:
    goldens = ROOT / "conformance" / "goldens"
    return sorted(path for path in goldens.glob("*") if path.suffix in (".npz", ".json"))


def test_wheel_top_level_only_vradam(wheel_names: list[str]) -> None:
    top_level = {name.split("/", 1)[0] for name in wheel_names}
    assert top_level == {"vradam", DIST_INFO}


def test_wheel_top_level_txt(wheel_path: Path) -> None:
    text = read_member(wheel_path, f"{DIST_INFO}/top_level.txt").decode()
    assert text.split() == ["vradam"]


def test_wheel_record_inside_vradam(wheel_path: Path) -> None:
    record = read_member(wheel_path, f"{DIST_INFO}/RECORD").decode()
    paths = [line.split(",", 1)[0] for line in record.splitlines() if line]
    outside = [path for path in paths if path.split("/", 1)[0] not in ("vradam", DIST_INFO)]
    assert outside == []


def test_wheel_ships_every_module(wheel_names: list[str]) -> None:
    missing = [
        str(path.relative_to(ROOT))
        for path in source_modules()
        if wheel_path_of(path) not in wheel_names
    ]
    assert missing == []


def test_every_backend_folder_is_packaged() -> None:
    backends = sorted(
        path.parent.relative_to(ROOT).as_posix()
        for path in (ROOT / "backends").glob("*/__init__.py")
    )
    unmapped = [folder for folder in backends if folder not in PACKAGE_DIRS.values()]
    assert unmapped == []


def test_every_package_dir_is_listed() -> None:
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    assert sorted(set(PACKAGE_DIRS) - set(packages)) == []


def test_goldens_exist_in_checkout() -> None:
    suffixes = {path.suffix for path in golden_files()}
    assert suffixes == {".npz", ".json"}


def test_wheel_ships_goldens_unchanged(wheel_path: Path, wheel_names: list[str]) -> None:
    for path in golden_files():
        name = wheel_path_of(path)
        assert name in wheel_names, f"{name} is missing from the wheel"
        assert read_member(wheel_path, name) == path.read_bytes(), f"{name} differs"


def test_wheel_leaves_out_tests_and_benchmarks(wheel_names: list[str]) -> None:
    stray = [name for name in wheel_names if "/tests/" in name or "/benchmarks/" in name]
    assert stray == []


def test_wheel_metadata(wheel_path: Path) -> None:
    metadata = email.parser.BytesParser().parsebytes(
        read_member(wheel_path, f"{DIST_INFO}/METADATA")
    )
    assert metadata["Name"] == "vradam"
    assert metadata["Requires-Python"] == ">=3.10"
    assert set(metadata.get_all("Provides-Extra")) >= {"torch", "jax", "keras", "all", "dev"}
    unconditional = [req for req in metadata.get_all("Requires-Dist") if "extra ==" not in req]
    assert [req.split(">")[0].strip() for req in unconditional] == ["numpy"]


def test_wheel_imports_in_clean_directory(wheel_path: Path, tmp_path: Path) -> None:
    """Install the wheel into a bare folder and import it with the checkout out of reach."""
    target = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run([*install, "--target", str(target), str(wheel_path)], check=True)

    script = textwrap.dedent(
        """
        import importlib.resources, importlib.util, json, sys
        import vradam, vradam.conformance, vradam.conformance.adapter
        goldens = importlib.resources.files("vradam.conformance") / "goldens"
        names = sorted(item.name for item in goldens.iterdir())
        has_torch = importlib.util.find_spec("torch") is not None
        if has_torch:
            import vradam.torch
        print(json.dumps({
            "vradam": vradam.__file__,
            "torch": vradam.torch.__file__ if has_torch else None,
            "goldens": names,
        }))
        """
    )

    # -S skips site-packages and its .pth files, so an editable install of vradam in
    # this interpreter cannot take over the import. site-packages itself follows the
    # bare folder on PYTHONPATH to provide numpy (and torch if installed), and the
    # working directory contains no vradam.
    purelib = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), purelib])}
    result = subprocess.run(
        [sys.executable, "-S", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr

    found = json.loads(result.stdout)
    assert Path(found["vradam"]).is_relative_to(target)
    assert any(name.endswith(".npz") for name in found["goldens"])
    if found["torch"] is not None:
        assert Path(found["torch"]).is_relative_to(target / "vradam" / "torch")
