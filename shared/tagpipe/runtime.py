"""Everything a stage needs, built once per process from the environment (tagpipe.settings: which
transport and store, the GCP names) and the config; the destinations' secrets are read here too.

Heavy parts (destinations, the HTTP client, GCP clients) are created on first use, so the collect
function's cold start imports only what it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from tagpipe.config import Config, DestinationEntry, load_config
from tagpipe.settings import Settings
from tagpipe.storage.base import Store
from tagpipe.transport.base import TOPOLOGY, Bus, Subscription, per_destination


@dataclass
class Runtime:
    config: Config
    bus: Bus
    store: Store
    secrets_from: Mapping[str, str] | None = field(default=None, repr=False)  # None: the process environment
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def entries(self) -> dict[str, DestinationEntry]:
        """The config's destination entries with their secrets, read once."""
        return self.config.resolved_entries(self.secrets_from)

    @cached_property
    def destinations(self):
        from tagpipe.destinations import destination_class
        from tagpipe.monitoring.logs import register_secrets

        for e in self.entries.values():
            register_secrets(e.secrets.values())
        return {
            e.id: destination_class(e.type)(e.id, e.settings, e.secrets)
            for e in self.entries.values()
            if e.enabled
        }

    @cached_property
    def http(self):
        import httpx

        d = self.config.delivery
        return httpx.Client(
            timeout=httpx.Timeout(10.0, connect=d.connect_timeout),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            headers={"user-agent": "tagpipe/0.1"},
        )

    def close(self) -> None:
        if "http" in self.__dict__:
            self.http.close()
        self.bus.close()
        self.store.close()


def topology_for(config: Config) -> dict[str, Subscription]:
    d = config.delivery
    topo = dict(TOPOLOGY)
    for name in ("transform", "deliver"):
        sub = topo[name]
        topo[name] = Subscription(
            sub.name, sub.topic, d.max_attempts, d.min_backoff, d.max_backoff, sub.ack_deadline, sub.dead_letter_topic
        )
    return topo


def exact_outcomes(config: Config):
    """Destinations whose outcomes the GCP store keeps exactly once with a Firestore marker: those whose
    [delivery] dedup scope is "all" (see BigQueryStore.record_outcomes)."""
    delivery = config.delivery
    return lambda destination: delivery.dedup_scope(destination) == "all"


def build_runtime(config: Config | None = None, environ: Mapping[str, str] | None = None, *,
                  secrets: Mapping[str, str] | None = None) -> Runtime:
    """`environ`: where the settings (and, unless `secrets` is given, the secrets) come from; default:
    the process environment."""
    config = config or load_config()
    settings = Settings.load(environ)
    topology = topology_for(config)
    if settings.transport == "pubsub":
        from tagpipe.transport.pubsub import PubSubBus

        # one deliveries topic and subscription per destination, as Terraform creates them
        enabled = [e.id for e in config.destination_entries().values() if e.enabled]
        bus: Bus = PubSubBus.from_settings(settings, topology=per_destination(topology, enabled))
    else:
        from tagpipe.transport.local import LocalBus

        bus = LocalBus(config.storage.dir, topology)
    if settings.store == "bigquery":
        from tagpipe.storage.bigquery import BigQueryStore

        store: Store = BigQueryStore.from_settings(settings, bus=bus if settings.transport == "pubsub" else None,
                                                   exact_outcomes=exact_outcomes(config))
    else:
        from tagpipe.storage.sqlite import SqliteStore

        store = SqliteStore(config.storage.dir)
    runtime = Runtime(config, bus, store, secrets if secrets is not None else environ)
    try:
        runtime.entries  # a missing secret stops the start, not the first event  # noqa: B018
    except BaseException:
        runtime.close()
        raise
    return runtime


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime (functions call this; tests and the local stack may install one)."""
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = build_runtime()
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime
