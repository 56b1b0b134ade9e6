"""code_marks: `command` marks in plain-text messages become <code>, and nothing else is markup."""

import re
from html import unescape

from hypothesis import given
from hypothesis import strategies as st

from common.templatetags.text_marks import code_marks


def test_marks_become_code_and_the_rest_is_escaped():
    assert code_marks("Run `claude setup-token` <now>") == (
        "Run <code>claude setup-token</code> &lt;now&gt;"
    )
    assert code_marks("a lone ` stays") == "a lone ` stays"
    assert code_marks("`<script>`") == "<code>&lt;script&gt;</code>"


@given(text=st.text(alphabet=st.sampled_from("ab <>&\"'`\n/"), max_size=60))
def test_no_markup_but_code_tags_and_no_text_lost(text):
    html = str(code_marks(text))
    assert re.sub(r"</?code>", "", html).count("<") == 0
    # Only the marks are gone: the words read the same.
    assert unescape(re.sub(r"</?code>", "", html)) == re.sub(r"`([^`\n]+)`", r"\1", text)
