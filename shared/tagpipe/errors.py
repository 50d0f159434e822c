"""The exception tree. Each class says what the caller does about it.

    TagpipeError
    ├── ConfigError          bad config: fail at start-up, name the key and the fix; never retried
    ├── InvalidInput         bad hit or event: 4xx + JSON reason, a failed-event record; never retried
    ├── StoreUnavailable     the queue or store cannot write: collect answers 503 so the tag retries
    └── DeliveryError        a vendor call did not succeed
        ├── RetryableDelivery    5xx, network, throttling: retry with backoff (honour retry_after)
        └── PermanentDelivery    the vendor refused the request for good: reject / dead-letter, alert
"""

from __future__ import annotations

from tagpipe.reasons import require as registered_reason


class TagpipeError(Exception):
    """Base of every error tagpipe raises on purpose."""


class ConfigError(TagpipeError):
    def __init__(self, key: str, message: str, fix: str = "", source: str = "") -> None:
        self.key, self.message, self.fix, self.source = key, message, fix, source
        where = f"{source}: " if source else ""
        hint = f" Fix: {fix}" if fix else ""
        super().__init__(f"{where}{key}: {message}.{hint}")


class InvalidInput(TagpipeError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        self.code, self.message, self.status = registered_reason(code), message, status
        super().__init__(f"{code}: {message}")

    def as_json(self) -> dict:
        return {"ok": False, "error": self.code, "reason": self.message}


class StoreUnavailable(TagpipeError):
    """The durable queue or store refused a write (disk full, read-only, locked)."""


class DeliveryError(TagpipeError):
    def __init__(self, reason: str, message: str, retry_after: float | None = None) -> None:
        self.reason, self.message, self.retry_after = reason, message, retry_after
        super().__init__(f"{reason}: {message}")


class RetryableDelivery(DeliveryError):
    pass


class PermanentDelivery(DeliveryError):
    pass
