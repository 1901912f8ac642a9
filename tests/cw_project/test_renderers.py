"""The API's renderer: orjson, lossless datetimes, and Ninja's encoder for the rest."""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from cw_project.renderers import FastJSONRenderer


def render(value):
    return json.loads(FastJSONRenderer().render(None, value, response_status=200))


def test_datetimes_are_rfc3339_to_the_microsecond_with_z_for_utc():
    moment = datetime(2026, 11, 29, 6, 49, 58, 123456, tzinfo=UTC)
    assert render({"at": moment}) == {"at": "2026-11-29T06:49:58.123456Z"}
    assert datetime.fromisoformat(render([moment])[0]) == moment  # lossless
    paris = moment.astimezone(timezone(timedelta(hours=1)))
    assert render([paris]) == ["2026-11-29T07:49:58.123456+01:00"]


def test_what_orjson_cannot_write_goes_to_ninjas_encoder_or_renderer():
    assert render({"price": Decimal("1.50")}) == {"price": "1.50"}
    assert render({"big": 2**70}) == {"big": 2**70}  # beyond 64 bits: the json renderer
