"""Automatic step labels for math solutions: re-compute each arithmetic statement a step makes.

**This checks computation, not reasoning.** A step that multiplies the wrong quantities correctly
(``16 * 7 = 112`` where the question wanted ``16 - 7``) passes; a step with no arithmetic is not judged at
all. What it does catch is a stated result that its own expression does not give: ``13 * 2 = 24``, or a GSM8K
calculator annotation ``<<13*2=24>>`` whose result is wrong.

What is checked, in each step:

- every calculator annotation ``<<expr=c>>``: ``expr`` is evaluated (numbers, ``+ - * / **`` and brackets only,
  never ``eval``) and compared with ``c``;
- every visible statement ``a op b [op c ...] = c`` (annotations removed first), ops ``+ - * / x × ÷ ^``;
  an expression or result next to another bare number (``350 000 x 5``, ``= 17 500``, ``in 2019 5 + 3``) is
  ambiguous (space-grouped thousands, or prose) and skipped;
  a chain ``a + b = c = d`` also checks ``c = d``. Numbers may carry ``$``, thousands commas and ``%``;
  a ``%`` is read both as a plain number and as a fraction, and the statement passes if either reading does.
  A stated result matches when it equals the exact value rounded, floored or ceiled to the digits it shows
  (``100 / 3 = 33.33`` passes, ``7 * 8 = 55`` does not).

Anything it cannot parse is skipped, never flagged: the checker flags only what it is sure of.

Labels follow process supervision's "first error" rule: steps before the first wrong step whose statements all
check get 1, the first wrong step gets 0, and every later step is **unknown** (no row), not correct: after an
error, later steps may be right given the error or wrong because of it, and a computation check cannot tell.
Steps with nothing to check get no row either. ``outcome`` labels, when asked for, add what the solution's
correctness says: a correct solution's steps (up to any flagged step) are taken as good (an assumption: a right
answer can follow a wrong step), and a wrong solution with no flagged step gets 0 on its last step.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.steps import Step, split_steps
from rewardlab.data.types import StepLabel

StepStatus = Literal["ok", "wrong", "unchecked", "unknown"]

_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_NUMBER = r"\$?\s*\d+(?:,\d{3})*(?:\.\d+)?\s*%?|\$?\s*\.\d+\s*%?"
_TOKEN = re.compile(rf"\s*(?:(?P<num>{_NUMBER})|(?P<op>\*\*|[-+*/x×÷^])|(?P<paren>[()])|(?P<other>\S))")
_RESULT = re.compile(rf"\s*(?P<neg>-)?\s*(?P<num>{_NUMBER})")
_OPS: dict[str, str] = {"x": "*", "×": "*", "÷": "/", "^": "**"}
_BINARY: dict[type, Callable[[float, float], float]] = {ast.Add: operator.add, ast.Sub: operator.sub,
                                                        ast.Mult: operator.mul, ast.Div: operator.truediv,
                                                        ast.Pow: operator.pow}


@dataclass(frozen=True)
class Statement:
    """One arithmetic claim a step makes: ``computed`` is what its expression gives, ``stated`` what the step says."""

    text: str
    computed: float
    stated: float
    ok: bool
    kind: Literal["annotation", "inline"]


@dataclass(frozen=True)
class StepCheck:
    """A step and what the checker found in it; ``status`` is ``unknown`` for every step after the first wrong one."""

    step: Step
    statements: tuple[Statement, ...]
    status: StepStatus


@dataclass
class LabelStats:
    """How much the auto-labeller could say, for reporting beside any model trained on its labels."""

    solutions: int = 0
    steps: int = 0
    checked_steps: int = 0  # steps with at least one statement, up to and including the first wrong one
    statements: int = 0
    wrong_statements: int = 0
    flagged: dict[str, int] = field(default_factory=lambda: {"correct": 0, "incorrect": 0, "unlabelled": 0})
    solutions_by_outcome: dict[str, int] = field(default_factory=lambda: {"correct": 0, "incorrect": 0, "unlabelled": 0})

    def as_dict(self) -> dict[str, object]:
        return {"solutions": self.solutions, "steps": self.steps, "checked_steps": self.checked_steps,
                "statements": self.statements, "wrong_statements": self.wrong_statements,
                "solutions_flagged": dict(self.flagged), "solutions_by_outcome": dict(self.solutions_by_outcome)}


# ---------------------------------------------------------------------- evaluating arithmetic
def _number(text: str, percent_as_fraction: bool) -> float:
    value = float(text.replace("$", "").replace(",", "").replace("%", "").replace(" ", ""))
    return value / 100 if percent_as_fraction and text.rstrip().endswith("%") else value


class _NotChecked(Exception):
    """An expression the checker does not evaluate (not plain arithmetic, or a power too large): it is skipped."""


def _safe_eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _safe_eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _safe_eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _safe_eval(node.left), _safe_eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
            raise _NotChecked("power too large to check")
        return _BINARY[type(node.op)](left, right)
    raise _NotChecked("not plain arithmetic")


def evaluate(expression: str) -> float | None:
    """The value of plain arithmetic (numbers, + - * / **, brackets), or None if it is anything else."""
    try:
        value = _safe_eval(ast.parse(expression.strip(), mode="eval"))
    except (SyntaxError, _NotChecked, ValueError, ZeroDivisionError, OverflowError, RecursionError, TypeError):
        return None
    return value if math.isfinite(value) else None


def matches(computed: float, stated: float, shown_decimals: int) -> bool:
    """Does ``stated`` equal ``computed`` rounded, floored or ceiled to the ``shown_decimals`` digits it shows?"""
    scale = 10.0 ** min(shown_decimals, 12)
    tolerance = 1e-9 * max(1.0, abs(stated))
    candidates = (computed, round(computed * scale) / scale, math.floor(computed * scale + 1e-9) / scale,
                  math.ceil(computed * scale - 1e-9) / scale)
    return any(abs(c - stated) <= tolerance for c in candidates)


def _decimals(number_text: str) -> int:
    digits = number_text.replace("%", "").strip()
    return len(digits.split(".")[1]) if "." in digits else 0


def _to_python(tokens: list[tuple[str, str]], percent_as_fraction: bool) -> str:
    parts = []
    for kind, text in tokens:
        if kind == "num":
            parts.append(repr(_number(text, percent_as_fraction)))
        else:
            parts.append(_OPS.get(text, text))
    return " ".join(parts)


def _expression_tokens(left: str) -> list[tuple[str, str]] | None:
    """The longest tail of ``left`` that is an arithmetic expression with at least one operator, as tokens."""
    tokens = [(m.lastgroup or "other", m.group(m.lastgroup or "other").strip()) for m in _TOKEN.finditer(left)]
    for start in range(len(tokens)):
        tail = tokens[start:]
        if any(kind == "other" for kind, _ in tail) or tail[0][0] == "op" and tail[0][1] != "-":
            continue
        if any(a[0] == "op" and b[0] == "op" and b[1] != "-" for a, b in zip(tail, tail[1:])):
            continue
        if not any(kind == "op" for kind, _ in tail[1:]) or evaluate(_to_python(tail, False)) is None:
            continue
        if start and tokens[start - 1][0] == "num":
            return None  # "350 000 x 5": thousands grouped by a space, or a number from the prose; either way, unsure
        return tail
    return None


def _check(expression_tokens: list[tuple[str, str]], result_text: str, source: str,
           kind: Literal["annotation", "inline"]) -> Statement | None:
    """The statement ``expression = result``, true if some reading of its percentages makes it hold."""
    readings = []
    for left_fraction in (False, True):
        computed = evaluate(_to_python(expression_tokens, left_fraction))
        if computed is None:
            continue
        for right_fraction in (False, True):
            stated = _number(result_text, right_fraction)
            readings.append((computed, stated, matches(computed, stated, _decimals(result_text))))
        if "%" not in "".join(t for _, t in expression_tokens):
            break
    if not readings:
        return None
    good = [r for r in readings if r[2]]
    computed, stated, ok = (good or readings)[0]
    return Statement(source.strip(), computed, stated, ok, kind)


def check_statements(step_text: str) -> list[Statement]:
    """Every arithmetic claim in ``step_text`` that the checker can read, annotations first, then inline ones."""
    found: list[Statement] = []
    for m in _ANNOTATION.finditer(step_text):
        result = _RESULT.fullmatch(m.group(2).strip()) if m.group(2).strip() else None
        tokens = _expression_tokens(m.group(1))
        if result is None or tokens is None:
            continue
        result_text = ("-" if result.group("neg") else "") + result.group("num")
        statement = _check(tokens, result_text.replace("-$", "-"), m.group(0), "annotation")
        if statement is not None:
            found.append(statement)
    return found + _inline_statements(_ANNOTATION.sub(" ", step_text))


def _inline_statements(visible: str) -> list[Statement]:
    """The ``a op b = c`` claims of text without annotations, chains included."""
    found: list[Statement] = []
    tokens: list[tuple[str, str]] | None
    boundary, previous = 0, None  # where the current left side may start; the last result read, for chains
    for eq in re.finditer("=", visible):
        result = _RESULT.match(visible, eq.end())
        left = visible[boundary:eq.start()]
        if previous is not None and not left.strip():  # a chain: "a + b = c = d" also claims c = d
            tokens = [("num", previous), ("op", "+"), ("num", "0")]
        else:
            tokens = _expression_tokens(left)
        statement = None
        if result is not None and re.match(r"\s*\d", visible[result.end():]):
            result = None  # "= 17 500": a space-grouped result would be misread as its first group
        if result is not None and not result.group("neg") and tokens is not None:
            shown = " ".join(t for _, t in tokens[:1 if previous is not None and not left.strip() else None])
            statement = _check(tokens, result.group("num"), f"{shown} = {result.group('num').strip()}", "inline")
        if statement is not None:
            found.append(statement)
        previous = result.group("num") if result is not None and statement is not None else None
        boundary = result.end() if result is not None else eq.end()
    return found


def check_solution(text: str, by: str = "line") -> list[StepCheck]:
    """Each step of ``text`` with its statements; the first step with a wrong statement is ``wrong``, later ones
    ``unknown``, steps with nothing to check ``unchecked``."""
    checks: list[StepCheck] = []
    seen_wrong = False
    for step in split_steps(text, by):
        if seen_wrong:
            checks.append(StepCheck(step, (), "unknown"))
            continue
        statements = tuple(check_statements(step.text))
        status: StepStatus = "unchecked" if not statements else "ok" if all(s.ok for s in statements) else "wrong"
        seen_wrong = status == "wrong"
        checks.append(StepCheck(step, statements, status))
    return checks


def first_wrong_step(checks: list[StepCheck]) -> int | None:
    return next((c.step.index for c in checks if c.status == "wrong"), None)


def step_labels_for(response_id: str, checks: list[StepCheck], correct: bool | None = None,
                    use_outcome: bool = False) -> list[StepLabel]:
    """StepLabel rows for one checked solution (see the module docstring for the rule), ``meta["source"]`` saying
    whether each came from the computation check or from the outcome."""
    rows: list[StepLabel] = []
    wrong = first_wrong_step(checks)
    for check in checks:
        meta = {"step_text": check.step.text}
        if check.status == "ok":
            rows.append(StepLabel(response_id, check.step.index, 1.0, meta={**meta, "source": "computation"}))
        elif check.status == "wrong":
            rows.append(StepLabel(response_id, check.step.index, 0.0, meta={**meta, "source": "computation"}))
        elif check.status == "unchecked" and use_outcome and correct is True:
            rows.append(StepLabel(response_id, check.step.index, 1.0, meta={**meta, "source": "outcome"}))
    if use_outcome and correct is False and wrong is None and checks:
        last = checks[-1]
        rows = [r for r in rows if r.step != last.step.index]
        rows.append(StepLabel(response_id, last.step.index, 0.0, meta={"step_text": last.step.text, "source": "outcome"}))
    return rows


def label_steps(dataset: FeedbackDataset, by: str = "line", use_outcome: bool = False) -> tuple[FeedbackDataset, LabelStats]:
    """Adds automatic step labels for each response to ``dataset`` (in place; returned for chaining), and says what
    the labeller could check.

    A response's correctness comes from its `Label` rows (the last one wins); ``use_outcome`` lets it add labels
    as the module docstring says. Existing step labels (e.g. from annotators) are kept beside the new ones.
    """
    correct = {label.response_id: label.correct for label in dataset.labels}
    stats = LabelStats()
    for response in dataset.responses.values():
        checks = check_solution(response.text, by)
        outcome = correct.get(response.id)
        key = "unlabelled" if outcome is None else "correct" if outcome else "incorrect"
        stats.solutions += 1
        stats.solutions_by_outcome[key] += 1
        stats.steps += len(checks)
        stats.checked_steps += sum(c.status in ("ok", "wrong") for c in checks)
        stats.statements += sum(len(c.statements) for c in checks)
        stats.wrong_statements += sum(not s.ok for c in checks for s in c.statements)
        if first_wrong_step(checks) is not None:
            stats.flagged[key] += 1
        for row in step_labels_for(response.id, checks, outcome, use_outcome):
            dataset.add(row)
    return dataset, stats
