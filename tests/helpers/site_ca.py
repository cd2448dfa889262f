"""A site CA and a certificate it signs, as a site would issue them (PEM files), and the
Dask configuration naming them: the credentials of tests that use a site CA."""

import datetime
from pathlib import Path


def _write_site_ca(directory: Path, name: str = "alice", hosts: tuple[str, ...] = ()) -> dict[str, Path]:
    """A CA and one certificate it signs, as a site would issue them (PEM files): for
    ``name``, and for ``hosts`` (DNS names or IP addresses) when given, as a server's."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def make(name, issuer_name=None, issuer_key=None, ca=False):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if hosts and not ca:
            def alt(host):
                try:
                    return x509.IPAddress(ipaddress.ip_address(host))
                except ValueError:
                    return x509.DNSName(host)
            builder = builder.add_extension(x509.SubjectAlternativeName([alt(h) for h in hosts]), critical=False)
        return key, builder.sign(issuer_key or key, hashes.SHA256())

    ca_key, ca_cert = make("site CA", ca=True)
    key, cert = make(name, ca_cert.subject, ca_key)
    files = {"ca": directory / "ca.pem", "cert": directory / f"{name}.pem", "key": directory / f"{name}.key"}
    files["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    files["key"].chmod(0o600)
    return files


def _site_config(files: dict[str, Path]) -> dict:
    config = {"distributed.comm.tls.ca-file": str(files["ca"])}
    for role in ("scheduler", "worker", "client"):
        config[f"distributed.comm.tls.{role}.cert"] = str(files["cert"])
        config[f"distributed.comm.tls.{role}.key"] = str(files["key"])
    return config
