"""What a name or a title may contain, in one place: models, forms, serializers and services all
use these, so every path refuses the same text with the same message."""

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.deconstruct import deconstructible


class _WholeValue(RegexValidator):
    """The pattern must match the whole value. Python's `$` also matches before a final line
    break, the very character refused here; `^…$` stays in the pattern for the OpenAPI
    schema, where patterns are otherwise unanchored."""

    def __call__(self, value):
        if not self.regex.fullmatch(str(value)):
            raise ValidationError(self.message, code=self.code, params={"value": value})


@deconstructible(path="portal.validators.SingleLine")
class SingleLine(_WholeValue):
    """Titles and names are one line of text. A line break in a title becomes a header in the
    mail that announces it (a forged Bcc:, or a mail that cannot be sent); other control
    characters and text-direction overrides make what a signer reads differ from what is
    stored. Letters of every script stay welcome."""

    regex = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$"
    message = "Must be one line: no line breaks, tabs, control or text-direction characters."
    code = "not_single_line"


@deconstructible(path="portal.validators.PlainName")
class PlainName(_WholeValue):
    """Names that CI and people type and match, such as dataset names, follow the rule of
    model names (ASCII slugs): plain ASCII, so no letter of another script can pass for a
    Latin one (a Cyrillic o in 'loans') and no right-to-left control can reorder what is
    shown. Dots and slashes stay allowed; '@' separates a name from its version."""

    regex = r"^[A-Za-z0-9][!-?A-~]*$"
    message = (
        "Must be ASCII letters, digits and punctuation without spaces or '@', starting with a "
        "letter or digit: look-alike letters of other scripts and text-direction characters "
        "are refused, as in model names."
    )
    code = "not_plain_name"


class WholeMatch(_WholeValue):
    """A shape the whole value must have (a commit SHA, a digest, a URL), stated as is as the
    OpenAPI schema's `pattern`."""

    def __init__(self, regex: str, message: str, code: str = "invalid"):
        super().__init__(regex=regex, message=message, code=code)


_LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# The http(s) URLs the API takes for builds, pipelines and health checks: a host with its
# domain, localhost or an IPv4 address, then a path of printable ASCII. Every one of them
# passes Django's URLValidator too, which the records' URL fields apply.
HTTP_URL = (
    rf"^https?://(?:{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}|localhost|{_OCTET}(?:\.{_OCTET}){{3}})"
    r"(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$"
)
HTTP_URL_MESSAGE = "Must be an http:// or https:// URL."
