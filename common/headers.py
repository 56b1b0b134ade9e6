"""What an HTTP header value may hold. Plain Python: the settings module checks with it."""

MAX_HEADER_VALUE_CHARS = 200


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as one header's value (None: it can): empty, too long, or a
    character a header cannot carry (a line break would start a new header)."""
    if not value.strip():
        return "it is empty"
    if len(value) > MAX_HEADER_VALUE_CHARS:
        return f"it is {len(value)} characters long; at most {MAX_HEADER_VALUE_CHARS} are allowed"
    if not (value.isascii() and value.isprintable()):
        return "it holds a line break, a control character or a character that is not ASCII"
    return None
