"""A calibration's result: the metrics, the proposed scheme as YAML, and how they are written.

Public: CalibrationResult, scheme_yaml.
Reads: nothing. Writes: metrics.json and <scheme>.calibrated.yaml (through CalibrationResult.write).
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segment.calibration.churn import (
    Panel,
)
from segment.calibration.weights import WeightCalibrator
from segment.grading.scheme import Scheme
from segment.plumbing.result import Result


@dataclass
class CalibrationResult(Result):
    """Everything a calibration produced. ``table()`` is the weights table; ``metrics`` the content of
    metrics.json; ``scheme`` the calibrated scheme as written; ``tiers()`` churn by tier at the test
    date; ``deciles``, ``lift``; ``model`` the fitted :class:`WeightCalibrator`; ``train`` and ``test``
    the panels."""

    metrics: dict
    scheme: dict
    calibrated: Scheme
    expert: Scheme
    model: WeightCalibrator
    train: Panel
    test: Panel
    deciles: pd.DataFrame
    lift: pd.DataFrame
    tiers_calibrated: pd.DataFrame
    tiers_expert: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    proposal: dict | None = None   # the scheme with fitted bands and weights, as written (<id>.proposal.yaml)

    def table(self) -> pd.DataFrame:
        return self.model.table()

    def tiers(self) -> pd.DataFrame:
        e = self.tiers_expert.add_prefix("expert_").rename(columns={"expert_tier": "tier"}).drop(columns=["expert_label"])
        c = self.tiers_calibrated.add_prefix("calibrated_").rename(columns={"calibrated_tier": "tier",
                                                                             "calibrated_label": "label"})
        return c.merge(e, on="tier", how="left", sort=False)

    def comparison(self) -> pd.DataFrame:
        """Expert vs calibrated: AUC, Gini, KS, Brier, log loss on the training and test panels."""
        rows = []
        for who in ("expert", "calibrated"):
            for part in ("train", "test"):
                rows.append({"scheme": who, "panel": part, **self.metrics[who][part]})
        return pd.DataFrame(rows)

    def summary(self) -> str:
        m = self.metrics
        e, c = m["expert"]["test"], m["calibrated"]["test"]
        lines = [f"calibrated {m['scheme']['id']} on {m['n_train']:,} rows ({', '.join(m['train_as_of'])}), tested on "
                 f"{m['n_test']:,} customers at {m['test_as_of']} (horizon {m['horizon_days']} days, churn "
                 f"{m['churn_rate_test']:.1%})",
                 f"test AUC expert {e['auc']:.3f} → calibrated {c['auc']:.3f}; KS {e['ks']:.3f} → {c['ks']:.3f}; "
                 f"Brier {e['brier']:.4f} → {c['brier']:.4f}",
                 f"churn by calibrated tier monotone: {'yes' if m['tiers']['monotone'] else 'NO'}"]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"wrote {p}" for p in self.paths.values()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        fmt = "{:.4f}".format
        return (f"<h4>Calibration of {self.expert.id}</h4><pre>{self.summary()}</pre>"
                f"<h5>Weights</h5>{self.table().to_html(index=False, float_format=fmt)}"
                f"<h5>Expert vs calibrated</h5>{self.comparison().to_html(index=False, float_format=fmt)}"
                f"<h5>Churn by tier (test)</h5>{self.tiers().to_html(index=False, float_format=fmt)}"
                f"<h5>Calibration by decile (test)</h5>{self.deciles.to_html(index=False, float_format=fmt)}"
                f"<h5>Lift (test)</h5>{self.lift.to_html(index=False, float_format=fmt)}")


def json_ready(obj):
    """Plain JSON/YAML values (numpy scalars → Python, NaN → None)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (pd.Timestamp, Path)):
            return str(o)
        raise TypeError(f"cannot serialise {type(o).__name__}")

    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    return clean(json.loads(json.dumps(obj, default=default)))


def json_records(df: pd.DataFrame) -> list[dict]:
    return json.loads(df.to_json(orient="records", double_precision=10))


def json_number(x, nd: int = 6):
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else round(x, nd)


def scheme_dict(scheme: Scheme, raw: dict | None) -> dict:
    return copy.deepcopy(raw) if raw is not None else scheme.model_dump(by_alias=True, exclude_none=True)


def scheme_yaml(scheme: dict, header: str = "") -> str:
    """A scheme dict as YAML the way analysts write it: small mappings of plain values (a band, a
    dimension's indicator weights) on one line, everything else in blocks, keys in their order."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def mapping(dumper, data):
        flow = 0 < len(data) <= 6 and all(isinstance(v, (int, float, str, bool)) or v is None for v in data.values()) \
            and sum(len(str(k)) + len(str(v)) for k, v in data.items()) < 80
        return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)

    def seq(dumper, data):
        flow = all(isinstance(v, (int, float, str, bool)) or v is None for v in data) and len(data) <= 12
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    Dumper.add_representer(dict, mapping)
    Dumper.add_representer(list, seq)
    return header + yaml.dump(scheme, Dumper=Dumper, allow_unicode=True, sort_keys=False, width=110)
