"""Keep secrets out of the logs, whoever logs them."""

import logging
import re

SECRET = re.compile(
    r"(?P<keep>Bearer |Basic |v1,|whsec_|qs_[0-9a-f]{8}_)"
    r"(?P<secret>[A-Za-z0-9+/=_\-.]+)"
)


class RedactSecrets(logging.Filter):
    """Masks API keys, signing secrets, signatures and Authorization values."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SECRET.sub(lambda m: m["keep"] + "[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
