"""The deterministic demo company: four contract tables simulated month by month from a seed.

Public: simulate, generate, data_yaml, write_demo.
Reads: nothing. Writes: the demo company's files (segment demo --out).

``generate(customers, seed)`` returns :class:`segment.data.tables.Tables`; ``write_demo(out, ...)`` writes
``customers.csv``, ``transactions.parquet``, ``interactions.parquet``, ``opportunities.csv`` and a
``data.yaml`` pointing at them (every file atomically; same seed and size → byte-identical files).

The mechanism (full description, every coefficient and the measured proportions in ``docs/demo.md``):

* Customers are acquired throughout (some years before ``START_DATE``, the rest until ``END_DATE``);
  ~7% are *prospects* who enquire and open opportunities but never buy.
* Each buying customer has a heavy-tailed (lognormal) spend level correlated with its size, an order
  rate, a growth trend, a margin rate, product lines, and a latent *engagement* that follows an AR(1)
  process month by month. Engagement raises order rate, order value, referrals, praise and survey
  scores and lowers complaints, so the churn drivers are correlated with each other as in real data.
* Every month, each active customer churns with hazard ``sigmoid(logit)``::

      logit = intercept
            + complaints_6m * (complaints in the last 6 months)
            + major_complaints_6m * (major complaints in the last 6 months)
            + satisfaction_gap * (7 - latest survey score; 0 without a survey)
            + log_months_since_order * log(1 + full months since the last month with an order)
            + spend_decline * clip(log((spend 6 before + 1) / (spend last 6 + 1)), -1, 2)
            + log_tenure_years * log(1 + tenure in years)
            + referrals_12m * (referrals in the last 12 months)

  with the coefficients in :data:`CHURN_COEFFICIENTS`. ``industry_growth``, ``budget_growth``,
  ``region`` and ``market_share`` have **exactly zero** effect (their values are drawn independently of
  everything that drives churn; only the *presence* of a market share marks the largest 5% by revenue). A churned customer has no transactions or interactions after its churn
  date (a share leave with a "parting" complaint dated on the churn date); 45% of churned customers are
  marked ``status='lost'`` with ``status_date`` = churn date, the rest churn silently (still 'active').
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from segment.data.contract import INTERACTION_KINDS
from segment.data.tables import Tables
from segment.plumbing.atomic import atomic_path, write_text

END_DATE = pd.Timestamp("2026-09-30")
START_DATE = pd.Timestamp("2023-01-01")

#: logit of the monthly churn hazard (see the module docstring and docs/demo.md)
CHURN_COEFFICIENTS: dict[str, float] = {
    "intercept": -5.2,
    "complaints_6m": 0.45,           # per complaint in the last 6 months
    "major_complaints_6m": 0.40,     # extra, per major complaint in the last 6 months
    "satisfaction_gap": 0.30,        # per point of (7 - latest survey score); 0 without a survey
    "log_months_since_order": 0.90,  # per unit of log(1 + full months since the last order month)
    "spend_decline": 0.80,           # per unit of clip(log(prev 6 months / last 6 months), -1, 2)
    "log_tenure_years": -0.35,       # per unit of log(1 + tenure years)
    "referrals_12m": -0.40,          # per referral in the last 12 months
    "industry_growth": 0.0,          # explicitly no effect
    "budget_growth": 0.0,            # explicitly no effect
    "market_share": 0.0,             # explicitly no effect
    "region": 0.0,                   # explicitly no effect (any region)
}

#: share of churned customers the CRM marks explicitly as 'lost' (the rest churn silently)
LOST_MARKED_SHARE = 0.45
#: share of churned customers who file a complaint on the day they leave
PARTING_COMPLAINT_SHARE = 0.15
#: months simulated before START_DATE (not recorded) so that 6/12-month windows are filled at START
BURN_IN_MONTHS = 12
#: first possible created_date (tenure up to ~8 years at END_DATE)
EARLIEST_CREATED = pd.Timestamp("2018-10-01")

INDUSTRIES: dict[str, float] = {  # industry → fixed industry_growth (S1 bands >15 / 10-15 / 5-10 / <5%)
    "New Energy": 0.24,
    "Semiconductors": 0.19,
    "Medical Devices": 0.16,
    "E-commerce": 0.13,
    "Logistics": 0.11,
    "Automotive": 0.08,
    "Food & Beverage": 0.06,
    "Machinery": 0.04,
    "Public Sector": 0.03,
    "Textiles": 0.01,
}
_INDUSTRY_WORDS = {
    "New Energy": ("New Energy", "Solar", "Battery"),
    "Semiconductors": ("Microelectronics", "Semiconductor", "Chip"),
    "Medical Devices": ("Medical", "Biotech", "Health Equipment"),
    "E-commerce": ("E-commerce", "Online Trading", "Digital Commerce"),
    "Logistics": ("Logistics", "Supply Chain", "Freight"),
    "Automotive": ("Auto Parts", "Automotive", "Vehicle Systems"),
    "Food & Beverage": ("Foods", "Beverage", "Dairy"),
    "Machinery": ("Machinery", "Precision Machinery", "Heavy Industry"),
    "Public Sector": ("Municipal Services", "Public Utilities", "Education Bureau"),
    "Textiles": ("Textiles", "Garments", "Fabrics"),
}
REGIONS = ("East", "North", "South", "Central", "Southwest", "Northeast")
_REGION_WEIGHTS = np.array([0.28, 0.20, 0.20, 0.12, 0.12, 0.08])
_REGION_CITIES = {
    "East": ("Shanghai", "Hangzhou", "Suzhou", "Nanjing", "Ningbo"),
    "North": ("Beijing", "Tianjin", "Shijiazhuang", "Jinan"),
    "South": ("Guangzhou", "Shenzhen", "Dongguan", "Xiamen"),
    "Central": ("Wuhan", "Changsha", "Zhengzhou", "Hefei"),
    "Southwest": ("Chengdu", "Chongqing", "Kunming", "Guiyang"),
    "Northeast": ("Shenyang", "Dalian", "Harbin", "Changchun"),
}
PRODUCT_LINES = ("hardware", "software", "service", "consulting")
CORE_PRODUCT_LINES = ("software", "service")
_LIST_PRICE = np.array([30.0, 400.0, 120.0, 1800.0])        # yuan per unit, by product line
_LINE_TAKEUP = np.array([0.75, 0.50, 0.45, 0.20])           # P(customer set up for the line) at size 0

#: S7 stage codes and the status they imply
STAGES_OPEN = ("A21", "A08", "A07", "A06", "A05", "A04", "A03")
STAGES_WON = ("A02", "A01")
STAGES_LOST = ("A31",)

_SYLLABLES = ("Hua", "Xin", "Tai", "Sheng", "Long", "Feng", "Da", "Jin", "Rui", "Heng", "Kang", "Yuan",
              "Tong", "Bo", "Chuang", "Hong", "Ming", "An", "Fu", "Guang", "Hai", "Jia", "Tian", "Zhong",
              "Wei", "Yi", "Cheng", "De", "Xing", "Li")
_LEGAL = ("Co., Ltd.", "Co., Ltd.", "Co., Ltd.", "Group Co., Ltd.", "Technology Co., Ltd.")
_FAMILY = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma",
           "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo", "Zheng", "Liang", "Xie", "Tang", "Song", "Han",
           "Feng", "Deng", "Cao", "Peng")
_GIVEN = ("Wei", "Fang", "Na", "Min", "Jing", "Lihua", "Qiang", "Lei", "Jun", "Yang", "Yong", "Yan", "Jie",
          "Tao", "Ming", "Chao", "Xiulan", "Xia", "Ping", "Gang", "Hui", "Lin", "Hong", "Jian", "Ying",
          "Hua", "Bo", "Dan", "Xin", "Yu", "Hao", "Kai", "Rui", "Ting", "Yi", "Peng", "Lu", "Qing", "Shan",
          "Zhen")
_TITLES = ("Purchasing Manager", "Procurement Director", "General Manager", "Operations Manager",
           "Purchasing Specialist", "IT Manager", "CTO", "Owner")
_TITLE_W_SMALL = np.array([0.15, 0.03, 0.30, 0.10, 0.07, 0.05, 0.05, 0.25])
_TITLE_W_LARGE = np.array([0.30, 0.25, 0.05, 0.12, 0.15, 0.08, 0.05, 0.00])
_MOBILE_PREFIXES = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 158,
                             159, 176, 177, 180, 182, 186, 187, 188, 189])
#: 40 account managers, by region (the first two of each region are its key-account managers)
ACCOUNT_MANAGERS: dict[str, tuple[str, ...]] = {
    "East": ("Zhou Jian", "Shen Li", "Wang Lei", "Li Na", "Chen Hao", "Xu Ting", "Sun Jie", "Zhu Min",
             "Hu Yan", "Lu Peng"),
    "North": ("Zhao Gang", "Liu Yang", "Ma Jun", "Gao Hui", "Song Wei", "Han Xue", "Cao Bin", "Yin Qing"),
    "South": ("Huang Ming", "Lin Ying", "Liang Tao", "Xie Fang", "Luo Kai", "Deng Hua", "Zheng Rui",
              "Ye Shan"),
    "Central": ("Peng Bo", "Tang Jing", "Wu Chao", "Yu Dan", "Fang Lin"),
    "Southwest": ("He Xin", "Jiang Ping", "Du Hong", "Ran Lu", "Tan Zhen"),
    "Northeast": ("Guo Qiang", "Meng Yi", "Bai Xia", "Qian Yu"),
}

_KINDS = tuple(INTERACTION_KINDS)
_K = {k: i for i, k in enumerate(_KINDS)}
_CHANNELS = ("phone", "e-mail", "web", "visit", "event")
# per kind: (channel indices, probabilities)
_KIND_CHANNELS = {
    "consultation": ((0, 1, 2), (0.4, 0.3, 0.3)),
    "visit": ((3,), (1.0,)),
    "call": ((0,), (1.0,)),
    "complaint": ((0, 1, 2), (0.5, 0.3, 0.2)),
    "survey": ((1, 2), (0.6, 0.4)),
    "referral": ((0, 1, 3), (0.4, 0.4, 0.2)),
    "campaign": ((4, 1, 2), (0.3, 0.4, 0.3)),
    "praise": ((1, 0), (0.6, 0.4)),
}

_EPOCH_START = int((START_DATE - pd.Timestamp("1970-01-01")).days)
_EPOCH_END = int((END_DATE - pd.Timestamp("1970-01-01")).days)
_N_MONTHS = (END_DATE.year - START_DATE.year) * 12 + END_DATE.month - START_DATE.month + 1  # 45


def _day(ts: pd.Timestamp) -> int:
    return int((ts - pd.Timestamp("1970-01-01")).days)


def _month_start(m: int) -> int:
    """Day number (days since 1970-01-01) of the first day of month m (0 = START_DATE's month)."""
    return int((np.datetime64("2023-01", "M") + m).astype("datetime64[D]").astype(np.int64))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng, n: int, p) -> np.ndarray:
    """n category indices drawn with probabilities p (vectorised)."""
    cum = np.cumsum(np.asarray(p, dtype=float))
    cum /= cum[-1]
    return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(cum) - 1)


def _dates(days: np.ndarray) -> np.ndarray:
    """int day numbers (−1 = missing) → datetime64[ns] with NaT."""
    out = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    out[np.asarray(days) < 0] = np.datetime64("NaT")
    return out


def _strings(values, idx: np.ndarray, valid: np.ndarray | None = None) -> pd.arrays.ArrowStringArray:
    """Take strings from a small dictionary by index, in C (pyarrow) — fast for tens of millions of rows."""
    dictionary = pa.array(list(values), type=pa.large_string())
    indices = pa.array(np.asarray(idx, dtype=np.int32), mask=None if valid is None else ~np.asarray(valid))
    return pd.arrays.ArrowStringArray(pc.take(dictionary, indices))


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.arrays.ArrowStringArray:
    # large_string: 50 M ids of 11 characters overflow the 2 GiB of a 32-bit-offset string array
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.large_string()),
                          width=width, padding="0")
    return pd.arrays.ArrowStringArray(pc.binary_join_element_wise(pa.scalar(prefix, pa.large_string()), digits,
                                                                  pa.scalar("", pa.large_string())))


def _string_series(arr) -> pd.Series:
    return pd.Series(arr, dtype="string")


# --------------------------------------------------------------------------------------------
# customers (static attributes)
# --------------------------------------------------------------------------------------------

def _static_customers(rng: np.random.Generator, n: int) -> dict:
    """Everything fixed per customer. Arrays are in customer-id order (ids follow created_date)."""
    start, end = _EPOCH_START, _EPOCH_END
    prospect = rng.random(n) < 0.07
    pre = (rng.random(n) < 0.43) & ~prospect
    created = np.where(pre, rng.integers(_day(EARLIEST_CREATED), start, n), rng.integers(start, end + 1, n))
    recent = prospect & (rng.random(n) < 0.5)
    created = np.where(recent, rng.integers(end - 365, end + 1, n), created)
    # customer ids follow the order customers were recorded; attributes drawn below are iid, so
    # ordering first and drawing after is the same as drawing and re-ordering
    order = np.lexsort((rng.random(n), created))
    created, prospect = created[order], prospect[order]

    c: dict = {"n": n, "created": created.astype(np.int32), "prospect": prospect}
    z_size = rng.standard_normal(n)
    z_own = rng.standard_normal(n)
    sz = 0.6 * z_size + 0.8 * z_own                     # standardised spend level
    c["sz"] = sz
    c["spend_level"] = np.exp(np.log(80_000.0) + 1.6 * sz)   # yuan per year at engagement 0
    c["order_rate"] = np.clip(np.exp(np.log(0.8) + 0.55 * sz + 0.6 * rng.standard_normal(n)), 0.08, 30.0)
    c["growth"] = rng.normal(0.03, 0.10, n)               # log spend trend per year
    c["margin_rate"] = 0.10 + 0.30 * rng.beta(2.0, 2.0, n)
    c["discount"] = np.exp(-0.04 * sz + 0.05 * rng.standard_normal(n))
    strategic = (rng.random(n) < _sigmoid(-6.0 + 1.5 * sz)) & ~prospect
    c["strategic"] = strategic
    c["eng_mean"] = rng.normal(0.0, 0.3, n) + 0.3 * strategic
    c["complaint_prone"] = np.exp(rng.normal(-0.125, 0.5, n))
    c["survey_base"] = rng.normal(0.0, 0.7, n)

    # product lines: bigger customers are set up for more lines; at least one
    takeup = _sigmoid(np.log(_LINE_TAKEUP / (1 - _LINE_TAKEUP))[None, :] + 0.5 * sz[:, None])
    has = rng.random((n, 4)) < takeup
    none = ~has.any(axis=1)
    has[none, 0] = True
    weights = rng.exponential(1.0, (n, 4)) * has
    c["line_cum"] = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1).astype(np.float32)
    c["has_line"] = has

    # base attributes: none of these enters the churn hazard
    c["industry"] = _pick(rng, n, np.ones(len(INDUSTRIES)))
    c["region"] = _pick(rng, n, _REGION_WEIGHTS)
    employees = np.maximum(2, np.round(np.exp(np.log(60.0) + 1.3 * z_size + 0.3 * rng.standard_normal(n))))
    revenue = employees * np.exp(rng.normal(np.log(800_000.0), 0.5, n))
    revenue = np.maximum(revenue, c["spend_level"] * rng.uniform(5, 20, n))
    c["employees"] = employees.astype(np.int64)
    c["revenue"] = np.round(revenue, -3)
    bg = np.round(rng.normal(0.08, 0.10, n), 2)
    bg[rng.random(n) < 0.2] = np.nan
    c["budget_growth"] = bg
    ms = np.full(n, np.nan)
    top = np.argsort(-revenue, kind="stable")[: max(1, int(round(0.05 * n)))]
    ms[top] = np.round(rng.beta(1.6, 9.0, len(top)), 3)
    c["market_share"] = ms
    return c


def _customer_frame(rng: np.random.Generator, c: dict, churn_day: np.ndarray) -> pd.DataFrame:
    """The demo's customers table: attributes drawn per customer.

    Long because the demo's customer attributes are drawn in one seeded sequence: reordering or splitting
    the draws would change every demo file."""
    n = c["n"]
    width = max(6, len(str(n)))
    ids = _ids("C", np.arange(1, n + 1), width)

    # names: "<City> <Prefix> <Industry word> <Legal form>"
    region, industry = c["region"], c["industry"]
    cities = [_REGION_CITIES[r] for r in REGIONS]
    city_k = (rng.random(n) * np.array([len(x) for x in cities])[region]).astype(int)
    city_names = [x for r in cities for x in r]
    city_off = np.cumsum([0] + [len(x) for x in cities])[:-1]
    city = np.asarray(city_names, dtype=object)[city_off[region] + city_k]
    s1 = rng.integers(0, len(_SYLLABLES), n)
    s2 = rng.integers(0, len(_SYLLABLES), n)
    syl = np.asarray(_SYLLABLES, dtype=object)
    prefix = pd.Series(syl[s1]) + pd.Series(syl[s2]).str.lower()
    inds = list(INDUSTRIES)
    word_k = rng.integers(0, 3, n)
    words = np.asarray([w for i in inds for w in _INDUSTRY_WORDS[i]], dtype=object)[industry * 3 + word_k]
    legal = np.asarray(_LEGAL, dtype=object)[rng.integers(0, len(_LEGAL), n)]
    name = pd.Series(city) + " " + prefix + " " + pd.Series(words) + " " + pd.Series(legal)

    fam = np.asarray(_FAMILY, dtype=object)[rng.integers(0, len(_FAMILY), n)]
    giv = np.asarray(_GIVEN, dtype=object)[rng.integers(0, len(_GIVEN), n)]
    contact = pd.Series(fam) + " " + pd.Series(giv)
    slug = (prefix + "-" + pd.Series(words).str.split(" ").str[0]).str.lower().str.replace(r"[^a-z\-]", "", regex=True)
    email = (pd.Series(giv).str.lower() + "." + pd.Series(fam).str.lower() + "@" + slug + ".example")
    email[rng.random(n) < 0.01] = None
    big = c["sz"] > 1.0
    title_small = _pick(rng, n, _TITLE_W_SMALL)
    title_large = _pick(rng, n, _TITLE_W_LARGE)
    title = np.asarray(_TITLES, dtype=object)[np.where(big, title_large, title_small)]
    pre = _MOBILE_PREFIXES[rng.integers(0, len(_MOBILE_PREFIXES), n)]
    mid = rng.integers(0, 10_000, n)
    last = rng.integers(0, 10_000, n)
    phone = (pd.Series(pre).astype(str) + "-" + pd.Series(mid).astype(str).str.zfill(4) + "-"
             + pd.Series(last).astype(str).str.zfill(4))
    phone[rng.random(n) < 0.01] = None

    # account managers: each region's two key-account managers hold its largest 5% of customers
    mgr_names = [m for r in REGIONS for m in ACCOUNT_MANAGERS[r]]
    mgr_off = np.cumsum([0] + [len(ACCOUNT_MANAGERS[r]) for r in REGIONS])[:-1]
    mgr_n = np.array([len(ACCOUNT_MANAGERS[r]) for r in REGIONS])
    key_account = c["sz"] >= np.quantile(c["sz"], 0.95)
    k_key = rng.integers(0, 2, n)
    k_other = 2 + (rng.random(n) * (mgr_n[region] - 2)).astype(int)
    mgr = mgr_off[region] + np.where(key_account, k_key, k_other)
    has_mgr = ~(c["prospect"] & (rng.random(n) < 0.3))

    lines = np.asarray(PRODUCT_LINES, dtype=object)
    has = c["has_line"]
    pl = pd.Series([""] * n, dtype=object)
    for j in range(4):  # 4 product lines, not a per-customer loop
        pl = pl + np.where(has[:, j], lines[j] + ";", "")
    pl = pl.str.rstrip(";")

    status_lost = (churn_day >= 0) & (rng.random(n) < LOST_MARKED_SHARE)
    status_date = np.where(status_lost, churn_day, c["created"])
    growth = np.asarray(list(INDUSTRIES.values()))[industry]

    df = pd.DataFrame({
        "customer_id": _string_series(ids),
        "name": name.astype("string"),
        "industry": _string_series(_strings(inds, industry)),
        "industry_growth": growth.astype(float),
        "size_employees": pd.array(c["employees"], dtype="Int64"),
        "annual_revenue": c["revenue"].astype(float),
        "region": _string_series(_strings(REGIONS, region)),
        "product_lines": pl.astype("string"),
        "account_manager": _string_series(_strings(mgr_names, mgr, has_mgr)),
        "contact_name": contact.astype("string"),
        "contact_title": pd.Series(title).astype("string"),
        "phone": phone.astype("string"),
        "email": email.astype("string"),
        "created_date": _dates(c["created"]),
        "budget_growth": c["budget_growth"],
        "market_share": c["market_share"],
        "strategic": pd.array(c["strategic"], dtype="boolean"),
        "status": _string_series(_strings(("active", "lost"), status_lost.astype(int))),
        "status_date": _dates(status_date),
    }, copy=False)
    return df


# --------------------------------------------------------------------------------------------
# the monthly simulation
# --------------------------------------------------------------------------------------------

# interaction kinds simulated as counts; complaint split into minor / major
_SIM_KINDS = ("consultation", "visit", "call", "complaint_minor", "complaint_major", "survey", "referral",
              "campaign", "praise", "opportunity")
_S = {k: i for i, k in enumerate(_SIM_KINDS)}


def _simulate(c: dict, rng: np.random.Generator, progress: bool) -> dict:
    """The demo company's purchases, interactions, opportunities and churn, simulated from its customers.

    Long because the simulation is one seeded sequence of draws (docs/demo.md describes it step by step):
    reordering or splitting them would change every demo file."""
    n = c["n"]
    b = CHURN_COEFFICIENTS
    created = c["created"].astype(np.int64)
    created_month = (created.astype("datetime64[D]").astype("datetime64[M]")
                     - np.datetime64("2023-01", "M")).astype(np.int64)
    start_month = np.maximum(created_month, -BURN_IN_MONTHS)
    prospect = c["prospect"]
    sz, level, rate = c["sz"], c["spend_level"], c["order_rate"]
    order_value = level / (12.0 * rate)
    line_cum = c["line_cum"]

    alive = np.ones(n, dtype=bool)
    churn_day = np.full(n, -1, dtype=np.int64)
    e = (c["eng_mean"] + rng.normal(0.0, 0.4, n)).astype(np.float64)
    phi, sigma = 0.85, 0.4 * np.sqrt(1 - 0.85 ** 2)
    last_order_month = start_month - 1
    cpl = np.zeros((n, 6), dtype=np.int16)
    cpl_major = np.zeros((n, 6), dtype=np.int16)
    refs = np.zeros((n, 12), dtype=np.int16)
    spend = np.zeros((n, 12), dtype=np.float32)
    last_score = np.full(n, np.nan)

    tx: dict[str, list] = {k: [] for k in ("cust", "day", "order", "line", "qty", "price", "amount", "margin")}
    it: dict[str, list] = {k: [] for k in ("cust", "day", "kind", "severity", "score")}
    op: dict[str, list] = {k: [] for k in ("cust", "day", "eng")}
    hazard_log: list = []  # (month, at risk, churned, mean hazard) for docs
    n_orders_total = 0

    months = range(-BURN_IN_MONTHS, _N_MONTHS)
    for m in tqdm(months, disable=not progress, desc="demo months", unit="month"):
        ms = _month_start(m)
        dim = _month_start(m + 1) - ms
        record = m >= 0
        act = np.flatnonzero(alive & (start_month <= m))
        buyer = ~prospect[act]

        # 1. churn hazard from the state up to the end of last month (buyers, after their first month)
        risk = act[buyer & (start_month[act] < m) & record]
        hi = np.full(len(act), dim, dtype=np.int64)
        if len(risk):
            c6 = cpl[risk].sum(axis=1)
            mj6 = cpl_major[risk].sum(axis=1)
            score = last_score[risk]
            sat = np.where(np.isnan(score), 0.0, 7.0 - score)
            gap = m - last_order_month[risk] - 1
            slots_last = [(m - k) % 12 for k in range(1, 7)]
            slots_prev = [(m - k) % 12 for k in range(7, 13)]
            s_last = np.maximum(spend[risk][:, slots_last].sum(axis=1), 0.0)
            s_prev = np.maximum(spend[risk][:, slots_prev].sum(axis=1), 0.0)
            decline = np.clip(np.log((s_prev + 1.0) / (s_last + 1.0)), -1.0, 2.0)
            decline[m - start_month[risk] < 12] = 0.0
            tenure = np.maximum(ms - created[risk], 0) / 365.25
            logit = (b["intercept"] + b["complaints_6m"] * c6 + b["major_complaints_6m"] * mj6
                     + b["satisfaction_gap"] * sat + b["log_months_since_order"] * np.log1p(gap)
                     + b["spend_decline"] * decline + b["log_tenure_years"] * np.log1p(tenure)
                     + b["referrals_12m"] * refs[risk].sum(axis=1))
            h = _sigmoid(logit)
            churn = rng.random(len(risk)) < h
            gone = risk[churn]
            d = rng.integers(0, dim, len(gone))
            churn_day[gone] = ms + d
            alive[gone] = False
            pos = np.searchsorted(act, gone)
            hi[pos] = d
            hazard_log.append((m, len(risk), len(gone), float(h.mean())))
        lo = np.where(created_month[act] == m, created[act] - ms, 0)
        frac = np.maximum(hi - lo, 0) / dim

        # 2. engagement moves (AR(1) around the customer's mean)
        mu = c["eng_mean"][act]
        e[act] = mu + phi * (e[act] - mu) + sigma * rng.standard_normal(len(act))
        ea, sa = e[act], sz[act]

        # 3. orders and lines (buyers only)
        lam = np.where(buyer, rate[act] * np.exp(0.6 * ea) * frac, 0.0)
        n_ord = rng.poisson(lam)
        o_cust_pos = np.repeat(np.arange(len(act)), n_ord)
        n_o = len(o_cust_pos)
        o_cust = act[o_cust_pos]
        o_day = ms + lo[o_cust_pos] + (rng.random(n_o) * (hi - lo)[o_cust_pos]).astype(np.int64)
        o_val = (order_value[o_cust] * np.exp(0.3 * ea[o_cust_pos] + c["growth"][o_cust] * m / 12.0)
                 * np.exp(rng.normal(-0.18, 0.6, n_o)))
        n_lines = np.minimum(1 + rng.poisson(0.5, n_o), 4)
        l_ord = np.repeat(np.arange(n_o), n_lines)
        n_l = len(l_ord)
        w = rng.exponential(1.0, n_l)
        w /= np.bincount(l_ord, weights=w, minlength=n_o)[l_ord]
        l_cust = o_cust[l_ord]
        l_amt_target = o_val[l_ord] * w
        u = rng.random(n_l).astype(np.float32)
        line = (u[:, None] > line_cum[l_cust]).sum(axis=1).clip(0, 3)
        price = np.round(_LIST_PRICE[line] * c["discount"][l_cust] * np.exp(rng.normal(0, 0.08, n_l)), 2)
        qty = np.maximum(1.0, np.round(l_amt_target / price))
        qty[rng.random(n_l) < 0.01] *= -1.0  # returns / cancellations
        amount = np.round(qty * price, 2)
        mrate = np.clip(c["margin_rate"][l_cust] + rng.normal(0, 0.03, n_l), 0.02, 0.6)
        margin = np.round(amount * mrate, 2)

        slot6, slot12 = m % 6, m % 12
        spend[:, slot12] = 0.0
        if n_l:
            spend[:, slot12] = np.bincount(l_cust, weights=amount, minlength=n).astype(np.float32)
            last_order_month[o_cust] = m
        if record and n_l:
            # orders numbered by (day, customer) within the month; lines keep their order's position
            o_rank = np.empty(n_o, dtype=np.int64)
            o_rank[np.lexsort((o_cust, o_day))] = np.arange(n_o)
            tx["cust"].append(l_cust.astype(np.int32))
            tx["day"].append(o_day[l_ord].astype(np.int32))
            tx["order"].append(n_orders_total + o_rank[l_ord])
            tx["line"].append(line.astype(np.int8))
            tx["qty"].append(qty)
            tx["price"].append(price)
            tx["amount"].append(amount)
            tx["margin"].append(margin)
            n_orders_total += n_o

        # 4. interactions and opportunities (rates per month, scaled by the days alive in the month)
        rates = np.zeros((len(act), len(_SIM_KINDS)))
        age = np.maximum(ms - created[act], 0) / 30.44
        fade = np.exp(-age / 8.0)
        cp = c["complaint_prone"][act]
        rates[:, _S["consultation"]] = np.where(buyer, 0.12 * np.exp(0.25 * sa + 0.3 * ea), 0.45 * fade)
        rates[:, _S["visit"]] = np.where(buyer, np.minimum(0.03 * np.exp(0.7 * sa), 2.0), 0.0)
        rates[:, _S["call"]] = np.where(buyer, 0.25 * np.exp(0.3 * sa), 0.10 * fade)
        compl = 0.035 * np.exp(0.25 * sa - 1.0 * ea) * cp
        rates[:, _S["complaint_minor"]] = np.where(buyer, 0.75 * compl, 0.0)
        rates[:, _S["complaint_major"]] = np.where(buyer, 0.25 * compl, 0.0)
        rates[:, _S["survey"]] = np.where(buyer, 0.10 * np.exp(0.15 * sa), 0.0)
        rates[:, _S["referral"]] = np.where(buyer, 0.012 * np.exp(0.6 * sa + 1.0 * ea), 0.0)
        rates[:, _S["campaign"]] = np.where(buyer, 0.06 * np.exp(0.5 * ea), 0.08)
        rates[:, _S["praise"]] = np.where(buyer, 0.02 * np.exp(0.3 * sa + 1.2 * ea), 0.0)
        rates[:, _S["opportunity"]] = np.where(buyer, 0.035 * np.exp(0.45 * sa + 0.4 * ea), 0.12 * fade)
        counts = rng.poisson(rates * frac[:, None])
        counts[:, _S["survey"]] = np.minimum(counts[:, _S["survey"]], 1)

        cpl[:, slot6] = 0
        cpl_major[:, slot6] = 0
        refs[:, slot12] = 0
        cpl_major[act, slot6] = counts[:, _S["complaint_major"]]
        cpl[act, slot6] = counts[:, _S["complaint_minor"]] + counts[:, _S["complaint_major"]]
        refs[act, slot12] = counts[:, _S["referral"]]

        # survey scores: engagement, the customer's baseline, and recent complaints
        sv = np.flatnonzero(counts[:, _S["survey"]] > 0)
        sv_cust = act[sv]
        raw = (7.4 + c["survey_base"][sv_cust] + 1.6 * ea[sv] - 0.5 * cpl[sv_cust].sum(axis=1)
               + rng.normal(0, 1.0, len(sv)))
        sv_score = np.clip(np.round(raw), 0, 10)
        last_score[sv_cust] = sv_score

        ev_counts = counts[:, : _S["opportunity"]]
        pos_k = np.nonzero(ev_counts)
        reps = ev_counts[pos_k]
        ev_pos = np.repeat(pos_k[0], reps)
        ev_kind = np.repeat(pos_k[1], reps)
        ev_day = ms + lo[ev_pos] + (rng.random(len(ev_pos)) * (hi - lo)[ev_pos]).astype(np.int64)
        op_pos = np.repeat(np.arange(len(act)), counts[:, _S["opportunity"]])
        op_day = ms + lo[op_pos] + (rng.random(len(op_pos)) * (hi - lo)[op_pos]).astype(np.int64)
        if record:
            ev_score = np.full(len(ev_pos), np.nan)
            is_sv = ev_kind == _S["survey"]
            score_by_pos = np.full(len(act), np.nan)
            score_by_pos[sv] = sv_score
            ev_score[is_sv] = score_by_pos[ev_pos[is_sv]]
            it["cust"].append(act[ev_pos].astype(np.int32))
            it["day"].append(ev_day.astype(np.int32))
            it["kind"].append(ev_kind.astype(np.int8))
            it["score"].append(ev_score)
            # parting complaints, dated on the churn day
            if len(risk):
                part = gone[rng.random(len(gone)) < PARTING_COMPLAINT_SHARE]
                it["cust"].append(part.astype(np.int32))
                it["day"].append(churn_day[part].astype(np.int32))
                it["kind"].append(np.where(rng.random(len(part)) < 0.5, _S["complaint_major"],
                                           _S["complaint_minor"]).astype(np.int8))
                it["score"].append(np.full(len(part), np.nan))
            op["cust"].append(act[op_pos].astype(np.int32))
            op["day"].append(op_day.astype(np.int32))
            op["eng"].append(ea[op_pos].astype(np.float32))

    def cat(d):  # concatenate column by column, freeing the monthly pieces as we go
        out = {}
        for k in list(d):
            parts = d.pop(k)
            out[k] = np.concatenate(parts) if parts else np.zeros(0)
            del parts
        return out

    return {"churn_day": churn_day, "tx": cat(tx), "it": cat(it), "op": cat(op),
            "hazard_log": hazard_log, "start_month": start_month}


# --------------------------------------------------------------------------------------------
# assembling the tables
# --------------------------------------------------------------------------------------------

def _transactions(tx: dict, id_width: int, n_customers: int) -> pd.DataFrame:
    """The transactions table; consumes ``tx`` (columns are freed as they are used: 1M customers make
    tens of millions of lines)."""
    n_orders = int(tx["order"].max()) + 1 if len(tx["order"]) else 1
    # sort by (customer, date, order number): lines are generated month by month, orders numbered by
    # (day, customer) inside the month, so a stable sort on (customer, day) keeps the order numbers rising
    key = tx["cust"].astype(np.int64) * 4096 + (tx["day"].astype(np.int64) - _EPOCH_START)
    idx = np.argsort(key, kind="stable")
    del key

    def take(name):
        return tx.pop(name)[idx]

    cust_ids = pa.array(_ids("C", np.arange(1, n_customers + 1), id_width))
    cols: dict[str, object] = {}
    cols["customer_id"] = _string_series(pd.arrays.ArrowStringArray(pc.take(cust_ids, pa.array(take("cust")))))
    cols["date"] = _dates(take("day"))
    cols["amount"] = take("amount")
    cols["order_id"] = _string_series(_ids("SO", take("order") + 1, max(9, len(str(n_orders)))))
    line = take("line")
    cols["product_line"] = _string_series(_strings(PRODUCT_LINES, line))
    cols["quantity"] = take("qty")
    cols["unit_price"] = take("price")
    cols["margin"] = take("margin")
    core = np.isin(line, [PRODUCT_LINES.index(x) for x in CORE_PRODUCT_LINES])
    del line
    cols["core_product"] = pd.array(core, dtype="boolean")
    return pd.DataFrame(cols, copy=False)


def _interactions(rng: np.random.Generator, it: dict, id_width: int, n_customers: int) -> pd.DataFrame:
    n = len(it["cust"])
    sim_kind = it["kind"].astype(np.int64)
    # simulated kinds → contract kinds
    to_kind = np.array([_K[k if not k.startswith("complaint") else "complaint"] for k in _SIM_KINDS[:-1]])
    kind = to_kind[sim_kind]
    is_c = kind == _K["complaint"]
    severity = np.where(sim_kind == _S["complaint_major"], 1, 0)
    # resolution hours: lognormal, major ×2.5; recent complaints may still be open
    hours = np.exp(rng.normal(np.log(20.0), 1.0, n)) * np.where(severity == 1, 2.5, 1.0)
    age = _EPOCH_END - it["day"].astype(np.int64)
    p_open = np.where(age <= 14, 0.5, np.where(age <= 60, 0.1, 0.01))
    still_open = rng.random(n) < p_open
    hours = np.where(is_c & ~still_open, np.round(hours, 1), np.nan)
    # channels
    ch = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    for k, (chans, probs) in _KIND_CHANNELS.items():  # 8 kinds, not a per-row loop
        sel = kind == _K[k]
        cum = np.cumsum(probs)
        ch[sel] = np.asarray(chans)[np.minimum(np.searchsorted(cum, u[sel], side="right"), len(chans) - 1)]

    key = it["cust"].astype(np.int64) * 4096 + (it["day"].astype(np.int64) - _EPOCH_START)
    idx = np.lexsort((kind, key))
    cust_ids = pa.array(_ids("C", np.arange(1, n_customers + 1), id_width))
    df = pd.DataFrame({
        "customer_id": _string_series(pd.arrays.ArrowStringArray(pc.take(cust_ids, pa.array(it["cust"][idx])))),
        "date": _dates(it["day"][idx]),
        "kind": _string_series(_strings(_KINDS, kind[idx])),
        "channel": _string_series(_strings(_CHANNELS, ch[idx])),
        "severity": _string_series(_strings(("minor", "major"), severity[idx], is_c[idx])),
        "resolution_hours": hours[idx],
        "score": it["score"][idx],
    }, copy=False)
    return df


def _opportunities(rng: np.random.Generator, op: dict, c: dict, churn_day: np.ndarray,
                   id_width: int) -> pd.DataFrame:
    cust = op["cust"].astype(np.int64)
    created = op["day"].astype(np.int64)
    n = len(cust)
    duration = np.maximum(7, np.round(np.exp(rng.normal(np.log(80.0), 0.9, n)))).astype(np.int64)
    planned = created + duration
    ch = np.where(churn_day[cust] >= 0, churn_day[cust], np.iinfo(np.int64).max)
    prospect = c["prospect"][cust]
    p_win = np.where(prospect, 0.0, _sigmoid(-0.2 + 0.8 * op["eng"].astype(float)))
    won = rng.random(n) < p_win
    closes = (planned <= _EPOCH_END) & (planned < ch)
    slipped = closes & (planned > _EPOCH_END - 90) & (rng.random(n) < 0.10) & (ch > _EPOCH_END)
    closes &= ~slipped
    dies = ~closes & ~slipped & (ch <= _EPOCH_END)       # the customer churned first: lost
    open_ = ~closes & ~dies

    status = np.where(closes & won, 1, np.where(open_, 0, 2))   # OPPORTUNITY_STATUS order
    closed_date = np.where(closes, planned, np.where(dies, np.maximum(ch, created), -1))
    # stages: open by time to the expected close (with some noise), won A02/A01, lost A31
    remaining = planned - _EPOCH_END
    edges = np.array([45, 90, 150, 240, 365, 540])            # → A03, A04, A05, A06, A07, A08, A21
    open_rank = 6 - np.searchsorted(edges, remaining, side="left")  # index into STAGES_OPEN
    jitter = rng.choice(np.array([-1, 0, 0, 0, 0, 1]), n)
    open_rank = np.clip(open_rank + jitter, 0, 6)
    all_stages = STAGES_OPEN + STAGES_WON + STAGES_LOST
    won_stage = np.where(planned <= _EPOCH_END - 60, 8, 7)      # A01 delivered and paid, else A02
    stage = np.where(status == 0, open_rank, np.where(status == 1, won_stage, 9))
    expected = planned.copy()
    latent = open_ & (open_rank <= 1) & (rng.random(n) < 0.3)   # latent need: no date yet
    expected[latent] = -1

    amount = np.maximum(500.0, np.round(c["spend_level"][cust] * np.exp(rng.normal(np.log(0.25), 0.8, n)), -2))
    own = rng.random(n) < 0.7
    line_own = (rng.random(n)[:, None] > c["line_cum"][cust]).sum(axis=1).clip(0, 3)
    line = np.where(own, line_own, rng.integers(0, 4, n))

    order = np.lexsort((cust, created))       # ids are chronological
    seq = np.empty(n, dtype=np.int64)
    seq[order] = np.arange(1, n + 1)
    idx = np.lexsort((seq, created, cust))    # rows by (customer, created date)
    cust_ids = pa.array(_ids("C", np.arange(1, c["n"] + 1), id_width))
    df = pd.DataFrame({
        "opportunity_id": _string_series(_ids("OP", seq[idx], max(7, len(str(n))))),
        "customer_id": _string_series(pd.arrays.ArrowStringArray(pc.take(cust_ids, pa.array(cust[idx])))),
        "created_date": _dates(created[idx]),
        "stage": _string_series(_strings(all_stages, stage[idx])),
        "expected_close_date": _dates(expected[idx]),
        "amount": amount[idx].astype(float),
        "product_line": _string_series(_strings(PRODUCT_LINES, line[idx])),
        "status": _string_series(_strings(("open", "won", "lost"), status[idx])),
        "closed_date": _dates(closed_date[idx]),
    }, copy=False)
    return df


def _frames(customers: int = 5000, seed: int = 20260930, progress: bool = False) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The demo tables plus the hidden truth (one row per customer): ``customer_id``, ``prospect``,
    ``churn_date`` (NaT if the customer never churned; churned customers only carry ``status='lost'``
    in the CRM for a share of them). ``generate`` returns the same tables without the truth."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    rng = np.random.default_rng(seed)
    c = _static_customers(rng, int(customers))
    sim = _simulate(c, rng, progress)
    width = max(6, len(str(c["n"])))
    cust_df = _customer_frame(rng, c, sim["churn_day"])
    frames = dict(
        transactions=_transactions(sim["tx"], width, c["n"]),
        customers=cust_df,
        interactions=_interactions(rng, sim["it"], width, c["n"]),
        opportunities=_opportunities(rng, sim["op"], c, sim["churn_day"], width),
    )
    truth = pd.DataFrame({
        "customer_id": cust_df["customer_id"],
        "prospect": c["prospect"],
        "churn_date": _dates(sim["churn_day"]),
    })
    truth.attrs["hazard_log"] = sim["hazard_log"]
    return frames, truth


def simulate(customers: int = 5000, seed: int = 20260930, progress: bool = False) -> tuple[Tables, pd.DataFrame]:
    """The demo company's tables and, per customer, its truth (see :func:`_frames`)."""
    frames, truth = _frames(customers, seed, progress)
    return Tables(**frames), truth


def generate(customers: int = 5000, seed: int = 20260930, progress: bool = False) -> Tables:
    """The demo company's four tables (contract columns and dtypes), deterministic in (customers, seed)."""
    return simulate(customers, seed, progress)[0]


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def _write_csv(df: pd.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        df.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n", date_format="%Y-%m-%d")


def _write_parquet(df: pd.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="snappy")


def data_yaml(customers: int, seed: int) -> str:
    """The text of the demo's data.yaml."""
    return (
        f"# Demo company generated by `segment demo` (seed {seed}, {customers} customers). See docs/demo.md.\n"
        "name: demo\n"
        f"as_of: {END_DATE.date().isoformat()}\n"
        "tables:\n"
        "  customers: {path: customers.csv}\n"
        "  transactions: {path: transactions.parquet}\n"
        "  interactions: {path: interactions.parquet}\n"
        "  opportunities: {path: opportunities.csv}\n"
    )


def write_demo(out: str | Path, customers: int = 5000, seed: int = 20260930, progress: bool = False) -> Path:
    """Generate the demo company and write it into ``out`` (created if needed); returns ``out/data.yaml``.

    Every file goes to a temporary name in ``out`` first and is renamed on success; data.yaml is
    written last, so a data.yaml always points at complete tables."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t, _ = _frames(customers, seed, progress)
    _write_csv(t["customers"], out / "customers.csv")
    _write_parquet(t["transactions"], out / "transactions.parquet")
    _write_parquet(t["interactions"], out / "interactions.parquet")
    _write_csv(t["opportunities"], out / "opportunities.csv")
    return write_text(out / "data.yaml", data_yaml(customers, seed))
