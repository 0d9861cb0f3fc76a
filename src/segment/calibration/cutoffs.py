"""Cut-offs for a calibrated score: expert shares, target shares, capacity, or target churn rates, at round numbers.

Public: choose_cutoffs, calibrated_cutoffs, scored_tiers.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

import math

import numpy as np

from segment.errors import SegmentError
from segment.grading.scheme import Scheme


def scored_tiers(scheme: Scheme) -> list[str]:
    """Tiers that have a score cut-off (``min_score``), highest first; the floor has none."""
    return [t.id for t in scheme.tiers if t.min_score is not None]


def _targets(value, tiers: list[str], key: str) -> list[float]:
    if isinstance(value, dict):
        unknown = [t for t in value if t not in tiers]
        missing = [t for t in tiers if t not in value]
        if unknown or missing:
            raise SegmentError(f"cutoffs.{key}: " + (f"unknown tier(s) {unknown}; " if unknown else "")
                               + (f"no target for {missing}; " if missing else "")
                               + f"give one per scored tier: {', '.join(tiers)}")
        return [float(value[t]) for t in tiers]
    if len(value) != len(tiers):
        raise SegmentError(f"cutoffs.{key}: {len(value)} value(s) for {len(tiers)} scored tier(s) "
                           f"({', '.join(tiers)}); give one per scored tier, highest first")
    return [float(v) for v in value]


def _nice_numbers(lo: float, hi: float, k: int) -> list[float]:
    """k distinct numbers in (lo, hi], decreasing, with as few decimals as possible, near the middle."""
    mid = (lo + hi) / 2 if math.isfinite(lo) else hi
    for d in range(0, 10):
        step = 10.0**-d
        top = math.floor(hi / step + 1e-9)
        cands = []
        m = top
        while len(cands) < 2000:
            v = round(m * step, d)
            if v <= lo:
                break
            if v <= hi:
                cands.append(v)
            m -= 1
        if len(cands) >= k:
            cands.sort(key=lambda v: (abs(v - mid), -v))
            return sorted(cands[:k], reverse=True)
    return list(np.linspace(hi, lo, k + 1)[:k])


def choose_cutoffs(scores: np.ndarray, tiers: list[str], *, method: str = "shares", shares=None,
                   churn_rates=None, max_customers: dict | None = None, labelled_scores=None, labelled_y=None,
                   min_tier_rows: int = 30, max_score: float | None = None) -> dict[str, float]:
    """Cut-offs (``min_score``) for the scored ``tiers`` (highest first; the floor is not listed).

    * ``shares``: target share of ``scores`` in each tier's score band; the cut-off that comes closest
      to the cumulative target is chosen (ties among scores make exact shares impossible);
    * ``churn_rates``: top down, the lowest cut-off whose band keeps the churn rate of
      ``labelled_scores`` / ``labelled_y`` at or below the target, with at least ``min_tier_rows`` rows;
    * ``max_customers``: afterwards, a tier's band holds at most this many of ``scores`` (its cut-off is
      raised until it does; the customers move down).

    Cut-offs are placed between distinct scores, as round as possible, so the same customers are
    split the same way on ``scores``.

    Long because the three methods share one walk down the tiers (targets, capacity, round numbers, no empty
    tier); split, each copy would need the same guards."""
    s = np.sort(np.asarray(scores, dtype="float64"))[::-1]
    s = s[~np.isnan(s)]
    if len(s) == 0:
        raise SegmentError("no scores to place cut-offs on")
    u = np.unique(s)[::-1]  # distinct scores, highest first
    n = len(s)

    def count_ge(v):  # customers with score ≥ v
        return int(np.searchsorted(-s, -v, side="right"))

    # thresholds as indices into u: tier j holds scores ≥ u[idx_j]; idx = -1 means "nobody"
    if method == "shares":
        target = np.cumsum(_targets(shares, tiers, "shares"))
        counts = np.array([count_ge(v) for v in u]) / n
        idx = []
        for tgt in target:
            cand = np.r_[0.0, counts]  # position 0 = nobody (threshold above max)
            best = int(np.argmin(np.abs(cand - tgt) + 1e-12 * np.arange(len(cand))))
            idx.append(best - 1)
        idx = list(np.maximum.accumulate(idx))
    elif method == "churn_rates":
        if labelled_scores is None or labelled_y is None:
            raise ValueError("churn_rates needs labelled_scores and labelled_y")
        rates = _targets(churn_rates, tiers, "churn_rates")
        ls = np.asarray(labelled_scores, dtype="float64")
        ly = np.asarray(labelled_y, dtype="float64")
        # thresholds between distinct scores of both: a cut-off placed between two population scores
        # must not let in labelled rows (other dates) the rate was not computed on
        u = np.unique(np.r_[s, ls[~np.isnan(ls)]])[::-1]
        order = np.argsort(-ls, kind="stable")
        ls_desc, cum_y = ls[order], np.r_[0.0, np.cumsum(ly[order])]
        n_ge = np.searchsorted(-ls_desc, -u, side="right")  # labelled rows with score ≥ u[i]
        y_ge = cum_y[n_ge]
        idx = []
        upper_n, upper_y, upper = 0, 0.0, np.inf
        for tier, rate in zip(tiers, rates):
            below = u < upper
            m = n_ge - upper_n
            r = np.where(m > 0, (y_ge - upper_y) / np.maximum(m, 1), np.inf)
            ok = below & (m >= min_tier_rows)
            hit = np.flatnonzero(ok & (r <= rate + 1e-12))
            if not len(hit):
                got = (f"the lowest it reaches with ≥ {min_tier_rows} rows is {r[ok].min():.1%} "
                       f"({int(m[ok][np.argmin(r[ok])])} rows)" if ok.any()
                       else f"no band below the tier above holds {min_tier_rows} rows")
                raise SegmentError(f"cutoffs.churn_rates: tier {tier!r} cannot keep its training churn rate at "
                                   f"or below {rate:.1%}; {got}. Raise the target or lower min_tier_rows")
            best = int(hit[-1])  # the lowest cut-off (widest tier) that keeps the rate
            idx.append(best)
            upper, upper_n, upper_y = u[best], n_ge[best], y_ge[best]
    else:
        raise ValueError(f"unknown method {method!r}")

    for j, tier in enumerate(tiers):
        cap = (max_customers or {}).get(tier)
        if cap is None:
            continue
        above = count_ge(u[idx[j - 1]]) if j > 0 and idx[j - 1] >= 0 else 0
        while idx[j] >= 0 and count_ge(u[idx[j]]) - above > cap:
            idx[j] -= 1
        if j > 0:
            idx[j] = max(idx[j], idx[j - 1])
        for k in range(j + 1, len(idx)):
            idx[k] = max(idx[k], idx[j])

    # numbers: tiers sharing a threshold index share an interval and get distinct numbers in it
    out: dict[str, float] = {}
    j = 0
    while j < len(tiers):
        k = j
        while k + 1 < len(tiers) and idx[k + 1] == idx[j]:
            k += 1
        i = idx[j]
        if i < 0:  # nobody: above the highest score, within the highest possible score
            lo, hi = float(u[0]), float(max_score if max_score is not None else u[0] + 1)
            if hi <= lo:
                raise SegmentError(f"cutoffs: tier {tiers[j]!r} would be empty, but the best customers already "
                                   f"reach the highest possible score {hi:g}; lower its target share")
        else:
            hi = float(u[i])
            lo = float(u[i + 1]) if i + 1 < len(u) else hi - 1.0
        for t, v in zip(tiers[j:k + 1], _nice_numbers(lo, hi, k - j + 1)):
            out[t] = v
        j = k + 1
    return out


def calibrated_cutoffs(scheme: Scheme, cut_params, max_score: float, ref_exp: np.ndarray, ref_cal: np.ndarray,
                       *, tr_cal, y_tr: np.ndarray) -> tuple[dict[str, float], dict]:
    """The calibrated scheme's cut-offs by ``cutoffs.method`` (params/calibration.yaml) and what they
    aimed at: ``ref_exp`` / ``ref_cal`` are the expert and calibrated scores of the reference population
    (the latest training date's graded customers); ``tr_cal()`` the calibrated scores of the labelled
    training rows, ``y_tr`` their churn (method churn_rates). Returns (cut-offs per tier, targets)."""
    tiers = scored_tiers(scheme)
    cutoffs: dict[str, float] = {}
    targets: dict = {"method": cut_params.method}
    if not tiers:
        return cutoffs, targets
    if cut_params.method == "keep":
        cutoffs = {t.id: float(t.min_score) for t in scheme.tiers if t.min_score is not None}
        if any(c > max_score + 1e-9 for c in cutoffs.values()):
            raise SegmentError(f"cutoffs.method keep: the expert cut-off {max(cutoffs.values()):g} is above the "
                               f"calibrated scheme's highest possible score {max_score:g}; use expert_shares")
        return cutoffs, targets
    kw = {"max_customers": cut_params.max_customers, "max_score": max_score}
    unknown = [t for t in cut_params.max_customers if t not in tiers]
    if unknown:
        raise SegmentError(f"cutoffs.max_customers: unknown or floor tier(s) {unknown}; "
                           f"scored tiers are {', '.join(tiers)}")
    if cut_params.method == "expert_shares":
        cum = [float(np.mean(ref_exp >= t.min_score)) for t in scheme.tiers if t.min_score is not None]
        target = list(np.diff(np.r_[0.0, cum]))
        targets["shares"] = dict(zip(tiers, [round(x, 6) for x in target]))
        cutoffs = choose_cutoffs(ref_cal, tiers, method="shares", shares=target, **kw)
    elif cut_params.method == "shares":
        targets["shares"] = cut_params.shares
        cutoffs = choose_cutoffs(ref_cal, tiers, method="shares", shares=cut_params.shares, **kw)
    else:
        targets["churn_rates"] = cut_params.churn_rates
        cutoffs = choose_cutoffs(ref_cal, tiers, method="churn_rates", churn_rates=cut_params.churn_rates,
                                 labelled_scores=tr_cal(), labelled_y=y_tr,
                                 min_tier_rows=cut_params.min_tier_rows, **kw)
    if cut_params.max_customers:
        targets["max_customers"] = cut_params.max_customers
    return cutoffs, targets
