"""Patient fact schema: typing, defaults, and errors that name field, value and what is allowed."""
from __future__ import annotations

import math

import pytest

from lupus_rules.errors import PatientValidationError
from lupus_rules.facts import FACTS, MEASURES, validate_patient


def test_defaults_fill_every_fact():
    patient = validate_patient({})
    assert patient["manifestations"] == frozenset()
    assert patient["methotrexate"] == "not_tried"
    assert patient["planning_pregnancy"] is False
    assert patient["egfr"] is None
    assert set(FACTS) | set(MEASURES) == set(patient)


def test_csv_strings_are_typed():
    patient = validate_patient({
        "manifestations": " joint ; nephritis ",
        "methotrexate": "intolerant",
        "bullous": "TRUE",
        "fertility_concern": "",
        "egfr": "45",
        "upcr": "0.5",
    })
    assert patient["manifestations"] == frozenset({"joint", "nephritis"})
    assert patient["bullous"] is True
    assert patient["fertility_concern"] is False
    assert patient["egfr"] == 45.0 and isinstance(patient["egfr"], float)
    assert patient["upcr"] == 0.5


@pytest.mark.parametrize(
    ("field", "value", "allowed_fragment"),
    [
        ("methotrexate", "stopped", "not_tried, intolerant, nonresponse, effective"),
        ("methotrexate", "Intolerant", "one of"),
        ("planning_pregnancy", "yes", "true or false"),
        ("planning_pregnancy", 1, "true or false"),
        ("manifestations", "skin", "cutaneous, joint, nephritis"),
        ("egfr", "-1", "0 to 200"),
        ("egfr", "201", "0 to 200"),
        ("upcr", "abc", "0 to 30"),
        ("upcr", math.inf, "0 to 30"),
        ("prednisone_mg", True, "0 to 1000"),
        ("months_on_therapy", "601", "0 to 600"),
    ],
)
def test_bad_value_names_field_value_and_allowed(field, value, allowed_fragment):
    with pytest.raises(PatientValidationError) as info:
        validate_patient({field: value})
    (error,) = info.value.errors
    assert error.field == field
    assert error.value == value
    assert allowed_fragment in error.allowed
    assert field in str(info.value) and repr(value) in str(info.value)


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(PatientValidationError) as info:
        validate_patient({"egfr": "lots", "ldn": "maybe", "bullous": "perhaps", "colour": "red"})
    assert sorted(e.field for e in info.value.errors) == ["bullous", "colour", "egfr", "ldn"]
    unknown = next(e for e in info.value.errors if e.field == "colour")
    assert "known fact" in unknown.allowed and "egfr" in unknown.allowed


def test_nan_means_unknown():
    patient = validate_patient({"egfr": float("nan"), "bullous": float("nan")})
    assert patient["egfr"] is None
    assert patient["bullous"] is False


@pytest.mark.parametrize(
    ("baseline", "current", "expected"),
    [(4.0, 2.0, 50.0), (3.0, 1.5, 50.0), (2.2, 1.1, 50.0), (1.0, 1.5, -50.0), (2.0, 2.0, 0.0)],
)
def test_upcr_reduction_is_exact_at_boundaries(baseline, current, expected):
    patient = validate_patient({"upcr_baseline": baseline, "upcr": current})
    assert patient["upcr_reduction_pct"] == expected


def test_egfr_change_and_missing_inputs():
    assert validate_patient({"egfr_baseline": 80, "egfr": 68})["egfr_change_pct"] == -15.0
    assert validate_patient({"egfr": 68})["egfr_change_pct"] is None
    assert validate_patient({"egfr_baseline": 0, "egfr": 10})["egfr_change_pct"] is None


def test_to_row_round_trips():
    data = {"manifestations": "cutaneous;nephritis", "azathioprine": "effective", "bullous": "true", "egfr": "52.5"}
    patient = validate_patient(data)
    assert validate_patient(patient.to_row()) == patient


def test_one_patient_numbers_and_measures_equal_the_array_path():
    """quantize on a float and a measure of one patient give numpy's bits (validate_patient needs no numpy)."""
    import random

    import numpy as np

    from lupus_rules.facts import MEASURE_INPUTS, compute_measures, quantize

    rng = random.Random(12)
    numbers = [rng.uniform(-500, 500) for _ in range(20_000)] + [2.5e-6, -2.5e-6, 0.5e-6, 2.675, 1e300, -0.0]
    assert [quantize(x) for x in numbers] == (np.round(np.array(numbers), 6) + 0.0).tolist()
    assert all(type(quantize(x)) is float for x in numbers[:10])
    pairs = [(quantize(rng.uniform(0, 12)), rng.choice([quantize(rng.uniform(0, 12)), 1e-6, 0.0]))
             for _ in range(2_000)]  # quantized, as validate_patient reads them
    measures = compute_measures({"upcr": np.array([c for c, _ in pairs]), "upcr_baseline": np.array([b for _, b in pairs]),
                                 "egfr": np.full(len(pairs), np.nan), "egfr_baseline": np.full(len(pairs), np.nan)})
    name = next(m for m, (current, _) in MEASURE_INPUTS.items() if current == "upcr")
    for (current, baseline), expected in zip(pairs, measures[name].tolist()):
        got = validate_patient({"upcr": current, "upcr_baseline": baseline})[name]
        assert (got is None and expected != expected) or got == expected


def test_reading_one_patient_imports_no_numpy():
    import subprocess
    import sys

    code = ("import sys, lupus_rules.facts, lupus_rules.rulebook, lupus_rules.result, lupus_rules.evaluate\n"
            "from lupus_rules.facts import validate_patient\n"
            "validate_patient({'egfr': '40', 'egfr_baseline': '50', 'manifestations': 'nephritis'})\n"
            "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
