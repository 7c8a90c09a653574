"""``--web.config.file``: TLS and basic auth, in the exporter-toolkit's format.

Prometheus, blackbox_exporter and node_exporter read the same YAML
(prometheus/exporter-toolkit, docs/web-configuration.md), so an operator's
file and a ``scrape_config`` with ``scheme: https`` and ``basic_auth`` carry
over unchanged::

    tls_server_config:
      cert_file: server.crt        # relative paths: from this file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (the default)
      client_ca_file: clients-ca.crt                 # only with RequireAndVerifyClientCert
      min_version: TLS12                             # or TLS13; TLS12 is the default
    basic_auth_users:
      prometheus: $2y$10$...       # bcrypt, as `htpasswd -nBC 10 prometheus` prints it

This is the subset msgprobe implements; any other key of the toolkit
(``max_version``, ``cipher_suites``, ``http_server_config``...) is an unknown
key, refused like every unknown key of our own config, rather than accepted
and silently ignored. A file without ``tls_server_config`` serves plain HTTP;
one without users asks for no password (both as in the toolkit).

Everything is checked at load: the certificate and key are loaded into the
server context that is then served (built once), so a key that does not
match its certificate stops ``msgprobe run`` with exit 2, not the first
scrape.

Basic auth protects every route, ``/-/healthy`` included, as in the toolkit.
A bcrypt check costs 100-300 ms of CPU by design, and Prometheus sends the
same password every 15 s: checks run in a worker thread (one at a time, so a
flood of wrong passwords holds one thread, not the whole default executor the
daemon's reloads also use), and a password that verified is remembered, per
user, as an HMAC-SHA256 under a key made at start: the password itself is
never kept, and the digest is worthless outside this process. Only successes
are remembered, so every wrong guess still pays the full bcrypt price.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import bcrypt
import yaml
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from probe.config.nodes import ConfigError, NodeReader

# (password, hash) -> whether they match: bcrypt.checkpw, or a test's counting stand-in.
Checker = Callable[[bytes, bytes], bool]

REALM = "msgprobe"
# $2a$, $2b$ or $2y$ (what htpasswd -B writes), a cost of 04-31, 22 characters
# of salt and 31 of hash in bcrypt's base64: anything else cannot be checked.
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_TOP_KEYS = ("tls_server_config", "basic_auth_users")
_TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version")
# The toolkit's other keys: refused like any unknown key, but said so, since
# difflib would offer tls_server_config for http_server_config.
_TOOLKIT_ONLY = {
    "": ("http_server_config",),
    "tls_server_config": (
        "max_version",
        "cipher_suites",
        "curve_preferences",
        "prefer_server_cipher_suites",
        "client_allowed_sans",
    ),
}


class ClientAuthType(StrEnum):
    """The toolkit's names (Go's ``tls.ClientAuthType``); only these two are implemented."""

    NO_CLIENT_CERT = "NoClientCert"
    REQUIRE_AND_VERIFY_CLIENT_CERT = "RequireAndVerifyClientCert"


class TLSVersion(StrEnum):
    TLS12 = "TLS12"
    TLS13 = "TLS13"


_SSL_VERSIONS = {TLSVersion.TLS12: ssl.TLSVersion.TLSv1_2, TLSVersion.TLS13: ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class TLSServerConfig:
    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuthType = ClientAuthType.NO_CLIENT_CERT
    client_ca_file: Path | None = None
    min_version: TLSVersion = TLSVersion.TLS12


@dataclass(frozen=True)
class WebConfig:
    """A loaded web config: ``ssl_context()`` for the listener, ``middleware()`` for the app."""

    path: Path
    tls: TLSServerConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # user -> bcrypt hash
    # The seam for tests (dataclasses.replace): count checks, or hold one to watch the loop.
    checkpw: Checker = field(default=bcrypt.checkpw, repr=False, compare=False)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server context (None: plain HTTP); built on first use, at load, then shared."""
        return self._context

    @functools.cached_property
    def _context(self) -> ssl.SSLContext | None:
        return None if self.tls is None else server_context(self.tls)

    def middleware(self) -> Middleware:
        """An aiohttp middleware that lets a request in only with a configured user's password
        (every request, when users are configured). Each call has its own cache: make one per server."""
        return _basic_auth(BasicAuth(self.users, self.checkpw))


def server_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """Raises ``OSError`` (``ssl.SSLError``) if a file does not load; ``load_web_config`` says which."""
    # A bare server context: create_default_context(CLIENT_AUTH) would also load
    # the system's CA store, and client certificates must chain to client_ca_file only.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _SSL_VERSIONS[tls.min_version]
    # An encrypted key would make OpenSSL prompt on the terminal; an empty password fails instead.
    context.load_cert_chain(tls.cert_file, tls.key_file, password=lambda: b"")
    if tls.client_auth_type is ClientAuthType.REQUIRE_AND_VERIFY_CLIENT_CERT:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=tls.client_ca_file)
    return context


class BasicAuth:
    """``Authorization: Basic`` against bcrypt hashes, checked off the loop, successes remembered."""

    def __init__(self, users: Mapping[str, bytes], checkpw: Checker = bcrypt.checkpw) -> None:
        self.users = dict(users)
        self.checkpw = checkpw
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}  # user -> digest of the password that last verified
        self._one_at_a_time = asyncio.Lock()

    def _remembered(self, user: str, digest: bytes) -> bool:
        known = self._verified.get(user)
        return known is not None and hmac.compare_digest(known, digest)

    async def allows(self, authorization: str | None) -> bool:
        """Whether a request with this ``Authorization`` header may in (any, with no users)."""
        if not self.users:
            return True
        credentials = _credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        digest = hmac.new(self._key, password, hashlib.sha256).digest()
        if self._remembered(user, digest):
            return True
        hashed = self.users.get(user)
        async with self._one_at_a_time:
            if self._remembered(user, digest):  # verified while this request waited
                return True
            # An unknown user is checked against a configured hash all the same,
            # so the time of the answer does not tell which names exist (as the toolkit does).
            decoy = next(iter(self.users.values()))
            ok = await asyncio.to_thread(self._check, password, hashed or decoy)
        if ok and hashed is not None:
            # One entry per user, so the cache stays as small as the user list.
            self._verified[user] = digest
            return True
        return False

    def _check(self, password: bytes, hashed: bytes) -> bool:
        try:
            return self.checkpw(password, hashed)
        except ValueError:  # bcrypt 5 refuses passwords over 72 bytes rather than truncating them
            return False


def _basic_auth(auth: BasicAuth) -> Middleware:
    @web.middleware
    async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if await auth.allows(request.headers.get(hdrs.AUTHORIZATION)):
            return await handler(request)
        return web.Response(
            status=401,
            text="Unauthorized\n",
            headers={hdrs.WWW_AUTHENTICATE: f'Basic realm="{REALM}"'},
        )

    return basic_auth


def _credentials(authorization: str | None) -> tuple[str, bytes] | None:
    """``(user, password)`` from ``Basic base64(user:password)`` (RFC 7617), else None.

    The password stays bytes, as bcrypt compares bytes (and Go's toolkit does
    the same), so a non-UTF-8 password is checked, not mangled."""
    if authorization is None:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def load_web_config(path: Path) -> WebConfig:
    """Load and check a web config; ``ConfigError`` lists every problem as ``file:line: key: reason``."""
    r = NodeReader(path)
    root = r.parse()
    if r.problems:
        raise ConfigError(r.problems)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == ""):
        root = yaml.MappingNode("tag:yaml.org,2002:map", [])  # an empty file: plain HTTP, no auth
    top = _mapping(r, root, "", _TOP_KEYS)
    tls = _tls(r, top["tls_server_config"]) if "tls_server_config" in top else None
    users = _users(r, top["basic_auth_users"]) if "basic_auth_users" in top else {}
    if r.problems:
        raise ConfigError(r.problems)
    config = WebConfig(path, tls, users)
    if tls is not None:
        try:
            config.ssl_context()
        except OSError as exc:
            key, reason = _blame(tls, exc)
            r.problem(_value(top["tls_server_config"], key), f"tls_server_config.{key}", reason)
            raise ConfigError(r.problems) from exc
    return config


def _tls(r: NodeReader, node: yaml.Node) -> TLSServerConfig | None:
    key = "tls_server_config"
    fields = _mapping(r, node, key, _TLS_KEYS)
    if not isinstance(node, yaml.MappingNode):
        return None  # mapping() said so
    if "cert_file" not in fields or "key_file" not in fields:
        r.problem(node, key, "needs 'cert_file' and 'key_file'")
        return None

    def file(name: str) -> Path | None:
        return r.existing_file(fields[name], f"{key}.{name}") if name in fields else None

    cert, private, ca = file("cert_file"), file("key_file"), file("client_ca_file")
    auth: ClientAuthType | None = ClientAuthType.NO_CLIENT_CERT
    if "client_auth_type" in fields:
        auth = r.choice(fields["client_auth_type"], f"{key}.client_auth_type", ClientAuthType)
    version: TLSVersion | None = TLSVersion.TLS12  # the toolkit's default
    if "min_version" in fields:
        version = r.choice(fields["min_version"], f"{key}.min_version", TLSVersion)
    # As the toolkit: a client CA without a policy that uses it is a mistake, not a no-op.
    if auth is ClientAuthType.NO_CLIENT_CERT and "client_ca_file" in fields:
        verify = ClientAuthType.REQUIRE_AND_VERIFY_CLIENT_CERT
        r.problem(
            fields["client_ca_file"],
            f"{key}.client_ca_file",
            f"set, but client_auth_type is {auth} (use {verify})",
        )
        return None
    if auth is ClientAuthType.REQUIRE_AND_VERIFY_CLIENT_CERT and "client_ca_file" not in fields:
        r.problem(fields["client_auth_type"], f"{key}.client_auth_type", f"{auth} needs client_ca_file")
        return None
    if cert is None or private is None or auth is None or version is None:
        return None
    if "client_ca_file" in fields and ca is None:
        return None
    return TLSServerConfig(cert, private, auth, ca, version)


def _mapping(r: NodeReader, node: yaml.Node, key: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
    """``NodeReader.mapping``, with the toolkit's keys we do not implement named as such."""
    toolkit = _TOOLKIT_ONLY.get(key, ())
    fields = r.mapping(node, key, allowed + toolkit)
    for name in toolkit:
        if name in fields:
            where = f"{key}.{name}" if key else name
            r.problem(
                _key(node, name), where, "unknown key (exporter-toolkit's; msgprobe does not implement it)"
            )
    return {name: value for name, value in fields.items() if name not in toolkit}


def _key(node: yaml.Node, name: str) -> yaml.Node:
    pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
    return next(k for k, _ in pairs if k.value == name)


def _value(node: yaml.Node, name: str) -> yaml.Node:
    pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
    return next(v for k, v in pairs if k.value == name)


def _users(r: NodeReader, node: yaml.Node) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for user, value in r.mapping(node, "basic_auth_users", _any_key(node)).items():
        key = f"basic_auth_users.{user}"
        hashed = r.scalar(value, key, str)
        if hashed is None:
            continue
        if ":" in user:
            r.problem(value, key, "a user name cannot contain ':' (basic auth splits there)")
        elif not _BCRYPT.fullmatch(hashed):
            # Never echo the value: a plain password pasted here must not reach a log.
            r.problem(value, key, f"not a bcrypt hash (`htpasswd -nBC 10 {user}` prints one after '{user}:')")
        else:
            users[user] = hashed.encode("ascii")
    return users


def _any_key(node: yaml.Node) -> list[str]:
    """Every key of a mapping node: user names are the operator's, not a schema."""
    return [str(k.value) for k, _ in node.value] if isinstance(node, yaml.MappingNode) else []


def _blame(tls: TLSServerConfig, exc: OSError) -> tuple[str, str]:
    """Which file made ``server_context`` fail, and why: OpenSSL's error ("PEM lib") names neither."""
    named = [("cert_file", tls.cert_file), ("key_file", tls.key_file)]
    if tls.client_ca_file is not None:
        named.append(("client_ca_file", tls.client_ca_file))
    for key, path in named:
        try:
            path.read_bytes()
        except OSError as unreadable:
            return key, f"cannot read {path}: {unreadable.strerror or unreadable}"
    for key, path in named:
        if key != "key_file" and not _has_certificate(path):
            return key, f"no PEM certificate in {path}"
    if isinstance(exc, ssl.SSLError) and exc.reason == "KEY_VALUES_MISMATCH":
        return "key_file", f"does not belong to the certificate in {tls.cert_file}"
    return "key_file", f"no unencrypted PEM private key in {tls.key_file}"


def _has_certificate(path: Path) -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except OSError:
        return False
    return True
