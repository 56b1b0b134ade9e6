"""The mention in a comment's Markdown: the first `@<name>` that is the commenter's own words.

A mention inside a quote (`> ` lines, or `<blockquote>`), a fenced or indented code block, an
inline code span, `<code>`/`<pre>` or an HTML comment is someone else's words or talk about the
runner, not a request: such text is masked (blanked, keeping every offset) before looking. The
prompt is the original text after the mention, so it may itself quote or contain code.
"""

import re

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_QUOTE = re.compile(r"^ {0,3}>")
_INDENTED_CODE = re.compile(r"^(?: {4}| {0,3}\t)")
_BACKTICKS = re.compile(r"`+")
# Rendered hidden or as code or a quote; the tags' case does not matter to GitHub.
_HTML_MASKED = re.compile(
    r"<!--.*?(?:-->|\Z)|<(code|pre|blockquote|kbd|samp|tt)\b[^>]*>.*?(?:</\1\s*>|\Z)",
    re.IGNORECASE | re.DOTALL,
)


def mention_prompt(*, text: str, name: str) -> str | None:
    """What follows the first mention of ``name`` in the commenter's own words (stripped), or
    None when there is none."""
    pattern = rf"(?<![\w@/-])@{re.escape(name)}(?![\w-])"
    found = re.search(pattern, text_masked(text=text), re.IGNORECASE)
    return None if found is None else text[found.end() :].strip()


def text_masked(*, text: str) -> str:
    """``text`` with quotes, code and HTML comments blanked to spaces (line breaks kept), so
    offsets in it are offsets in ``text``."""
    lines = text.splitlines(keepends=True)
    masked = [False] * len(lines)
    fence = ""  # the open fence's characters, while inside one
    after = "blank"  # what the previous line was: blank, text, quote or code
    for index, line in enumerate(lines):
        content = line.rstrip("\r\n")
        blank = not content.strip()
        if fence:
            masked[index] = True
            closer = content.strip()
            indent = len(content) - len(content.lstrip(" "))
            if indent <= 3 and closer.startswith(fence) and not closer.strip(fence[0]):
                fence = ""
            continue
        opening = _FENCE_OPEN.match(content)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence, masked[index], after = opening.group(1), True, "code"
            continue
        if _QUOTE.match(content) or (after == "quote" and not blank):
            # A line right after a quoted one continues the quote (a lazy continuation).
            masked[index], after = True, "quote"
            continue
        if not blank and after in ("blank", "code") and _INDENTED_CODE.match(content):
            masked[index], after = True, "code"
            continue
        after = "blank" if blank else "text"
    blanked = [_blank(line) if hidden else line for line, hidden in zip(lines, masked, strict=True)]
    return _html_masked(_code_spans_masked("".join(blanked)))


def _blank(text: str) -> str:
    return re.sub(r"[^\r\n]", " ", text)


def _code_spans_masked(text: str) -> str:
    """Inline code: a run of backticks up to the next run of the same length, within one
    paragraph; a run with no partner is literal backticks."""
    paragraphs = re.split(r"(\n[ \t\r]*\n)", text)
    return "".join(_paragraph_spans_masked(part) for part in paragraphs)


def _paragraph_spans_masked(text: str) -> str:
    out, position = [], 0
    while (opener := _BACKTICKS.search(text, position)) is not None:
        run = opener.group()
        closer = re.compile(rf"(?<!`){run}(?!`)").search(text, opener.end())
        if closer is None:
            out.append(text[position : opener.end()])
            position = opener.end()
            continue
        out.append(text[position : opener.start()] + _blank(text[opener.start() : closer.end()]))
        position = closer.end()
    return "".join(out) + text[position:]


def _html_masked(text: str) -> str:
    return _HTML_MASKED.sub(lambda found: _blank(found.group()), text)
