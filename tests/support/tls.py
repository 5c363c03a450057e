"""A throwaway certificate authority for TLS tests: a server certificate for 127.0.0.1 and its CA file."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class LocalCA:
    ca_file: Path
    server_context: ssl.SSLContext


def local_ca(directory: Path) -> LocalCA:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = directory / "local-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return LocalCA(ca_file, context)
