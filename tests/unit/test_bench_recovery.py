import pytest

from flowledger.bench_recovery import REFRESHABLE, faults_met, run_classes


def failed(status, error_type, message, credential_id="bench-hubspot"):
    return {"service": "hubspot", "credential_id": credential_id,
            "error": {"type": error_type, "message": message, "status_code": status}}  # fmt: skip


@pytest.mark.parametrize(
    ("failures", "met", "classes"),
    [
        ([], set(), set()),  # not hit
        ([], {"token_expired"}, {REFRESHABLE}),  # refused, refreshed, and the call went through
        ([failed(503, "UpstreamError", "hubspot answered 503")], {"503"}, {"upstream_5xx"}),
        # a 401 to a refreshable credential that was not repaired still counts as repairable: recovery missed it
        ([failed(401, "Unauthorized", "hubspot answered 401: The access token expired")], {"token_expired"},
         {REFRESHABLE}),
        # the token endpoint refused the refresh: a person's, like any credentials failure
        ([failed(401, "CredentialRefreshFailed", "credential 'bench-hubspot' could not be refreshed: 400 "
                 "invalid_grant")], {"401"}, {"credentials"}),
        # a credential the benchmark did not make refreshable
        ([failed(401, "Unauthorized", "invalid_auth", credential_id=None)], {"401"}, {"credentials"}),
    ],
)  # fmt: skip
def test_run_classes(failures, met, classes):
    assert run_classes(failures, met) == classes


def test_faults_met_by_run_from_idempotency_keys():
    by_key = {"bench:rec-1:contact:1": {"token_expired": 1}, "bench:rec-1:log:2": {"503": 2},
              "bench:rec-2:charge:1": {"401": 1}, "not-a-step-key": {"500": 1}}  # fmt: skip
    assert faults_met(by_key) == {"rec-1": {"token_expired", "503"}, "rec-2": {"401"}}
