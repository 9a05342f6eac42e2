"""The reward-head contract (`RewardHead`), its scikit-learn style plumbing (`HeadBase`), and head classes by name.

A head maps feature rows to rewards. Conventions, as in scikit-learn, so heads can be cloned and refitted
(an ensemble refits clones of one prototype; a loaded model can be trained again):

- the constructor only stores its parameters, under their own names (validation happens in ``fit``);
- fitted state lives in attributes ending in ``_`` (``net_``, ``booster_``, ``members_``, ``fit_log_``);
- ``get_params()`` returns the constructor parameters, ``clone()`` an unfitted copy with the same ones.

Every head, single or ensemble, answers the same three questions: ``predict`` (its reward),
``predict_members`` ((n_members, n_rows); a single head is one member) and ``predict_stats`` (the
`STAT_KEYS` schema), so callers never need to ask which kind of head they hold.

A head class is saved as ``head.json`` (``{"class": name, "params": ..., ...}``) plus its weights; the
``class`` is looked up in `HEAD_CLASSES` on load. Registering a new class is the `register_head_class`
decorator on it.
"""

from __future__ import annotations

import copy
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np

from rewardlab.artifacts import read_json_object
from rewardlab.errors import ModelError
from rewardlab.registry import Registry
from rewardlab.rewards.training_set import TrainingSet

#: what ``predict_stats`` returns for every head: ``score`` is the head's own reward (an ensemble's
#: configured aggregate); ``mean``, ``std``, ``min`` and ``lcb`` = mean − λ·std are over members
#: (a single head is one member: std 0, and mean = min = lcb = score).
STAT_KEYS = ("score", "mean", "std", "min", "lcb")


@runtime_checkable
class RewardHead(Protocol):
    """What `RewardModel` needs from a head; `HeadBase` supplies everything but fit/predict/save/load."""

    @property
    def n_members(self) -> int:
        """1 for a single head; the number of members for an ensemble."""
        ...

    @property
    def fit_log(self) -> dict[str, Any]:
        """What ``fit`` reported (epochs, early stopping, ...); empty before fitting."""
        ...

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters and their current values."""
        ...

    def set_params(self, **params: Any) -> RewardHead:
        """Change constructor parameters by name; returns the head itself."""
        ...

    def clone(self) -> RewardHead:
        """An unfitted copy with the same parameters."""
        ...

    def params(self) -> dict[str, Any]:
        """The parameters as saved (JSON)."""
        ...

    def fit(self, data: TrainingSet, on_progress: FitProgress | None = None) -> RewardHead:
        """Train on ``data``; ``on_progress(done, total)`` after each unit of work (an epoch, a boosting round)."""
        ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def predict_members(self, x: np.ndarray) -> np.ndarray: ...

    def predict_stats(self, x: np.ndarray, lam: float | None = None) -> dict[str, np.ndarray]: ...

    def save(self, directory: Path) -> None: ...


#: ``(done, total)`` while a head fits: epochs (an upper bound: early stopping ends sooner), boosting rounds, or
#: members × those for an ensemble; heads report at least once, and ``(total, total)`` when they finish
FitProgress = Callable[[int, int], None]

#: head.json's "class" -> a function loading that head from its directory
HeadLoader = Callable[[Path], RewardHead]
HEAD_CLASSES: Registry[HeadLoader] = Registry("head class", ModelError)

H = TypeVar("H", bound="HeadBase")


def register_head_class(cls: type[H]) -> type[H]:
    """Class decorator: ``cls.class_name`` in a head.json loads with ``cls.load``."""
    HEAD_CLASSES.register(cls.class_name, cls.load)
    return cls


def load_head(directory: Path) -> RewardHead:
    """A saved head, of whichever registered class its head.json names."""
    config = read_head_json(directory)
    class_name = config.get("class", "")
    if class_name not in HEAD_CLASSES:
        raise ModelError(f"{directory / 'head.json'}: unknown head class {class_name!r}; known: {', '.join(HEAD_CLASSES)}"
                         " (a plugin's head class must be imported before its models load)")
    try:
        return HEAD_CLASSES[class_name](directory)
    except ModelError:
        raise
    except Exception as exc:  # a damaged or foreign directory fails in many ways inside the loaders' libraries
        raise ModelError(f"{directory}: cannot load this {class_name!r} head "
                         f"({type(exc).__name__}: {str(exc)[:300]})") from exc


def read_head_json(directory: Path) -> dict[str, Any]:
    """The parsed ``head.json`` of a saved head, or a `ModelError` if it is missing or not a JSON object."""
    config_path = directory / "head.json"
    if not config_path.is_file():
        raise ModelError(f"{directory}: no head.json")
    return read_json_object(config_path, "head description")


def head_params(config: dict[str, Any], directory: Path) -> dict[str, Any]:
    """The constructor parameters recorded in a saved head's ``head.json`` (a `ModelError` unless an object)."""
    params = config.get("params")
    if not isinstance(params, dict):
        raise ModelError(f"{directory / 'head.json'}: 'params' must be an object")
    return params


def write_head_json(directory: Path, head: RewardHead, class_name: str, **extra: Any) -> None:
    """head.json in the layout every saved model has used: class, params, then head-specific fields, fit_log."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"class": class_name, "params": head.params(), **extra, "fit_log": head.fit_log}
    (directory / "head.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def single_stats(score: np.ndarray) -> dict[str, np.ndarray]:
    """`STAT_KEYS` for a one-member head: no disagreement, so every aggregate is the score itself."""
    score = np.asarray(score, dtype=np.float64)
    return {"score": score, "mean": score.copy(), "std": np.zeros_like(score), "min": score.copy(),
            "lcb": score.copy()}


class HeadBase(ABC):
    """scikit-learn style plumbing for single heads; subclasses write ``fit``, ``predict``, ``save``, ``load``."""

    #: the "class" written to head.json and looked up in `HEAD_CLASSES` on load
    class_name: ClassVar[str] = ""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters and their current values (read from attributes of the same name)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: H, **params: Any) -> H:
        """Set constructor parameters by name (an unknown one is a `ModelError`); returns the head itself, so calls chain."""
        unknown = set(params) - set(self._param_names())
        if unknown:
            raise ModelError(f"{type(self).__name__} has no parameter(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(self._param_names())}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def clone(self: H) -> H:
        """An unfitted head with the same parameters."""
        return type(self)(**{k: copy.deepcopy(v) for k, v in self.get_params().items()})

    def params(self) -> dict[str, Any]:
        """The parameters as saved in head.json: for a single head, all of `get_params`."""
        return self.get_params()

    @property
    def n_members(self) -> int:
        return 1

    @property
    def fit_log(self) -> dict[str, Any]:
        log: dict[str, Any] = getattr(self, "fit_log_", {})
        return log

    @property
    def is_fitted(self) -> bool:
        """Fitted state is exactly the attributes ending in ``_`` (the constructor sets none)."""
        return any(name.endswith("_") and not name.startswith("_") for name in vars(self))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ModelError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    @abstractmethod
    def fit(self: H, data: TrainingSet, on_progress: FitProgress | None = None) -> H: ...

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def save(self, directory: Path) -> None: ...

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        """(1, n_rows): a single head is an ensemble of one."""
        return np.asarray(self.predict(x), dtype=np.float64)[None, :]

    def predict_stats(self, x: np.ndarray, lam: float | None = None) -> dict[str, np.ndarray]:
        return single_stats(self.predict(x))

    @classmethod
    @abstractmethod
    def load(cls: type[H], directory: Path) -> H: ...
