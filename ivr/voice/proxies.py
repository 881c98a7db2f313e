"""Which X-Forwarded-* headers to believe: only those added by our own proxies.

Anyone can send X-Forwarded-For, -Proto and -Host. Behind N reverse proxies of ours
(METERLINE_TRUSTED_PROXIES=N), Werkzeug's ProxyFix takes the client address, scheme and host
from the last N values, the ones our proxies appended; with 0 every such header is ignored.
Webhook signatures never depend on them: they are checked against METERLINE_PUBLIC_URL.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_proxies(app: Flask, hops: int) -> None:
    """Believe the X-Forwarded-* values of the last `hops` proxies; none when `hops` is 0."""
    if hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
