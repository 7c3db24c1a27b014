"""Cutover readiness of one domain: GO or NO-GO, with the evidence an auditor can re-check.

GO needs all of:

* every check of the domain's tables passed in each of its last N executions;
* no open ``pg_dualwrite_gaps`` row for the domain's entities;
* a random sample of root documents reads the same from Mongo and from PostgreSQL: the
  canonical rows computed from the source document (Python) equal the canonical rows
  PostgreSQL returns for that document (SQL), for every table the collection feeds.

It also says which application flags to set (the seed's ``REPO_*`` / ``*_STORE``
variables: ``dual`` first, then ``pg``) and how to roll the domain back. The Dagster asset
(``defs/cutover_readiness.py``) gathers the check history from the instance and calls this module.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psycopg
from bson import ObjectId

from migration_assets.markdown import md_table
from migration_assets.source.documents import Source, decode, raw_key
from migration_assets.specs.model import LoaderSpec
from migration_assets.specs.registry import loader_for_entity
from migration_assets.target.bookkeeping import Acknowledgement
from migration_assets.target.gaps import open_gap_counts
from migration_assets.transform.context import prepare_context
from migration_assets.verify.acknowledged import held_acknowledgements
from migration_assets.verify.canonical import expected_rows, table_sql
from migration_assets.verify.outcomes import PASSED
from migration_assets.verify.quarantined import QuarantineIndex

GO, NO_GO = "GO", "NO-GO"

# --- the application's flags (from the seed's runtime cutover status) -------------------

# Aliases the backend accepts for the same switch.
FLAG_ALIASES = {
    "DISPUTE_STORE": "REPO_DISPUTE",
    "BLOG_STORE": "REPO_BLOG",
    "CHAT_STORE": "REPO_CHAT",
    "RELEASE_HOLD_STORE": "REPO_RELEASE_HOLD",
    "NOTIFICATION_STORE": "REPO_NOTIFICATION",
    "LEVEL_STORE": "LEVEL_CONFIG_STORE",
}

# Known caveats of individual flags (application side; they do not change the data verdict).
FLAG_NOTES = {
    "REPO_PAYMENT": "Funds-ledger appends and balance reads follow this flag; most payment services still "
                    "read Mongoose directly, so keep broad payment runtime off `pg` until those reads are routed.",
    "REPO_CHAT": "No dual-write wrapper in the backend: `dual` does not write PostgreSQL. Switch reads "
                 "only after the backend's DualWriteChatRepo exists.",
    "REPO_RELEASE_HOLD": "No dual-write wrapper: `dual` silently uses Mongo. Flip to `pg` explicitly.",
    "AUTH_STORE": "Store facade: PostgreSQL mode mirrors writes back to Mongo via legacy_object_id.",
    "CONFIG_STORE": "Store facade: PostgreSQL mode mirrors writes back to Mongo.",
    "CATEGORY_STORE": "Store facade: PostgreSQL mode mirrors writes back to Mongo.",
}

NO_DUAL_STAGE = {"REPO_CHAT", "REPO_RELEASE_HOLD"}


@dataclass(frozen=True)
class FlagStep:
    flag: str
    dual: str | None  # value during the dual-write soak (None: this flag has no dual stage)
    cutover: str  # value that moves reads to PostgreSQL
    rollback: str | None  # value that puts reads back on Mongo (None: leave as it is)
    note: str = ""
    aliases: tuple[str, ...] = ()  # other names the backend reads for the same switch

    def show(self, value: str) -> str:
        also = f" (same switch: {', '.join(self.aliases)})" if self.aliases else ""
        return f"`{self.flag}={value}`{also}"


# Switches that are not store selectors.
SPECIAL_FLAGS = {
    "ORACLE_QUOTING_ENABLED": FlagStep(
        "ORACLE_QUOTING_ENABLED", "true", "true", None,
        "Feature switch, not a store: `true` computes quotes server-side and writes payment_quotes to "
        "PostgreSQL (mirrored to Mongo Payment.quote). Rolling reads back does not need it off."),
}


def flag_step(flag: str) -> FlagStep:
    """Values for one flag. ``REPO_*``: mongo -> dual -> pg. ``*_STORE`` facades: mongo ->
    postgres (they mirror writes back to Mongo, there is no dual stage)."""
    if flag in SPECIAL_FLAGS:
        return SPECIAL_FLAGS[flag]
    canonical = FLAG_ALIASES.get(flag, flag)
    note = FLAG_NOTES.get(canonical, "")
    if canonical.startswith("REPO_"):
        if canonical in NO_DUAL_STAGE:
            return FlagStep(flag, None, "pg", "mongo", note)
        return FlagStep(flag, "dual", "pg", "dual", note)
    return FlagStep(flag, None, "postgres", "mongo", note or "Store facade: no dual stage.")


def domain_flags(loaders: Iterable[LoaderSpec]) -> list[str]:
    seen: list[str] = []
    for l in loaders:
        for f in l.flags:
            if f not in seen:
                seen.append(f)
    return seen


def flag_steps(flags: Iterable[str]) -> list[FlagStep]:
    """One step per switch: aliases of a switch (``CHAT_STORE`` for ``REPO_CHAT``) join it."""
    steps: dict[str, FlagStep] = {}
    for f in flags:
        canonical = FLAG_ALIASES.get(f, f)
        if canonical in steps:
            s = steps[canonical]
            steps[canonical] = FlagStep(s.flag, s.dual, s.cutover, s.rollback, s.note, s.aliases + (f,))
        else:
            steps[canonical] = flag_step(f)
    return list(steps.values())


# --- check history ------------------------------------------------------------------------

@dataclass
class CheckHistory:
    """One check's most recent outcomes, newest first: ``passed``, ``failed (ERROR)``,
    ``failed (WARN)``, ``skipped``."""

    asset: str
    check: str
    outcomes: list[str] = field(default_factory=list)

    def green(self, runs: int) -> bool:
        return len(self.outcomes) >= runs and all(o == PASSED for o in self.outcomes[:runs])

    def why_not(self, runs: int) -> str:
        recent = self.outcomes[:runs]
        if len(recent) < runs:
            return f"{len(recent)} of {runs} required executions" + (f" ({', '.join(recent)})" if recent else "")
        return "last runs: " + ", ".join(recent)


# --- dual-write gaps ----------------------------------------------------------------------

def domain_gaps(conn: psycopg.Connection, loaders: Sequence[LoaderSpec]) -> dict[str, int]:
    """Open dual-write gaps of these loaders, by entity as the application wrote it (the
    one entity resolver, ``specs.registry.loader_for_entity``, says whose a gap is)."""
    names = {l.name for l in loaders}
    return {entity: n for entity, n in open_gap_counts(conn).items()
            if (hit := loader_for_entity(entity)) is not None and hit[0].name in names}


# --- sampled read comparison ------------------------------------------------------------

@dataclass
class SampleDifference:
    table: str
    row: str  # document _id | row identity
    kind: str  # missing in PostgreSQL / extra in PostgreSQL / changed
    columns: tuple[str, ...] = ()


@dataclass
class SampleResult:
    loader: str
    collection: str
    documents: int = 0
    rows: int = 0
    skipped_quarantined: int = 0
    skipped_acknowledged: int = 0  # acknowledged ledger conflicts
    differences: list[SampleDifference] = field(default_factory=list)


def sample_ids(source: Source, conn: psycopg.Connection, loader: LoaderSpec, k: int, rng: random.Random) -> list[str]:
    """Up to ``k`` random documents from the source (catches rows PostgreSQL lacks) plus up
    to ``k`` random rows from PostgreSQL (catches rows the source no longer has)."""
    reservoir: list[str] = []
    for i, h in enumerate(source.iter_ids(loader.collection)):
        if i < k:
            reservoir.append(h)
        else:
            j = rng.randrange(i + 1)
            if j < k:
                reservoir[j] = h
    salt = f"{rng.random():.17f}"
    from_pg = [r[0] for r in conn.execute(
        f"SELECT legacy_object_id FROM public.{loader.root.table} ORDER BY md5(legacy_object_id || %s) LIMIT %s",
        [salt, k]).fetchall()]
    return sorted(set(reservoir) | set(from_pg))


def compare_documents(loader: LoaderSpec, source: Source, conn: psycopg.Connection, ids: Sequence[str],
                      *, limit: int = 50) -> SampleResult:
    """Reads ``ids`` from both sides and compares every table's canonical rows."""
    result = SampleResult(loader.name, loader.collection)
    qindex = QuarantineIndex(conn, loader.name)
    quarantined = qindex.ids()
    wanted = [h for h in ids if h not in quarantined]
    result.skipped_quarantined = len(ids) - len(wanted)
    acknowledged = held_acknowledgements(loader, source, conn)  # listed in the evidence apart
    result.skipped_acknowledged = sum(1 for h in wanted if h in acknowledged)
    wanted = [h for h in wanted if h not in acknowledged]
    ctx = prepare_context(loader, source)
    docs: dict[str, Mapping] = {}
    object_ids = [ObjectId(h) for h in wanted if ObjectId.is_valid(h)]
    for raw in source.find_by_ids(loader.collection, object_ids) if object_ids else ():
        key = raw_key(raw)
        if key not in docs:  # a duplicated _id: the first occurrence is the one that loaded
            docs[key] = decode(raw)
    result.documents = len(wanted)
    for t in loader.tables:
        src: dict[str, list[str]] = {}
        for doc in docs.values():
            for row in expected_rows(loader, t, doc, ctx):
                src[f"{row.root_key}|{row.identity}"] = row.values
        tsql = table_sql(t)
        sql = (f"SELECT {tsql.key_expr}, {tsql.identity_expr}, ARRAY[{', '.join(tsql.column_exprs)}]::text[] "
               f"FROM {tsql.from_sql} WHERE {tsql.key_expr} = ANY(%s)")
        tgt = {f"{k}|{ident}": list(vals) for k, ident, vals in conn.execute(sql, [list(wanted)]).fetchall()}
        names = [c.name for c in t.hashed_columns]
        result.rows += len(src.keys() | tgt.keys())
        diffs = [SampleDifference(t.table, k, "missing in PostgreSQL") for k in sorted(src.keys() - tgt.keys())]
        diffs += [SampleDifference(t.table, k, "extra in PostgreSQL") for k in sorted(tgt.keys() - src.keys())]
        diffs += [SampleDifference(t.table, k, "changed", tuple(n for n, a, b in zip(names, src[k], tgt[k]) if a != b))
                  for k in sorted(src.keys() & tgt.keys()) if src[k] != tgt[k]]
        result.differences.extend(diffs[: max(0, limit - len(result.differences))])
    return result


def sample_loader(loader: LoaderSpec, source: Source, conn: psycopg.Connection, k: int, rng: random.Random) -> SampleResult:
    return compare_documents(loader, source, conn, sample_ids(source, conn, loader, k, rng))


# --- the verdict ----------------------------------------------------------------------------

@dataclass
class Readiness:
    domain: str
    runs_required: int
    tables: list[str]
    checks: list[CheckHistory]
    gaps: dict[str, int]
    samples: list[SampleResult]
    flags: list[FlagStep]
    # Ledger conflicts an auditor accepted: they block nothing and stay in the evidence.
    acknowledged: dict[str, Acknowledgement] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        """Why the domain is not ready (empty means GO)."""
        out = []
        if not self.tables:
            out.append(f"no tables of domain {self.domain} are migrated yet")
        if self.tables and not self.checks:
            out.append("no checks are defined for the domain's tables")
        young = []  # passed every time, but not yet N times
        for c in self.checks:
            if c.green(self.runs_required):
                continue
            if all(o == PASSED for o in c.outcomes):
                young.append(c)
            else:
                out.append(f"{c.asset} {c.check}: {c.why_not(self.runs_required)}")
        if young:
            fewest = min(len(c.outcomes) for c in young)
            out.append(f"{len(young)} check(s) passed every execution so far but have fewer than "
                       f"{self.runs_required} (fewest: {fewest}); run verify_{self.domain} again or wait "
                       f"for the hourly verification")
        if self.gaps:
            out.append(f"{sum(self.gaps.values())} open dual-write gap(s): "
                       + ", ".join(f"{e}={n}" for e, n in sorted(self.gaps.items())))
        for s in self.samples:
            if s.differences:
                out.append(f"{s.collection}: {len(s.differences)} difference(s) in {s.documents} sampled documents")
        return out

    @property
    def go(self) -> bool:
        return not self.reasons

    @property
    def verdict(self) -> str:
        return GO if self.go else NO_GO

    @property
    def green_checks(self) -> int:
        return sum(1 for c in self.checks if c.green(self.runs_required))

    @property
    def sample_differences(self) -> int:
        return sum(len(s.differences) for s in self.samples)


def render_checks(r: Readiness) -> str:
    rows = [(c.asset, c.check, "yes" if c.green(r.runs_required) else "NO", ", ".join(c.outcomes[: r.runs_required]) or "never run")
            for c in r.checks]
    return md_table(["asset", "check", f"green in last {r.runs_required}", "outcomes (newest first)"], rows)


def render_samples(r: Readiness) -> str:
    head = md_table(["collection", "documents read on both sides", "rows compared", "quarantined (skipped)", "differences"],
                    [(s.collection, s.documents, s.rows, s.skipped_quarantined, len(s.differences)) for s in r.samples])
    diffs = [(d.table, d.row, d.kind, ", ".join(d.columns)) for s in r.samples for d in s.differences]
    if diffs:
        head += "\n\n" + md_table(["table", "row (document _id | identity)", "difference", "columns"], diffs)
    return head


def render_flags(r: Readiness) -> str:
    if not r.flags:
        return "This domain has no application flag (its reads already follow the store it was written to)."
    dual = [f for f in r.flags if f.dual]
    lines = []
    if dual:
        lines.append("1. **Dual-write soak** (writes to both stores, reads stay on Mongo): "
                     + ", ".join(f.show(f.dual) for f in dual)
                     + ". Keep it through a soak window; re-run `migration-assets readiness --domain "
                     + f"{r.domain}` at its end.")
    lines.append(f"{len(lines) + 1}. **Read cutover** (only on GO): "
                 + ", ".join(f.show(f.cutover) for f in r.flags) + ".")
    notes = [f"* `{f.flag}`: {f.note}" for f in r.flags if f.note]
    return "\n".join(lines + ([""] + notes if notes else []))


def render_rollback(r: Readiness) -> str:
    back = ", ".join(f.show(f.rollback) for f in r.flags if f.rollback) or "(no flag)"
    return "\n".join([
        f"1. Put reads back on Mongo: {back}. `dual` keeps PostgreSQL written, so a later retry starts "
        "from a current copy.",
        "2. Writes made while a `REPO_*` flag was `pg` exist only in PostgreSQL: copy them back into Mongo "
        f"with `migration-assets reverse-sync --domain {r.domain} --dry-run` (lists every document it would "
        f"insert, update or delete, with the fields), then `migration-assets reverse-sync --domain {r.domain}` "
        "(from the cutover recorded by `migration-assets cutover`; the previous versions are kept in "
        "`migration.removed_rows`). Stop the application's writes for the last pass, then record "
        f"`migration-assets cutover --domain {r.domain} --writes dual` before leaving `pg`.",
        f"3. Re-sync PostgreSQL from Mongo: `migration-assets migrate --domain {r.domain}` (idempotent "
        "upserts, same uuids), then `migration-assets verify --domain " + r.domain + "`.",
        "4. Resolve open `pg_dualwrite_gaps` rows of the domain (the gap sensor re-syncs them) and check "
        f"`migration-assets readiness --domain {r.domain}` before trying again.",
        "5. To abandon PostgreSQL for this domain entirely: every flag above back to `mongo`.",
    ])


def render_summary(r: Readiness) -> str:
    lines = [f"## {r.domain}: {r.verdict}", ""]
    if r.reasons:
        lines += ["**Blocking:**", ""] + [f"* {x}" for x in r.reasons] + [""]
    lines += [f"* checks green in each of the last {r.runs_required} executions: {r.green_checks}/{len(r.checks)}",
              f"* open dual-write gaps: {sum(r.gaps.values())}",
              f"* sampled documents compared Mongo vs PostgreSQL: {sum(s.documents for s in r.samples)} "
              f"({sum(s.rows for s in r.samples)} rows), differences: {r.sample_differences}",
              f"* acknowledged ledger conflicts (left as PostgreSQL recorded them): {len(r.acknowledged)}"]
    return "\n".join(lines)


def render_acknowledged(r: Readiness) -> str:
    if not r.acknowledged:
        return "No acknowledged ledger conflict."
    return md_table(["entry", "what differs", "acknowledged by", "when", "why"],
                    [(e, a.differs, a.acknowledged_by, f"{a.acknowledged_at:%Y-%m-%d %H:%M %Z}", a.reason)
                     for e, a in sorted(r.acknowledged.items())])
