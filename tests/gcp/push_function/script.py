"""The scripted stage both test endpoints run: answers by the message's `mode` attribute."""

import json
import os
import threading

from tagpipe.pipeline.stage import ACK, Decision, nack
from tagpipe.transport.push import subscription_of

_lock = threading.Lock()


class ScriptedStage:
    subscription = "transform"

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def handle(self, messages):
        out = {}
        for m in messages:
            with _lock:
                self.seen[m.message_id] = count = self.seen.get(m.message_id, 0) + 1
                with open(os.environ["PUSH_LOG"], "a") as log:
                    log.write(json.dumps({
                        "message_id": m.message_id,
                        "data": m.data.decode(),
                        "attributes": dict(m.attributes),
                        "delivery_attempt": m.delivery_attempt,
                        "subscription": subscription_of(m),
                        "publish_time": m.publish_time,
                        "count": count,
                    }) + "\n")
            mode = m.attributes.get("mode", "ack")
            if mode == "nack" or (mode == "nack-once" and count == 1):
                out[m.ack_id] = nack()
            elif mode == "throttle-once" and count == 1:
                out[m.ack_id] = nack(throttled=True)
            else:
                out[m.ack_id] = ACK
        return out


__all__ = ["ScriptedStage", "Decision"]
