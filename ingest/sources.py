"""Where the ingest reads from: TTS applications and MQTT brokers (ChirpStack), from a YAML file or the settings.

``STADTPULS_SOURCES_FILE`` names a YAML document with a ``sources`` list; without it ``STADTPULS_MQTT_URL`` is a
one-source configuration (the broker, the ``STADTPULS_MQTT_*`` settings). ::

    sources:
      - name: stadtwerke                       # unique; metrics label, backfill cursor key, `backfill --source`
        kind: tts
        cluster: https://eu1.cloud.thethings.network
        application_id: stadtwerke-parken
        tenant: ttn                            # TTS Cloud: the tenant id; TTN: ttn (the default)
        api_key_env: STADTWERKE_TTS_KEY        # the API key is read from this environment variable
        backfill: {enabled: true, interval: 15m, margin: 5m, retention: 24h, page_size: 1000}
      - name: kreis-chirpstack
        kind: mqtt
        url: mqtts://chirpstack.kreis.example:8883
        topics: [application/+/device/+/event/up, application/+/device/+/event/join]
        applications: [b3a7c1de-0a6f-4c39-9d0e-1f2a3b4c5d6e]   # optional: the only network-server applications

A TTS source connects to the cluster's MQTT server (``mqtts://<cluster host>:8883``, user
``<application_id>@<tenant>``, the API key as password, topics ``v3/<application_id>@<tenant>/devices/+/up`` and
``.../join``, QoS 0: TTS keeps nothing for a disconnected client); ``mqtt_url`` overrides the address. Durations
are seconds or a number with ``s``, ``m``, ``h`` or ``d``.

``applications`` of an MQTT source lists the network-server application ids (ChirpStack ``deviceInfo.applicationId``,
TTS ``end_device_ids.application_ids.application_id``) whose messages it may deliver: a message of any other
application is a dead letter at stage ``source`` (:mod:`ingest.authentic`). Unset, the source is not limited by
application (the topic and registration checks still apply).

Exceptions::

    SourcesError    the configuration cannot be used (attributes: path, the file or None; problems, the lines)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from stadtpuls.settings import Settings

from .mqtt import MqttConfig

__all__ = [
    "BackfillConfig",
    "MqttBrokerSource",
    "Source",
    "SourcesError",
    "TtsSource",
    "load_sources",
    "mqtt_config",
    "single_source",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class SourcesError(Exception):
    def __init__(self, path: Path | None, problems: list[str]) -> None:
        where = f"{path}: " if path else ""
        super().__init__(f"sources configuration: {where}" + "; ".join(problems))
        self.path = path
        self.problems = problems


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"not a duration: {value!r} (seconds, or a number with s, m, h or d)")
        return float(m.group(1)) * _UNIT_S[m.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]


class BackfillConfig(BaseModel):
    """Fetching missed uplinks from the TTS Storage Integration (:mod:`ingest.backfill`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval: Seconds = 900.0  # a scheduled run this often, besides the runs at start and after each reconnect
    margin: Seconds = 300.0  # each run starts this long before the cursor (the storage writes a little late)
    retention: Seconds = 86400.0  # what the storage keeps (TTN sandbox 24 h, TTS Cloud 30 d): older gaps recorded
    page_size: int = Field(1000, ge=1, le=100_000)  # ``limit`` of one request
    timeout: Seconds = 30.0  # seconds without a byte from the storage before the request counts as cut
    attempts: int = Field(5, ge=1, le=100)  # tries of one request on 429, 5xx and cut answers, per run


class _SourceBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    client_id: str | None = None  # MQTT client id (default stadtpuls-ingest-<name>)
    qos: int = Field(1, ge=0, le=2)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


class MqttBrokerSource(_SourceBase):
    """An MQTT broker fed by a network server (ChirpStack; or any broker carrying TTS-format messages)."""

    kind: Literal["mqtt"] = "mqtt"
    url: str
    topics: list[str] | None = None  # default: STADTPULS_MQTT_TOPICS
    share_group: str | None = None
    applications: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(None, min_length=1)

    def allowed_applications(self) -> frozenset[str] | None:
        """The network-server applications whose messages this source may deliver (None: any)."""
        return None if self.applications is None else frozenset(self.applications)

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError("must be mqtt://host:port or mqtts://host:port")
        return v


class TtsSource(_SourceBase):
    """One application on a The Things Stack cluster."""

    kind: Literal["tts"]
    cluster: str  # https://eu1.cloud.thethings.network (also the Storage Integration's address)
    application_id: str = Field(pattern=r"^[a-z0-9](?:[-]?[a-z0-9]){1,35}$")
    tenant: str = "ttn"
    api_key_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    mqtt_url: str | None = None  # default mqtts://<cluster host>:8883
    qos: int = Field(0, ge=0, le=2)
    backfill: BackfillConfig = Field(default_factory=lambda: BackfillConfig.model_validate({}))
    api_key: str = Field("", exclude=True, repr=False)  # read from ``api_key_env`` by load_sources

    @field_validator("cluster")
    @classmethod
    def _http_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be the cluster's https:// address")
        return v.rstrip("/")

    @property
    def username(self) -> str:
        return f"{self.application_id}@{self.tenant}"

    def broker_url(self) -> str:
        """The MQTT address with the application's user and API key."""
        base = urlsplit(self.mqtt_url or f"mqtts://{urlsplit(self.cluster).hostname}:8883")
        auth = f"{quote(self.username, safe='')}:{quote(self.api_key, safe='')}@"
        host = base.hostname or ""
        return base._replace(netloc=auth + host + (f":{base.port}" if base.port else "")).geturl()

    def topics(self) -> list[str]:
        return [f"v3/{self.username}/devices/+/up", f"v3/{self.username}/devices/+/join"]

    def allowed_applications(self) -> frozenset[str] | None:
        """None: the subscription (``topics``) and the topic check already hold it to its application."""
        return None


Source = MqttBrokerSource | TtsSource


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Annotated[Source, Field(discriminator="kind")]] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> _Document:
        names = [s.name for s in self.sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"source names must be unique: {', '.join(twice)}")
        return self


def single_source(url: str) -> MqttBrokerSource:
    """The source of a ``STADTPULS_MQTT_URL`` configuration (its client settings are the ``STADTPULS_MQTT_*``)."""
    return MqttBrokerSource.model_validate({"name": "mqtt", "url": url})


def load_sources(settings: Settings, environ: dict[str, str] | None = None) -> list[Source]:
    """The configured sources: ``settings.sources_file``, else the one broker of ``settings.mqtt_url``, else []."""
    env = os.environ if environ is None else environ
    path = settings.sources_file
    if path is None:
        if settings.mqtt_url is None:
            return []
        return [single_source(settings.mqtt_url.get_secret_value())]
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise SourcesError(path, [f"cannot read: {e.strerror or e}"]) from None
    except yaml.YAMLError as e:
        raise SourcesError(path, [f"not YAML: {e}"]) from None
    try:
        sources = _Document.model_validate(doc).sources
    except ValidationError as e:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise SourcesError(path, problems) from None
    missing = []
    for s in sources:
        if isinstance(s, TtsSource):
            s.api_key = env.get(s.api_key_env, "")
            if not s.api_key:
                missing.append(f"{s.name}: environment variable {s.api_key_env} (the API key) is not set")
    if missing:
        raise SourcesError(path, missing)
    return sources


def mqtt_config(source: Source, settings: Settings) -> MqttConfig:
    """The MQTT client configuration of ``source``; unset values come from the ``STADTPULS_MQTT_*`` settings."""
    s = settings
    one = source.name == "mqtt" and s.sources_file is None  # the single STADTPULS_MQTT_URL source
    if isinstance(source, TtsSource):
        url, topics, share = source.broker_url(), source.topics(), None
    else:
        url, topics, share = source.url, source.topics or list(s.mqtt_topics), source.share_group
        if one:
            share = s.mqtt_share_group
    return MqttConfig(
        url=url,
        client_id=s.mqtt_client_id if one else source.client_id or f"{s.mqtt_client_id}-{source.name}",
        topics=topics,
        share_group=share,
        qos=s.mqtt_qos if one else source.qos,
        receive_maximum=s.mqtt_receive_maximum,
        ca_file=source.ca_file or s.mqtt_ca_file,
        cert_file=source.cert_file or s.mqtt_cert_file,
        key_file=source.key_file or s.mqtt_key_file,
    )
