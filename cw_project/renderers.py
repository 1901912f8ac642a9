"""The API's JSON renderer: orjson.

Every response body is rendered here, so its speed is every operation's: orjson writes
a page of a hundred items about ten times faster than ``json.dumps`` with Ninja's
encoder class. Datetimes are written by orjson itself, in RFC 3339 with all their
microseconds and ``Z`` for UTC (``2026-11-29T06:49:58.123456Z``): lossless, so a value
a tool reads back compares equal to the stored one. Values orjson has no format for
(Decimals, pydantic models, URLs) go to Ninja's encoder; whatever orjson refuses
outright (an integer beyond 64 bits) is rendered by Ninja's own renderer instead.
"""

from typing import Any

import orjson
from django.http import HttpRequest
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
_default = NinjaJSONEncoder().default


class FastJSONRenderer(JSONRenderer):
    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> Any:
        try:
            return orjson.dumps(data, default=_default, option=_OPTIONS)
        except TypeError:
            return super().render(request, data, response_status=response_status)
