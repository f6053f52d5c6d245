"""A throw-away PKI made with the ``openssl`` command (a CA, a server certificate for localhost/127.0.0.1, client
certificates from that CA and from a stranger CA) and a Mosquitto TLS listener that requires client
certificates."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stadtpuls.demo.embedded import free_port, port_open

OPENSSL = shutil.which("openssl")
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def _run(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        cwd=d,
    )


def _leaf(d: Path, name: str, ca: str, cn: str, san: str | None = None) -> None:
    _run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={cn}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        cwd=d,
    )
    args = [
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.crt",
    ]
    if san:
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        args += ["-extfile", f"{name}.ext"]
    _run(*args, cwd=d)


@dataclass
class Pki:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    _ca(d, "ca")
    _ca(d, "stranger-ca")
    _leaf(d, "server", "ca", "localhost", "DNS:localhost,IP:127.0.0.1")
    _leaf(d, "client", "ca", "stadtpuls-ingest")
    _leaf(d, "stranger", "stranger-ca", "stadtpuls-ingest")
    return Pki(d)


class TlsBroker:
    """Mosquitto with one TLS listener on 127.0.0.1 that requires a client certificate signed by the PKI's CA."""

    def __init__(self, pki: Pki, data_dir: Path) -> None:
        assert MOSQUITTO is not None
        self.port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        conf = data_dir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    "persistence false",
                    "max_inflight_messages 0",
                    "max_queued_messages 100000",
                    f"listener {self.port} 127.0.0.1",
                    f"cafile {pki.path('ca.crt')}",
                    f"certfile {pki.path('server.crt')}",
                    f"keyfile {pki.path('server.key')}",
                    "require_certificate true",
                    "use_identity_as_username true",
                    "allow_anonymous true",
                    # as root, Mosquitto would switch to its own user, who cannot enter the private test dirs
                    "user root" if os.geteuid() == 0 else "",
                    "",
                ]
            )
        )
        self.log_path = data_dir / "mosquitto.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf), "-v"], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("TLS broker did not start: " + self.log_path.read_text(errors="replace"))
            time.sleep(0.05)

    def url(self, host: str = "localhost") -> str:
        return f"mqtts://{host}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self._log.close()
