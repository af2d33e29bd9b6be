"""How the service serves the console: the page, its assets, caching and 404s (no browser needed)."""
from __future__ import annotations

import json
import re

import requests

from chalicelib.entrypoints import console


def test_page_is_served_with_asset_links_and_no_caching(stack):
    r = requests.get(f"{stack.api_url}/admin", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "{{" not in r.text and "<script>" not in r.text  # no inline scripts, nothing left to fill
    assert f'/admin/static/{console.VERSION}/js/app.js' in r.text
    assert f'/admin/static/{console.VERSION}/console.css' in r.text
    assert not re.search(r"eyJ[\w-]+\.", r.text)  # no token baked into the page


def test_every_shipped_asset_is_served_with_its_type_and_long_caching(stack):
    assert {"console.css", "js/app.js", "js/api.js", "js/money.js"} <= set(console.ASSETS)
    for name, (ctype, text) in console.ASSETS.items():
        r = requests.get(f"{stack.api_url}/admin/static/{console.VERSION}/{name}", timeout=10)
        assert r.status_code == 200, name
        assert r.headers["Content-Type"] == ctype
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.content.decode("utf-8") == text
    etag = r.headers["ETag"]
    again = requests.get(f"{stack.api_url}/admin/static/{console.VERSION}/{name}", headers={"If-None-Match": etag},
                         timeout=10)
    assert again.status_code == 304 and not again.content


def test_assets_of_another_version_are_not_cached_long(stack):
    r = requests.get(f"{stack.api_url}/admin/static/0123456789ab/js/app.js", timeout=10)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"


def test_only_known_files_are_served(stack):
    v = console.VERSION
    for path in (f"/admin/static/{v}/index.html", f"/admin/static/{v}/js/nope.js", f"/admin/static/{v}/app.js",
                 f"/admin/static/{v}/..%2F..%2Fapp.py", f"/admin/static/{v}/js/..%2Fconsole.css",
                 f"/admin/static/{v}/js/%2e%2e%2f%2e%2e%2fentrypoints%2fconsole.py"):
        r = requests.get(stack.api_url + path, timeout=10)
        assert r.status_code == 404, path
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["code"] == "NOT_FOUND"


def test_console_files_are_inside_the_lambda_package():
    """chalice bundles chalicelib/ whole; check with its own walker that every console file goes in."""
    from chalice.deploy.packager import BaseLambdaDeploymentPackager
    from chalice.utils import OSUtils

    root = console.CONSOLE_DIR.parents[1]
    packager = BaseLambdaDeploymentPackager(OSUtils(), None, None)
    zipped = {zip_path for _, zip_path in packager._iter_chalice_lib_if_needed(str(root))}
    shipped = {f"chalicelib/console/{name}" for name in [*console.ASSETS, "index.html"]}
    assert shipped <= zipped


def test_the_page_carries_the_domains_labels_and_status_groups(stack):
    from html.parser import HTMLParser

    from chalicelib.domain import refunds
    from chalicelib.domain.enums import catalogue

    class Catalogue(HTMLParser):
        text, inside = "", False

        def handle_starttag(self, tag, attrs):
            self.inside = tag == "script" and ("id", "catalogue") in attrs

        def handle_endtag(self, tag):
            self.inside = False

        def handle_data(self, data):
            if self.inside:
                self.text += data

    parser = Catalogue()
    parser.feed(requests.get(f"{stack.api_url}/admin", timeout=10).text)
    data = json.loads(parser.text)
    assert data["labels"] == catalogue()
    assert data["labels"]["RefundStatus"]["offline_pending"] == "待线下退款"
    assert set(data["groups"]["RESERVED"]) == set(refunds.RESERVED)
    assert set(data["groups"]["AWAITING_WECHAT"]) == set(refunds.AWAITING_WECHAT)


def test_catalogue_text_cannot_break_out_of_its_script_element(monkeypatch):
    from chalicelib.domain import enums

    hostile = {"X": {"a": "</script><script>alert(1)</script>", "b": "<!-- & -->", "c": "\u2028\u2029"}}
    monkeypatch.setattr(enums, "catalogue", lambda: hostile)
    text = console.catalogue_json()
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text)["labels"] == hostile


# Words of the console's own that happen to equal a label: amount headings and a verb.
UI_WORDS = {
    ("orders.js", "已退款"),  # the refunded amount (a column and a field), not the order status
    ("orders.js", "退款中"),  # the amount held by refunds in flight
    ("orders.js", "待审核"),  # the amount applied for and not yet reviewed
    ("reviews.js", "已拒绝"),  # what the reviewer did, followed by the refund's own status label
}
LABELLED = ("OrderStatus", "RefundStatus", "TaskStatus", "TaskType", "SourceType", "PayoutChannel",
            "AbnormalRefundType", "OfflineReason")
STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\'|`([^`]*)`')


def test_the_console_keeps_no_copy_of_the_status_labels():
    """Labels come from the catalogue the page carries (js/catalogue.js), never a hand-written copy."""
    from chalicelib.domain.enums import catalogue

    labels = {label: name for name in LABELLED for label in catalogue()[name].values()}
    found = []
    for path in sorted((console.CONSOLE_DIR / "js").glob("*.js")):
        source = path.read_text(encoding="utf-8")
        for m in STRING.finditer(source):
            text = next(g for g in m.groups() if g is not None)
            if text in labels and (path.name, text) not in UI_WORDS:
                found.append(f"{path.name}:{source.count(chr(10), 0, m.start()) + 1} {text!r} ({labels[text]})")
    assert not found, found
    # the check sees what it looks for
    assert STRING.search('x = "待线下退款";').group(1) in labels
