"""Why a service refused: the HTTP surface maps each to its status code."""


class QueueUnavailable(Exception):
    """Redis (or a busy database) could not take the write; nothing was scheduled."""


class IllegalTransition(Exception):
    """The job is unknown or not in a state that allows the requested action."""


class IdempotencyConflict(Exception):
    """The idempotency key was already used for a different request."""

    message = "This idempotency key was already used with a different request."
