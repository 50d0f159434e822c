"""The three stages (collect, transform, deliver) plus the dead-letter archive.

transform/deliver/archive share one shape: `handle(messages) -> {ack_id: Decision}`, so the same
code runs under the local worker loop (pull) and under a Pub/Sub push (one message per call).
"""
