"""Alerts as one town sees them: the statements of :mod:`stadtpuls.alerts.store`, run on the alerts of a tenant.

An alert belongs to the town of its device, else of its site; a hub alert (subject ``hub``, no device or site)
belongs to no town, and a filtered call shows it only with ``unowned`` (``deps.sees_unowned``). The list statements run
unchanged with the table they read shadowed by a CTE of the town's rows; a change (acknowledge, resend) first
checks the row is the town's (:func:`alert_in_tenant`, :func:`notification_in_tenant`).
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from stadtpuls.alerts import store

__all__ = ["alert_in_tenant", "get_alert", "list_alerts", "list_notifications", "notification_in_tenant"]

#: the alert ``a`` is the town's (or the town sees unowned rows and it is a hub alert)
_OF_TENANT = """(%(tenant)s::text IS NULL OR coalesce(
    (SELECT d.tenant FROM devices d WHERE d.dev_eui = a.dev_eui),
    (SELECT s.tenant FROM sites s WHERE s.site_id = a.site_id),
    CASE WHEN %(unowned)s THEN %(tenant)s::text END) = %(tenant)s::text)"""
_TOWN_ALERTS = "WITH alerts AS (SELECT a.* FROM alerts a WHERE " + _OF_TENANT + ")\n"
_LIST_ALERTS = _TOWN_ALERTS + store.LIST_ALERTS
_GET_ALERT = _TOWN_ALERTS + store.GET_ALERT
#: the town's notifications: those of its alerts' events, and the digests (the hub's) where hub alerts are listed
_TOWN_NOTIFICATIONS = (
    "WITH alert_events AS (SELECT e.* FROM alert_events e JOIN alerts a ON a.alert_id = e.alert_id WHERE "
    + _OF_TENANT
    + "),\nnotifications AS (SELECT n.* FROM notifications n WHERE n.event_id IN (SELECT event_id FROM alert_events)"
    + " OR (n.digest_day IS NOT NULL AND (%(tenant)s::text IS NULL OR %(unowned)s)))\n"
)
_LIST_NOTIFICATIONS = _TOWN_NOTIFICATIONS + store.LIST_NOTIFICATIONS


async def list_alerts(
    conn: AsyncConnection, *, tenant: str | None, unowned: bool, params: dict[str, Any]
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_LIST_ALERTS, {**params, "tenant": tenant, "unowned": unowned})
    return await cur.fetchall()


async def get_alert(
    conn: AsyncConnection, *, alert_id: int, tenant: str | None, unowned: bool
) -> dict[str, Any] | None:
    """The alert with its state changes (``events``), if it is the town's."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_GET_ALERT, {"alert_id": alert_id, "tenant": tenant, "unowned": unowned})
    row = await cur.fetchone()
    if row is not None:
        await cur.execute(store.ALERT_EVENTS, {"alert_id": alert_id})
        row["events"] = await cur.fetchall()
    return row


async def alert_in_tenant(conn: AsyncConnection, *, alert_id: int, tenant: str | None, unowned: bool) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM alerts a WHERE a.alert_id = %(alert_id)s AND " + _OF_TENANT,
        {"alert_id": alert_id, "tenant": tenant, "unowned": unowned},
    )
    return await cur.fetchone() is not None


async def list_notifications(
    conn: AsyncConnection, *, tenant: str | None, unowned: bool, status: str | None, limit: int
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _LIST_NOTIFICATIONS,
        {"status": status, "limit": limit, "tenant": tenant, "unowned": unowned},
    )
    return await cur.fetchall()


async def notification_in_tenant(
    conn: AsyncConnection, *, notification_id: int, tenant: str | None, unowned: bool
) -> bool:
    cur = await conn.execute(
        _TOWN_NOTIFICATIONS + "SELECT 1 FROM notifications n WHERE n.notification_id = %(notification_id)s",
        {"notification_id": notification_id, "tenant": tenant, "unowned": unowned},
    )
    return await cur.fetchone() is not None
