"""The logistic fit of churn on points: statsmodels' Logit, or a sign-constrained likelihood with a prior towards the expert weights.

Public: logit_fit.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit


def row_patterns(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of X and each row's pattern index. Points come from bands, so a panel of a
    million rows usually has a few thousand patterns: every Newton step and every bootstrap
    replicate then works on the patterns, not the rows."""
    n, p = X.shape
    if p == 0:
        return np.zeros((1 if n else 0, 0)), np.zeros(n, dtype=np.int64)
    codes = np.empty((n, p), dtype=np.int64)
    uniq = []
    for j in range(p):
        u, inv = np.unique(X[:, j], return_inverse=True)
        uniq.append(u)
        codes[:, j] = inv
    card = [len(u) for u in uniq]
    if math.prod(card) < 2**62:
        key = np.zeros(n, dtype=np.int64)
        for j in range(p):
            key = key * card[j] + codes[:, j]
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    else:  # pragma: no cover - only with very many distinct point values
        view = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.dtype.itemsize * p)))
        _, first, inv = np.unique(view.ravel(), return_index=True, return_inverse=True)
    return X[first], inv.ravel()


@dataclass
class LogitProblem:
    """Weighted logistic likelihood on patterns, in standardised coordinates (z = (x − m) / sd)."""

    Z: np.ndarray         # patterns × p
    n: np.ndarray         # rows per pattern (bootstrap: weighted)
    y1: np.ndarray        # churned rows per pattern
    penalty: float = 0.0  # k · c: prior strength × information per row
    Q: np.ndarray | None = None  # penalty matrix (p × p)
    constrained: bool = False    # β ≤ 0
    A: np.ndarray | None = None  # [1, Z], built once and shared by the bootstrap replicates
    A32: np.ndarray | None = None  # float32 copy for the Hessian of very large problems

    #: above this many patterns the Hessian is accumulated in float32 (half the memory traffic); the
    #: gradient stays float64, so the fixed point is the same, only the steps are approximate
    FLOAT32_HESSIAN = 200_000

    def _A(self) -> np.ndarray:
        if self.A is None:
            self.A = np.column_stack([np.ones(len(self.Z)), self.Z])
        if self.A32 is None and len(self.A) > self.FLOAT32_HESSIAN:
            self.A32 = self.A.astype(np.float32)
        return self.A

    def _hessian(self, A: np.ndarray, w: np.ndarray) -> np.ndarray:
        if self.A32 is not None:
            A32 = self.A32
            return (A32.T @ (A32 * w.astype(np.float32)[:, None])).astype("float64")
        return A.T @ (A * w[:, None])

    def objective(self, theta: np.ndarray, eta: np.ndarray) -> float:
        """The penalised negative log-likelihood at θ, given the linear predictor η = Aθ."""
        f = -(self.y1 @ eta - self.n @ np.logaddexp(0.0, eta))
        if self.penalty and self.Q is not None:
            b = theta[1:]
            f += 0.5 * self.penalty * b @ self.Q @ b
        return float(f)

    def solve(self, theta0: np.ndarray | None = None, tol: float = 1e-10, maxiter: int = 200) -> tuple[np.ndarray, int]:
        """Minimise the penalised negative log-likelihood (projected Newton with an Armijo search
        along the projection arc for β ≤ 0). Returns θ = (intercept, β) and the iterations used."""
        A = self._A()
        p = A.shape[1]
        if theta0 is None:
            rate = np.clip(self.y1.sum() / max(self.n.sum(), 1e-300), 1e-6, 1 - 1e-6)
            theta = np.zeros(p)
            theta[0] = math.log(rate / (1 - rate))
        else:
            theta = np.asarray(theta0, dtype="float64").copy()
            if self.constrained:
                theta[1:] = np.minimum(theta[1:], 0.0)
        scale = max(float(self.n.sum()), 1.0)
        eta = A @ theta
        f = self.objective(theta, eta)
        it = 0
        for it in range(1, maxiter + 1):
            mu = expit(eta)
            g = -(A.T @ (self.y1 - self.n * mu))
            H = self._hessian(A, self.n * mu * (1 - mu))
            if self.penalty and self.Q is not None:
                g[1:] += self.penalty * (self.Q @ theta[1:])
                H[1:, 1:] += self.penalty * self.Q
            free = np.ones(p, dtype=bool)
            if self.constrained:
                free[1:] = ~((theta[1:] >= -1e-12) & (g[1:] < 0))
            d = np.zeros(p)
            Hf = H[np.ix_(free, free)]
            try:
                d[free] = np.linalg.solve(Hf, -g[free])
            except np.linalg.LinAlgError:
                d[free] = np.linalg.lstsq(Hf + 1e-10 * np.trace(Hf) * np.eye(free.sum()), -g[free], rcond=None)[0]
            pg = np.where(free, g, 0.0)
            t = 1.0
            while True:
                new = theta + t * d
                if self.constrained:
                    new[1:] = np.minimum(new[1:], 0.0)
                eta_new = A @ new
                fn = self.objective(new, eta_new)
                if fn <= f + 1e-4 * (g @ (new - theta)) or t < 1e-12:
                    break
                t *= 0.5
            step = np.max(np.abs(new - theta)) if p else 0.0
            if fn > f and t < 1e-12:  # no progress possible: at the optimum within float precision
                break
            theta, eta, f = new, eta_new, fn
            if step < tol * (1 + np.max(np.abs(theta))) and np.max(np.abs(pg)) < 1e-6 * scale:
                break
        return theta, it


def standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = X.mean(axis=0) if len(X) else np.zeros(X.shape[1])
    sd = X.std(axis=0) if len(X) else np.ones(X.shape[1])
    sd = np.where(sd > 0, sd, 1.0)
    return m, sd


def logit_fit(X, y, weights=None, *, constrained: bool = False, prior_strength: float = 0.0,
              prior_direction=None) -> tuple[float, np.ndarray]:
    """Maximum-likelihood logistic regression of ``y`` on ``X`` (plus an intercept) in numpy.

    ``constrained`` keeps every slope ≤ 0. ``prior_strength`` k > 0 adds the penalty
    ``k/2 · c · |(I − uuᵀ) β_z|²`` that pulls the slopes' direction towards ``−prior_direction``
    (standardised slopes β_z = β · sd, u the unit vector of prior_direction · sd, c = ȳ(1 − ȳ) the
    information of one row): the prior counts as k rows of evidence about the direction and says
    nothing about the overall scale. Returns (intercept, slopes)."""
    X = np.asarray(X, dtype="float64")
    y = np.asarray(y, dtype="float64")
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype="float64")
    m, sd = standardise(X)
    pats, inv = row_patterns(X)
    n = np.bincount(inv, weights=w, minlength=len(pats))
    y1 = np.bincount(inv, weights=w * y, minlength=len(pats))
    prob = LogitProblem((pats - m) / sd, n, y1, constrained=constrained)
    if prior_strength > 0:
        prob.penalty, prob.Q = prior_penalty(prior_strength, y, w, np.asarray(prior_direction, dtype="float64") * sd)
    theta, _ = prob.solve()
    beta = theta[1:] / sd
    return float(theta[0] - beta @ m), beta


def prior_penalty(k: float, y: np.ndarray, w: np.ndarray, direction_z: np.ndarray) -> tuple[float, np.ndarray]:
    rate = float(np.sum(w * y) / max(np.sum(w), 1e-300))
    c = rate * (1 - rate)
    p = len(direction_z)
    norm = float(np.linalg.norm(direction_z))
    Q = np.eye(p) if norm == 0 else np.eye(p) - np.outer(direction_z, direction_z) / norm**2
    return k * c, Q
