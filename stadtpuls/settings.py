"""Settings from environment variables with the prefix ``STADTPULS_``.

Build :class:`Settings` in ``main()`` or an app's lifespan, never at import time. :func:`load` turns a bad value
into :class:`SettingsError`, whose message names the variable.

Exceptions::

    SettingsError       a variable is missing or invalid (attribute: variables)
"""

from __future__ import annotations

import importlib.util
import ipaddress
import zoneinfo
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PREFIX", "Settings", "SettingsError", "load", "mask_url", "masked"]

PREFIX = "STADTPULS_"

DEFAULT_TOPICS = [
    "v3/+/devices/+/up",
    "v3/+/devices/+/join",
    "application/+/device/+/event/up",
    "application/+/device/+/event/join",
    "application/+/device/+/event/status",
    "application/+/device/+/event/log",
]


class SettingsError(Exception):
    def __init__(self, variables: list[str], message: str) -> None:
        super().__init__(message)
        self.variables = variables


class Settings(BaseSettings):
    """Every setting of the hub. The README's settings table lists each one (a test checks)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", case_sensitive=False)

    # storage
    database_url: SecretStr | None = Field(
        None, description="PostgreSQL/TimescaleDB URL, e.g. postgresql://user:pass@host:5432/stadtpuls"
    )
    timezone: str = Field("Europe/Berlin", description="reporting time zone for daily/hourly buckets")
    raw_retention_days: int = Field(365, ge=1, description="TimescaleDB: drop raw uplink chunks older than this")
    compress_after_days: int = Field(7, ge=1, description="TimescaleDB: compress chunks older than this")
    ingest_db_password: SecretStr | None = Field(
        None, description="`migrate`: LOGIN password it sets for the role stadtpuls_ingest (the ingest's user)"
    )
    api_db_password: SecretStr | None = Field(
        None, description="`migrate`: LOGIN password it sets for the role stadtpuls_api (the API's user)"
    )
    grafana_db_password: SecretStr | None = Field(
        None, description="`migrate`: LOGIN password it sets for the role stadtpuls_grafana (Grafana's user)"
    )
    alerts_db_password: SecretStr | None = Field(
        None, description="`migrate`: LOGIN password it sets for the role stadtpuls_alerts (the alerts service's user)"
    )

    # MQTT
    mqtt_url: SecretStr | None = Field(None, description="mqtt://user:pass@host:1883 or mqtts://host:8883")
    mqtt_topics: list[str] = Field(default_factory=lambda: list(DEFAULT_TOPICS), description="topic filters")
    mqtt_client_id: str = Field("stadtpuls-ingest", description="fixed client id of the persistent session")
    mqtt_share_group: str | None = Field(None, description="shared-subscription group ($share/<group>/...)")
    mqtt_qos: int = Field(1, ge=0, le=2, description="subscription QoS")
    mqtt_receive_maximum: int = Field(20000, ge=1, le=65535, description="MQTT v5 Receive Maximum")
    mqtt_ca_file: Path | None = Field(None, description="CA bundle for mqtts://")
    mqtt_cert_file: Path | None = Field(None, description="client certificate (PEM) for mqtts://")
    mqtt_key_file: Path | None = Field(None, description="client key (PEM) for mqtts://")
    sources_file: Path | None = Field(
        None, description="YAML list of sources (TTS applications, MQTT brokers); replaces STADTPULS_MQTT_URL"
    )

    # ingest
    batch_size: int = Field(5000, ge=1, le=200_000, description="uplinks per write batch")
    flush_interval: float = Field(0.2, gt=0, le=60, description="seconds before a partial batch is written")
    queue_max: int = Field(100_000, ge=100, description="messages held in memory before spooling")
    spool_dir: Path = Field(Path("var/spool"), description="directory of the on-disk spool")
    spool_max_bytes: int = Field(1 << 30, ge=1 << 20, description="spool size limit in bytes")
    max_message_bytes: int = Field(65536, ge=256, description="larger MQTT messages are dead-lettered")
    store_simulated: bool = Field(False, description="store TTS console-simulated uplinks as readings")
    max_clock_skew: float = Field(
        300.0, gt=0, le=86400, description="seconds an uplink's time may lie ahead of the hub's clock"
    )
    registry_refresh: float = Field(10.0, gt=0, description="seconds between device registry refreshes")
    script_time_limit: float = Field(
        0.1, gt=0, le=60, description="CPU seconds a codec script may run per call (a chunk of a batch, or one uplink)"
    )
    script_memory_limit: int = Field(64 << 20, ge=1 << 20, description="heap bytes of each codec script engine")
    rollup_interval: float = Field(
        30.0, ge=0, le=3600, description="seconds between refreshes of the history rollups by the ingest (0 = off)"
    )
    metrics_port: int = Field(9108, ge=0, le=65535, description="ingest Prometheus metrics port (0 = off)")

    # API
    api_host: str = Field("127.0.0.1", description="API bind address")
    api_port: int = Field(8000, ge=1, le=65535, description="API port")
    operator_key: SecretStr | None = Field(None, description="API key with the operator role")
    admin_key: SecretStr | None = Field(None, description="API key with the admin role")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed for public routes")
    operator_cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed for operator routes (default none)"
    )
    rate_limit_per_minute: int = Field(600, ge=0, description="public requests per client per minute (0 = off)")
    max_request_bytes: int = Field(1 << 20, ge=1024, description="largest accepted request body")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks of the reverse proxies whose X-Forwarded-For names the client",
    )
    trusted_hosts: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Host header values the API answers, e.g. parking.example.org (* = any)",
    )
    sse_max_streams: int = Field(500, ge=1, description="open live streams (server-sent events) in all")
    sse_max_streams_per_client: int = Field(16, ge=1, description="open live streams per client address")
    key_failures_per_minute: int = Field(
        10, ge=0, description="wrong API keys per client per minute before 429 (0 = no limit)"
    )
    api_header_timeout: float = Field(10.0, gt=0, le=300, description="seconds a client has to send request headers")
    api_body_timeout: float = Field(30.0, gt=0, le=3600, description="seconds a client has to send a request body")
    api_keepalive_timeout: float = Field(5.0, gt=0, le=300, description="seconds an idle keep-alive connection stays")
    api_max_concurrency: int = Field(
        2000, ge=1, description="connections and requests at once before the API answers 503"
    )
    api_metrics_port: int = Field(
        0, ge=0, le=65535, description="API /metrics only on this internal port, without key (0 = API port, key)"
    )
    depot_lat: float = Field(51.3397, ge=-90, le=90, description="waste depot latitude (route start)")
    depot_lon: float = Field(12.3731, ge=-180, le=180, description="waste depot longitude (route start)")
    service_days: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4], description="weekdays with collection rounds (0 = Monday)"
    )
    pickup_start_hour: float = Field(7.0, ge=0, lt=24, description="local hour a collection round starts")
    road_factor: float = Field(1.3, ge=1, le=5, description="road km per great-circle km for route estimates")
    truck_speed_kmh: float = Field(25.0, gt=0, le=130, description="average truck speed between bins")
    bin_service_s: float = Field(90.0, ge=0, le=3600, description="seconds spent emptying one bin")
    fleet_file: Path | None = Field(
        None, description="YAML file of the collection fleet (trucks per fraction, shifts, disposal sites)"
    )
    route_solver: Literal["pyvrp", "heuristic", "ortools"] = Field(
        "pyvrp",
        description="route solver: PyVRP for each fraction's trucks, the built-in heuristic, or OR-Tools tours",
    )
    osrm_url: AnyHttpUrl | None = Field(
        None, description="OSRM-compatible routing service; its /table gives road km (default: great-circle)"
    )
    battery_low_pct: float = Field(20.0, ge=0, le=100, description="battery % below which a sensor is flagged")
    battery_low_v: float = Field(3.2, ge=0, le=20, description="battery volts below which a sensor is flagged")
    api_cache_ttl: float = Field(5.0, ge=0, le=300, description="seconds live summaries (lots, lines) are cached")
    live_poll_interval: float = Field(5.0, gt=0, le=300, description="seconds between live refreshes without NOTIFY")
    api_max_range_days: int = Field(93, ge=1, le=3660, description="longest time range a history query accepts")
    map_tile_url: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="raster tile URL template of the pages' maps ({z}/{x}/{y}, optional {s}); empty = no tiles",
    )
    map_attribution: str = Field("© OpenStreetMap contributors", description="attribution shown on the maps")
    map_attribution_url: str = Field(
        "https://www.openstreetmap.org/copyright", description="link of the maps' attribution"
    )
    map_max_zoom: int = Field(19, ge=2, le=22, description="highest zoom level the tile server offers")

    # open data feeds (ParkAPI v3, DATEX II, GTFS-Realtime)
    open_data_source_uid: str = Field(
        "stadtpuls", min_length=1, max_length=256, description="ParkAPI source uid of this hub"
    )
    open_data_name: str = Field(
        "stadtpuls", min_length=1, max_length=256, description="source and publication name in the feeds"
    )
    sta_base_url: str = Field(
        "http://localhost:8000/sta/v1.1",
        description="public address of the SensorThings API, for the links in Observations sent over MQTT",
    )
    sta_mqtt_endpoints: list[str] = Field(
        default_factory=list,
        description="broker addresses the SensorThings service root announces for MQTT (mqtt://host:1883)",
    )
    ngsild_broker_url: str | None = Field(
        None, description="NGSI-LD context broker that `stadtpuls ngsild-notify` sends changed entities to"
    )
    ngsild_notify_interval: float = Field(
        10.0, gt=0, le=3600, description="seconds between checks for changed entities without NOTIFY"
    )
    open_data_public_url: str | None = Field(
        None, description="ParkAPI source public_url (default: the API's own address)"
    )
    open_data_license: str | None = Field(None, description="ParkAPI attribution_license, e.g. DL-DE-Zero-2.0")
    open_data_lang: str = Field("de", pattern=r"^[a-z]{2}$", description="DATEX II publication language")
    gtfs_rt_max_age: float = Field(
        900.0, gt=0, le=86400, description="seconds after which a silent bus is left out of GTFS-Realtime"
    )

    # alerts (`stadtpuls alerts`)
    alerts_interval: float = Field(60.0, gt=0, le=3600, description="seconds between alert evaluation rounds")
    alerts_public_url: str | None = Field(
        None, description="base URL of the operator page in notifications (default: http://API_HOST:API_PORT)"
    )
    alerts_language: Literal["de", "en"] = Field("de", description="language of the alert e-mails")
    alerts_ingest_health_url: str | None = Field(
        None, description="the ingest's /health URL, read every round for the spool and source rules (unset: off)"
    )
    alerts_retry_base_s: float = Field(
        30.0, gt=0, le=86400, description="first retry delay of a failed notification (doubles each attempt)"
    )
    alerts_max_attempts: int = Field(6, ge=1, le=50, description="attempts before a notification is dead")
    alerts_metrics_port: int = Field(9109, ge=0, le=65535, description="alerts Prometheus metrics port (0 = off)")
    smtp_url: SecretStr | None = Field(
        None, description="smtp://user:pass@host:587 (STARTTLS), smtps://host:465, or smtp+plain://host:25"
    )
    smtp_from: str = Field("stadtpuls@localhost", description="sender address of alert e-mails")
    smtp_ca_file: Path | None = Field(None, description="CA bundle to verify the SMTP server (default: system)")

    # operations
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    log_format: Literal["kv", "json"] = Field("kv", description="structured log line format")
    data_dir: Path = Field(Path("var"), description="embedded database, broker and demo state")

    @field_validator("map_tile_url")
    @classmethod
    def _tile_template(cls, v: str) -> str:
        v = v.strip()
        if v and (not v.startswith(("https://", "http://")) or not all(k in v for k in ("{z}", "{x}", "{y}"))):
            raise ValueError("an http(s) URL template with {z}, {x} and {y}, or empty for no tiles")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v

    @field_validator("database_url")
    @classmethod
    def _pg_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and urlsplit(v.get_secret_value()).scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        return v

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return v
        parts = urlsplit(v.get_secret_value())
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError("must be mqtt://host:port or mqtts://host:port")
        if not parts.hostname:
            raise ValueError("has no host")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as e:
            raise ValueError("has an invalid port") from e
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item)
            except ValueError as e:
                raise ValueError(f"{item!r} is not an IP address or network") from e
        return v

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            parts = urlsplit(v.get_secret_value())
            if parts.scheme not in ("smtp", "smtps", "smtp+plain") or not parts.hostname:
                raise ValueError("must be smtp://host:587 (STARTTLS), smtps://host:465 or smtp+plain://host:25")
        return v

    @field_validator("service_days")
    @classmethod
    def _weekdays(cls, v: list[int]) -> list[int]:
        if not v or any(d < 0 or d > 6 for d in v):
            raise ValueError("weekdays must be 0 (Monday) .. 6 (Sunday), at least one")
        return sorted(set(v))

    @field_validator("route_solver")
    @classmethod
    def _solver_installed(cls, v: str) -> str:
        if v == "ortools" and importlib.util.find_spec("ortools") is None:
            raise ValueError("'ortools' needs the ortools package installed (pip install ortools)")
        return v


def load(**overrides: Any) -> Settings:
    """Build the settings from the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        names = [PREFIX + str(err["loc"][0]).upper() for err in e.errors() if err["loc"]]
        lines = [f"{PREFIX}{str(err['loc'][0]).upper() if err['loc'] else '?'}: {err['msg']}" for err in e.errors()]
        raise SettingsError(names, "invalid settings: " + "; ".join(lines)) from None


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def masked(settings: Settings) -> dict[str, str]:
    """Effective values as ``{VARIABLE: text}`` with secrets masked (URL passwords, keys)."""
    out: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            text = mask_url(secret) if "://" in secret else "***"
        elif value is None:
            text = ""
        elif isinstance(value, list):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        out[PREFIX + name.upper()] = text
    return out
