"""The same endpoint on functions-framework's default (gunicorn, Flask) serving, calling
parse_push_envelope directly: the adapter must not depend on the ASGI stack."""

import functions_framework

from tagpipe.errors import InvalidInput
from tagpipe.transport.push import ACK, NACK, THROTTLE, parse_push_envelope
from tests.gcp.push_function.script import ScriptedStage

_stage = ScriptedStage()


@functions_framework.http
def receive(request):
    try:
        message = parse_push_envelope(request.get_data(), request.headers)
    except InvalidInput as exc:
        return exc.as_json(), exc.status
    decision = _stage.handle([message])[message.ack_id]
    if decision.ack:
        return "", ACK
    return "", THROTTLE if decision.throttled else NACK
