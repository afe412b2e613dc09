"""Downloads against a local HTTP server on 127.0.0.1: retries, md5, atomicity (no network)."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from molw2s.data.download import DownloadError, download
from molw2s.errors import ChecksumError, DataError

PAYLOAD = b"smiles\n" + b"CCO\n" * 50_000
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Server:
    """Serves PAYLOAD at /ok, fails the first ``fail_first`` requests with 503, lies at /short."""

    def __init__(self, fail_first: int = 0):
        self.requests = 0
        self.fail_first = fail_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                server.requests += 1
                if self.path == "/missing":
                    self.send_error(404)
                    return
                if server.requests <= server.fail_first:
                    self.send_error(503)
                    return
                body = PAYLOAD[:1000] if self.path == "/short" else PAYLOAD
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_download_streams_and_checks_md5(tmp_path):
    target = tmp_path / "sub" / "f.csv"
    with _Server() as srv:
        assert download(f"{srv.url}/ok", target, md5=MD5, progress=False, backoff=0) == target
    assert target.read_bytes() == PAYLOAD and _leftovers(target.parent) == []


def test_md5_mismatch_rejects_the_file_without_retrying(tmp_path):
    target = tmp_path / "f.csv"
    with _Server() as srv:
        with pytest.raises(ChecksumError, match="md5 mismatch"):
            download(f"{srv.url}/ok", target, md5="0" * 32, progress=False, backoff=0)
        assert srv.requests == 1
    assert not target.exists() and _leftovers(tmp_path) == []


def test_md5_mismatch_keeps_an_existing_good_file(tmp_path):
    target = tmp_path / "f.csv"
    target.write_bytes(b"old")
    with _Server() as srv, pytest.raises(ChecksumError):
        download(f"{srv.url}/ok", target, md5="0" * 32, progress=False, backoff=0)
    assert target.read_bytes() == b"old"


def test_server_errors_are_retried(tmp_path):
    target = tmp_path / "f.csv"
    with _Server(fail_first=2) as srv:
        download(f"{srv.url}/ok", target, md5=MD5, retries=3, progress=False, backoff=0)
        assert srv.requests == 3
    assert target.read_bytes() == PAYLOAD


def test_gives_up_after_retries(tmp_path):
    with _Server(fail_first=10) as srv:
        with pytest.raises(DownloadError, match="503"):
            download(f"{srv.url}/ok", tmp_path / "f", retries=2, progress=False, backoff=0)
        assert srv.requests == 3


def test_not_found_is_not_retried(tmp_path):
    with _Server() as srv:
        with pytest.raises(DownloadError, match="404"):
            download(f"{srv.url}/missing", tmp_path / "f", retries=3, progress=False, backoff=0)
        assert srv.requests == 1


def test_incomplete_transfer_is_retried_then_rejected(tmp_path):
    with _Server() as srv:
        with pytest.raises(DownloadError):
            download(f"{srv.url}/short", tmp_path / "f", retries=1, progress=False, backoff=0)
        assert srv.requests == 2
    assert not (tmp_path / "f").exists() and _leftovers(tmp_path) == []


def test_verify_callback_can_reject(tmp_path):
    def verify(path):
        raise DataError("wrong structure", path=path)

    with _Server() as srv, pytest.raises(DataError, match="wrong structure"):
        download(f"{srv.url}/ok", tmp_path / "f", verify=verify, progress=False)
    assert not (tmp_path / "f").exists()


def test_unreachable_host_is_a_download_error(tmp_path):
    with pytest.raises(DownloadError, match="could not download"):
        download("http://127.0.0.1:9/none", tmp_path / "f", retries=1, backoff=0, timeout=2, progress=False)
