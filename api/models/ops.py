"""Operations models: health, dead letters, API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stadtpuls.tenants import SLUG_PATTERN

__all__ = [
    "DeadLetterPublic",
    "DeadLettersPublic",
    "HealthPublic",
    "KeyCreate",
    "KeyCreated",
    "KeyPublic",
    "KeysPublic",
]


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    mode: str = Field(description="timescaledb | postgresql | unknown")
    ingest_lag_s: float | None = Field(description="now minus the newest uplink's hub receive time")
    newest_uplink_at: datetime | None
    live_listening: bool = Field(description="the NOTIFY listener is connected")


class DeadLetterPublic(BaseModel):
    id: int
    received_at: datetime
    topic: str | None
    stage: str
    reason: str
    dev_eui: str | None
    lns: str | None
    payload_bytes: int
    payload_preview: str = Field(description="the first 256 bytes, as text with undecodable bytes replaced")
    repeats: int = Field(description="deliveries of this same message (topic and bytes); 1 when it came once")
    last_received_at: datetime | None = Field(description="when the last repeated delivery came, if any")


class DeadLettersPublic(BaseModel):
    data: list[DeadLetterPublic]
    count: int = Field(description="dead letters matching the filter (all pages)")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Literal["operator", "admin"] = "operator"
    tenant: str | None = Field(
        None,
        pattern=SLUG_PATTERN,
        description="the key's town (tenant slug; default: the path's town, else `default`)",
    )


class KeyPublic(BaseModel):
    key_id: str
    name: str
    role: Literal["operator", "admin"]
    tenant: str = Field(description="the key's town; an admin key sees every town whatever its own")
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="the key itself, shown only in this answer")


class KeysPublic(BaseModel):
    data: list[KeyPublic]
    count: int
