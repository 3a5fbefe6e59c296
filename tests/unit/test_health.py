import pytest

from domain.health import (
    ALERTS_WEIGHT,
    ANOMALY_WEIGHT,
    LATENCY_WEIGHT,
    SUCCESS_WEIGHT,
    HealthInputs,
    alert_applies,
    score,
    series_applies,
)


def inputs(**overrides):
    base = {"scope": "workflow", "key": "wf-1", "succeeded": 100, "failed": 0, "p95_ms": 200.0,
            "baseline_p95_ms": 200.0, "windows": 60}  # fmt: skip
    return HealthInputs(**(base | overrides))


def lost(health, name):
    return next(c.points_lost for c in health.components if c.name == name)


def test_weights_add_up_to_100():
    assert SUCCESS_WEIGHT + LATENCY_WEIGHT + ALERTS_WEIGHT + ANOMALY_WEIGHT == 100


def test_perfect_health_is_100_with_every_component_explained():
    health = score(inputs())
    assert (health.score, health.status, health.reason) == (100.0, "healthy", None)
    assert [(c.name, c.points_lost) for c in health.components] == [
        ("success_rate", 0.0), ("latency", 0.0), ("alerts", 0.0), ("anomalies", 0.0)
    ]  # fmt: skip
    assert [c.explanation for c in health.components] == [
        "100.0% of runs succeeded (100 of 100)",
        "p95 200 ms is 1.00x the baseline p95 200 ms",
        "no alert firing",
        "0.0% of series-windows had an anomaly (0 of 60)",
    ]


@pytest.mark.parametrize(
    ("overrides", "component", "points_lost", "total"),
    [
        # success: 40 * failure rate / 0.25
        ({"succeeded": 99, "failed": 1}, "success_rate", 1.6, 98.4),
        ({"succeeded": 1203, "failed": 77}, "success_rate", 9.63, 90.4),  # rounded to 2 decimals
        ({"succeeded": 75, "failed": 25}, "success_rate", 40.0, 60.0),
        ({"succeeded": 10, "failed": 90}, "success_rate", 40.0, 60.0),  # clamped at the weight
        # latency: 20 * (ratio - 1.2) / 1.8, within 0..20
        ({"p95_ms": 100.0}, "latency", 0.0, 100.0),  # faster than baseline: no bonus
        ({"p95_ms": 240.0}, "latency", 0.0, 100.0),  # 1.2x: tolerated
        ({"p95_ms": 420.0}, "latency", 10.0, 90.0),  # 2.1x
        ({"p95_ms": 600.0}, "latency", 20.0, 80.0),  # 3x
        ({"p95_ms": 6000.0}, "latency", 20.0, 80.0),  # 30x: clamped
        ({"baseline_p95_ms": None}, "latency", 0.0, 100.0),  # nothing to compare with
        # alerts: points per severity, at most 25
        ({"firing_alerts": {"low": 1}}, "alerts", 3.0, 97.0),
        ({"firing_alerts": {"medium": 1, "low": 2}}, "alerts", 14.0, 86.0),
        ({"firing_alerts": {"high": 1}}, "alerts", 15.0, 85.0),
        ({"firing_alerts": {"critical": 1}}, "alerts", 25.0, 75.0),
        ({"firing_alerts": {"critical": 3, "high": 2}}, "alerts", 25.0, 75.0),
        ({"firing_alerts": {"weird": 1}}, "alerts", 8.0, 92.0),  # unknown severity counts as medium
        ({"firing_alerts": {"high": 0}}, "alerts", 0.0, 100.0),
        # anomalies: 15 * rate / 0.2
        ({"anomalous_windows": 6, "windows": 60}, "anomalies", 7.5, 92.5),
        ({"anomalous_windows": 12, "windows": 60}, "anomalies", 15.0, 85.0),
        ({"anomalous_windows": 50, "windows": 60}, "anomalies", 15.0, 85.0),
        ({"anomalous_windows": 0, "windows": 0}, "anomalies", 0.0, 100.0),
        ({"anomalous_windows": 3, "windows": 0}, "anomalies", 15.0, 85.0),  # anomalies without windows: all anomalous
    ],
)
def test_each_component_costs_its_share_and_no_more(overrides, component, points_lost, total):
    health = score(inputs(**overrides))
    assert lost(health, component) == pytest.approx(points_lost)
    assert health.score == total
    assert sum(c.points_lost for c in health.components) == pytest.approx(points_lost)


def test_everything_wrong_at_once_is_zero_and_unhealthy():
    health = score(inputs(succeeded=0, failed=10, p95_ms=5000.0, firing_alerts={"critical": 2},
                          anomalous_windows=30, windows=60))  # fmt: skip
    assert (health.score, health.status) == (0.0, "unhealthy")
    assert [c.points_lost for c in health.components] == [40.0, 20.0, 25.0, 15.0]


@pytest.mark.parametrize(
    ("overrides", "status"),
    [({"succeeded": 90, "failed": 10}, "degraded"), ({"succeeded": 80, "failed": 20}, "unhealthy"),
     ({"firing_alerts": {"high": 1}, "p95_ms": 300.0}, "degraded")],
)  # fmt: skip
def test_status_bands(overrides, status):
    assert score(inputs(**overrides)).status == status


@pytest.mark.parametrize(
    ("overrides", "explanations"),
    [
        ({"succeeded": 0, "failed": 0}, {"success_rate": "no runs finished in the period"}),
        ({"p95_ms": None}, {"latency": "no durations in the period"}),
        ({"baseline_p95_ms": None}, {"latency": "p95 200 ms; no baseline to compare with"}),
        ({"windows": 0}, {"anomalies": "no closed metric windows in the period"}),
        ({"firing_alerts": {"low": 1, "critical": 1, "high": 2}},
         {"alerts": "4 alerts firing (1 critical, 2 high, 1 low)"}),
    ],
)  # fmt: skip
def test_explanations_say_what_was_measured_or_missing(overrides, explanations):
    health = score(inputs(**overrides))
    assert {c.name: c.explanation for c in health.components if c.name in explanations} == explanations


def test_no_finished_runs_means_no_score_but_components_still_shown():
    health = score(inputs(succeeded=0, failed=0, p95_ms=None, firing_alerts={"critical": 1}))
    assert (health.score, health.status) == (None, "unknown")
    assert health.reason == "no runs finished in the period: nothing shows that it works"
    assert [c.value for c in health.components] == [None, None, 1.0, 0.0]


def test_service_counts_calls():
    health = score(HealthInputs(scope="service", key="slack", unit="calls", succeeded=88, failed=12))
    assert health.components[0].explanation == "88.0% of calls succeeded (88 of 100)"
    assert health.score == pytest.approx(80.8)


@pytest.mark.parametrize(
    ("labels", "scope", "key", "applies"),
    [
        ({"scope": "workflow", "key": "wf-1"}, "workflow", "wf-1", True),
        ({"scope": "workflow", "key": "wf-10"}, "workflow", "wf-1", False),
        ({"scope": "step", "key": "wf-1/notify"}, "workflow", "wf-1", True),
        ({"scope": "step", "key": "wf-10/notify"}, "workflow", "wf-1", False),
        ({"workflow_id": "wf-1"}, "workflow", "wf-1", True),
        ({"scope": "service", "key": "slack"}, "service", "slack", True),
        ({"service": "slack", "scope": "step", "key": "wf-1/notify"}, "service", "slack", True),
        ({"scope": "service", "key": "slack"}, "workflow", "slack", False),
        ({}, "system", "*", True),
        ({"scope": "service", "key": "asana"}, "system", "*", True),
    ],
)
def test_which_alerts_are_about_a_subject(labels, scope, key, applies):
    assert alert_applies(labels, scope, key) is applies


@pytest.mark.parametrize(
    ("series", "scope", "key", "applies"),
    [
        (("workflow", "wf-1"), "workflow", "wf-1", True),
        (("step", "wf-1/a"), "workflow", "wf-1", True),
        (("step", "wf-1x/a"), "workflow", "wf-1", False),
        (("service", "slack"), "service", "slack", True),
        (("step", "wf-1/slack"), "service", "slack", False),
        (("tenant", "*"), "system", "*", True),
    ],
)
def test_which_series_describe_a_subject(series, scope, key, applies):
    assert series_applies(*series, scope, key) is applies
