"""A real OpenLDAP server (Debian's `slapd`) on a free loopback port, with its configuration and
data in a temporary folder, for the directory sign-in tests."""

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SUFFIX = "dc=bank,dc=example"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "directory-admin"
CONFIG = """
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {folder}/slapd.pid
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {folder}/data
"""


@dataclass
class Directory:
    uri: str
    connection: object

    def add(self, dn: str, **attributes: list[str]) -> None:
        self.connection.add_s(
            dn,
            [(name, [value.encode() for value in values]) for name, values in attributes.items()],
        )

    def person(self, uid: str, password: str, *, given: str, surname: str) -> str:
        dn = f"uid={uid},ou=people,{SUFFIX}"
        self.add(
            dn,
            objectClass=["inetOrgPerson"],
            uid=[uid],
            cn=[f"{given} {surname}"],
            givenName=[given],
            sn=[surname],
            mail=[f"{uid}@bank.example"],
            userPassword=[password],
        )
        return dn

    def group(self, cn: str, members: list[str]) -> str:
        dn = f"cn={cn},ou=groups,{SUFFIX}"
        self.add(dn, objectClass=["groupOfNames"], cn=[cn], member=members)
        return dn

    def remove_member(self, group_dn: str, member_dn: str) -> None:
        import ldap

        self.connection.modify_s(group_dn, [(ldap.MOD_DELETE, "member", [member_dn.encode()])])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def directory(tmp_path: Path):
    if not Path(SLAPD).exists():
        pytest.skip("slapd is not installed (Debian package slapd; .ci/run installs it)")
    ldap = pytest.importorskip("ldap", reason="python-ldap is not installed")
    (tmp_path / "data").mkdir()
    config = tmp_path / "slapd.conf"
    config.write_text(
        CONFIG.format(folder=tmp_path, suffix=SUFFIX, admin=ADMIN_DN, password=ADMIN_PASSWORD)
    )
    uri = f"ldap://127.0.0.1:{_free_port()}/"
    log = (tmp_path / "slapd.log").open("w")
    server = subprocess.Popen(
        [SLAPD, "-f", str(config), "-h", uri, "-d", "0"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                connection = ldap.initialize(uri)
                connection.simple_bind_s(ADMIN_DN, ADMIN_PASSWORD)
                break
            except ldap.SERVER_DOWN:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"slapd did not start:\n{(tmp_path / 'slapd.log').read_text()}")
                time.sleep(0.1)
        directory = Directory(uri=uri, connection=connection)
        directory.add(SUFFIX, objectClass=["dcObject", "organization"], dc=["bank"], o=["Bank"])
        for unit in ("people", "groups"):
            directory.add(f"ou={unit},{SUFFIX}", objectClass=["organizationalUnit"], ou=[unit])
        yield directory
        connection.unbind_s()
    finally:
        server.terminate()
        server.wait(timeout=10)
