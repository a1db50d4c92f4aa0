"""How /api/schema and /api/docs present the API: paths as clients call them, the
operations grouped by tag (SPECTACULAR_SETTINGS["TAGS"]), the seed's two schedule
endpoints first."""

# Within a tag, these paths first, in this order; the rest alphabetically.
FIRST = ["/api/schedule-sms", "/api/schedule-email", "/api/schedule-batch"]


def operation_order(path: str) -> tuple[int, str]:
    return (FIRST.index(path) if path in FIRST else len(FIRST), path)


def preprocess_paths(endpoints):
    """Routes accept an optional trailing slash (`/?$`); show the form without it,
    as the seed's clients call them, in the order above."""
    shown = [
        (path.rstrip("/"), regex, method, view)
        for path, regex, method, view in endpoints
    ]
    return sorted(shown, key=lambda endpoint: operation_order(endpoint[0]))
