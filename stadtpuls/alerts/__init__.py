"""Alerts: rules over the store, alerts with their state changes, and notifications delivered from an outbox.

:mod:`.kinds` describes what each rule kind watches (one set-based query each); :mod:`.evaluate` runs a round;
:mod:`.store` holds the statements the command line and the API share and the YAML import; :mod:`.notify` is the
sender (webhooks, e-mail); :mod:`.digest` queues each channel's daily digest; :mod:`.service` runs rounds every
interval (``stadtpuls alerts``).
"""

from .digest import Digest, queue_digests
from .evaluate import RoundResult, evaluate, load_rules
from .kinds import KINDS, SEVERITIES, Kind, Rule, RuleError, default_rules
from .notify import DeliveryError, Sender, SenderConfig, SendStats, quiet_until, signature
from .store import Channel, ChannelError, acknowledge, import_config, load_config

__all__ = [
    "KINDS",
    "SEVERITIES",
    "Channel",
    "ChannelError",
    "DeliveryError",
    "Digest",
    "Kind",
    "RoundResult",
    "Rule",
    "RuleError",
    "SendStats",
    "Sender",
    "SenderConfig",
    "acknowledge",
    "default_rules",
    "evaluate",
    "import_config",
    "load_config",
    "load_rules",
    "queue_digests",
    "quiet_until",
    "signature",
]
