"""The golden file format: one deterministic ``.npz`` per case plus ``manifest.json``.

Every array in a case file is indexed by step and stores the parameters in a flat
real view. Each tensor's real view is flattened in row-major order, and the
results are concatenated group by group and tensor by tensor. A complex tensor
contributes its real and imaginary parts as two coordinates. ``manifest.json``
records the layout (shapes and complex flags), so a reader can split the flat
vectors back.

Arrays of a case with K steps, N real coordinates, T tensors and G groups:

==============  ===============  ================================================
``theta``       (K+1, N) f8      parameters; row 0 is the initial value
``grad``        (K, N) f8        gradient used at step k (zeros where absent)
``grad_present``(K, T) bool      whether tensor j had a gradient at step k
``exp_avg``     (K+1, N) f8      first moment m after each step (row 0: zeros)
``exp_avg_sq``  (K+1, N) f8      second moment v after each step
``step_count``  (K+1, T) i8      t of each tensor after each step
``velocity_sq_norm`` (K,) f8     S at each step
``effective_lr``(K, G) f8        η of each group at each step
``lr``          (K, G) f8        α0 of each group at each step (the schedule)
``loss_<key>``  any              closed-loop loss data
==============  ===============  ================================================
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vradam.spec import as_real, from_real

__all__ = [
    "GOLDENS_DIR",
    "Layout",
    "flatten",
    "read_manifest",
    "read_npz",
    "sha256",
    "unflatten",
    "write_npz",
]

#: The goldens shipped with the package.
GOLDENS_DIR = Path(__file__).resolve().parent / "goldens"

# A fixed timestamp keeps the zip bytes identical across runs (zip stores mtimes).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class Layout:
    """Shapes and complex flags of every tensor, grouped; maps nested tensors to flat vectors."""

    def __init__(self, groups: Sequence[Sequence[tuple[tuple[int, ...], bool]]]) -> None:
        self.groups = [[(tuple(shape), bool(cplx)) for shape, cplx in g] for g in groups]
        self.tensors = [entry for g in self.groups for entry in g]
        sizes = [int(np.prod(shape, dtype=np.int64)) * (2 if cplx else 1)
                 for shape, cplx in self.tensors]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
        self.size = self.offsets[-1]
        # Group index of every tensor, in flat order.
        self.tensor_group = [gi for gi, g in enumerate(self.groups) for _ in g]

    @classmethod
    def of(cls, params: Sequence[Sequence[np.ndarray]]) -> Layout:
        """Return the layout of nested parameters."""
        return cls([[(np.shape(p), np.iscomplexobj(p)) for p in g] for g in params])

    def to_json(self) -> list[list[dict[str, object]]]:
        return [[{"shape": list(s), "complex": c} for s, c in g] for g in self.groups]

    @classmethod
    def from_json(cls, data: Sequence[Sequence[Mapping[str, object]]]) -> Layout:
        return cls([[(tuple(t["shape"]), t["complex"]) for t in g] for g in data])

    def tensor_slice(self, index: int) -> slice:
        """Return the flat slice of the tensor at ``index`` (counting across groups)."""
        return slice(self.offsets[index], self.offsets[index + 1])

    def real_shape(self, index: int) -> tuple[int, ...]:
        shape, cplx = self.tensors[index]
        return (*shape, 2) if cplx else shape

    def label(self, index: int) -> str:
        """Return a short name of tensor ``index``, such as ``g1[0] (3, 2)``."""
        group = self.tensor_group[index]
        position = index - sum(len(g) for g in self.groups[:group])
        shape, cplx = self.tensors[index]
        return f"g{group}[{position}] {shape}{' complex' if cplx else ''}"


def flatten(nested: Sequence[Sequence[np.ndarray | None]], layout: Layout) -> np.ndarray:
    """Concatenate the real views of nested tensors into one float64 vector; None gives zeros."""
    parts = []
    for index, tensor in enumerate(t for g in nested for t in g):
        if tensor is None:
            parts.append(np.zeros(layout.offsets[index + 1] - layout.offsets[index]))
        else:
            parts.append(np.asarray(as_real(np.asarray(tensor)), dtype=np.float64).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0)


def unflatten(
    flat: np.ndarray, layout: Layout, *, real_view: bool = False
) -> list[list[np.ndarray]]:
    """Split a flat vector into nested float64 tensors (complex128 unless ``real_view``)."""
    nested = []
    index = 0
    for group in layout.groups:
        tensors = []
        for shape, cplx in group:
            real = np.array(flat[layout.tensor_slice(index)], dtype=np.float64)
            real = real.reshape(layout.real_shape(index))
            if cplx and not real_view:
                tensors.append(from_real(real, np.zeros(shape, dtype=np.complex128)))
            else:
                tensors.append(real)
            index += 1
        nested.append(tensors)
    return nested


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` whose bytes depend only on the arrays.

    ``np.savez`` stamps the current time into the zip; here every entry gets a fixed
    date, and entries are written in sorted order.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.array(arrays[key], order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of a golden ``.npz``, without pickle."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def read_manifest(folder: Path = GOLDENS_DIR) -> dict[str, object]:
    """Load ``manifest.json`` from a goldens folder."""
    return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))


def sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
