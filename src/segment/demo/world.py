"""The demo company's world: its churn mechanism's coefficients, industries, regions, product lines, names, the calendar of the simulation, and its customers' attributes drawn from the seed.

Public: CHURN_COEFFICIENTS, START_DATE, END_DATE, INDUSTRIES, REGIONS, PRODUCT_LINES, CORE_PRODUCT_LINES, STAGES_OPEN, STAGES_WON, STAGES_LOST.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segment.data.contract import INTERACTION_KINDS

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


LIST_PRICE = np.array([30.0, 400.0, 120.0, 1800.0])        # yuan per unit, by product line


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


KINDS = tuple(INTERACTION_KINDS)


KIND_INDEX = {k: i for i, k in enumerate(KINDS)}


CHANNELS = ("phone", "e-mail", "web", "visit", "event")


# per kind: (channel indices, probabilities)
KIND_CHANNELS = {
    "consultation": ((0, 1, 2), (0.4, 0.3, 0.3)),
    "visit": ((3,), (1.0,)),
    "call": ((0,), (1.0,)),
    "complaint": ((0, 1, 2), (0.5, 0.3, 0.2)),
    "survey": ((1, 2), (0.6, 0.4)),
    "referral": ((0, 1, 3), (0.4, 0.4, 0.2)),
    "campaign": ((4, 1, 2), (0.3, 0.4, 0.3)),
    "praise": ((1, 0), (0.6, 0.4)),
}


EPOCH_START = int((START_DATE - pd.Timestamp("1970-01-01")).days)


EPOCH_END = int((END_DATE - pd.Timestamp("1970-01-01")).days)


N_MONTHS = (END_DATE.year - START_DATE.year) * 12 + END_DATE.month - START_DATE.month + 1  # 45


def _day(ts: pd.Timestamp) -> int:
    return int((ts - pd.Timestamp("1970-01-01")).days)


def month_start(m: int) -> int:
    """Day number (days since 1970-01-01) of the first day of month m (0 = START_DATE's month)."""
    return int((np.datetime64("2023-01", "M") + m).astype("datetime64[D]").astype(np.int64))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng, n: int, p) -> np.ndarray:
    """n category indices drawn with probabilities p (vectorised)."""
    cum = np.cumsum(np.asarray(p, dtype=float))
    cum /= cum[-1]
    return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(cum) - 1)


def as_dates(days: np.ndarray) -> np.ndarray:
    """int day numbers (−1 = missing) → datetime64[ns] with NaT."""
    out = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    out[np.asarray(days) < 0] = np.datetime64("NaT")
    return out


def strings_at(values, idx: np.ndarray, valid: np.ndarray | None = None) -> pd.arrays.ArrowStringArray:
    """Take strings from a small dictionary by index, in C (pyarrow) — fast for tens of millions of rows."""
    dictionary = pa.array(list(values), type=pa.large_string())
    indices = pa.array(np.asarray(idx, dtype=np.int32), mask=None if valid is None else ~np.asarray(valid))
    return pd.arrays.ArrowStringArray(pc.take(dictionary, indices))


def id_strings(prefix: str, numbers: np.ndarray, width: int) -> pd.arrays.ArrowStringArray:
    # large_string: 50 M ids of 11 characters overflow the 2 GiB of a 32-bit-offset string array
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.large_string()),
                          width=width, padding="0")
    return pd.arrays.ArrowStringArray(pc.binary_join_element_wise(pa.scalar(prefix, pa.large_string()), digits,
                                                                  pa.scalar("", pa.large_string())))


def string_series(arr) -> pd.Series:
    return pd.Series(arr, dtype="string")


def static_customers(rng: np.random.Generator, n: int) -> dict:
    """Everything fixed per customer. Arrays are in customer-id order (ids follow created_date)."""
    start, end = EPOCH_START, EPOCH_END
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
    strategic = (rng.random(n) < sigmoid(-6.0 + 1.5 * sz)) & ~prospect
    c["strategic"] = strategic
    c["eng_mean"] = rng.normal(0.0, 0.3, n) + 0.3 * strategic
    c["complaint_prone"] = np.exp(rng.normal(-0.125, 0.5, n))
    c["survey_base"] = rng.normal(0.0, 0.7, n)

    # product lines: bigger customers are set up for more lines; at least one
    takeup = sigmoid(np.log(_LINE_TAKEUP / (1 - _LINE_TAKEUP))[None, :] + 0.5 * sz[:, None])
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


def customer_frame(rng: np.random.Generator, c: dict, churn_day: np.ndarray) -> pd.DataFrame:
    """The demo's customers table: attributes drawn per customer.

    Long because the demo's customer attributes are drawn in one seeded sequence: reordering or splitting
    the draws would change every demo file."""
    n = c["n"]
    width = max(6, len(str(n)))
    ids = id_strings("C", np.arange(1, n + 1), width)

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
        "customer_id": string_series(ids),
        "name": name.astype("string"),
        "industry": string_series(strings_at(inds, industry)),
        "industry_growth": growth.astype(float),
        "size_employees": pd.array(c["employees"], dtype="Int64"),
        "annual_revenue": c["revenue"].astype(float),
        "region": string_series(strings_at(REGIONS, region)),
        "product_lines": pl.astype("string"),
        "account_manager": string_series(strings_at(mgr_names, mgr, has_mgr)),
        "contact_name": contact.astype("string"),
        "contact_title": pd.Series(title).astype("string"),
        "phone": phone.astype("string"),
        "email": email.astype("string"),
        "created_date": as_dates(c["created"]),
        "budget_growth": c["budget_growth"],
        "market_share": c["market_share"],
        "strategic": pd.array(c["strategic"], dtype="boolean"),
        "status": string_series(strings_at(("active", "lost"), status_lost.astype(int))),
        "status_date": as_dates(status_date),
    }, copy=False)
    return df
