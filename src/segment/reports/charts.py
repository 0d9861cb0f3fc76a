"""Charts for the reports: matplotlib rendered to inline SVG (text kept as text, so Chinese tier names
render with the reader's fonts; no scripts; works offline), each with a title and alt text.

Public: svg, grouped_bars, stacked_bars, rates_with_intervals, calibration_curve, survival_curves.
Reads: nothing. Writes: nothing (SVG text).
"""
from __future__ import annotations

import html
import io
import logging
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update({
    "font.sans-serif": ["Noto Sans CJK SC", "WenQuanYi Zen Hei", "DejaVu Sans"],
    "svg.fonttype": "none",       # text stays text
    "svg.hashsalt": "segment",    # deterministic element ids: same data → same SVG
    "axes.spines.top": False, "axes.spines.right": False,
})
# The SVG keeps text as text, drawn with the reader's fonts: a CJK glyph missing from the fonts of the
# machine that builds the report only shifts a label's estimated width. Neither that nor a missing
# font family may reach a page as a warning box.
warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from (current )?font", category=UserWarning)
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


def svg(fig, alt: str) -> str:
    """The figure as an inline <svg> with role="img" and an aria-label / <title> for screen readers."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.find("<svg"):]
    label = html.escape(alt, quote=True)
    text = text.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
    head_end = text.find(">") + 1
    text = text[:head_end] + f"<title>{label}</title>" + text[head_end:]
    # drop the RDF metadata block matplotlib writes (it names external vocabularies)
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if start != -1 and end != -1:
        text = text[:start] + text[end + len("</metadata>"):]
    return f'<figure class="segment-chart">{text}</figure>'


def grouped_bars(categories: list[str], series: dict[str, list[float]], alt: str, percent: bool = True,
                 ylabel: str = "") -> str:
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    k = len(series)
    width = 0.8 / max(k, 1)
    x = np.arange(len(categories))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x - 0.4 + width * (i + 0.5), values, width=width, label=name)
    ax.set_xticks(x, categories)
    if max((len(str(c)) for c in categories), default=0) > 9:
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    if percent:
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    if ylabel:
        ax.set_ylabel(ylabel)
    if k > 1:
        ax.legend(frameon=False)
    return svg(fig, alt)


def stacked_bars(categories: list[str], series: dict[str, list[float]], alt: str, ylabel: str = "") -> str:
    """One bar per category, the series stacked in order (the first at the bottom), with a legend."""
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    x = np.arange(len(categories))
    bottom = np.zeros(len(categories))
    for name, values in series.items():
        v = np.asarray(values, dtype=float)
        ax.bar(x, v, bottom=bottom, width=0.6, label=name)
        bottom += v
    ax.set_xticks(x, categories)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return svg(fig, alt)


def rates_with_intervals(categories: list[str], rate, low, high, alt: str, ylabel: str = "churn rate") -> str:
    rate, low, high = (np.asarray(v, dtype=float) for v in (rate, low, high))
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    x = np.arange(len(categories))
    ok = ~np.isnan(rate)
    ax.bar(x[ok], rate[ok], color="#c0504d", width=0.6)
    ax.errorbar(x[ok], rate[ok], yerr=[rate[ok] - low[ok], high[ok] - rate[ok]], fmt="none", ecolor="black",
                capsize=4, linewidth=1)
    ax.set_xticks(x, categories)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_ylabel(ylabel)
    return svg(fig, alt)


def calibration_curve(predicted, observed, alt: str, series: dict | None = None) -> str:
    """Mean predicted vs observed rate per bin, against the diagonal (a reliability diagram); ``series``
    (name → (predicted, observed)) draws several scores on one chart."""
    series = series or {"calibrated model": (predicted, observed)}
    series = {k: (np.asarray(p, dtype=float), np.asarray(o, dtype=float)) for k, (p, o) in series.items()}
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    top = float(np.nanmax(np.concatenate([np.concatenate(v) for v in series.values()] + [[0.01]]))) * 1.1
    ax.plot([0, top], [0, top], color="grey", linewidth=1, linestyle="--", label="perfect")
    for name, (p, o) in series.items():
        ax.plot(p, o, marker="o", markersize=4, label=name)
    ax.set_xlabel("predicted churn")
    ax.set_ylabel("observed churn")
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside, never over the points
    return svg(fig, alt)


def survival_curves(curves: dict[str, tuple], alt: str, horizon: float | None = None,
                    follow_up: float | None = None) -> str:
    """Kaplan–Meier step curves, one per tier (name → (days, share still buying) at its event times),
    each drawn from day 0 to the end of the follow-up (a tier without an event is flat at 100%); a
    dotted line at the churn horizon."""
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    end = float(follow_up) if follow_up else max((float(np.max(t)) for t, _ in curves.values() if len(t)), default=1.0)
    for name, (t, s) in curves.items():
        t, s = np.asarray(t, dtype=float), np.asarray(s, dtype=float)
        x = np.r_[0.0, t, max(end, float(t[-1]) if len(t) else end)]
        y = np.r_[1.0, s, s[-1] if len(s) else 1.0]
        ax.step(x, y, where="post", label=name)
    if horizon:
        ax.axvline(horizon, color="grey", linewidth=1, linestyle=":")
        ax.annotate(f"{horizon:g}-day horizon", (horizon, 1.0), xytext=(3, -10), textcoords="offset points",
                    fontsize=7, color="grey")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("days after the as-of date")
    ax.set_ylabel("still buying")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return svg(fig, alt)
