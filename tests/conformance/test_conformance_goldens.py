"""The committed goldens match the spec, load without pickle, and stay small."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from vradam.conformance import case_names, generate, tolerances
from vradam.conformance.cases import ALL_DTYPES, CASES
from vradam.conformance.golden_files import GOLDENS_DIR, read_manifest, sha256

MANIFEST = read_manifest()
REQUIRED_TAGS = (
    "adamw-equivalent", "replay", "closed-loop", "low-precision", "complex", "maximize"
)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("goldens")
    generate.generate(folder)
    return folder


def test_regenerated_manifest_identical(regenerated):
    expected = (GOLDENS_DIR / "manifest.json").read_bytes()
    assert (regenerated / "manifest.json").read_bytes() == expected


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_regenerated_case_identical(regenerated, name):
    file_name = MANIFEST["cases"][name]["file"]
    assert (regenerated / file_name).read_bytes() == (GOLDENS_DIR / file_name).read_bytes()


def test_generation_deterministic(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    generate.main([str(first)])
    generate.main([str(second)])
    for path in sorted(first.iterdir()):
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_checksum_matches_manifest(name):
    entry = MANIFEST["cases"][name]
    assert sha256(GOLDENS_DIR / entry["file"]) == entry["sha256"]


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_loads_without_pickle(name):
    with np.load(GOLDENS_DIR / MANIFEST["cases"][name]["file"], allow_pickle=False) as archive:
        for key in archive.files:
            assert archive[key].dtype != object, key


def test_zip_entries_have_fixed_date():
    with zipfile.ZipFile(GOLDENS_DIR / "defaults.npz") as archive:
        dates = {info.date_time for info in archive.infolist()}
    assert dates == {(1980, 1, 1, 0, 0, 0)}


def test_goldens_folder_small():
    total = sum(path.stat().st_size for path in GOLDENS_DIR.iterdir())
    assert total < 3_000_000


def test_manifest_lists_every_case():
    assert list(MANIFEST["cases"]) == [c.name for c in CASES]


def test_manifest_records_generator_version():
    assert MANIFEST["generator_version"] == generate.GENERATOR_VERSION


def test_manifest_records_tolerance_model():
    # JSON round trip, because the manifest stores the model as JSON.
    assert MANIFEST["tolerance_model"] == json.loads(json.dumps(tolerances.describe()))


@pytest.mark.parametrize("tag", REQUIRED_TAGS)
def test_required_tag_has_cases(tag):
    assert case_names(tags=[tag])


def test_long_case_has_500_steps():
    assert max(c.steps for c in CASES) >= 500


def test_case_dtypes_known():
    for case in CASES:
        assert set(case.dtypes) <= set(ALL_DTYPES), case.name


def test_complex_cases_skip_narrow_dtypes():
    for name in case_names(tags=["complex"]):
        assert "bfloat16" not in MANIFEST["cases"][name]["dtypes"]
        assert "float16" not in MANIFEST["cases"][name]["dtypes"]


def test_every_case_states_its_guard():
    for case in CASES:
        assert case.guards and "\n" not in case.guards, case.name


def test_shapes_case_has_zero_size_and_scalar():
    shapes = [tuple(t["shape"]) for g in MANIFEST["cases"]["shapes"]["layout"] for t in g]
    assert () in shapes
    assert any(0 in shape for shape in shapes)


def test_float16_case_overflows_float16():
    with np.load(GOLDENS_DIR / "float16-norm-overflow.npz", allow_pickle=False) as archive:
        sq_norms = archive["velocity_sq_norm"]
        grads = archive["grad"]
    assert np.all(sq_norms > 65504.0)
    assert np.max(np.abs(grads)) ** 2 < 65504.0


def test_groups_case_differs_in_gate_hyperparameters():
    groups = MANIFEST["cases"]["groups"]["hyperparams"]
    for field in ("lr", "beta3", "alpha1"):
        assert len({g[field] for g in groups}) == len(groups), field


def test_crossing_case_crosses_cap():
    hp = MANIFEST["cases"]["gate-crossing-cap"]["hyperparams"][0]
    with np.load(GOLDENS_DIR / "gate-crossing-cap.npz", allow_pickle=False) as archive:
        gate = hp["beta3"] * archive["velocity_sq_norm"]
    assert gate[0] < hp["alpha1"] < gate[-1]


def test_schedule_changes_lr_every_step():
    with np.load(GOLDENS_DIR / "lr-schedule.npz", allow_pickle=False) as archive:
        lrs = archive["lr"]
    assert np.all(np.diff(lrs, axis=0) != 0)


def test_representability_check_rejects_float16_underflow():
    case = next(c for c in CASES if c.name == "defaults")
    case = type(case)(**{**case.__dict__, "dtypes": ("float16",)})
    data = case.build()
    arrays = generate.simulate(case, data, data.params)
    layout = generate.Layout.of(data.params)
    with pytest.raises(ValueError, match="float16"):
        generate.check_representable(case, arrays, layout)
