"""The regression floors the reports gate on: a figure under its floor, over its ceiling or not
measured at all is named; one that holds is not."""

from __future__ import annotations

from pathlib import Path

from common.floors import FLOORS, Floor, breaches, lookup

REPORT = {"numbers": {"exact_rate": 0.5, "errors": 0},
          "rows": [{"key": "a", "threads": 1, "x": 2.0}, {"key": "a", "threads": 2, "x": 3.0}]}


def test_a_figure_under_its_floor_is_named_with_its_value():
    floor = Floor("numbers.exact_rate", 0.6, 0.65)
    assert floor.breach(REPORT) == ("numbers.exact_rate = 0.5, below its floor 0.6 (measured "
                                    "0.65 on the reference model)")
    assert Floor("numbers.exact_rate", 0.5, 0.65).breach(REPORT) is None  # at the floor holds


def test_a_cost_over_its_ceiling_is_named():
    assert Floor("rows[key=a,threads=2].x", 2.5, 2.0, at_most=True).breach(REPORT) == (
        "rows[key=a,threads=2].x = 3, above its ceiling 2.5 (measured 2 on the reference model)")
    assert Floor("rows[key=a,threads=1].x", 2.5, 2.0, at_most=True).breach(REPORT) is None


def test_a_figure_not_measured_breaks_its_floor():
    for path in ("numbers.missing", "rows[key=b].x", "rows[key=a].x", "numbers.exact_rate.deeper"):
        assert Floor(path, 0.1, 0.2).breach(REPORT) == f"{path}: not measured, floor 0.1", path
    assert Floor("numbers.errors", 0, 0, at_most=True).breach({"numbers": {"errors": None}})
    assert Floor("flag", 0, 0).breach({"flag": True}) == "flag: not measured, floor 0"


def test_a_floor_on_a_part_applies_only_when_the_part_was_measured():
    floor = Floor("gate.mnist.rate", 0.01, 0.005, at_most=True, only_with="gate.present")
    assert floor.breach({"gate": {"present": False}}) is None
    assert floor.breach({}) is None
    assert floor.breach({"gate": {"present": True}}) == (
        "gate.mnist.rate: not measured, ceiling 0.01")
    assert floor.breach({"gate": {"present": True, "mnist": {"rate": 0.02}}}) == (
        "gate.mnist.rate = 0.02, above its ceiling 0.01 (measured 0.005 on the reference model)")


def test_floors_hold_mnist_reports_and_not_another_datasets():
    empty = {"full_run": True, "pairs": []}     # every parity floor: not measured
    assert len(breaches("parity", empty)) == len(FLOORS["parity"])
    assert breaches("parity", {**empty, "dataset": {"name": "MNIST"}}) == breaches("parity", empty)
    assert breaches("parity", {**empty, "dataset": {"name": "Fashion-MNIST"}}) == []


def test_lookup_selects_the_one_matching_row():
    assert lookup(REPORT, "rows[key=a,threads=2].x") == 3.0
    assert lookup(REPORT, "rows[key=a].x") is None  # two rows match: ambiguous


def test_every_report_floor_names_a_report_ci_runs():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    targets = {"reader": "reader-report", "pi": "pi-check"}
    assert all(f"make {targets.get(report, report)}" in ci for report in FLOORS)
    assert all(f.at_most or f.limit <= f.measured for floors in FLOORS.values() for f in floors)
    assert all(not f.at_most or f.limit >= f.measured for floors in FLOORS.values() for f in floors)
    # an empty report breaks every floor; those on a part (the gate) once the part is measured
    always = [f for f in FLOORS["reader"] if f.only_with is None]
    assert breaches("reader", {}) and len(breaches("reader", {})) == len(always)
    assert len(breaches("reader", {"gate": {"present": True}})) == len(FLOORS["reader"])
