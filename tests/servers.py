"""Real servers for tests that need real processes: gunicorn with several workers (started in
its own process group, so that a test can kill -9 all of it), and a browser-like form client
with its own cookies and CSRF tokens."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, free_port


class Gunicorn:
    def __init__(self, database_url: str, workers: int = 4, **env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "BOOKING_ENV": "production",
            "SECRET_KEY": "real-process-test-secret",
            "DATABASE_URL": database_url,
            "PUBLIC_BASE_URL": self.base,
            **env,
        }
        self.workers = workers
        self.process: subprocess.Popen | None = None
        # The server's stderr goes to a file, not a pipe: a pipe nobody reads until the end
        # fills up and then blocks every worker that logs. Opened for appending (every write
        # lands at the end) and read through a handle of its own.
        fd, self.log_path = tempfile.mkstemp(prefix="gunicorn-", suffix=".log")
        os.close(fd)
        self.stderr = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop())
        self.last_words = ""

    def start(self) -> Gunicorn:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [
                str(gunicorn),
                "--workers",
                str(self.workers),
                "--threads",
                "4",
                "--worker-class",
                "gthread",
                "--bind",
                f"127.0.0.1:{self.port}",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            start_new_session=True,  # its own process group: kill() reaches every worker
        )
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=2).read()
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start: " + self.errors())

    def errors(self) -> str:
        """The last of what the server has written to stderr so far."""
        if self.stderr.closed:
            return self.last_words
        with open(self.log_path, "rb") as log:
            return log.read().decode(errors="replace")[-4000:]

    def kill(self) -> None:
        """kill -9 of the master and every worker at once: no clean shutdown of anything."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)
        self._close_log()

    def stop(self) -> str:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self._close_log()
        return self.last_words

    def _close_log(self) -> None:
        """Keep the log's last words and remove the file (the process has ended)."""
        if not self.stderr.closed:
            self.last_words = self.errors()
            self.stderr.close()
            os.unlink(self.log_path)


def post_json(url: str, token: str, body: dict, timeout: float = 60) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"{}")
        except ValueError:
            return error.code, {"raw": raw.decode(errors="replace")[:500]}


_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class FormClient:
    """One browser: its own cookie jar, forms posted with the page's CSRF token; redirects
    are not followed, so a test sees each answer's status."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def request(self, path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def post_form(self, path: str, data: dict, token_from: str | None = None) -> int:
        _status, page = self.request(token_from or path)
        match = _CSRF.search(page)
        token = match.group(1) if match else ""
        return self.request(path, {**data, "csrf_token": token})[0]
