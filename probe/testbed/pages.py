"""An ordinary page, as genuine services serve them: what fingerprints must not match."""

from __future__ import annotations


def ordinary_page(size: int = 512 * 1024) -> bytes:
    """Markup, English and Russian text, script; no blockpage fingerprint in it."""
    parts, total, i = [], 0, 0
    while total < size:
        i += 1
        part = (
            f'<div class="row r{i % 17}" id="item-{i}"><a href="https://www.example.com/p/{i}?ref=nav&amp;l=en">'
            f"Item {i}</a><p>Download the app for your phone, or use it on the web. Privacy policy, help.</p>"
            f"<p>Скачайте приложение для телефона или используйте веб-версию. Справка, блог.</p>"
            f"<script>window.cfg_{i}={{id:{i * 7919 % 100003},lang:'en',flags:[1,0,1]}};</script></div>\n"
        ).encode()
        parts.append(part)
        total += len(part)
    return b"".join(parts)[:size]
