"""The FHIR-to-facts mapping: a YAML data file, read with the safe loader and checked against the rulebook.

Every fact, status and manifestation member the mapping names must exist in the
rulebook's vocabulary (``Rulebook.facts``); every pattern must compile; every
code is text. A defect raises :class:`MappingError` naming the file, the key
path and the value, with what is allowed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LupusRulesError

if TYPE_CHECKING:
    from ..rulebook import Rulebook

__all__ = ["MappingError", "Mapping", "AgentCodes", "DEFAULT_MAPPING_FILE", "load_mapping"]

#: The shipped mapping (outside lupus_rules/rules/, so the rule loader never reads it).
DEFAULT_MAPPING_FILE = Path(__file__).with_name("mapping.yaml")
_RECORD_OUTCOMES = ("current", "effective", "stopped", "ambiguous", "ignore")
_REQUIRED = ("systems", "conditions", "labs", "agents", "request_status", "statement_status",
             "stop_reasons", "topical", "glucocorticoid", "pregnancy_intention", "months_on_therapy",
             "nephritis_class", "stale_after_days", "baseline_window_days")


class MappingError(LupusRulesError, ValueError):
    """The mapping file is unusable: the message names file, key and value."""


@dataclass(frozen=True)
class AgentCodes:
    """How records of one agent are recognised: RxNorm codes, names, route and whether it is a regimen change."""

    fact: str
    rxnorm: frozenset[str]
    names: tuple[re.Pattern[str], ...]
    route: str = "any"
    regimen: bool = True
    max_daily_mg: float | None = None


@dataclass(frozen=True)
class Mapping:
    """A checked mapping: the raw data plus compiled lookups the extractor uses."""

    source: str
    data: dict[str, Any]
    agents: dict[str, AgentCodes]
    patterns: dict[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)

    def systems(self, name: str) -> frozenset[str]:
        """The code-system URIs named ``name`` (snomed, icd10, loinc, rxnorm)."""
        return frozenset(self.data["systems"][name])

    def agents_for_code(self, code: str) -> list[AgentCodes]:
        """Every agent whose RxNorm list holds ``code``."""
        return [a for a in self.agents.values() if code in a.rxnorm]


def load_mapping(path: str | Path | None = None, rulebook: Rulebook | None = None) -> Mapping:
    """Read and check a mapping file (default: the shipped one) against ``rulebook`` (default: the shipped one)."""
    import yaml

    from ..evaluate import default_rulebook

    file = Path(path) if path is not None else DEFAULT_MAPPING_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{file}: cannot read the mapping: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{file}: not valid YAML: {exc}") from None
    checker = _Checker(str(file), rulebook or default_rulebook())
    return checker.check(data)


class _Checker:
    """Checks one mapping document; every problem names file, key and value."""

    def __init__(self, file: str, rulebook: Rulebook):
        self.file = file
        self.facts = rulebook.facts

    def fail(self, key: str, value: object, allowed: str) -> MappingError:
        return MappingError(f"{self.file}: {key}: got {value!r}; allowed: {allowed}")

    def check(self, data: object) -> Mapping:
        if not isinstance(data, dict):
            raise self.fail("(top level)", type(data).__name__, "a mapping with keys " + ", ".join(_REQUIRED))
        for key in _REQUIRED:
            if key not in data:
                raise self.fail(key, None, "this key is required")
        self._check_conditions(data["conditions"])
        self._check_labs(data["labs"])
        for key in ("request_status", "statement_status"):
            for status, outcome in self._dict(key, data[key]).items():
                if outcome not in _RECORD_OUTCOMES:
                    raise self.fail(f"{key}.{status}", outcome, ", ".join(_RECORD_OUTCOMES))
        statuses = self._status_values()
        for reason, spec in self._dict("stop_reasons", data["stop_reasons"]).items():
            if reason not in statuses:
                raise self.fail(f"stop_reasons.{reason}", reason, "a status: " + ", ".join(statuses))
            self._patterns(f"stop_reasons.{reason}.text", spec.get("text", []))
        self._patterns("topical.text", data["topical"].get("text", []))
        self._check_fact("pregnancy_intention.fact", data["pregnancy_intention"].get("fact"), "bool")
        for answer in ("true_when", "false_when"):
            self._patterns(f"pregnancy_intention.{answer}", data["pregnancy_intention"].get(answer))
        self._check_fact("glucocorticoid.fact", data["glucocorticoid"].get("fact"), "number")
        self._check_fact("glucocorticoid.status_agent", data["glucocorticoid"].get("status_agent"), "status")
        self._check_fact("months_on_therapy.fact", data["months_on_therapy"].get("fact"), "number")
        self._patterns("nephritis_class.pattern", [data["nephritis_class"].get("pattern", "")])
        agents = self._check_agents(data["agents"])
        return Mapping(self.file, data, agents, self._compiled(data))

    def _dict(self, key: str, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, value, "a mapping")
        return value

    def _status_values(self) -> tuple[str, ...]:
        for spec in self.facts.values():
            if spec.kind == "status":
                return spec.allowed
        return ()

    def _check_fact(self, key: str, name: object, kind: str) -> None:
        spec = self.facts.get(name) if isinstance(name, str) else None
        if spec is None or spec.kind != kind:
            names = [n for n, s in self.facts.items() if s.kind == kind]
            raise self.fail(key, name, f"a {kind} fact of the rulebook: " + ", ".join(names))

    def _codes(self, key: str, codes: object) -> None:
        if not isinstance(codes, list) or not all(isinstance(c, str) and c.strip() for c in codes):
            raise self.fail(key, codes, "a list of codes written as quoted text")

    def _patterns(self, key: str, patterns: object) -> None:
        if not isinstance(patterns, list):
            raise self.fail(key, patterns, "a list of regular expressions")
        for pattern in patterns:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise self.fail(key, pattern, f"a regular expression ({exc})") from None

    def _check_conditions(self, conditions: object) -> None:
        for name, spec in self._dict("conditions", conditions).items():
            spec = self._dict(f"conditions.{name}", spec)
            for system in ("snomed", "icd10"):
                if system in spec:
                    self._codes(f"conditions.{name}.{system}", spec[system])
            for fact, members in self._dict(f"conditions.{name}.sets", spec.get("sets", {})).items():
                self._check_fact(f"conditions.{name}.sets", fact, "set")
                for member in members:
                    if member not in self.facts[fact].allowed:
                        raise self.fail(f"conditions.{name}.sets.{fact}", member,
                                        ", ".join(self.facts[fact].allowed))
            for fact in spec.get("facts", []):
                self._check_fact(f"conditions.{name}.facts", fact, "bool")

    def _check_labs(self, labs: object) -> None:
        for name, spec in self._dict("labs", labs).items():
            self._check_fact("labs", name, "number")
            self._check_fact(f"labs.{name}.baseline_fact", spec.get("baseline_fact"), "number")
            self._codes(f"labs.{name}.loinc", spec.get("loinc"))
            for unit, factor in self._dict(f"labs.{name}.units", spec.get("units")).items():
                if not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor <= 0:
                    raise self.fail(f"labs.{name}.units.{unit}", factor, "a positive number")

    def _check_agents(self, agents: object) -> dict[str, AgentCodes]:
        out: dict[str, AgentCodes] = {}
        for name, spec in self._dict("agents", agents).items():
            self._check_fact("agents", name, "status")
            spec = self._dict(f"agents.{name}", spec)
            self._codes(f"agents.{name}.rxnorm", spec.get("rxnorm", []))
            route = spec.get("route", "any")
            if route not in ("any", "systemic", "topical"):
                raise self.fail(f"agents.{name}.route", route, "any, systemic, topical")
            names = tuple(re.compile(r"(?i)\b" + re.escape(n) + r"\b") for n in spec.get("names", []))
            out[name] = AgentCodes(name, frozenset(spec.get("rxnorm") or ()), names, route,
                                   bool(spec.get("regimen", True)), spec.get("max_daily_mg"))
        missing = [n for n, s in self.facts.items() if s.kind == "status" and n not in out]
        if missing:
            raise self.fail("agents", sorted(out), "every status fact of the rulebook; missing: " + ", ".join(missing))
        return out

    @staticmethod
    def _compiled(data: dict[str, Any]) -> dict[str, tuple[re.Pattern[str], ...]]:
        pats = {f"stop:{k}": tuple(map(re.compile, v.get("text", []))) for k, v in data["stop_reasons"].items()}
        pats["topical"] = tuple(map(re.compile, data["topical"].get("text", [])))
        pats["pregnancy:yes"] = tuple(map(re.compile, data["pregnancy_intention"]["true_when"]))
        pats["pregnancy:no"] = tuple(map(re.compile, data["pregnancy_intention"]["false_when"]))
        pats["nephritis_class"] = (re.compile(data["nephritis_class"]["pattern"]),)
        return pats
