"""{{ text|code_marks }}: the `backtick` marks of plain-text messages as <code>, so a message
written once for logs and command output reads right on a page too (never literal backticks).
{{ text|visible }}: what an agent wrote (its log, diff, file names), with every character that
could reorder or hide what is shown as a visible escape (common.text.text_visible)."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from common.text import text_visible

register = template.Library()

_MARKED = re.compile(r"`([^`\n]+)`")


@register.filter
def code_marks(text: object) -> SafeString:
    # Escaped first: only the <code> tags added here are markup.
    escaped = escape(str(text))
    return mark_safe(_MARKED.sub(r"<code>\1</code>", escaped))  # noqa: S308


@register.filter
def visible(text: object) -> str:
    # Its lines and tabs stay: a log or a diff line is shown as it is laid out.
    return text_visible("" if text is None else str(text), keep="\t\n")
