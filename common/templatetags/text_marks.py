"""{{ text|code_marks }}: the `backtick` marks of plain-text messages as <code>, so a message
written once for logs and command output reads right on a page too (never literal backticks)."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_MARKED = re.compile(r"`([^`\n]+)`")


@register.filter
def code_marks(text: object) -> SafeString:
    # Escaped first: only the <code> tags added here are markup.
    escaped = escape(str(text))
    return mark_safe(_MARKED.sub(r"<code>\1</code>", escaped))  # noqa: S308
