"""The production command serves the admin's CSS, the API docs and the API under gunicorn.

The whole path an operator takes (`make serve`): a fresh database migrated, the static
files collected, gunicorn with DEBUG off, a token made with `create_api_token` — every
step a subprocess against a temporary SQLite file, as on a real host.
"""

import importlib.util
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings

from tests.serverprocess import free_port, manage

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.processes,
    pytest.mark.skipif(
        importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"
    ),
]

STARTUP_SECONDS = 30
SWAGGER_ASSET = re.compile(r"""(?:src|href)="(/static/[^"]+)\"""")


def _manage(env: dict[str, str], *arguments: str) -> str:
    run = manage(env, *arguments)
    assert run.returncode == 0, run.stderr + run.stdout
    return run.stdout


def _get(url: str, token: str | None = None) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET; error statuses are returned, not raised."""
    request = urllib.request.Request(url)  # noqa: S310  (http://127.0.0.1 only)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def _wait_until_answering(server: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{log.read_text()}")
        try:
            _get(url)
        except OSError:
            time.sleep(0.2)
        else:
            return
    pytest.fail(f"gunicorn did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


def test_gunicorn_without_debug_serves_static_files_the_api_docs_and_the_api(tmp_path):
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CW_", "DJANGO_", "DATABASE_URL"))
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "CW_STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    _manage(env, "migrate", "--no-input")
    _manage(env, "collectstatic", "--no-input")
    created = _manage(env, "create_api_token", "smoke-test")
    token = next(line for line in created.splitlines() if line.startswith("cw_"))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gunicorn", "cw_project.wsgi", "--workers", "2"]
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen(  # noqa: S603  (gunicorn, with arguments we chose)
            [*command, "--bind", f"127.0.0.1:{port}"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_answering(server, f"{base}/api/docs", log)

        status, content_type, _ = _get(f"{base}/static/admin/css/base.css")
        assert (status, content_type.split(";")[0]) == (HTTPStatus.OK, "text/css")

        status, _, page = _get(f"{base}/api/docs")
        assert status == HTTPStatus.OK
        assets = SWAGGER_ASSET.findall(page.decode())
        assert any("swagger" in asset for asset in assets), page.decode()
        for asset in assets:
            assert _get(f"{base}{asset}")[0] == HTTPStatus.OK, asset

        status, _, body = _get(f"{base}/api/whoami", token=token)
        assert status == HTTPStatus.OK, body
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_check_deploy_finds_nothing_with_the_documented_production_settings(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "cw.example.com",
        "CW_HTTPS": "true",
        "CW_BEHIND_PROXY": "true",
    }
    output = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert "no issues (0 silenced)" in output


def test_check_deploy_warns_when_https_is_off(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "cw.example.com",
        "CW_HTTPS": "false",
    }
    run = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert run.returncode != 0
    assert "security.W004" in run.stderr + run.stdout  # no HSTS
