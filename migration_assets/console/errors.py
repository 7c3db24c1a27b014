"""One line per failure: what failed, named, and the next thing to do.

``REMEDIES`` is the one table of error type -> next step; a new error type (the schema
conformance check's, say) is one more row. An error is matched where it is raised in this
process (the exception) and where Dagster recorded it for a failed step (its serialized
chain, matched by class name), so a run's failure reads the same as a direct one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
import psycopg

from migration_assets.console.exits import Exit
from migration_assets.cutover.ledger_conflicts import NotAConflict
from migration_assets.cutover.reverse_sync import ReverseSyncRefused
from migration_assets.factory.resources import BadConfigValue
from migration_assets.orchestration.launch import RunNotStarted
from migration_assets.source.documents import SourceUnavailable
from migration_assets.source.mongo_target import MongoTargetRefused
from migration_assets.target.conformance import SchemaMismatch
from migration_assets.target.guard import LoadLocked, TargetRefused, TargetUnavailable
from migration_assets.target.schema import SchemaDrift, SchemaError

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo


class UsageError(Exception):
    """An argument names nothing that exists (a domain, a table)."""


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def config_text(text: str) -> str:
    """Dagster's config errors end, before their stack trace, with the line that names the
    setting (``Value stored in env variable "X" cannot be coerced into an int.``)."""
    lines = [line.strip() for line in text.split("Stack Trace:")[0].splitlines() if line.strip()]
    return re.sub(r"^(?:\w+\.)+\w+: ", "", lines[-1]) if lines else ""


@dataclass(frozen=True)
class Remedy:
    errors: tuple[type[BaseException], ...]
    next_step: str
    status: Exit = Exit.FAILED
    text: Callable[[str], str] = first_line

    def names(self) -> set[str]:
        """The class names a recorded error may carry to match: the types and their subclasses."""
        out, todo = set(), list(self.errors)
        while todo:
            cls = todo.pop()
            out.add(cls.__name__)
            todo += cls.__subclasses__()
        return out


CONFIG_NEXT = "fix the value (scripts/env.sh lists every setting) and run again"
# PostgreSQL's answers when the database's objects are not the ones sql/ creates: some are
# missing (never migrated, or another database), or some exist that sql/ did not record.
MISSING_OBJECTS = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedObject,
                   psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName)
FOREIGN_OBJECTS = (psycopg.errors.DuplicateTable, psycopg.errors.DuplicateObject, psycopg.errors.DuplicateColumn,
                   psycopg.errors.DuplicateSchema, psycopg.errors.DuplicateFunction)

REMEDIES: tuple[Remedy, ...] = (
    Remedy((UsageError,), "see `migration-assets --help`", Exit.USAGE),
    Remedy((NotAConflict,), "`migration-assets ledger-conflicts` lists the current conflicts", Exit.USAGE),
    Remedy((SourceUnavailable,), "check MONGODB_URI (or MONGODUMP_DIR) and that the source is reachable, then run again"),
    Remedy((TargetUnavailable,), "check MIGRATION_PG_URL and that PostgreSQL accepts connections, then run again"),
    Remedy((TargetRefused,), "point MIGRATION_PG_URL at an allowed target, or add its host to MIGRATION_PG_ALLOWED_HOSTS "
                             "if it is the intended one"),
    Remedy((MongoTargetRefused,), "point MONGODB_URI at an allowed server, or add its host to "
                                  "MIGRATION_MONGO_ALLOWED_HOSTS if it is the intended one"),
    Remedy((ReverseSyncRefused,), "record who writes the domain (`migration-assets cutover`), or pass --cutover-at; "
                                  "--force REASON only once Mongo's writers are stopped"),
    Remedy((LoadLocked,), "let the other run finish (`migration-assets watch` follows it) or stop it, then run again"),
    Remedy(MISSING_OBJECTS, "run `migration-assets schema` on that database, or point MIGRATION_PG_URL at the "
                            "migrated one"),
    Remedy(FOREIGN_OBJECTS, "that database holds objects sql/ did not create: point MIGRATION_PG_URL at an empty "
                            "database or one this platform migrated"),
    Remedy((SchemaDrift,), "add a new file to sql/ instead of editing an applied one"),
    Remedy((SchemaError,), "`migration-assets schema -v` lists every object it found; make that one match sql/ "
                           "(or let schema change it with --alter-application), then run again"),
    Remedy((SchemaMismatch,), "`migration-assets doctor` lists every mismatch; align the spec or the target "
                              "(sql/proposed/), then run again"),
    Remedy((BadConfigValue,), CONFIG_NEXT),
    Remedy((dg.DagsterInvalidConfigError,), CONFIG_NEXT, text=config_text),
)
UNKNOWN_NEXT = "run again with --debug for the traceback"
STEP_NEXT = "open the run in the Dagster UI for the step's log, or run again with --debug for the traceback"


@dataclass(frozen=True)
class Cause:
    """One link of an error chain: its class (when the exception is at hand) or class name."""

    name: str
    message: str
    kind: type[BaseException] | None = None

    def matches(self, remedy: Remedy) -> bool:
        if self.kind is not None:
            return issubclass(self.kind, remedy.errors)
        return self.name in remedy.names()


def exception_causes(exc: BaseException) -> Iterator[Cause]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RunNotStarted) and current.causes:  # raised in the run worker
            yield from (Cause(name, message) for name, message in current.causes)
            return
        message = str(current)
        if isinstance(current, psycopg.Error) and current.diag.message_primary:
            diag = current.diag
            message = diag.message_primary
            if diag.table_name and diag.table_name not in message:
                message += f" (table {diag.schema_name}.{diag.table_name})"
        yield Cause(type(current).__name__, message, type(current))
        current = current.__cause__ or current.__context__


def recorded_causes(error: SerializableErrorInfo) -> Iterator[Cause]:
    """A failed step's chain as Dagster recorded it (``module.Class: message`` texts)."""
    current: SerializableErrorInfo | None = error
    while current is not None:
        message = re.sub(rf"^(?:\w+\.)*{re.escape(current.cls_name or '')}: ", "", current.message.strip())
        yield Cause(current.cls_name or "Error", message)
        current = current.cause or current.context


@dataclass(frozen=True)
class Explained:
    where: str  # the object that failed: a command, or a job and its steps
    text: str
    next_step: str
    status: Exit

    @property
    def line(self) -> str:
        return f"error: {self.where}: {self.text.rstrip('.')}; next: {self.next_step}"


def explain(causes: list[Cause], where: str, unknown_next: str = UNKNOWN_NEXT) -> Explained:
    """The one line for an error chain: the first link a remedy knows, else the innermost."""
    for cause in causes:
        for remedy in REMEDIES:
            if cause.matches(remedy):
                return Explained(where, remedy.text(cause.message), remedy.next_step, remedy.status)
    root = causes[-1]
    return Explained(where, f"{root.name}: {first_line(root.message)}", unknown_next, Exit.FAILED)


def explain_exception(exc: BaseException, where: str) -> Explained:
    return explain(list(exception_causes(exc)), where)


def explain_recorded(error: SerializableErrorInfo, where: str) -> Explained:
    return explain(list(recorded_causes(error)), where, STEP_NEXT)
