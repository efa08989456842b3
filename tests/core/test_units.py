import pytest

from heisen._units import parse_cpu, parse_duration, parse_memory


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("250us", 0.00025),
        (3, 3.0),
        ("1.5s", 1.5),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5 parsecs", "ms", "-1s", "1d", ""])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "cores"), [("250m", 0.25), ("1.5", 1.5), ("2", 2.0), (1, 1.0)])
def test_cpu(text, cores):
    assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize("text", ["250x", "0", "-1", "m"])
def test_bad_cpu(text):
    with pytest.raises(ValueError):
        parse_cpu(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("256Mi", 256 * 1024**2), ("1Gi", 1024**3), ("500M", 500 * 1000**2), (1024, 1024)],
)
def test_memory(text, size):
    assert parse_memory(text) == size


def test_bad_memory():
    with pytest.raises(ValueError, match="256Mi"):
        parse_memory("lots")


@pytest.mark.parametrize(
    "value", [float("inf"), float("nan"), 10**400, "9" * 400 + "s", -1.0, "-1s"]
)
def test_durations_are_finite_and_not_negative(value):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 10**400])
def test_cpu_is_finite(value):
    with pytest.raises(ValueError, match="CPU"):
        parse_cpu(value)


def test_ranges_say_what_they_allow_and_why():
    from heisen.schema import limits as _limits

    with pytest.raises(ValueError, match=r"10m to 1024 \(got 1m\); the kernel's CFS"):
        _limits.CPU.check(parse_cpu("1m"))
    with pytest.raises(ValueError, match=r"1ms to 24h \(got 0s\)"):
        _limits.DURATION.check(0.0)
    with pytest.raises(ValueError, match="finite"):
        _limits.MIX_WEIGHT.check(float("nan"))
    assert _limits.OFFSET.check(0.0) == 0.0
    assert _limits.DURATION.check(24 * 3600.0) == 24 * 3600.0
