"""Annotation templates: what Prometheus-style expressions render to, and which are refused."""

import pytest

from domain.annotations import TemplateError, check, humanize, humanize_duration, render

LABELS = {"service": "slack", "workflow": "lead-intake", "count": "1200"}


@pytest.mark.parametrize(
    ("template", "value", "baseline", "expected"),
    [
        ("no template here", 0.5, None, "no template here"),
        ("{{ $value }}", 0.125, None, "0.125"),
        ("{{$value}}", 1 / 3, None, "0.333333"),
        ("{{ $value | humanizePercentage }} fail", 0.125, None, "12.5% fail"),
        ("{{ $value | humanize }} calls", 1234567.0, None, "1.235M calls"),
        ("{{ $value | humanizeDuration }}", 3725.0, None, "1h 2m 5s"),
        ('{{ $value | printf "%.2f" }}', 2.0 / 3, None, "0.67"),
        ('{{ printf "%.0f" $value }} ms', 2316.4, None, "2316 ms"),
        ("p95 {{ $value }} against {{ $baseline }}", 900.0, 300.0, "p95 900 against 300"),
        ("{{ $baseline }}", 900.0, None, ""),  # not learned yet
        ("{{ $labels.service }} in {{ $labels.workflow }}", 1.0, None, "slack in lead-intake"),
        ("{{ $labels.missing }}!", 1.0, None, "!"),
        ("{{ $labels.count | humanize }}", 1.0, None, "1.2k"),
        ("{{ $labels.service | humanize }}", 1.0, None, "slack"),  # not a number: as it is
        ('{{ $labels.service | printf "%.2f" }}', 1.0, None, "slack"),
        ('{{ printf "%s!" $labels.service }}', 1.0, None, "slack!"),
        ("{{ $value }}", None, None, ""),
        ("{{ $nope }} stays", 1.0, None, "{{ $nope }} stays"),  # render never fails; check refuses it
    ],
)
def test_render(template, value, baseline, expected):
    assert render(template, value=value, labels=LABELS, baseline=baseline) == expected


@pytest.mark.parametrize(
    "template",
    [
        "plain",
        "{{ $value }} and {{ $labels.service }}",
        "{{ $value | humanizePercentage }}",
        '{{ printf "%.1f" $baseline }}',
        '{{ $value | printf "%d calls" }}',
    ],
)
def test_check_accepts(template):
    check(template)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{{ $nope }}", "'{{ $nope }}' is not a template"),
        ("{{ .Value }}", "is not a template"),
        ("{{ $value | toUpper }}", "is not a template"),
        ("{{ $labels.service", "unclosed"),
        ("value }}", "stray"),
        ('{{ printf "%.2f %.2f" $value }}', "printf takes one number"),
        ('{{ $value | printf "%q" }}', "printf takes one number"),
    ],
)
def test_check_refuses(template, says):
    with pytest.raises(TemplateError, match=None) as err:
        check(template)
    assert says in str(err.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, "0"), (999.0, "999"), (1000.0, "1k"), (1234567.0, "1.235M"), (-2500.0, "-2.5k"), (0.0042, "4.2m"),
     (0.5, "500m"), (3e-7, "300n"), (float("inf"), "inf")],
)  # fmt: skip
def test_humanize(value, expected):
    assert humanize(value) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.0, "0ms"), (0.25, "250ms"), (1.0, "1s"), (90.0, "1m 30s"), (3600.0, "1h"), (3725.0, "1h 2m 5s"),
     (90061.5, "1d 1h 1m 1.5s"), (-90.0, "-1m 30s")],
)  # fmt: skip
def test_humanize_duration(seconds, expected):
    assert humanize_duration(seconds) == expected
