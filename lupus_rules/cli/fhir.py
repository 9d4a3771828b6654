"""``lupus-rules fhir BUNDLE.json... -o patients.csv``: FHIR R4 bundles -> one row per patient for ``run``.

Exit codes: 0 every bundle read with no invalid resource, 1 some resources were
invalid or unassigned (reported on stderr, the rest still written), 2 unusable
input (missing file, not FHIR JSON, bad mapping, bad --as-of or output path).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ..notice import DISCLAIMER

__all__ = ["register", "iso_date"]


def iso_date(text: str) -> dt.date:
    """An ``argparse`` type: a date YYYY-MM-DD, else a usage error naming the value."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a date YYYY-MM-DD") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fhir`` sub-command."""
    parser = subparsers.add_parser(
        "fhir", help="read FHIR R4 bundles into a patients CSV (facts + provenance) for `run`",
        description="Read FHIR R4 JSON bundles (one or many patients each) and write one row per patient: "
                    "patient_id, every rulebook fact (empty = unknown) and a provenance column (JSON: for "
                    "every fact its resources and elements, or unknown with the reason absent/ambiguous/stale). "
                    "`lupus-rules run` reads the file as it is. Invalid resources are reported and skipped. "
                    "Exit code: 0 all resources read, 1 some were invalid (rest written), 2 unusable input. "
                    + DISCLAIMER)
    parser.add_argument("bundles", type=Path, nargs="+",
                        help="FHIR R4 JSON files (Bundle or one resource), or folders of *.json (e.g. Synthea's "
                             "output/fhir)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="patients file: .csv")
    parser.add_argument("--as-of", type=iso_date, default=None,
                        help="the date facts are read as of (YYYY-MM-DD; default today): months on therapy, "
                             "staleness")
    parser.add_argument("--mapping", type=Path, default=None,
                        help="mapping YAML (default: lupus_rules/fhir/mapping.yaml)")
    parser.set_defaults(func=_fhir)


def _expand(paths: list[Path]) -> list[Path]:
    """Files as given; a folder stands for its ``*.json`` files (sorted); an empty folder is an input error."""
    from ..fhir import BundleError

    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file())
            if not found:
                raise BundleError(f"{path}: a folder with no *.json file")
            out += found
        else:
            out.append(path)
    return out


def _fhir(args: argparse.Namespace) -> int:
    import csv

    from ..evaluate import default_rulebook
    from ..fhir import extract_bundle, load_mapping, patient_row, read_bundle_file, row_columns
    from ..output import atomic_output, check_output_path

    bundles = _expand(args.bundles)
    check_output_path(args.output, suffixes=(".csv",), inputs=bundles)
    rulebook = default_rulebook()
    mapping = load_mapping(args.mapping, rulebook)
    rows, problems = [], []
    for bundle in bundles:
        parsed = read_bundle_file(bundle)
        problems += parsed.problems
        rows += [patient_row(p, rulebook) for p in extract_bundle(parsed, mapping, args.as_of, rulebook)]
    with atomic_output(args.output, suffixes=(".csv",), inputs=bundles) as partial:
        with open(partial, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=row_columns(rulebook))
            writer.writeheader()
            writer.writerows(rows)
    for problem in problems:
        print(f"lupus-rules fhir: skipped: {problem}", file=sys.stderr)
    as_of = (args.as_of or dt.date.today()).isoformat()
    print(f"wrote {len(rows)} patient{'s' if len(rows) != 1 else ''} from {len(bundles)} bundle"
          f"{'s' if len(bundles) != 1 else ''} to {args.output} (as of {as_of}; "
          f"{len(problems)} resource{'s' if len(problems) != 1 else ''} skipped)")
    print(DISCLAIMER)
    return 1 if problems else 0
