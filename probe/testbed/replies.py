"""HTTP answers that both a genuine server and the middlebox can give.

A blockpage or a redirect looks the same on the wire whether the service
itself sends it or a DPI box injects it in the service's place; which one
sent it is what the scenario decides, so the rule objects are shared.
"""

from __future__ import annotations

import http
from dataclasses import dataclass

# A Russian ISP's stub page for a resource in Roskomnadzor's registry, as
# subscribers see it: the law, the registry's address, the regulator's name.
RKN_BLOCKPAGE = (
    '<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8">'
    "<title>Доступ к ресурсу ограничен</title></head><body>"
    "<h1>Доступ к запрашиваемому ресурсу ограничен</h1>"
    "<p>Уважаемый абонент! Доступ к информационному ресурсу ограничен на основании "
    "Федерального закона от 27.07.2006 № 149-ФЗ «Об информации, информационных технологиях "
    "и о защите информации».</p>"
    "<p>Ресурс включён в Единый реестр доменных имён, указателей страниц сайтов в сети «Интернет» "
    "и сетевых адресов, позволяющих идентифицировать сайты, содержащие информацию, "
    "распространение которой в Российской Федерации запрещено.</p>"
    '<p>Проверить наличие ресурса в реестре: <a href="https://eais.rkn.gov.ru/">eais.rkn.gov.ru</a>. '
    "Реестр ведёт Федеральная служба по надзору в сфере связи, информационных технологий "
    "и массовых коммуникаций (Роскомнадзор).</p></body></html>"
)


@dataclass(frozen=True)
class Blockpage:
    """A page served in place of the real one (``body`` as UTF-8 HTML)."""

    body: str
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    """A redirect whose ``Location`` the probe records; nobody ever follows it to a real host."""

    location: str
    status: int = 302


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
