"""The bus between the stages: publish, pull, ack, nack; dead-letter after N attempts.

`local` is a durable on-disk queue (SQLite, WAL) for one machine; `pubsub` is Google Cloud Pub/Sub.
Both implement `Bus` (base.py) and share the topology below.
"""

from tagpipe.transport.base import (  # noqa: F401
    DEAD_LETTER,
    DELIVERIES,
    RAW_HITS,
    TOPOLOGY,
    Bus,
    Message,
    Subscription,
)
