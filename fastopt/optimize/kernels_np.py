"""Plain-numpy twins of ``fastopt.optimize.kernels`` (same signatures minus the ``_nb``).

They exist to prove the numba kernels right (tests compare them to 1e-12) and
to document the maths in vectorized form. Conventions: see ``fastopt.optimize.kernels``.
"""
from __future__ import annotations

import numpy as np


def slope_basis(n_days: int) -> np.ndarray:
    """h with slope(cumsum(r) vs t) = h . r; h_s = 6 s (T - s) / (T (T^2 - 1))."""
    if n_days < 2:
        return np.zeros(n_days)
    t = float(n_days)
    s = np.arange(n_days, dtype=np.float64)
    return 6.0 * s * (t - s) / (t * (t * t - 1.0))


def curve_slope_std(r: np.ndarray, compound: bool) -> tuple[float, float]:
    """(OLS slope per day of the cumulative curve vs t = 0..T-1, std(r, ddof=1))."""
    n = r.size
    if n < 2:
        return float("nan"), float("nan")
    curve = np.cumprod(1.0 + r) - 1.0 if compound else np.cumsum(r)
    t = np.arange(n, dtype=np.float64)
    a = t - t.mean()
    slope = float(a @ curve / (a @ a))
    return slope, float(np.std(r, ddof=1))


def portfolio_score(returns: np.ndarray, weights: np.ndarray, compound: bool) -> float:
    """slope / std (per day) of the portfolio curve by definition; NaN if std == 0."""
    slope, std = curve_slope_std(returns @ weights, compound)
    return slope / std if std > 0 else float("nan")


def batch_ratio_sparse(g: np.ndarray, cov: np.ndarray, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Per-day slope/std of K sparse candidates (weights val[k] on idx[k]); -inf if var <= 0."""
    num = np.einsum("ks,ks->k", g[idx], val)
    sub = cov[idx[:, :, None], idx[:, None, :]]
    var = np.einsum("ka,kab,kb->k", val, sub, val)
    out = np.full(idx.shape[0], -np.inf)
    ok = var > 0
    out[ok] = num[ok] / np.sqrt(var[ok])
    return out


def batch_compound_sparse(returns: np.ndarray, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Per-day compound-curve score of K sparse candidates; -inf when std == 0."""
    out = np.empty(idx.shape[0])
    for k in range(idx.shape[0]):
        r = returns[:, idx[k]] @ val[k]
        slope, std = curve_slope_std(r, True)
        out[k] = slope / std if std > 0 else -np.inf
    return out


def ratio_gradient(g: np.ndarray, cov_w: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Gradient of g.w / sqrt(w' cov w) given cov_w = cov @ w."""
    big_g = g @ weights
    var = weights @ cov_w
    return (g * var - big_g * cov_w) / var**1.5


def pair_step(g_i, g_j, big_g, var, cov_w_i, cov_w_j, c_ii, c_jj, c_ij, lo, hi) -> float:
    """Exact maximizer t in [lo, hi] of the ratio along w + t (e_i - e_j)."""
    d = g_i - g_j
    p = cov_w_i - cov_w_j
    q = c_ii + c_jj - 2.0 * c_ij
    a0 = d * var - big_g * p
    a1 = d * p - big_g * q
    if a0 == 0.0 and a1 == 0.0:
        return 0.0
    if a1 < 0.0:
        return float(np.clip(-a0 / a1, lo, hi))
    ends = np.array([lo, hi])
    v = var + 2.0 * ends * p + ends * ends * q
    f = np.where(v > 0, (big_g + ends * d) / np.sqrt(np.where(v > 0, v, 1.0)), -np.inf)
    return float(ends[int(np.argmax(f))])


def pair_move(cov, cov_w, weights, i, j, t) -> None:
    """Move t of weight from j to i, keeping cov_w = cov @ w current (in place)."""
    weights[i] += t
    weights[j] -= t
    cov_w += t * (cov[i] - cov[j])


def smo_ratio(g, cov, weights, cov_w, upper, tol, max_iter) -> tuple[int, float]:
    """Twin of ``smo_ratio_nb``: most-violating-pair ascent; updates weights/cov_w in place."""
    gap = float("inf")
    it = 0
    while it < max_iter:
        # sequential sums (cumsum) reproduce the kernel's rounding, so both take the same path
        big_g = float(np.cumsum(g * weights)[-1])
        var = float(np.cumsum(weights * cov_w)[-1])
        if not var > 0:
            break
        d = g * var - big_g * cov_w
        grow = np.where(weights < upper, d, -np.inf)
        give = np.where(weights > 0, d, np.inf)
        i = int(np.argmax(grow))
        j = int(np.argmin(give))
        if not np.isfinite(grow[i]) or not np.isfinite(give[j]) or i == j:
            gap = 0.0
            break
        scale = abs(big_g) * var
        gap = (grow[i] - give[j]) / scale if scale > 0 else float("inf")
        if gap <= tol:
            break
        room_i = upper[i] - weights[i]
        give_j = weights[j]
        hi = min(room_i, give_j)
        t = pair_step(g[i], g[j], big_g, var, cov_w[i], cov_w[j], cov[i, i], cov[j, j], cov[i, j], 0.0, hi)
        it += 1
        if not t > 0:
            break
        pair_move(cov, cov_w, weights, i, j, t)
        if t == hi:
            if give_j <= room_i:
                weights[i] -= weights[j]
                weights[j] = 0.0
            else:
                weights[j] += weights[i] - upper[i]
                weights[i] = upper[i]
    return it, float(gap)


def compound_slope_and_derivative(r: np.ndarray) -> tuple[float, np.ndarray]:
    """(OLS slope per day of C_t = prod_{s<=t}(1 + r_s) - 1 vs t, d slope / d r_t for each day)."""
    n_days = r.shape[0]
    growth = np.cumprod(1.0 + r)
    a = np.arange(n_days, dtype=np.float64) - (n_days - 1) / 2.0
    s_tt = n_days * (n_days * n_days - 1.0) / 12.0
    slope = float(a @ (growth - 1.0) / s_tt)
    tail = np.cumsum((a * growth)[::-1])[::-1]
    return slope, tail / (1.0 + r) / s_tt


def compound_score_grad(returns: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """(per-day compound score, gradient) by the chain rule in vector form."""
    n_days = returns.shape[0]
    r = returns @ weights
    slope, dslope_dr = compound_slope_and_derivative(r)
    std = float(np.std(r, ddof=1))
    if not std > 0:
        return float("nan"), np.zeros(returns.shape[1])
    coef = dslope_dr / std - slope * (r - r.mean()) / ((n_days - 1) * std**3)
    return slope / std, coef @ returns


def cov_matvec_sparse(cov: np.ndarray, weights: np.ndarray, support: np.ndarray) -> np.ndarray:
    """cov @ w from the rows in ``support`` (cov symmetric; its leading weights.size block)."""
    return weights[support] @ cov[support, : weights.size]


def cholesky_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve (L L') x = rhs with L lower triangular (dense solves, for reference)."""
    return np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))


def kkt_violators(g, cov_y, nu, allowed, in_face, tol):
    """Twin of ``kkt_violators_nb``: (indices, lambdas) with lambda < -tol nu max|g|, index order."""
    lam = cov_y - nu * g
    cand = np.flatnonzero(allowed & ~in_face & (lam < -tol * nu * float(np.abs(g).max())))
    return cand, lam[cand]


def pdas(g, cov, allowed, start, max_iter, max_face):
    """Twin of ``pdas_nb`` with numpy's Cholesky and dense solves (same rules, same statuses)."""
    n = g.size
    mask = start.copy()
    y = np.zeros(n)
    for it in range(1, max_iter + 1):
        idx = np.flatnonzero(mask)
        k = idx.size
        if k == 0:
            return y, it, 4, mask
        if k > max_face:
            return y, it, 3, mask
        q = cov[np.ix_(idx, idx)]
        b = g[idx]
        try:
            chol = np.linalg.cholesky(q)
        except np.linalg.LinAlgError:
            return y, it, 2, mask
        diag = np.diag(chol)
        if diag.min() ** 2 < 1e-13 * diag.max() ** 2:
            return y, it, 2, mask
        z = cholesky_solve(chol, b)
        bz = float(b @ z)
        if not bz > 0:
            return y, it, 4, mask
        y = np.zeros(n)
        y[idx] = z / bz
        cov_y = y[idx] @ cov[idx]
        nu = float(y[idx] @ cov_y[idx])
        lam = cov_y - nu * g
        threshold = -1e-12 * nu * float(np.abs(g).max())
        enter = np.flatnonzero(allowed & ~mask & (lam < threshold))
        if (z > 0).all() and enter.size == 0:
            return y, it, 0, mask
        mask[idx[~(y[idx] > 0)]] = False
        limit = max(8, k // 4)
        if enter.size > limit:
            enter = enter[np.argsort(lam[enter], kind="stable")[:limit]]
        mask[enter] = True
    return y, max_iter, 1, mask


def compound_line_max(r: np.ndarray, delta: np.ndarray, lo: float, hi: float, iters: int) -> tuple[float, float]:
    """Twin of ``compound_line_max_nb`` (same golden-section rules)."""
    ratio = (np.sqrt(5.0) - 1.0) / 2.0

    def value(t: float) -> float:
        slope, std = curve_slope_std(r + t * delta, True)
        return slope / std if std > 0 else -np.inf

    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = value(c), value(d)
    for _ in range(iters):
        if b - a <= 1e-14 * max(1.0, abs(hi)):
            break
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = value(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = value(d)
    best_t, best_f = hi, value(hi)
    if fc > best_f:
        best_t, best_f = c, fc
    if fd > best_f:
        best_t, best_f = d, fd
    return float(best_t), float(best_f)


def ratio_active_set(g, cov, allowed, y, order, size, chol, max_steps, tol):
    """Twin of ``fastopt.optimize.active_set_kernels.ratio_active_set_nb``: the same steps, with the face
    factored from scratch by numpy at every step instead of updated (``chol`` is refreshed too).

    Same arguments, state updates in place and return codes (1 KKT, 0 step limit,
    2 every violator dependent on the face, 3 failure, -1 buffer too small).
    """
    n = g.size
    cap = chol.shape[0]
    single = False
    exchanges = 0

    def factor(face: np.ndarray) -> np.ndarray | None:
        try:
            lower = np.linalg.cholesky(cov[np.ix_(face, face)])
        except np.linalg.LinAlgError:
            return None
        return lower

    for step in range(1, max_steps + 1):
        if size == 0:
            return 3, size, step
        face = order[:size].copy()
        lower = factor(face)
        if lower is None:
            return 3, size, step
        u = np.linalg.solve(lower.T, np.linalg.solve(lower, g[face]))
        gu = float(g[face] @ u)
        if not (gu > 0 and np.isfinite(gu)) or not np.isfinite(u).all():
            return 3, size, step
        z = u / gu
        nonpositive = np.flatnonzero(z <= 0)
        if nonpositive.size:
            yf = y[face[nonpositive]]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.where(yf > 0, yf / (yf - z[nonpositive]), 0.0)
            block = int(nonpositive[int(np.argmin(ratios))])
            alpha = float(ratios.min())
            y[face] = y[face] + alpha * (z - y[face])
            y[face[block]] = 0.0
            keep = ~((z <= 0) & (y[face] <= 0))
            keep[block] = False
            y[face[~keep]] = 0.0
            size = int(keep.sum())
            order[:size] = face[keep]
            chol[:, :] = 0.0
            if size:
                chol[:size, :size] = factor(order[:size])
            single = alpha == 0.0
            continue
        y[face] = z
        cov_y = y[face] @ cov[face, :n]
        nu = float(y[face] @ cov_y[face])
        if not nu > 1e-10 * float(y[face] @ np.sqrt(np.diag(cov)[face])) ** 2:
            return 2, size, step
        in_face = np.zeros(n, dtype=bool)
        in_face[face] = True
        cand, lam = kkt_violators(g, cov_y, nu, allowed, in_face, tol)
        if cand.size == 0:
            return 1, size, step
        limit = 1 if single else max(1, size // 4)
        cand = cand[np.argsort(lam / np.sqrt(np.diag(cov)[cand]), kind="stable")]
        added = 0
        for m in cand:
            if added >= limit:
                break
            if size >= cap:
                return -1, size, step
            trial = np.append(order[:size], m)
            lower = factor(trial)
            if lower is None or not lower[-1, -1] ** 2 > 1e-14 * cov[m, m]:
                if added:
                    continue
                if exchanges >= 4 * cap:
                    return 2, size, step
                exchanges += 1
                # dependent on the face: exchange it in (twin of active_set_kernels._exchange)
                face = order[:size].copy()
                a = np.linalg.solve(cov[np.ix_(face, face)], cov[face, m])
                delta = float(g[m] - a @ g[face])
                if not delta > 0:
                    continue
                limiting = np.flatnonzero(a > 0)
                if limiting.size == 0:
                    return 2, size, step
                ratios = y[face[limiting]] / a[limiting]
                block = int(limiting[int(np.argmin(ratios))])
                t = float(ratios.min())
                y[face] = np.maximum(y[face] - t * a, 0.0)
                y[face[block]] = 0.0
                y[m] = t
                y[face] /= 1.0 + t * delta
                y[m] /= 1.0 + t * delta
                kept = np.delete(face, block)
                trial = np.append(kept, m)
                lower = factor(trial)
                size = kept.size
                order[:size] = kept
                chol[:, :] = 0.0
                if lower is None or not lower[-1, -1] ** 2 > 1e-14 * cov[m, m]:
                    y[m] = 0.0
                    y[kept] /= float(g[kept] @ y[kept])
                    if size:
                        chol[:size, :size] = factor(kept)
                    continue
                order[size] = m
                size += 1
                chol[:size, :size] = lower
                added = 1
                break
            order[size] = m
            size += 1
            chol[:size, :size] = lower
            added += 1
        if added == 0:
            return 2, size, step
        single = False
    return 0, size, max_steps


# --------------------------------------------------------------------------- Cholesky factor updates (twins of fastopt.optimize.cholesky_kernels)


def cholesky_append_np(chol, k, col, diag) -> bool:
    """Plain-numpy twin of ``cholesky_append_nb``: refactor the bordered matrix from scratch."""
    lower = chol[:k, :k]
    gram = np.empty((k + 1, k + 1))
    gram[:k, :k] = lower @ lower.T
    gram[:k, k] = col
    gram[k, :k] = col
    gram[k, k] = diag
    try:
        new = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        return False
    if not new[k, k] ** 2 > 1e-14 * diag:
        return False
    chol[: k + 1, : k + 1] = new
    chol[k, k + 1 :] = 0.0
    return True


def cholesky_delete_np(chol, k, p) -> None:
    """Plain-numpy twin of ``cholesky_delete_nb``: refactor the matrix without row/column p."""
    lower = chol[:k, :k]
    gram = lower @ lower.T
    keep = np.delete(np.arange(k), p)
    new = np.linalg.cholesky(gram[np.ix_(keep, keep)])
    chol[:k, :k] = 0.0
    chol[: k - 1, : k - 1] = new
