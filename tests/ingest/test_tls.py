"""The ingest over HTTPS with client certificates (mutual TLS): a client of the trusted CA is
served, any other is refused in the handshake, before a byte of its request is read."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from processor.ingest.auth import tls_context
from processor.ingest.server import Ingest
from processor.settings import Settings
from processor.spawn import free_port
from schemas.cloudevents import STRUCTURED

from .test_binding import OPENED
from .test_server import Recording


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _authority(tls: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=tls)  # fmt: skip


def _signed(tls: Path, name: str, authority: str, extension: str) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=tls)  # fmt: skip
    (tls / f"{name}.ext").write_text(extension)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{authority}.pem", "-CAkey",
             f"{authority}.key", "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
             "-out", f"{name}.pem", cwd=tls)  # fmt: skip


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert shutil.which("openssl"), "openssl is missing"
    tls = tmp_path_factory.mktemp("tls")
    for authority in ("ca", "rogue-ca"):
        _authority(tls, authority)
    _signed(tls, "server", "ca", "subjectAltName=IP:127.0.0.1\n")
    _signed(tls, "desk", "ca", "extendedKeyUsage=clientAuth\n")
    _signed(tls, "intruder", "rogue-ca", "extendedKeyUsage=clientAuth\n")
    return tls


@pytest.fixture
async def server(tls: Path) -> AsyncIterator[tuple[str, Recording]]:
    settings = Settings(ingest_tls_certfile=tls / "server.pem", ingest_tls_keyfile=tls /
                        "server.key", ingest_tls_client_cafile=tls / "ca.pem",
                        ingest_host="0.0.0.0")  # fmt: skip
    publisher = Recording(settings)
    runner = web.AppRunner(Ingest(settings, publisher).app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls_context(settings)).start()
    yield f"127.0.0.1:{port}", publisher
    await runner.cleanup()


def _client(tls: Path, name: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls / "ca.pem")
    if name is not None:
        context.load_cert_chain(tls / f"{name}.pem", tls / f"{name}.key")
    return context


async def _post(address: str, context: ssl.SSLContext | None, scheme: str = "https") -> int:
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{scheme}://{address}/events", data=orjson.dumps(OPENED),
                                      headers={"Content-Type": STRUCTURED}, ssl=context or False)  # fmt: skip
        return response.status


async def test_a_client_of_the_trusted_authority_is_served(
    tls: Path, server: tuple[str, Recording]
) -> None:
    address, publisher = server
    assert await _post(address, _client(tls, "desk")) == 202
    assert len(publisher.sent) == 1


@pytest.mark.parametrize("client", [None, "intruder"])
async def test_any_other_client_is_refused_in_the_handshake(
    tls: Path, server: tuple[str, Recording], client: str | None
) -> None:
    address, publisher = server
    with pytest.raises(aiohttp.ClientError):
        await _post(address, _client(tls, client))
    with pytest.raises(aiohttp.ClientError):
        await _post(address, None, scheme="http")
    assert publisher.sent == []


def test_a_client_ca_needs_a_server_certificate(tls: Path) -> None:
    with pytest.raises(ValueError, match="needs SLA_INGEST_TLS_CERTFILE"):
        Settings(ingest_tls_client_cafile=tls / "ca.pem")
    with pytest.raises(ValueError, match="go together"):
        Settings(ingest_tls_certfile=tls / "server.pem")
