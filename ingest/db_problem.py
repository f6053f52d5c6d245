"""What the operator reads when the ingest cannot use its database.

A psycopg error becomes a :class:`DatabaseProblem`: the log event (``database unreachable``, or ``database not
migrated`` with the command that fixes it), the error class and the driver's own message on one line ("connection
to server at ... failed: Connection refused", "database ... does not exist", "failed to resolve host ...") with the
URL's password masked, and the database URL it was about (password masked too). The worker spools either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg

from stadtpuls.settings import mask_url

__all__ = ["MIGRATE_HINT", "DatabaseProblem", "explain"]

MIGRATE_HINT = "run `stadtpuls migrate` against this database"
# The schema this version reads is missing (a new database, or one migrated by an older version).
_UNMIGRATED = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)
_MAX_DETAIL = 400


@dataclass(frozen=True)
class DatabaseProblem:
    event: str
    error: str
    detail: str
    database: str
    unmigrated: bool = False

    def fields(self) -> dict[str, str]:
        """The log line's fields."""
        return {"error": self.error, "detail": self.detail, "database": self.database}


def explain(error: psycopg.Error, url: str) -> DatabaseProblem:
    """The problem ``error`` means for the database at ``url``."""
    # a server error's own sentence (without the SQL excerpt); a connection failure's whole text
    text = " ".join((error.diag.message_primary or str(error)).split()) or type(error).__name__
    password = urlsplit(url).password
    if password:
        for secret in {password, unquote(password)}:
            text = text.replace(secret, "***")
    unmigrated = isinstance(error, _UNMIGRATED)
    event = f"database not migrated: {MIGRATE_HINT}" if unmigrated else "database unreachable"
    return DatabaseProblem(event, type(error).__name__, text[:_MAX_DETAIL], mask_url(url), unmigrated)
