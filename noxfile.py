"""The test matrix: one nox session per framework and Keras backend.

Run everything with ``nox`` (the README lists what each session needs), one session
with ``nox -s jax``. Every session builds its own virtualenv from nothing. It
installs vradam from this checkout and only the frameworks it tests, at the exact
versions in ``constraints/ci.txt``. An import that works only because some other
framework happens to be installed therefore fails. The ``torch-versions`` sessions,
which a plain ``nox`` skips, swap the pinned torch for older releases.
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints" / "ci.txt"))
PYTHON = "3.11"
TEST_TOOLS = ("pytest", "hypothesis")

# Plain virtualenvs without system site-packages: nothing installed outside a
# session is visible inside it. nox recreates them on every run unless given -r.
nox.options.default_venv_backend = "virtualenv"
nox.options.error_on_missing_interpreters = True


def install_vradam(session: nox.Session, *extras: str, more: tuple[str, ...] = ()) -> None:
    """Install vradam from this checkout (a regular install, not editable), test tools and ``more``.

    A regular install copies the package into site-packages, so the tests import
    what a user gets from the wheel: a module or data file missing from the
    package list fails here instead of passing through the source tree.
    """
    target = f".[{','.join(extras)}]" if extras else "."
    session.install(*CONSTRAINTS, target, *TEST_TOOLS, *more)


def run_pytest(session: nox.Session, *paths: str) -> None:
    """Run pytest on the test folders that exist, from the repository root.

    ``pytest`` is started as a program, not as ``python -m pytest``, so the
    repository root is not put on ``sys.path`` and ``import vradam`` resolves to
    the installed package.
    """
    existing = [path for path in paths if (ROOT / path).exists()]
    if not existing:
        session.error(f"None of the test paths exist: {', '.join(paths)}.")
    session.run("pytest", *existing, *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check the whole repository with ruff (rules in pyproject.toml)."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def spec(session: nox.Session) -> None:
    """Test the numpy spec and the conformance suite, with numpy as the only framework."""
    install_vradam(session)
    run_pytest(session, "tests/spec", "tests/conformance")


@nox.session(python=PYTHON)
def torch(session: nox.Session) -> None:
    """Test the PyTorch adapter, including against torch.optim.AdamW."""
    install_vradam(session, "torch")
    run_pytest(session, "tests/torch")


@nox.session(python=PYTHON)
def jax(session: nox.Session) -> None:
    """Test the goldens against optax.adamw, and the JAX adapter once it exists."""
    install_vradam(session, "jax")
    # tests/jax is where the JAX adapter's own tests will live.
    run_pytest(session, "tests/oracles/test_optax_oracle.py", "tests/jax")


# Older torch releases that the PyTorch adapter supports (pyproject.toml requires
# torch>=2.4). They are not in the default run, because PyPI serves each as a CUDA
# build of several GB: run them with `nox -s torch-versions`.
OLDER_TORCH_VERSIONS = ("2.4.1", "2.6.0", "2.8.0", "2.9.1")


@nox.session(python=PYTHON, name="torch-versions", default=False)
@nox.parametrize("torch_version", OLDER_TORCH_VERSIONS)
def torch_versions(session: nox.Session, torch_version: str) -> None:
    """Test the PyTorch adapter with an older torch release (not part of a plain `nox`)."""
    # torch goes first and unconstrained, because each release pins some of its
    # own dependencies (torch 2.6.0 requires sympy==1.13.1). The rest comes from
    # constraints/ci.txt without its torch line, which names 2.13.0.
    session.install(f"torch=={torch_version}")
    constraints = Path(session.create_tmp()) / "constraints-without-torch.txt"
    pinned = (ROOT / "constraints" / "ci.txt").read_text(encoding="utf-8").splitlines()
    constraints.write_text(
        "\n".join(line for line in pinned if not line.startswith("torch==")) + "\n",
        encoding="utf-8",
    )
    session.install("-c", str(constraints), ".", *TEST_TOOLS)
    run_pytest(session, "tests/torch")


@nox.session(python=PYTHON, name="keras-tensorflow")
def keras_tensorflow(session: nox.Session) -> None:
    """Test the goldens against keras.optimizers.AdamW on the TensorFlow backend."""
    keras_session(session, "tensorflow", "tensorflow-cpu")


@nox.session(python=PYTHON, name="keras-jax")
def keras_jax(session: nox.Session) -> None:
    """Test the goldens against keras.optimizers.AdamW on the JAX backend."""
    keras_session(session, "jax", "jax")


@nox.session(python=PYTHON, name="keras-torch")
def keras_torch(session: nox.Session) -> None:
    """Test the goldens against keras.optimizers.AdamW on the PyTorch backend."""
    keras_session(session, "torch", "torch")


def keras_session(session: nox.Session, backend: str, framework: str) -> None:
    """Install Keras with one backend framework and run the Keras tests on it."""
    install_vradam(session, "keras", more=(framework,))
    session.env["KERAS_BACKEND"] = backend
    # tests/keras is where the Keras adapter's own tests will live.
    run_pytest(session, "tests/oracles/test_keras_oracle.py", "tests/keras")


@nox.session(python=PYTHON)
def harness(session: nox.Session) -> None:
    """Test the benchmark harness on a tiny budget."""
    install_vradam(session, "torch")
    session.install(*CONSTRAINTS, "-r", str(ROOT / "benchmarks" / "requirements.txt"))
    run_pytest(session, "tests/harness")


@nox.session(python=PYTHON)
def package(session: nox.Session) -> None:
    """Build the wheel, then prove that a wheel install and an editable install both work.

    Each install is checked by tests/packaging in this session's virtualenv: the
    top-level names, the subpackages vradam.torch and vradam.conformance, and the
    golden files. Only ``vradam`` may land in site-packages.
    """
    session.install(*CONSTRAINTS, "pytest", "build", "torch")
    dist = Path(session.create_tmp()) / "dist"
    session.run("python", "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT))
    wheels = sorted(dist.glob("vradam-*.whl"))
    if len(wheels) != 1:
        session.error(f"Expected one vradam wheel in {dist}, found {[w.name for w in wheels]}.")

    session.install(*CONSTRAINTS, str(wheels[0]))
    session.run(
        "pytest",
        "tests/packaging",
        *session.posargs,
        env={"VRADAM_INSTALL_MODE": "wheel", "VRADAM_WHEEL": str(wheels[0])},
    )

    session.install(*CONSTRAINTS, "--no-deps", "--force-reinstall", "-e", str(ROOT))
    session.run(
        "pytest",
        "tests/packaging",
        *session.posargs,
        env={"VRADAM_INSTALL_MODE": "editable", "VRADAM_WHEEL": str(wheels[0])},
    )
