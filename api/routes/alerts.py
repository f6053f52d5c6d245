"""Alerts (operator): list and acknowledge alerts, read and change rules, see and resend dead notifications.

The statements are ``stadtpuls.alerts.store``'s, the ones ``stadtpuls alerts`` runs; an acknowledgement writes a
state change whose notifications the alerts service sends.

An operator key sees the alerts (and their notifications) of its town's devices and sites only; another town's is
answered 404 like an unknown id (``api/queries/alerts.py``); hub alerts (no device or site) only a hub admin key
without a town prefix, or any key on a hub of one town. Rules are the hub's: every key reads them; on a hub of
several towns only a hub admin key changes them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi import Path as PathParam
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from stadtpuls.alerts.kinds import KINDS, Rule, RuleError
from stadtpuls.alerts.store import ACK, LIST_RULES, RESEND, UPSERT_RULE, rule_params

from ..deps import Access, ConnDep, CtxDep, OperatorScope, sees_unowned
from ..problems import Problem, responses
from ..queries import alerts as q
from ..timerange import check_instant

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=responses(401, 403, 422))

MAX_ID = 2**62  # ids are bigint
State = Literal["open", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "critical"]


class AlertEvent(BaseModel):
    time: datetime
    state: State
    actor: str | None
    note: str | None


class AlertPublic(BaseModel):
    alert_id: int
    rule_id: str
    subject: str
    dev_eui: str | None
    site_id: str | None
    severity: Severity
    state: State
    value: float | None
    message: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_note: str | None
    resolved_at: datetime | None
    events: list[AlertEvent] | None = None


class AlertsPublic(BaseModel):
    data: list[AlertPublic]
    count: int


class Ack(BaseModel):
    note: str = Field("", max_length=1000)


class RulePublic(BaseModel):
    rule_id: str
    kind: str
    enabled: bool
    severity: Severity
    params: dict[str, float]
    values: dict[str, float] = Field(description="every parameter of the kind, the rule's own over the defaults")
    description: str


class RulesPublic(BaseModel):
    data: list[RulePublic]
    count: int


class RuleIn(BaseModel):
    kind: str = Field(max_length=64)
    enabled: bool = True
    severity: Severity = "warning"
    params: dict[str, float] = Field(default_factory=dict, max_length=32)
    description: str = Field("", max_length=500)


class NotificationPublic(BaseModel):
    notification_id: int
    channel_id: str
    status: Literal["pending", "sent", "dead"]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    alert_id: int | None = Field(description="the alert of a state change's notification (null for a digest)")
    change: State | None
    time: datetime | None
    digest_day: date | None = Field(description="the local day of a daily digest (null for a state change)")


class NotificationsPublic(BaseModel):
    data: list[NotificationPublic]
    count: int


@router.get("/alerts", response_model=AlertsPublic, summary="alerts, active first, filtered")
async def list_alerts(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    state: State | None = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    severity: Severity | None = None,
    site: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[datetime | None, Query(description="opened or resolved at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AlertsPublic:
    params: dict[str, Any] = {"state": state, "rule_id": rule, "severity": severity, "site_id": site, "limit": limit}
    params["since"] = check_instant(since, "since", ctx.settings.timezone)
    rows = await q.list_alerts(conn, tenant=access.tenant, unowned=await sees_unowned(ctx, conn, access), params=params)
    return AlertsPublic.model_validate({"data": rows, "count": len(rows)})


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertPublic,
    responses=responses(404),
    summary="one alert with its state changes",
)
async def get_alert(
    ctx: CtxDep, conn: ConnDep, access: OperatorScope, alert_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]
) -> AlertPublic:
    unowned = await sees_unowned(ctx, conn, access)
    row = await q.get_alert(conn, alert_id=alert_id, tenant=access.tenant, unowned=unowned)
    if row is None:
        raise Problem(404, f"no alert {alert_id}")
    return AlertPublic.model_validate(row)


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertPublic,
    responses=responses(404, 409),
    summary="acknowledge an open alert",
)
async def acknowledge(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    alert_id: Annotated[int, PathParam(ge=1, le=MAX_ID)],
    body: Annotated[Ack, Body()],
) -> AlertPublic:
    unowned = await sees_unowned(ctx, conn, access)
    if not await q.alert_in_tenant(conn, alert_id=alert_id, tenant=access.tenant, unowned=unowned):
        raise Problem(404, f"no alert {alert_id}")
    ack = {"alert_id": alert_id, "actor": access.principal.key_id, "note": body.note, "now": datetime.now(UTC)}
    async with conn.transaction():
        cur = await conn.execute(ACK, ack)
        done = await cur.fetchone()
    if done is None:
        existing = await get_alert(ctx, conn, access, alert_id)
        raise Problem(409, f"alert {alert_id} is {existing.state}, not open")
    return await get_alert(ctx, conn, access, alert_id)


async def _hub_wide(ctx: Any, conn: Any, access: Access) -> None:
    """A change to the hub's configuration: an admin key's, or an operator's on a hub of one town."""
    if not access.is_admin and len(await ctx.tenants.all(conn)) > 1:
        raise Problem(403, "alert rules are the hub's; on a hub of several towns changing one needs an admin key")


def _rule_out(row: dict[str, Any]) -> dict[str, Any]:
    rule = Rule(row["rule_id"], row["kind"], row["severity"], row["params"], row["enabled"], row["description"])
    return {**row, "values": rule.values() if rule.kind in KINDS else dict(rule.params)}


@router.get("/alert-rules", response_model=RulesPublic, summary="the alert rules")
async def list_rules(conn: ConnDep, _: OperatorScope) -> RulesPublic:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(LIST_RULES)
    rows = [_rule_out(r) for r in await cur.fetchall()]
    return RulesPublic.model_validate({"data": rows, "count": len(rows)})


@router.put(
    "/alert-rules/{rule_id}",
    response_model=RulePublic,
    responses=responses(403),
    summary="create or replace a rule",
    description="Rules are the hub's: on a hub of several towns only a hub admin key changes them (403 for an "
    "operator key); on a one-town hub an operator key does too.",
)
async def put_rule(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    rule_id: Annotated[str, PathParam(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")],
    body: Annotated[RuleIn, Body()],
) -> RulePublic:
    await _hub_wide(ctx, conn, access)
    try:
        rule = Rule.checked({"id": rule_id, **body.model_dump()})
    except RuleError as e:
        raise Problem(422, str(e)) from None
    await conn.execute(UPSERT_RULE, rule_params(rule))
    return RulePublic.model_validate(_rule_out({**rule_params(rule), "params": dict(rule.params)}))


@router.get("/notifications", response_model=NotificationsPublic, summary="notifications, e.g. the dead ones")
async def list_notifications(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    status: Literal["pending", "sent", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NotificationsPublic:
    unowned = await sees_unowned(ctx, conn, access)
    rows = await q.list_notifications(conn, tenant=access.tenant, unowned=unowned, status=status, limit=limit)
    return NotificationsPublic.model_validate({"data": rows, "count": len(rows)})


@router.post(
    "/notifications/{notification_id}/resend",
    status_code=202,
    responses=responses(404),
    summary="send a notification again",
)
async def resend(
    ctx: CtxDep, conn: ConnDep, access: OperatorScope, notification_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]
) -> dict[str, int]:
    unowned = await sees_unowned(ctx, conn, access)
    if not await q.notification_in_tenant(conn, notification_id=notification_id, tenant=access.tenant, unowned=unowned):
        raise Problem(404, f"no unsent notification {notification_id}")
    cur = await conn.execute(RESEND, {"notification_id": notification_id})
    if await cur.fetchone() is None:
        raise Problem(404, f"no unsent notification {notification_id}")
    return {"notification_id": notification_id}
