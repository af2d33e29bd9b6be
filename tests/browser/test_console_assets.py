"""How the service serves the console: the page, its assets, caching and 404s (no browser needed)."""
from __future__ import annotations

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
