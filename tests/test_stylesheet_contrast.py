"""Every text colour in our stylesheets is readable on what it sits on: WCAG contrast of at least
4.5:1, computed from the colours the stylesheets declare (custom properties resolved)."""

import re
from pathlib import Path

import pytest

from oauth_tokens.models import CredentialStatus
from tasks.models import TaskStatus

ROOT = Path(__file__).resolve().parents[1]
STYLESHEETS = sorted((ROOT / "static" / "css").rglob("*.css"))
MINIMUM = 4.5
PAGE = "#ffffff"  # cards and the admin's content
PAGE_BG = "var(--bg)"
TOPBAR = "#111827"
CODE_BLOCK = "#0f172a"  # pre


def css_rules(text: str) -> list[tuple[str, dict[str, str]]]:
    """(selector, declarations) of every rule, @media blocks flattened."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    text = re.sub(r"@media[^{]*\{", "", text)
    rules = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        declarations = {}
        for declaration in body.split(";"):
            name, sep, value = declaration.partition(":")
            if sep:
                declarations[name.strip()] = value.replace("!important", "").strip()
        rules.append((" ".join(selector.split()), declarations))
    return rules


def custom_properties() -> dict[str, str]:
    found: dict[str, str] = {}
    for sheet in STYLESHEETS:
        for selector, declarations in css_rules(sheet.read_text()):
            if selector == ":root":
                found.update({k: v for k, v in declarations.items() if k.startswith("--")})
    return found


PROPERTIES = custom_properties()


def colour(value: str) -> str | None:
    """A declared colour as #rrggbb; None for what does not set one (none, inherit, ...)."""
    for _ in range(5):
        if m := re.search(r"var\((--[\w-]+)(?:,\s*([^)]+))?\)", value):
            value = PROPERTIES.get(m[1], m[2] or "")
            continue
        break
    m = re.search(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b", value)
    if not m:
        return None
    hex_digits = m[1] if len(m[1]) == 6 else "".join(c * 2 for c in m[1])
    return "#" + hex_digits.lower()


def luminance(hex_colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_matches_wcags_reference_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert colour("var(--missing, #abc)") == "#aabbcc"


def surfaces(selector: str) -> list[str]:
    """What a colour-only rule's text sits on."""
    if re.search(r"\.topbar|\.nav|\.brand|\.button\.link", selector):
        return [TOPBAR]
    if re.search(r"(^|\s)pre\b|\.diff|\.log", selector):
        return [CODE_BLOCK]
    return [PAGE, colour(PAGE_BG) or PAGE]


def colour_pairs() -> list[tuple[str, str, str, str]]:
    """(where, selector, text colour, background) for every rule that sets either."""
    pairs = []
    foreground = colour("var(--fg)") or "#000000"
    for sheet in STYLESHEETS:
        for selector, declarations in css_rules(sheet.read_text()):
            text = colour(declarations.get("color", ""))
            background = colour(
                declarations.get("background-color", "") or declarations.get("background", "")
            )
            where = sheet.relative_to(ROOT).as_posix()
            if background:  # text in it: its own colour, or the page's
                pairs.append((where, selector, text or foreground, background))
            elif text:
                pairs += [(where, selector, text, surface) for surface in surfaces(selector)]
    return pairs


def test_every_text_colour_is_readable_on_its_background() -> None:
    weak = [
        f"{where}: {selector}: {text} on {background} is {contrast(text, background):.2f}:1"
        for where, selector, text, background in colour_pairs()
        if contrast(text, background) < MINIMUM
    ]
    assert not weak, f"Under {MINIMUM}:1:\n" + "\n".join(weak)


BADGES = {
    *(f"badge-{status}" for status in TaskStatus.values),
    *(f"badge-{status}" for status in CredentialStatus.values),
    "badge-ok",
    "badge-warn",
    "badge-bad",
    "badge-muted",
}


@pytest.mark.parametrize("badge", sorted(BADGES))
def test_every_badge_has_its_own_readable_colours(badge: str) -> None:
    pairs = [
        (text, background)
        for _, selector, text, background in colour_pairs()
        if re.search(rf"\.{badge}(?![\w-])", selector)
    ]
    assert pairs, f".{badge} sets no colours of its own"
    for text, background in pairs:
        assert contrast(text, background) >= MINIMUM, (badge, text, background)
