from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from heisen.manifest import RunManifest
from heisen.report import junit


def _parse(manifest: RunManifest, tmp_path: Path) -> ET.Element:
    written = junit.write(manifest, tmp_path)
    assert written == Path("junit.xml")
    return ET.parse(tmp_path / written).getroot()


def _suite(root: ET.Element, phase: str) -> ET.Element:
    suite = root.find(f"testsuite[@name='heisen.{phase}']")
    assert suite is not None, phase
    return suite


def test_failed_run_has_a_suite_per_phase_and_a_case_per_invariant(
    failed_run: RunManifest, tmp_path: Path
) -> None:
    root = _parse(failed_run, tmp_path)
    assert [s.get("name") for s in root] == [f"heisen.{p}" for p in failed_run.phases]
    stress = _suite(root, "stress")
    cases = {c.get("name"): c for c in stress.iter("testcase")}
    assert set(cases) == {"no-oversell", "reads-linearizable", "threshold: p99 < 250ms"}
    assert (stress.get("tests"), stress.get("failures"), stress.get("errors")) == ("3", "2", "0")
    failure = cases["no-oversell"].find("failure")
    assert failure is not None
    assert failure.get("message") == "trial 2: sold <= capacity violated (sold=101, capacity=100)"
    assert "violating trials: 2, 5, 8" in (failure.text or "")
    assert "replay: heisen stress examples/ticketing/pipeline.yaml --seed 7" in (failure.text or "")
    history = cases["reads-linearizable"].find("failure")
    assert (
        history is not None
        and "p3 |" in (history.text or "")
        and '"f": "read"' in (history.text or "")
    )
    assert cases["threshold: p99 < 250ms"].find("failure") is None
    chaos = _suite(root, "chaos")
    assert (chaos.get("tests"), chaos.get("failures")) == ("2", "0")


def test_each_fuzz_failure_is_a_failing_case_and_totals_add_up(
    failed_run: RunManifest, tmp_path: Path
) -> None:
    root = _parse(failed_run, tmp_path)
    fuzz = _suite(root, "fuzz")
    assert [c.get("name") for c in fuzz.iter("testcase")] == [
        'fuzz: {"seat": "<script>"} → status 500 on POST /hold',  # no label: the shrunk payload
        'fuzz: {"qty": 99999999999} → connection reset',
    ]
    first = fuzz.find("testcase/failure")
    assert first is not None and "<script>alert('pwned')</script>" in (first.text or "")
    assert "\\x01" in (first.text or "")  # a control character XML 1.0 forbids, kept visible
    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key, "-1")) == sum(int(s.get(key, "0")) for s in root)
    assert root.get("failures") == "6"


def test_passed_run_has_no_failures(passed_run: RunManifest, tmp_path: Path) -> None:
    root = _parse(passed_run, tmp_path)
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "2",
        "0",
        "0",
        "0",
    )
    assert [c.get("name") for c in _suite(root, "fuzz").iter("testcase")] == ["100 cases"]


def test_skipped_pending_and_error_phases(partial_run: RunManifest, tmp_path: Path) -> None:
    root = _parse(partial_run, tmp_path)
    stress = _suite(root, "stress")
    errors = stress.findall("testcase/error")
    assert len(errors) == 2 and stress.get("errors") == "2"
    assert errors[0].get("type") == "SystemUnavailable"
    assert "\\x1b" in (errors[0].get("message") or "")
    skipped = _suite(root, "contain").find("testcase/skipped")
    assert skipped is not None and "cgroup" in (skipped.get("message") or "")
    pending = _suite(root, "chaos").find("testcase/skipped")
    assert pending is not None and pending.get("message") == "not run: the run ended error"
    assert _suite(root, "predict").get("skipped") == "1"


def test_clean_replaces_every_character_xml_forbids() -> None:
    hostile = "".join(chr(c) for c in range(32)) + "\ufffe\uffff ok"
    cleaned = junit.clean(hostile)
    element = ET.Element("x", a=cleaned)
    element.text = cleaned
    ET.fromstring(ET.tostring(element))
    assert cleaned.endswith(" ok") and all(c in cleaned for c in "\t\n\r") and "\\ufffe" in cleaned


def test_an_invariant_that_could_not_be_evaluated_is_an_error_not_a_pass(
    error_run: RunManifest, tmp_path: Path
) -> None:
    root = _parse(error_run, tmp_path)
    stress = _suite(root, "stress")
    cases = {c.get("name"): c for c in stress.iter("testcase")}
    error = cases["no-oversell"].find("error")
    assert error is not None and cases["no-oversell"].find("failure") is None
    assert error.get("type") == "NotEvaluated"
    assert error.get("message") == (
        "trial 3: no-oversell could not be evaluated (pipeline error): unknown name 'valu' in "
        "expect 'valu <= capacity' (the probe gave: sold, capacity)"
    )
    assert "the pipeline is at fault (exit 2)" in (error.text or "")
    assert list(cases["stock-nonnegative"]) == []  # evaluated in every trial that ran: it held
    assert (stress.get("tests"), stress.get("errors"), stress.get("failures")) == ("2", "1", "0")
    assert root.find(".//failure") is None and root.get("errors") == "1"


def test_environment_errors_name_every_trial(
    environment_error_run: RunManifest, tmp_path: Path
) -> None:
    chaos = _suite(_parse(environment_error_run, tmp_path), "chaos")
    error = chaos.find("testcase[@name='holds-expire']/error")
    assert error is not None
    text = error.text or ""
    assert "trial 4: holds-expire could not be evaluated (environment error)" in text
    assert "trial 5: holds-expire" in text and "connection refused <Error 111>" in text
    assert "the environment is at fault (exit 3)" in text


def test_an_inconclusive_phase_skips_its_cases_with_the_reason(
    inconclusive_run: RunManifest, tmp_path: Path
) -> None:
    root = _parse(inconclusive_run, tmp_path)
    contain = _suite(root, "contain")
    reason = "0 throttled periods in 6 trials: the CPU limit never acted"
    skipped = contain.findall("testcase/skipped")
    assert [s.get("message") for s in skipped] == [f"inconclusive: {reason}"] * 2
    assert contain.get("skipped") == "2" and contain.get("failures") == "0"
    properties = {p.get("name"): p.get("value") for p in contain.iter("property")}
    assert properties["status"] == "inconclusive" and properties["inconclusive_reason"] == reason
    assert _suite(root, "stress").find("testcase/skipped") is None


def test_bounds_are_suite_properties_in_words(bound_run: RunManifest, tmp_path: Path) -> None:
    root = _parse(bound_run, tmp_path)
    bounds = {
        s.get("name"): s.find("properties/property[@name='bound']").get("value")  # type: ignore[union-attr]
        for s in root
    }
    assert bounds["heisen.stress"] == (
        "violation rate below 1% with 95% confidence (0 violations in 299 trials); 24.1 trials/s"
    )
    assert (bounds["heisen.isolate"] or "").startswith(
        "not proven: 120 trials ran in the 5m budget; the rate is below 2.5% at 95% confidence"
    )


def test_failure_text_holds_the_compared_values(failed_run: RunManifest, tmp_path: Path) -> None:
    root = _parse(failed_run, tmp_path)
    stress = _suite(root, "stress").find("testcase[@name='no-oversell']/failure")
    assert stress is not None
    assert (stress.text or "").splitlines()[1] == "evidence: sold=101, capacity=100"
    contain = _suite(root, "contain").find("testcase[@name='no-oversell']/failure")
    assert contain is not None and (
        'evidence: body.sold=109, load.checkout.ok=100, body.event="<b>gala</b> [/]"'
        in (contain.text or "")
    )


def test_one_readable_case_per_distinct_fuzz_failure(
    chaos_fuzz_run: RunManifest, tmp_path: Path
) -> None:
    fuzz = _suite(_parse(chaos_fuzz_run, tmp_path), "fuzz")
    cases = {c.get("name"): c for c in fuzz.iter("testcase")}
    assert list(cases) == [
        "fuzz: qty: 0 (one below the minimum) → response not as documented (201)",
        "fuzz: user: null + body: empty object + user: NUL byte → 500",
        "fuzz: qty: 2147483648 (int32 max + 1) → 500",
        "fuzz: qty: -1 (minus one) → response not as documented (201)",
    ]  # six failures, two of them the same bug as another: four cases, no hash for a name
    assert fuzz.get("tests") == "4" and fuzz.get("failures") == "4"
    overflow = cases["fuzz: qty: 2147483648 (int32 max + 1) → 500"].find("failure")
    assert overflow is not None and "integer out of range" in (overflow.get("message") or "")
    assert "10ab2c8485d945cb: qty: NaN" in (overflow.text or "")  # the duplicate, listed under it


def test_a_breached_threshold_is_one_failing_case(
    chaos_fuzz_run: RunManifest, tmp_path: Path
) -> None:
    stress = _suite(_parse(chaos_fuzz_run, tmp_path), "stress")
    names = [c.get("name") for c in stress.iter("testcase")]
    assert names.count("threshold: p99 < 10ms") == 1 and "threshold" not in names
    breached = [c for c in stress.iter("testcase") if c.get("name", "").startswith("threshold")]
    failure = breached[0].find("failure")
    assert failure is not None and "observed 30.006" in (failure.get("message") or "")


def test_a_skipped_phase_is_one_skipped_case_named_after_it(
    chaos_fuzz_run: RunManifest, tmp_path: Path
) -> None:
    contain = _suite(_parse(chaos_fuzz_run, tmp_path), "contain")
    cases = list(contain.iter("testcase"))
    assert [c.get("name") for c in cases] == ["contain"]
    skipped = cases[0].find("skipped")
    assert skipped is not None and "cgroup" in (skipped.get("message") or "")
    assert (contain.get("tests"), contain.get("skipped")) == ("1", "1")
