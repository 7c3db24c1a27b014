"""The command line's test stack: one environment (target database, Mongo database, Dagster
home) and the CLI called in-process against it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from migration_assets.cli.main import main


class Stack:
    """Environment of one target + Mongo database + Dagster home."""

    def __init__(self, env: dict[str, str], target: str, home: Path):
        self.env, self.target, self.home = env, target, home

    def call(self, capsys, *args: str) -> tuple[int, str, str]:
        """(exit status, standard output, standard error) of ``migration-assets *args``."""
        with pytest.MonkeyPatch.context() as mp:
            for k, v in self.env.items():
                mp.setenv(k, v)
            capsys.readouterr()
            try:
                rc = main(list(args))
            except SystemExit as e:  # argparse's usage errors
                rc = e.code if isinstance(e.code, int) else 1
            captured = capsys.readouterr()
            return rc, captured.out, captured.err

    def run(self, capsys, *args: str) -> tuple[int, str]:
        rc, out, _ = self.call(capsys, *args)
        return rc, out

    def with_env(self, **changes: str) -> Stack:
        return Stack({**self.env, **changes}, self.target, Path(changes.get("DAGSTER_HOME", self.home)))

    def conn(self):
        return psycopg.connect(self.env["MIGRATION_PG_URL"], autocommit=True)


def make_env(stack_env, url: str, mongo_db: str, home: Path) -> dict[str, str]:
    return {
        "MONGODB_URI": stack_env["MONGODB_URI"], "MONGODB_DATABASE": mongo_db, "MIGRATION_SOURCE": "live",
        "MONGODUMP_DIR": "", "MIGRATION_PG_URL": url, "MIGRATION_PG_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MIGRATION_CHECKSUM_WORKERS": "1", "DAGSTER_HOME": str(home),
    }


def fresh_home(path: Path) -> Path:
    """A Dagster home of its own (sqlite storage under it), without telemetry."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return path


def one_line(err: str) -> str:
    """The single line a failure prints on standard error (and never a traceback)."""
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
