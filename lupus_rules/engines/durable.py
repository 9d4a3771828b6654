"""The durable-rules adapter: compiles a rulebook to a durable-rules ruleset and runs it.

The only module that imports durable-rules. It handles every pitfall measured
in ``shared/notes/durable-rules.md``:

* one :class:`_QuietHost` per process with its timer threads switched off
  (``_run`` does nothing), guarded by a lock so threads never share it;
* one session (``sid``) per patient, always deleted afterwards, so the limit
  of 1024 live sessions is never reached and no state leaks between patients;
* each rulebook version gets its own ruleset name; old versions are deleted
  from the native engine and the host (no "already registered" on reload);
* the native engine swallows exceptions raised in actions into the session
  state: after every assertion the state is checked and an
  :class:`~lupus_rules.errors.EngineError` raised;
* every patient fact is consumed by a catch-all rule, so durable never raises
  ``MessageNotHandledException``; derived facts are asserted once each (a
  duplicate raises inside durable) and the loader guarantees a consumer;
* facts are validated and typed before they reach durable (no '6' > 5);
* negation: rules are fired stratum by stratum. A rule in stratum k also
  joins a ``stage`` fact that the adapter asserts only after stratum k-1 has
  finished, so a ``not_derived`` test sees every fact that can be derived
  before it. Within a stratum durable fires rules in definition order.
* durable links at most 256 rules to one test chain (``t == stage, n == k``,
  ``t == derived, name == x``, or the same patient tests): more fail to compile
  with error 108. Its matcher also walks the test tree with a fixed stack of 64
  nodes: a node with more matching children (300 rules whose first patient
  tests differ) fails with error 303 ("Could not assert fact") or corrupts
  memory. Every term therefore starts, after its ``t`` test, with two tests
  that always-absent properties are absent, ``__a<i>`` (i = the rule's index //
  :data:`_FANOUT` ** 2) and ``__b<j>`` (j = index // ``_FANOUT``): a tree of at
  most ``_FANOUT`` branches per level over which no node has more than
  ``_FANOUT`` rules below it, so a chain serves at most ``_FANOUT`` rules and
  the walk holds at most MAX_RULES / 256 + 2 × ``_FANOUT`` nodes (40 at 2 000 rules).
* a failed compile leaves nothing registered (and raises EngineError).
"""
from __future__ import annotations

import copy
import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

try:
    import durable_rules_engine
    from durable.engine import Host
except ImportError as _exc:  # a build without the Python 3.13 flag fails here
    raise ImportError(
        f"durable-rules does not import ({_exc}). On Python 3.13+ it must be built with "
        "CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject: run "
        "'bash tools/install_durable.sh <your python>' from a lupus_rules checkout, or "
        "'CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject pip install --force-reinstall "
        "--no-binary durable-rules --no-cache-dir durable-rules==2.0.28'. Supported: Python 3.11-3.13."
    ) from _exc

from ..errors import EngineError
from ..facts import DECIMALS, Patient, validate_patient
from ..rulebook import Condition, Rule, Rulebook

__all__ = ["DurableEngine", "compile_ruleset"]

_PATIENT = "patient"
_DERIVED = "derived"
_STAGE = "stage"
_CATCH_ALL = "__patient_seen"
_MAX_COMPILED = 4  # rulebook versions kept registered at once
_FANOUT = 16  # branches per level of the group tree over the rules (durable's matcher stack holds 64)

_NUMBER_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def compile_ruleset(rulebook: Rulebook) -> dict[str, dict[str, Any]]:
    """The rulebook as a durable-rules ruleset definition (rule id -> JSON rule)."""
    definition: dict[str, dict[str, Any]] = {}
    for index, rule in enumerate(rulebook.rules):
        definition[rule.id] = {"all": _sequence(rule, index), "run": rule.id}
    definition[_CATCH_ALL] = {"all": [{"m": {"t": _PATIENT}}], "run": _CATCH_ALL}
    return definition


def _sequence(rule: Rule, index: int) -> list[dict[str, Any]]:
    terms: list[dict[str, Any]] = []
    grouped = _groups(index)
    if rule.stratum > 0:
        terms.append({"stage": {"$and": [{"t": _STAGE}, *grouped, {"n": rule.stratum}]}})
    tests = [_fact_test(c) for c in rule.when if c.kind == "fact"]
    terms.append({"p": {"$and": [{"t": _PATIENT}, *grouped, *tests]}})
    for i, condition in enumerate(c for c in rule.when if c.kind != "fact"):
        match = {"$and": [{"t": _DERIVED}, *grouped, {"name": condition.fact}]}
        key = f"d{i}" if condition.kind == "derived" else f"d{i}$not"
        terms.append({key: match})
    return terms


def _groups(index: int) -> list[dict[str, Any]]:
    """The always-true tests placing rule ``index`` in the group tree (see the module docstring)."""
    return [{"$nex": {f"__a{index // _FANOUT ** 2}": 1}}, {"$nex": {f"__b{index // _FANOUT}": 1}}]


def _fact_test(condition: Condition) -> dict[str, Any]:
    """One condition on the patient fact, in durable's JSON expression language."""
    name, op, value = condition.fact, condition.op, condition.value
    if op in _NUMBER_OPS:
        return {_NUMBER_OPS[op]: {name: _units(value)}}
    if op == "known":
        return {"$ex": {name: 1}}
    if op == "unknown":
        return {"$nex": {name: 1}}
    if op == "has":
        return {_member(name, value): True}
    if op == "lacks":
        return {_member(name, value): False}
    if op == "==":
        return {name: value}
    if op == "!=":
        return {"$neq": {name: value}}
    if op == "in":
        return {"$or": [{name: v} for v in value]}
    if op == "not_in":
        return {"$and": [{"$neq": {name: v}} for v in value]}
    raise EngineError(f"operator {op!r} has no durable-rules translation")


def _units(number: float) -> int:
    """A number as an integer count of 10**-DECIMALS units.

    durable-rules cannot parse JSON numbers in exponent form (1e-05, 1e+16: error 204), which
    json.dumps writes for small and large floats. Facts and thresholds are already rounded to
    DECIMALS places, so the integers compare exactly as the floats do.
    """
    return int(round(number * 10**DECIMALS))


def _member(fact: str, member: str) -> str:
    return f"{fact}__{member}"


def encode_patient(patient: Patient, sid: str) -> dict[str, Any]:
    """The patient as one durable fact: sets flattened to booleans, unknown numbers left out.

    Kinds come from the vocabulary the patient was validated against (``patient.vocabulary``).
    """
    fact: dict[str, Any] = {"sid": sid, "t": _PATIENT}
    facts = patient.vocabulary.facts
    for name, value in patient.items():
        spec = facts.get(name)
        if spec is not None and spec.kind == "set":
            for member in spec.allowed:
                fact[_member(name, member)] = member in value  # type: ignore[operator]
        elif isinstance(value, float):
            fact[name] = _units(value)
        elif value is not None:
            fact[name] = value
    return fact


class _QuietHost(Host):
    """A durable Host without its background timer threads; actions resolve through the engine."""

    def __init__(self, resolve):
        self._resolve = resolve
        super().__init__()

    def _run(self) -> None:  # no dispatcher/timer threads: they race the caller and never stop
        return None

    def get_action(self, action_name: str):
        return self._resolve(action_name)


@dataclass
class _Session:
    """What one patient's evaluation has fired and derived so far."""

    fired: list[str] = field(default_factory=list)
    derived: set[str] = field(default_factory=set)


@dataclass
class _Compiled:
    name: str
    strata: int


class DurableEngine:
    """Evaluates patients with durable-rules; one instance per process is enough (see :func:`shared`)."""

    name = "durable"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sessions: dict[str, _Session] = {}
        self._compiled: OrderedDict[str, _Compiled] = OrderedDict()
        self._rules_by_ruleset: dict[str, dict[str, Rule]] = {}
        self._names = itertools.count()
        self._sids = itertools.count()
        self._compiling: dict[str, Rule] = {}
        self._host = _QuietHost(self._action_for)

    def fire(self, patient: Patient, rulebook: Rulebook) -> list[str]:
        """Ids of the rules that fire for this patient, in firing order.

        A patient validated against other facts than the rulebook's is checked again against
        ``rulebook.vocabulary`` first (PatientValidationError names what does not fit).
        """
        patient = validate_patient(patient, rulebook.vocabulary)
        with self._lock:
            compiled = self._ensure(rulebook)
            sid = str(next(self._sids))
            session = self._sessions[sid] = _Session()
            try:
                self._assert(compiled.name, sid, encode_patient(patient, sid))
                for stage in range(1, compiled.strata):
                    self._assert(compiled.name, sid, {"sid": sid, "t": _STAGE, "n": stage})
            except BaseException:
                self._forget(compiled.name, sid, quiet=True)  # keep the first error, not a cleanup one
                raise
            self._forget(compiled.name, sid, quiet=False)
            return list(session.fired)

    def _forget(self, ruleset: str, sid: str, quiet: bool) -> None:
        """Delete a session's state so nothing outlives the evaluation (and the 1024 limit is never hit)."""
        del self._sessions[sid]
        try:
            self._host.delete_state(ruleset, sid)
        except Exception as exc:
            if not quiet:
                raise EngineError(f"durable-rules could not delete session {sid}: {exc}") from exc

    def live_sessions(self) -> int:
        """Sessions currently open (0 between evaluations: nothing is left behind)."""
        return len(self._sessions)

    def _assert(self, ruleset: str, sid: str, fact: dict[str, Any]) -> None:
        try:
            self._host.assert_fact(ruleset, fact)
        except Exception as exc:  # durable raises bare Exceptions with C error codes
            raise EngineError(f"durable-rules rejected {fact.get('t')} fact for session {sid}: {exc}") from exc
        state = self._host.get_state(ruleset, sid)
        if state.get("exception"):
            raise EngineError(f"a rule action failed in session {sid}: {state['exception']}")

    def _ensure(self, rulebook: Rulebook) -> _Compiled:
        key = rulebook.version  # same version, same rules: one compiled ruleset serves both
        if key in self._compiled:
            self._compiled.move_to_end(key)
            return self._compiled[key]
        name = f"lupus_{rulebook.version}_{next(self._names)}"
        self._compiling = {rule.id: rule for rule in rulebook.rules}
        self._rules_by_ruleset[name] = self._compiling
        try:
            self._host.set_rulesets({name: copy.deepcopy(compile_ruleset(rulebook))})
        except Exception as exc:  # durable raises bare errors with C codes; leave nothing half-registered
            self._unregister(name)
            raise EngineError(f"durable-rules could not compile rulebook {rulebook.version} "
                              f"({len(rulebook.rules)} rules, {rulebook.strata} strata): {exc}") from exc
        compiled = _Compiled(name, rulebook.strata)
        self._compiled[key] = compiled
        while len(self._compiled) > _MAX_COMPILED:
            _, old = self._compiled.popitem(last=False)
            self._drop(old.name)
        return compiled

    def _drop(self, name: str) -> None:
        """Unregister a ruleset from the native engine and the host."""
        ruleset = self._host._ruleset_directory.pop(name)
        self._host._ruleset_list.remove(ruleset)
        durable_rules_engine.delete_ruleset(ruleset._handle)
        del self._rules_by_ruleset[name]

    def _unregister(self, name: str) -> None:
        """Undo whatever part of a failed compile got registered."""
        if name in self._host._ruleset_directory:
            self._drop(name)
        self._rules_by_ruleset.pop(name, None)
        self._compiling = {}

    def compiled_entries(self) -> int:
        """How many rulesets the adapter holds state for (equals ``len(registered())``: nothing leaks)."""
        return len(self._rules_by_ruleset)

    def registered(self) -> list[str]:
        """Names of the rulesets currently registered with durable."""
        return list(self._host._ruleset_directory)

    def _action_for(self, rule_id: str):
        if rule_id == _CATCH_ALL:
            return lambda c: None
        rule = self._compiling[rule_id]

        def action(c) -> None:
            session = self._sessions[c.s.sid]
            session.fired.append(rule.id)
            for name in rule.derive:
                if name not in session.derived:
                    session.derived.add(name)
                    c.assert_fact({"t": _DERIVED, "name": name})

        return action


_SHARED: DurableEngine | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> DurableEngine:
    """The process-wide engine (one durable Host per process, as durable-rules requires)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = DurableEngine()
        return _SHARED
