"""The parsers of every API view: DRF's own, with each way a body can break them a 400.

DRF turns a JSON syntax error into a ParseError (400 `bad_request`) but lets anything else
a parser raises escape as a 500: the decoder's RecursionError on deeply nested JSON, and
Django's SuspiciousOperation subclasses for a form with too many fields or files.
"""

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except TooManyFieldsSent:
            raise ParseError(
                f"The form has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields."
            ) from None
        except TooManyFilesSent:
            raise ParseError(
                f"The form has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files."
            ) from None
