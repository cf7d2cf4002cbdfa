"""The API's JSON reader: bounded in size and in depth, so that no body can cost more than the
portal allows or reach code (the audit trail's canonical JSON, the serializers) that recurses
once per level."""

import codecs

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from portal.exceptions import BadRequest, body_too_large

# Nothing the API takes nests deeper than a few levels; params and metrics get room to spare.
MAX_DEPTH = 32


def _deeper_than(value, limit: int) -> bool:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the limits Django puts on form bodies: more than
    `DATA_UPLOAD_MAX_MEMORY_SIZE` bytes is 413 `body_too_large`, nesting beyond `MAX_DEPTH` is
    400 `json_too_deep` (Python's own parser gives up with a RecursionError near 1000)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise body_too_large()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        too_deep = BadRequest(
            f"The JSON body nests deeper than {MAX_DEPTH} levels.", code="json_too_deep"
        )
        try:
            data = json.loads(
                codecs.decode(raw, encoding),
                parse_constant=json.strict_constant if self.strict else None,
            )
        except RecursionError:
            raise too_deep from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
        if _deeper_than(data, MAX_DEPTH):
            raise too_deep
        return data
