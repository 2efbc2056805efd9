"""Harmonic frequencies and normal modes from a finite-difference Hessian (any ASE calculator)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

__all__ = ["harmonic_frequencies"]


def harmonic_frequencies(atoms: Atoms, *, delta: float = 0.005, indices: np.ndarray | None = None,
                         project_rigid: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic frequencies (cm^-1, imaginary as negative) and Cartesian modes at a geometry.

    Central finite differences of the forces give the Hessian H over the moving atoms
    (``indices``, default all); the mass-weighted M^-1/2 H M^-1/2 is (for free molecules,
    ``project_rigid``) projected onto the complement of rigid translations and rotations (Eckart),
    diagonalised, and eigenvalues converted by nu = sqrt(lambda) / (2 pi c).
    Returns frequencies (3N - 6,) sorted ascending (3N - 5 for linear; 3 len(indices) without
    projection) and modes (K, N, 3) as unit un-mass-weighted displacement directions.
    """
    from ase import units

    pos0 = atoms.get_positions().copy()
    n_all = len(atoms)
    idx = np.arange(n_all) if indices is None else np.asarray(indices, dtype=int)
    n = len(idx)
    hess = np.zeros((3 * n, 3 * n))
    for k in range(3 * n):
        a, c = divmod(k, 3)
        cols = []
        for sign in (1.0, -1.0):
            p = pos0.copy()
            p[idx[a], c] += sign * delta
            atoms.set_positions(p)
            cols.append(atoms.get_forces()[idx].ravel())
        hess[k] = -(cols[0] - cols[1]) / (2 * delta)
    atoms.set_positions(pos0)
    hess = 0.5 * (hess + hess.T)
    masses = atoms.get_masses()[idx]
    m = np.repeat(masses, 3)
    mw = hess / np.sqrt(np.outer(m, m))
    conv = np.sqrt(units._e / units._amu) * 1e10 / (2 * np.pi * units._c * 100)  # sqrt(eV/A^2/amu) -> cm^-1
    if not project_rigid:
        lam, vec = np.linalg.eigh(mw)
        return _to_output(lam, vec, m, conv, idx, n_all)
    pos0 = pos0[idx]
    # rigid-body basis in mass-weighted coordinates
    com = (masses[:, None] * pos0).sum(0) / masses.sum()
    x = pos0 - com
    basis = []
    for c in range(3):
        v = np.zeros((n, 3))
        v[:, c] = 1.0
        basis.append((v * np.sqrt(masses)[:, None]).ravel())
    for c in range(3):
        axis = np.zeros(3)
        axis[c] = 1.0
        v = np.cross(axis, x)
        basis.append((v * np.sqrt(masses)[:, None]).ravel())
    b = np.array(basis).T
    u, sv, _ = np.linalg.svd(b, full_matrices=False)
    u = u[:, sv > 1e-6 * sv.max()]
    proj = np.eye(3 * n) - u @ u.T
    mwp = proj @ mw @ proj
    lam, vec = np.linalg.eigh(mwp)
    # drop the rigid-body null space: the eigenvectors most inside span(u)
    overlap = np.linalg.norm(u.T @ vec, axis=0)
    keep = np.argsort(overlap)[: 3 * n - u.shape[1]]
    keep = np.sort(keep)
    lam, vec = lam[keep], vec[:, keep]
    return _to_output(lam, vec, m, conv, idx, n_all)


def _to_output(lam, vec, m, conv, idx, n_all):
    freqs = np.sign(lam) * np.sqrt(np.abs(lam)) * conv
    sub = (vec / np.sqrt(m)[:, None]).T.reshape(len(lam), -1, 3)
    modes = np.zeros((len(lam), n_all, 3))
    modes[:, idx] = sub
    modes /= np.linalg.norm(modes.reshape(len(modes), -1), axis=1)[:, None, None]
    return freqs, modes
