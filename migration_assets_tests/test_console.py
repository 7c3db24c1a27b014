"""The console's pure parts: progress lines read back, exit statuses, the error table (for
errors raised here and as Dagster records a failed step) and the warnings operators never see."""

from __future__ import annotations

import traceback
import warnings

import dagster as dg
import pytest
from dagster_shared.error import SerializableErrorInfo

from migration_assets.console.errors import REMEDIES, UNKNOWN_NEXT, explain_exception, explain_recorded
from migration_assets.console.exits import Exit, for_checks, worst
from migration_assets.factory.metadata import LoadProgress, progress_line, read_progress_line
from migration_assets.orchestration.launch import silence_dagster_warnings
from migration_assets.source.documents import SourceUnavailable
from migration_assets.target.conformance import Mismatch, SchemaMismatch

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("docs, total, rows, quarantined, rate", [
    (120000, 480000, 240000, 3, 9800.4), (10, None, 12, 1, 0.0), (0, 5, 0, 0, 0.0), (7, 7, 9, 0, 1463.0)])
def test_progress_lines_read_back(docs, total, rows, quarantined, rate):
    line = progress_line("funds_ledger_entries", docs, total, rows, quarantined, rate)
    assert read_progress_line(line) == LoadProgress("funds_ledger_entries", docs, total, rows, quarantined,
                                                    float(round(rate)))


@pytest.mark.parametrize("line", [
    "users: 60 documents in mongodb://127.0.0.1:27117/ database marketplace -> postgresql://postgres@127.0.0.1/m",
    "users: 60 read, 60 loaded, 0 quarantined in 0.05s",
    "users: waiting for the load lock (another run is loading these tables): held by backend pid 7",
])
def test_other_log_lines_are_not_progress(line):
    assert read_progress_line(line) is None


def test_exit_statuses():
    assert for_checks([]) == Exit.OK and for_checks(["WARN", "WARN"]) == Exit.WARNINGS
    assert for_checks(["WARN", "ERROR"]) == Exit.FAILED and for_checks([], run_failed=True) == Exit.FAILED
    assert worst([]) == Exit.OK and worst([0, 3, 0]) == Exit.WARNINGS and worst([3, 1, 0]) == Exit.FAILED
    assert worst([1, 2]) == Exit.USAGE


def recorded(exc: BaseException, cause: SerializableErrorInfo | None = None) -> SerializableErrorInfo:
    """``exc`` as Dagster records it: ``module.Class: message`` and the class name."""
    return SerializableErrorInfo("".join(traceback.format_exception_only(type(exc), exc)), [], type(exc).__name__, cause)


def in_a_step(exc: BaseException) -> SerializableErrorInfo:
    wrapper = dg.DagsterExecutionStepExecutionError
    return SerializableErrorInfo(f'{wrapper.__module__}.{wrapper.__name__}: Error occurred while executing op "load_x":\n',
                                 [], wrapper.__name__, recorded(exc))


CASES = [(remedy, kind) for remedy in REMEDIES for kind in remedy.errors if kind is not dg.DagsterInvalidConfigError]


@pytest.mark.parametrize("remedy, kind", CASES, ids=[k.__name__ for _, k in CASES])
def test_every_remedy_answers_its_errors_raised_or_recorded(remedy, kind):
    if kind is SchemaMismatch:  # built from the mismatches it names
        exc = SchemaMismatch([Mismatch("users", "column email", "text", "absent")])
        text = str(exc)
    else:
        exc = kind('relation "migration.load_checkpoints" does not exist\nLINE 1: SELECT ...')
        text = 'relation "migration.load_checkpoints" does not exist'
    raised = explain_exception(exc, "migrate")
    assert (raised.text, raised.next_step, raised.status) == (text, remedy.next_step, remedy.status)
    assert raised.line == f"error: migrate: {raised.text}; next: {remedy.next_step}"
    step = explain_recorded(in_a_step(exc), "migrate_auth load_x")
    assert (step.text, step.next_step, step.status) == (raised.text, remedy.next_step, remedy.status)


def unreachable_mongo_under(wrapper: str) -> RuntimeError:
    """A RuntimeError raised from an unreachable Mongo (its ``__cause__``), tracebacks and all."""
    try:
        try:
            raise SourceUnavailable("MongoDB at mongodb://db:27017/ is unreachable: refused")
        except SourceUnavailable as inner:
            raise RuntimeError(wrapper) from inner
    except RuntimeError as exc:
        return exc


def test_the_cause_of_a_wrapper_is_found():
    e = explain_exception(unreachable_mongo_under("while loading users"), "diff")
    assert e.text.startswith("MongoDB at mongodb://db:27017/") and "MONGODB_URI" in e.next_step


def test_an_unknown_error_names_its_innermost_class():
    e = explain_exception(KeyError("users"), "status")
    assert (e.text, e.next_step, e.status) == ("KeyError: 'users'", UNKNOWN_NEXT, Exit.FAILED)
    step = explain_recorded(in_a_step(ZeroDivisionError("division by zero")), "verify_auth checks_users")
    assert step.text == "ZeroDivisionError: division by zero" and "--debug" in step.next_step


class Workers(dg.ConfigurableResource):
    workers: int


def test_a_config_error_names_the_setting(monkeypatch):
    monkeypatch.setenv("MA_TEST_WORKERS", "many")
    with pytest.raises(dg.DagsterInvalidConfigError) as err:
        with dg.build_resources({"w": Workers(workers=dg.EnvVar.int("MA_TEST_WORKERS"))}):
            pass
    e = explain_exception(err.value, "verify")
    assert e.text == 'Value stored in env variable "MA_TEST_WORKERS" cannot be coerced into an int.'
    assert e.status == Exit.FAILED and "scripts/env.sh" in e.next_step


def test_only_dagsters_beta_and_preview_warnings_are_silenced():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        silence_dagster_warnings()
        warnings.warn("beta", dg.BetaWarning)
        warnings.warn("preview", dg.PreviewWarning)
        warnings.warn("kept", DeprecationWarning)
        warnings.warn("kept too", UserWarning)
    assert [str(w.message) for w in seen] == ["kept", "kept too"]


# --- lines that tell the truth -----------------------------------------------------------------

def asset(steps: set[str], *, checks: dict[str, bool] | None = None, materialized: bool = True):
    from migration_assets.console.progress import AssetState, CheckResult

    a = AssetState("public/delivery_attempts", steps=steps, planned=True,
                   checks_planned=list(checks or {}), metadata={"rows_loaded": 64, "duration_s": 0.2}
                   if materialized else None)
    a.checks = {n: CheckResult(n, ok, "ERROR") for n, ok in (checks or {}).items()}
    return a


def failed_run(*steps: str):
    from migration_assets.console.progress import RunState, StepFailure

    run = RunState("r", "migrate_marketplace")
    run.failures = [StepFailure(s, SerializableErrorInfo("boom", [], "RuntimeError")) for s in steps]
    return run


def test_a_table_whose_checks_passed_is_never_failed():
    from migration_assets.console.render import asset_verdict, describe

    # its own load step failed after writing it and passing all its checks (another table's check failed)
    passed = asset({"load_purchase_requests"}, checks={"row_count_parity": True, "checksum_parity": True})
    run = failed_run("load_purchase_requests")
    assert asset_verdict(passed, run) == "ok"
    # never ran: another step failed first
    never = asset({"load_purchase_requests.finish_purchase_requests", "checks_purchase_requests"},
                  checks={"row_count_parity": True}, materialized=False)
    never.checks = {}
    assert asset_verdict(never, failed_run("load_purchase_requests.load_purchase_requests_range[range_0]")) == "NOT RUN"
    assert describe(never, failed_run("load_purchase_requests.load_purchase_requests_range[range_0]")) == \
        "not run: load_purchase_requests.load_purchase_requests_range[range_0] failed"
    # written, its checks cut short by its step's failure: that is a failure, and it says why
    cut = asset({"load_purchase_requests"}, checks={"row_count_parity": True, "checksum_parity": True})
    cut.checks.pop("checksum_parity")
    assert asset_verdict(cut, run) == "FAILED"
    assert "1 not run: load_purchase_requests failed" in describe(cut, run)
    # an ERROR check of its own fails it, whatever else happened
    bad = asset({"load_x"}, checks={"checksum_parity": False})
    assert asset_verdict(bad, failed_run()) == "FAILED"


def test_a_resumed_ranged_load_says_how_it_was_taken_up():
    from migration_assets.load.ranged import LANDED
    from migration_assets.load.report import LoadReport, merge_reports

    landed = LoadReport("users", docs_read=100_000, docs_before=100_000, resumed_from=LANDED)
    fresh = LoadReport("users", docs_read=50_000)
    mid = LoadReport("users", docs_read=70_000, docs_before=20_000, resumed_from="65f0")
    assert merge_reports("users", [landed, fresh], resumed=True).resumed_from == \
        "1 of 2 range(s) had landed, 0 resumed mid-range; 100000 documents committed before this run"
    assert merge_reports("users", [landed, mid, fresh], resumed=True).resumed_from == \
        "1 of 3 range(s) had landed, 1 resumed mid-range; 120000 documents committed before this run"
    assert merge_reports("users", [mid]).resumed_from == "65f0"  # one range mid-way: its position
    assert merge_reports("users", [fresh, fresh]).resumed_from is None


def test_an_error_raised_in_the_run_worker_is_explained_as_if_raised_here():
    import pickle

    from migration_assets.orchestration.launch import RunNotStarted

    outer = unreachable_mongo_under("while starting the run")
    crossed = pickle.loads(pickle.dumps(RunNotStarted.of(outer)))
    explained = explain_exception(crossed, "migrate")
    assert explained.text == "MongoDB at mongodb://db:27017/ is unreachable: refused"
    assert explained.next_step == next(r for r in REMEDIES if SourceUnavailable in r.errors).next_step


def test_a_failed_census_names_its_unmapped_paths():
    from migration_assets.console.progress import CheckResult
    from migration_assets.console.render import describe

    a = asset({"load_users"}, checks={"fields_accounted_for": False})
    a.checks["fields_accounted_for"] = CheckResult(
        "fields_accounted_for", False, "ERROR",
        "unmapped: nickname (1 documents), passkeys[].aaguid (3 documents)")
    line = describe(a, failed_run())
    assert "failed: fields_accounted_for (ERROR: unmapped: nickname (1 documents), passkeys[].aaguid (3 documents))" \
        in line, line
