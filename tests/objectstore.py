"""An S3-compatible server on loopback (moto's), and a real CDN in front of it: Debian's nginx
as a caching proxy, with the purge a CDN offers (a command that refreshes given URLs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.loopback import free_port, loopback_server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
AWS_DUMMIES = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# A CDN's purge, as a command given the URLs: each is fetched once past the cache, which
# replaces the cached copy (nginx's proxy_cache_bypass), as a CDN's purge API would drop it.
PURGE_COMMAND = [
    sys.executable,
    "-c",
    "import sys, httpx; [httpx.get(u, headers={'X-Refresh': '1'}).raise_for_status() "
    "for u in sys.argv[1:]]",
]


@contextmanager
def s3_server(
    monkeypatch: pytest.MonkeyPatch, *buckets: str, public: bool = False
) -> Iterator[str]:
    """moto's S3 server on loopback with `buckets`, readable by anyone when `public` (a
    bucket policy, as a site behind a CDN has); its endpoint URL. The credentials are moto's
    dummies, in the environment, as boto3 reads them."""
    for name, value in AWS_DUMMIES.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()  # moto's state is per process
    client = boto3.client("s3", endpoint_url=endpoint)
    for bucket in buckets:
        client.create_bucket(Bucket=bucket)
        if public:
            statement = {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
            policy = {"Version": "2012-10-17", "Statement": [statement]}
            client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    try:
        yield endpoint
    finally:
        server.stop()


@dataclass(frozen=True)
class Cdn:
    url: str  # where the public reaches the origin, through the cache
    cache: Path


_NGINX_CONF = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
{user}
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    proxy_cache_path {root}/cache keys_zone=cdn:1m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {origin};
            proxy_cache cdn;
            proxy_cache_valid 200 206 10m;
            proxy_cache_valid any 1s;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            proxy_cache_bypass $http_x_refresh;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""


@contextmanager
def caching_proxy(origin: str, root: Path) -> Iterator[Cdn]:
    """nginx caching everything `origin` serves for ten minutes (whatever the origin says), as
    a CDN does; a request with `X-Refresh: 1` replaces the cached copy (the purge)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = root / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(root=root, port=port, origin=origin, user=user))
    process = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None:
                    raise RuntimeError(f"nginx did not start: {process.stderr.read()}") from None
                time.sleep(0.05)
        yield Cdn(url=url, cache=root / "cache")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stderr.close() if process.stderr else None


class HeldUploads:
    """A loopback proxy in front of an S3 endpoint that can hold uploads: a PUT of a key that
    ends with `hold_suffix` waits (its client waiting on it) until `release()`, which lets it
    through, or drops it (the upload that died with its process). What the local
    production's `hold_pushes` is to git, for a bucket: the place to kill a run mid-publish."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.hold_suffix = ""
        self.dropping = False
        self.waiting = threading.Event()
        self._open = threading.Event()
        self._open.set()

    def hold(self, suffix: str) -> None:
        self.hold_suffix, self.dropping = suffix, False
        self._open.clear()

    def release(self, *, drop: bool = False) -> None:
        self.hold_suffix, self.dropping = "", drop
        self._open.set()

    @contextmanager
    def serve(self) -> Iterator[str]:
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.path.split("?")[0]
                if self.command == "PUT" and proxy.hold_suffix and key.endswith(proxy.hold_suffix):
                    proxy.waiting.set()
                    proxy._open.wait(timeout=120)
                    if proxy.dropping:
                        self.close_connection = True
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.request(
                    self.command,
                    proxy.endpoint + self.path,
                    headers=headers,
                    content=body,
                    timeout=60,
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        with loopback_server(Forward) as url:
            yield url
