"""The mention in a comment's Markdown: the first `@<name>` that is the commenter's own words.

A mention inside a quote (`> ` lines, or `<blockquote>`), a fenced or indented code block, an
inline code span, `<code>`/`<pre>` or an HTML comment is someone else's words or talk about the
runner, not a request: such text is masked (blanked, keeping every offset) before looking. Quotes
and code inside list items count as well, read at the item's indentation. The prompt is the
original text after the mention, so it may itself quote or contain code.
"""

import re
from dataclasses import dataclass, field

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_QUOTE = re.compile(r"^ {0,3}>")
_INDENTED_CODE = re.compile(r"^(?: {4}| {0,3}\t)")
# A list item's marker and the spaces after it (1 to 4; with more, the item's text starts one
# space after the marker and the rest indents a code block).
_LIST_ITEM = re.compile(r"^ {0,3}([-+*]|[0-9]{1,9}[.)])(?: {1,4}(?=\S)| |$)")
# A list item that may start a list under a paragraph: not empty, and if numbered, numbered 1
# (the next item of a list already open may be any item).
_INTERRUPTING_ITEM = re.compile(r"^ {0,3}(?:[-+*]|0{0,8}1[.)]) +\S")
# A heading or a thematic break; and under a paragraph, a heading's underline.
_BREAK = re.compile(r"^ {0,3}(?:#{1,6}(?:[ \t]|$)|([-*_])(?:[ \t]*\1){2,}[ \t]*$)")
_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
# What ends a paragraph rather than continuing it (an underline only under its own paragraph).
_PARAGRAPH_ENDS = (_INTERRUPTING_ITEM, _QUOTE, _FENCE_OPEN, _BREAK)
# Markdown's line endings (str.splitlines would also end lines at form feeds and U+2028).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_BACKTICKS = re.compile(r"`+")
type _Item = tuple[int, str]  # an open list item: its text's column, its marker's kind
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
    scan = _BlockScan()
    blanked = [
        _blank(line) if scan.hidden(line.rstrip("\r\n")) else line for line in _LINE.findall(text)
    ]
    return _html_masked(_code_spans_masked("".join(blanked)))


@dataclass
class _BlockScan:
    """Line by line, the blocks the lines are in: whole lines of quotes and code are hidden."""

    fence: str = ""  # the open fence's characters, while inside one
    fence_items: int = 0  # how many list items the open fence is inside
    items: list[_Item] = field(default_factory=list)  # the open list items, innermost last
    after: str = "blank"  # what the previous line was: blank, text, quote or code

    def hidden(self, line: str) -> bool:
        # Lines are hidden whole, so they are classified on a copy with tabs at their stops.
        content = line.expandtabs(4)
        blank = not content.strip()
        if not blank:
            content, next_item = _items_closed(content, self.items, lazy=self.after == "text")
            if self.fence and len(self.items) < self.fence_items:
                self.fence = ""  # the list item it was in has ended, and the fence with it
            under = self.after == "text" and not next_item  # a paragraph it would interrupt
            if not self.fence and (_BREAK.match(content) or (under and _UNDERLINE.match(content))):
                self.after = "blank"  # a heading's own words; what follows starts afresh
                return False
            opened = content if self.fence else _items_opened(content, self.items, under=under)
            if opened != content:
                content, self.after = opened, "blank"  # an item's text starts a block of its own
                blank = not content.strip()
        if self.fence:
            closer = content.strip()
            indent = len(content) - len(content.lstrip(" "))
            if indent <= 3 and closer.startswith(self.fence) and not closer.strip(self.fence[0]):
                self.fence = ""
            return True
        return self._block_start(content, blank)

    def _block_start(self, content: str, blank: bool) -> bool:
        opening = _FENCE_OPEN.match(content)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            self.fence, self.fence_items, self.after = opening.group(1), len(self.items), "code"
            return True
        if _QUOTE.match(content) or (self.after == "quote" and not blank):
            # A line right after a quoted one continues the quote (a lazy continuation).
            self.after = "quote"
            return True
        if not blank and self.after in ("blank", "code") and _INDENTED_CODE.match(content):
            self.after = "code"
            return True
        self.after = "blank" if blank else "text"
        return False


def _items_closed(content: str, items: list[_Item], *, lazy: bool) -> tuple[str, bool]:
    """A non-blank line's text inside the open list items it is indented into, and whether it
    starts the next item of a list it is not indented into. The items it is indented less than
    end (``items`` loses them), unless the line continues a paragraph (``lazy``: one is open)
    and starts nothing that would end it."""
    indent = len(content) - len(content.lstrip(" "))
    inside = len(items)
    while inside and indent < items[inside - 1][0]:
        inside -= 1
    text = content[items[inside - 1][0] :] if inside else content
    marker = _LIST_ITEM.match(text) if inside < len(items) else None
    next_item = marker is not None and marker.group(1)[-1] == items[inside][1]
    ends = next_item or any(end.match(text) for end in _PARAGRAPH_ENDS)
    if inside < len(items) and lazy and not ends:
        return content.lstrip(" "), False
    del items[inside:]
    return text, next_item


def _items_opened(text: str, items: list[_Item], *, under: bool) -> str:
    """``text`` after the list markers that start it (``items`` gains them). ``under`` a
    paragraph, only a marker that may interrupt it starts a list."""
    if under and not _INTERRUPTING_ITEM.match(text):
        return text
    while (marker := _LIST_ITEM.match(text)) is not None:
        items.append(((items[-1][0] if items else 0) + marker.end(), marker.group(1)[-1]))
        text = text[marker.end() :]
    return text


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
