"""Conditions in schemes (gates, overrides, stage rules), parsed by the project — never eval'ed.

Public: Tok, tokenize, number, Condition, parse, parse_expression, expression_sql, sql_number, evaluate_sql.
Reads: nothing. Writes: nothing.

Grammar (case-insensitive keywords)::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | atom
    atom     := "(" expr ")" | compare | name "is" ["not"] "missing" | "true" | "false"
    compare  := arith OP arith | arith ["not"] "in" "[" literal ("," literal)* "]"
    arith    := term (("+" | "-") term)*        term := factor (("*" | "/") factor)*
    factor   := "-" factor | "(" arith ")" | operand
    operand  := name | number | string | true | false
    OP       := >= <= > < == !=
    number   := 12, 1.5, -3, 50万 (= 500000), 20% (= 0.2)
    string   := 'text' or "text"
    name     := an indicator name (letters, digits, _), checked against what the data provides

A comparison with a missing value is false (so ``not`` of it is true); use ``x is missing`` to
test for missing values explicitly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from segment.errors import ConditionError

if TYPE_CHECKING:
    from segment.plumbing.sql import Dialect

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:万|%)?)
  | (?P<str>'[^'\n]*'|"[^"\n]*")
  | (?P<op>>=|<=|==|!=|>|<)
  | (?P<punct>[()\[\],])
  | (?P<arith>[-+*/])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

KEYWORDS = {"and", "or", "not", "in", "is", "missing", "true", "false"}



@dataclass(frozen=True)
class Tok:
    kind: str
    value: str
    pos: int


def tokenize(text: str) -> list[Tok]:
    if not isinstance(text, str):
        raise ConditionError(f"a condition must be text, got {type(text).__name__}")
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ConditionError(f"unexpected character {text[pos]!r} at position {pos + 1}")
        kind = m.lastgroup
        if kind != "ws":
            val = m.group()
            if kind == "name" and val.lower() in KEYWORDS:
                kind, val = "kw", val.lower()
            out.append(Tok(kind, val, pos + 1))
        pos = m.end()
    if not out:
        raise ConditionError("the condition is empty")
    return out


def number(text: str) -> float:
    """'12', '1.5', '50万' (= 500000), '20%' (= 0.2) → float; ValueError otherwise."""
    if text.endswith("万"):
        return float(text[:-1]) * 10_000
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


# AST nodes are tuples: ("and", a, b) ("or", a, b) ("not", a) ("cmp", op, left, right)
# ("in", operand, values, negate) ("missing", name, negate) ("const", bool)
# operands: ("name", n) ("lit", value)

class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            raise ConditionError("the condition ends too early")
        self.i += 1
        return t

    def expect(self, kind: str, value: str | None = None) -> Tok:
        t = self.peek()
        if t is None or t.kind != kind or (value is not None and t.value != value):
            got = "the end" if t is None else repr(t.value) + f" at position {t.pos}"
            raise ConditionError(f"expected {value or kind} but found {got}")
        self.i += 1
        return t

    def parse(self, arithmetic: bool = False):
        node = self.arith() if arithmetic else self.or_()
        if self.peek() is not None:
            t = self.peek()
            raise ConditionError(f"unexpected {t.value!r} at position {t.pos} (join conditions with and / or)")
        return node

    def or_(self):
        node = self.and_()
        while (t := self.peek()) is not None and t.kind == "kw" and t.value == "or":
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self):
        node = self.not_()
        while (t := self.peek()) is not None and t.kind == "kw" and t.value == "and":
            self.take()
            node = ("and", node, self.not_())
        return node

    def not_(self):
        t = self.peek()
        if t is not None and t.kind == "kw" and t.value == "not":
            self.take()
            return ("not", self.not_())
        return self.atom()

    def atom(self):
        t = self.peek()
        if t is None:
            raise ConditionError("the condition ends too early")
        if t.kind == "punct" and t.value == "(":
            # "(a + b) > 3" is arithmetic; "(a > 3) and …" is a group: try the comparison first
            start = self.i
            try:
                return self.comparison()
            except ConditionError:
                self.i = start
            self.take()
            node = self.or_()
            self.expect("punct", ")")
            return node
        if t.kind == "kw" and t.value in ("true", "false"):
            nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
            if nxt is None or nxt.kind not in ("op", "arith"):
                self.take()
                return ("const", t.value == "true")
        return self.comparison()

    def comparison(self):
        left = self.arith()
        t = self.peek()
        if t is None:
            raise ConditionError(f"a comparison is missing after {_show(left)!r}")
        if t.kind == "op":
            self.take()
            return ("cmp", t.value, left, self.arith())
        if t.kind == "kw" and t.value == "is":
            self.take()
            neg = False
            if (n := self.peek()) is not None and n.kind == "kw" and n.value == "not":
                self.take()
                neg = True
            self.expect("kw", "missing")
            if left[0] != "name":
                raise ConditionError("only an indicator name can be `is missing`")
            return ("missing", left[1], neg)
        neg = False
        if t.kind == "kw" and t.value == "not":
            self.take()
            neg = True
            t = self.peek()
        if t is not None and t.kind == "kw" and t.value == "in":
            self.take()
            self.expect("punct", "[")
            values = [self.literal()]
            while (p := self.peek()) is not None and p.kind == "punct" and p.value == ",":
                self.take()
                values.append(self.literal())
            self.expect("punct", "]")
            return ("in", left, tuple(values), neg)
        got = "the end" if t is None else f"{t.value!r} at position {t.pos}"
        raise ConditionError(f"expected a comparison (>=, <=, >, <, ==, !=, in, is missing) but found {got}")

    def arith(self):
        node = self.term()
        while (t := self.peek()) is not None and t.kind == "arith" and t.value in "+-":
            self.take()
            node = ("arith", t.value, node, self.term())
        return node

    def term(self):
        node = self.factor()
        while (t := self.peek()) is not None and t.kind == "arith" and t.value in "*/":
            self.take()
            node = ("arith", t.value, node, self.factor())
        return node

    def factor(self):
        t = self.peek()
        if t is not None and t.kind == "arith" and t.value == "-":
            self.take()
            inner = self.factor()
            return ("lit", -inner[1]) if inner[0] == "lit" and isinstance(inner[1], float) else ("neg", inner)
        if t is not None and t.kind == "punct" and t.value == "(":
            self.take()
            node = self.arith()
            self.expect("punct", ")")
            return node
        return self.operand()

    def operand(self):
        t = self.take()
        if t.kind == "name":
            return ("name", t.value)
        if t.kind in ("num", "str"):
            return ("lit", self._lit(t))
        if t.kind == "kw" and t.value in ("true", "false"):
            return ("lit", t.value == "true")
        raise ConditionError(f"expected an indicator name, a number or a quoted text at position {t.pos}, found {t.value!r}")

    def literal(self):
        t = self.take()
        if t.kind == "arith" and t.value == "-" and (n := self.peek()) is not None and n.kind == "num":
            self.take()
            return -self._lit(n)
        if t.kind in ("num", "str"):
            return self._lit(t)
        raise ConditionError(f"expected a number or a quoted text at position {t.pos}, found {t.value!r}")

    @staticmethod
    def _lit(t: Tok):
        return number(t.value) if t.kind == "num" else t.value[1:-1]


@dataclass(frozen=True)
class Condition:
    """A parsed condition: ``names`` are the indicators it reads; ``evaluate(frame)`` → bool array."""

    text: str
    tree: tuple

    @property
    def names(self) -> set[str]:
        out: set[str] = set()

        def walk(n):
            if n[0] in ("and", "or"):
                walk(n[1]), walk(n[2])
            elif n[0] == "not":
                walk(n[1])
            elif n[0] == "cmp":
                walk(n[2]), walk(n[3])
            elif n[0] == "in":
                walk(n[1])
            elif n[0] == "missing":
                out.add(n[1])
            elif n[0] == "name":
                out.add(n[1])
            elif n[0] == "arith":
                walk(n[2]), walk(n[3])
            elif n[0] == "neg":
                walk(n[1])

        walk(self.tree)
        return out

    def evaluate(self, frame: pd.DataFrame) -> np.ndarray:
        unknown = sorted(self.names - set(frame.columns))
        if unknown:
            raise ConditionError(f"unknown indicator(s) {', '.join(unknown)} in {self.text!r}; "
                                 "`segment indicators` lists the names a condition can read")
        return evaluate_sql(self, frame)

    def to_sql(self, d: "Dialect", column: Callable[[str], str] | None = None,
               kind: Callable[[str], str | None] | None = None) -> str:
        """The condition as a boolean SQL expression that is never NULL, with ``evaluate``'s semantics.

        ``column(name)`` gives the SQL for an indicator (default: the quoted name); ``kind(name)``
        tells its type — ``"number"``, ``"text"``, ``"bool"`` or None (unknown: written as is). Names
        reach the SQL only through ``column``, text literals only through ``d.text`` (escaped)."""
        return _SqlEmitter(d, column or d.q, kind or (lambda name: None)).cond(self.tree)


MAX_DEPTH = 100  # nesting a condition may have (parentheses, and/or chains, not, minus): far above any rule


def parse(text: str) -> Condition:
    try:
        tree = _Parser(text).parse()
    except RecursionError:
        tree = None
    depth = _depth(tree) if tree is not None else MAX_DEPTH + 1
    if depth > MAX_DEPTH:
        raise ConditionError(f"the condition nests more than {MAX_DEPTH} levels deep ({len(text):,} characters); "
                             "split it into several rules")
    return Condition(text, tree)


def parse_expression(text: str) -> tuple:
    """An arithmetic expression (``arith`` of the grammar: ``deposits + loans``, ``amount_6m / 2``) as a
    tree, for declared indicators (``segment.features.declared``)."""
    try:
        tree = _Parser(text).parse(arithmetic=True)
    except RecursionError:
        tree = None
    if tree is None or _depth(tree) > MAX_DEPTH:
        raise ConditionError(f"the expression nests more than {MAX_DEPTH} levels deep; split it")
    if tree[0] == "lit" and not isinstance(tree[1], (int, float)):
        raise ConditionError(f"{text!r} is a text, not arithmetic over indicators")
    return tree


def expression_sql(tree: tuple, d: "Dialect", column: Callable[[str], str]) -> str:
    """An expression tree as a DOUBLE SQL expression (missing where a division is by zero); names
    reach the SQL only through ``column``."""
    return _SqlEmitter(d, column, lambda name: "number").numeric(tree)


def _depth(tree) -> int:
    """The depth of a parsed tree, without recursion (a long and-chain is a deep tree)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(node, tuple):
            stack.extend((c, d + 1) for c in node[1:] if isinstance(c, tuple))
    return deepest


def _show(node) -> str:
    if node[0] in ("name", "lit"):
        return str(node[1])
    if node[0] == "neg":
        return "-" + _show(node[1])
    return f"{_show(node[2])} {node[1]} {_show(node[3])}"


# ------------------------------------------------------------------------------------------------
# SQL: the same tree as a boolean expression (segment.grading.compiler compiles whole schemes with it)
# ------------------------------------------------------------------------------------------------

_SQL_OPS = {">=": ">=", "<=": "<=", ">": ">", "<": "<", "==": "=", "!=": "<>"}


def sql_number(x: float) -> str:
    """A DOUBLE literal that reads back as exactly ``x`` on DuckDB and Spark (exponent form)."""
    r = repr(float(x))
    if not np.isfinite(x):
        raise ConditionError(f"{r} is not a finite number")
    if "e" not in r:
        r += "e0"
    return f"({r})" if r.startswith("-") else r


def _const_value(node):
    """The value of a name-free operand (a missing result of arithmetic: NaN)."""
    if node[0] == "lit":
        return node[1]
    if node[0] == "neg":
        return -_const_number(node[1])
    a, b = _const_number(node[2]), _const_number(node[3])
    op = node[1]
    if op == "/":
        return a / b if b != 0 and np.isfinite(a / b) else float("nan")
    return a + b if op == "+" else a - b if op == "-" else a * b


def _const_number(node) -> float:
    v = _const_value(node)
    if isinstance(v, str):
        raise ConditionError(f"arithmetic on a text value {v!r}")
    return float(v)


def _holds_const(node) -> bool:
    """A name-free comparison or membership: missing (NaN) compares false; text never equals a number."""
    if node[0] == "in":
        _, left, values, negate = node
        v = _const_value(left)
        if isinstance(v, float) and np.isnan(v):
            return False
        same_kind = (lambda x: isinstance(x, str) == isinstance(v, str) and isinstance(x, bool) == isinstance(v, bool))
        hit = any(same_kind(x) and x == v for x in values)
        return not hit if negate else hit
    _, op, left, right = node
    a, b = _const_value(left), _const_value(right)
    if any(isinstance(x, float) and np.isnan(x) for x in (a, b)):
        return False
    if isinstance(a, str) != isinstance(b, str):
        if op in ("==", "!="):
            return op == "!="
        raise ConditionError(f"cannot compare {_show(left)!r} with {_show(right)!r}")
    return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "==": a == b, "!=": a != b}[op]


def _names_in(node) -> bool:
    if node[0] == "name":
        return True
    if node[0] == "lit":
        return False
    if node[0] == "neg":
        return _names_in(node[1])
    return _names_in(node[2]) or _names_in(node[3])


class _SqlEmitter:
    """Condition tree → SQL. Comparisons are wrapped so a missing value compares false, like pandas."""

    def __init__(self, d: "Dialect", column: Callable[[str], str], kind: Callable[[str], str | None]):
        self.d, self.column, self.kind_of = d, column, kind

    # operands
    def lit(self, v) -> str:
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, (int, float)):
            return sql_number(v)
        return self.d.text(v)

    def kind(self, node) -> str | None:
        if node[0] == "name":
            return self.kind_of(node[1])
        if node[0] == "lit":
            v = node[1]
            return "bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else "text"
        return "number"

    def operand(self, node) -> str:
        if node[0] == "name":
            return self.column(node[1])
        if node[0] == "lit":
            return self.lit(node[1])
        return self.numeric(node)

    def numeric(self, node) -> str:
        """An operand as DOUBLE (arithmetic), like ``_numeric``."""
        kind = node[0]
        if kind == "lit":
            if isinstance(node[1], str):
                raise ConditionError(f"arithmetic on a text value {node[1]!r}")
            return sql_number(float(node[1]))
        if kind == "name":
            if self.kind_of(node[1]) == "text":
                raise ConditionError(f"arithmetic on a non-numeric indicator ({node[1]})")
            return f"CAST({self.column(node[1])} AS DOUBLE)"
        if kind == "neg":
            return f"(-{self.numeric(node[1])})"
        left, right = self.numeric(node[2]), self.numeric(node[3])
        if node[1] == "/":
            return self.d.divide(left, right)
        return f"({left} {node[1]} {right})"

    # conditions
    def cond(self, node) -> str:
        kind = node[0]
        if kind == "const":
            return "TRUE" if node[1] else "FALSE"
        if kind in ("and", "or"):
            return f"({self.cond(node[1])} {kind.upper()} {self.cond(node[2])})"
        if kind == "not":
            return f"(NOT {self.cond(node[1])})"
        if kind == "missing":
            return f"({self.column(node[1])} IS {'NOT ' if node[2] else ''}NULL)"
        if kind == "in":
            return self.isin(node)
        if kind == "cmp":
            return self.compare(node)
        raise AssertionError(kind)

    @staticmethod
    def _fold(node) -> str:
        """A condition without names is the same for every row: decided here, once."""
        return "TRUE" if _holds_const(node) else "FALSE"

    def isin(self, node) -> str:
        _, left, values, negate = node
        if not _names_in(left):
            return self._fold(node)
        k = self.kind(left)
        if k == "text":
            values = [v for v in values if isinstance(v, str)]
        elif k == "number":
            values = [v for v in values if not isinstance(v, (str, bool))]
        elif k == "bool":
            values = [v for v in values if isinstance(v, bool)]
        sql = self.operand(left)
        if not values:
            return f"({sql} IS NOT NULL)" if negate else "FALSE"
        listed = f"{sql} IN ({', '.join(self.lit(v) for v in values)})"
        return f"({sql} IS NOT NULL AND NOT ({listed}))" if negate else f"COALESCE({listed}, FALSE)"

    def compare(self, node) -> str:
        _, op, left, right = node
        if not _names_in(left) and not _names_in(right):
            return self._fold(node)
        kl, kr = self.kind(left), self.kind(right)
        a, b = self.operand(left), self.operand(right)
        if kl and kr and kl != kr:
            if "text" in (kl, kr):  # pandas: text never equals a number; ordering them is an error
                if op == "==":
                    return "FALSE"
                if op == "!=":
                    return f"({a} IS NOT NULL AND {b} IS NOT NULL)"
                raise ConditionError(f"cannot compare {_show(left)!r} with {_show(right)!r}")
            a, b = self.numeric(left), self.numeric(right)  # bool against number: as 0 / 1
        return f"COALESCE(({a} {_SQL_OPS[op]} {b}), FALSE)"


def evaluate_sql(cond: Condition, frame: pd.DataFrame) -> np.ndarray:
    """``cond`` on every row of a pandas frame, by its SQL (:meth:`Condition.to_sql`) in DuckDB: the
    one implementation of a condition's meaning, here and in compiled schemes."""
    import duckdb

    from segment.grading.compiler import column_kinds
    from segment.grading.engine import duckdb_column
    from segment.plumbing.sql import DUCKDB

    names = sorted(cond.names)
    slim = pd.DataFrame({c: duckdb_column(frame[c]) for c in names}, index=pd.RangeIndex(len(frame)), copy=False)
    if not names:
        slim = pd.DataFrame({"_": np.zeros(len(frame), dtype=np.int8)})
    sql = cond.to_sql(DUCKDB, DUCKDB.q, column_kinds(slim).get)
    with duckdb.connect() as con:
        con.register("frame", slim)
        hit = con.sql(f"SELECT {sql} AS hit FROM frame").fetchnumpy()["hit"]
    return np.asarray(hit, dtype=bool)
