"""The Mongo server as a write target: its hosts are read from the URI without DNS, and any
host off MIGRATION_MONGO_ALLOWED_HOSTS is refused before a lookup or a connection. Spies on
``socket.getaddrinfo``, ``dns.resolver.resolve`` and ``pymongo.MongoClient.__init__`` stand in
for a production server: they must see no call."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from urllib.parse import quote

import dns.resolver
import pymongo
import pymongo.uri_parser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration_assets.allowlist import host_allowed, parse_allowlist
from migration_assets.console.errors import explain_exception
from migration_assets.factory.resources import BadConfigValue, MongoSourceResource
from migration_assets.source.documents import QUERY_OPTIONS, SourceUnavailable
from migration_assets.source.mongo_target import (
    MongoTargetRefused,
    check_mongo_allowed,
    mongo_hosts,
    open_mongo_target,
)

pytestmark = pytest.mark.unit

ALLOW = ["127.0.0.1", "localhost", "::1"]
PROPERTY = settings(max_examples=300, derandomize=True, database=None, deadline=None)


@contextlib.contextmanager
def no_lookup_nor_connection():
    """Yields the calls made to a name lookup or a client; each call also fails."""
    calls: list[str] = []

    def spy(name: str):
        def refuse(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called")
        return refuse

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", spy("socket.getaddrinfo"))
        mp.setattr(dns.resolver, "resolve", spy("dns.resolver.resolve"))
        mp.setattr(pymongo.MongoClient, "__init__", spy("MongoClient"))
        yield calls


# --- reading the hosts -------------------------------------------------------------------

@pytest.mark.parametrize("uri, hosts", [
    ("mongodb://localhost", ["localhost"]),
    ("mongodb://u:p%40ss%3Aw%2F@db.prod:27017/", ["db.prod"]),  # '@', ':' and '/' percent-encoded
    ("mongodb://h1:27017,H2,h3:27018/shop?replicaSet=rs0&w=majority", ["h1", "h2", "h3"]),
    ("mongodb://[::1]:27017/?directConnection=true", ["::1"]),
    ("mongodb://[::1]", ["::1"]),
    ("mongodb://u:p@127.0.0.1,[::1]:27018/db", ["127.0.0.1", "::1"]),
    ("mongodb://localhost?directConnection=true", ["localhost"]),
])
def test_hosts_are_read_as_pymongo_reads_them(uri, hosts):
    assert mongo_hosts(uri) == hosts
    assert [h for h, _ in pymongo.uri_parser.parse_uri(uri)["nodelist"]] == hosts


def test_the_userinfo_ends_at_the_last_at_sign():
    assert mongo_hosts("mongodb://u:p@ss@db.prod/") == ["db.prod"]  # pymongo refuses it anyway: unescaped


def test_an_srv_uri_is_checked_by_its_srv_name():
    with no_lookup_nor_connection() as calls:
        assert mongo_hosts("mongodb+srv://u:p@Cluster0.Example.net/shop?retryWrites=true") == ["cluster0.example.net"]
    assert calls == []


@pytest.mark.parametrize("uri, why", [
    ("mongodb://%2Ftmp%2Fmongodb-27017.sock", "Unix socket"),
    ("mongodb://u:pw@%2Ftmp%2Fm.sock/db", "Unix socket"),
    ("postgresql://u:pw@127.0.0.1/db", "does not start with mongodb://"),
    ("MONGODB://localhost", "does not start with mongodb://"),
    ("localhost:27017", "does not start with mongodb://"),
    ("mongodb+srv://a.example.net,b.example.net/", "exactly one host"),
    ("mongodb+srv://cluster0.example.net:27017/", "exactly one host"),
    ("mongodb+srv://cluster0.example.net/?srvAllowedHostsSuffix=prod.example.com", "srvAllowedHostsSuffix"),
    ("mongodb://", "no host"),
    ("mongodb://u:pw@/db", "no host"),
    ("mongodb://localhost,,127.0.0.1", "empty host"),
    ("mongodb://localhost:0", "not a host name"),
    ("mongodb://localhost:27017x", "not a host name"),
    ("mongodb://::1", "not a host name"),
    ("mongodb://local%68ost", "not a host name"),
    ("mongodb://[::1", "not an IPv6 address"),
    ("mongodb://[127.0.0.1]", "not an IPv6 address"),
    ("mongodb://u:pw/x@db.prod/", "an '@' after its host list"),  # an unencoded '/' in the password
    ("mongodb://u:pw?x@db.prod/", "an '@' after its host list"),
])
def test_what_cannot_be_read_is_refused_in_one_line_without_the_password(uri, why):
    with no_lookup_nor_connection() as calls, pytest.raises(MongoTargetRefused) as err:
        check_mongo_allowed(uri, ["*"])
    text = str(err.value)
    assert why in text and "\n" not in text and "pw" not in text
    assert calls == []


# --- the allowlist -----------------------------------------------------------------------

def test_cidr_entries_and_the_wildcard():
    assert check_mongo_allowed("mongodb://10.1.2.3,10.1.9.9:27018/", ["10.1.0.0/16"]) == ["10.1.2.3", "10.1.9.9"]
    assert check_mongo_allowed("mongodb://[fd00::5]:27017/", ["fd00::/8"]) == ["fd00::5"]
    with pytest.raises(MongoTargetRefused, match="host '10.2.0.1'"):
        check_mongo_allowed("mongodb://10.1.2.3,10.2.0.1/", ["10.1.0.0/16"])
    with pytest.raises(MongoTargetRefused, match="host 'db.prod'"):
        check_mongo_allowed("mongodb://db.prod/", ["0.0.0.0/0"])  # a name is never resolved to match a CIDR
    assert check_mongo_allowed("mongodb://db.prod,10.9.9.9/", ["*"]) == ["db.prod", "10.9.9.9"]
    assert check_mongo_allowed("mongodb://DB.Internal/", " db.internal , ") == ["db.internal"]  # the setting as is
    with pytest.raises(MongoTargetRefused, match=r"\(empty\)"):
        check_mongo_allowed("mongodb://localhost/", [])


def test_the_refusal_names_the_host_and_masks_the_password():
    with pytest.raises(MongoTargetRefused) as err:
        check_mongo_allowed("mongodb://u:s3cret@db.prod:27017/", parse_allowlist("127.0.0.1,localhost,::1"))
    assert str(err.value) == ("refusing to write to mongodb://u:***@db.prod:27017/: host 'db.prod' is not in "
                              "MIGRATION_MONGO_ALLOWED_HOSTS (127.0.0.1, localhost, ::1)")
    line = explain_exception(err.value, "reverse-sync").line
    assert "next: point MONGODB_URI at an allowed server, or add its host to MIGRATION_MONGO_ALLOWED_HOSTS" in line


def test_the_spies_see_a_client_made_for_an_allowed_host():
    """Control: the spies do catch a client, so none below means none was made."""
    with no_lookup_nor_connection() as calls, pytest.raises(AssertionError):
        open_mongo_target("mongodb://localhost/", "marketplace", ALLOW)
    assert calls == ["MongoClient"]


def test_an_allowed_target_opens_lazily_with_the_query_codec():
    db = open_mongo_target("mongodb://127.0.0.1:1/?directConnection=true", "marketplace", ALLOW, timeout_ms=100)
    try:
        assert db.name == "marketplace" and db.codec_options == QUERY_OPTIONS
    finally:
        db.client.close()


def test_a_client_pymongo_refuses_is_unavailable_in_one_line_without_the_password():
    with pytest.raises(SourceUnavailable) as err:
        open_mongo_target("mongodb://u:s3cret@localhost,127.0.0.1/?loadBalanced=true", "marketplace", ALLOW)
    text = str(err.value)
    assert "is not usable" in text and "loadBalanced" in text and "s3cret" not in text and "\n" not in text


def test_the_resource_binds_its_allowlist_and_has_no_target_in_dump_mode():
    live = MongoSourceResource(uri="mongodb://u:s3cret@db.prod/", allowed_hosts="127.0.0.1, LOCALHOST")
    assert live.allowlist == ["127.0.0.1", "localhost"]
    with no_lookup_nor_connection() as calls, pytest.raises(MongoTargetRefused, match="host 'db.prod'"):
        live.open_target()
    assert calls == []
    dump = MongoSourceResource(uri="mongodb://localhost/", mode="dump", dump_dir="/tmp/dump")
    with pytest.raises(BadConfigValue, match="MIGRATION_SOURCE=dump has none"):
        dump.open_target()


# --- properties --------------------------------------------------------------------------

def any_case(text: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda up: "".join(c.upper() if u else c for c, u in zip(text, up)))


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
NAMES = st.lists(LABEL, min_size=1, max_size=4).map(".".join).flatmap(any_case)
IPV6_SPELLINGS = st.sampled_from([str, lambda a: a.exploded, lambda a: a.exploded.upper()])


def ipv6(addresses: st.SearchStrategy) -> st.SearchStrategy[str]:
    return st.tuples(addresses, IPV6_SPELLINGS).map(lambda t: f"[{t[1](t[0])}]")


OUTSIDE = st.one_of(
    NAMES.filter(lambda n: n.lower() != "localhost"),
    st.ip_addresses(v=4).filter(lambda a: str(a) != "127.0.0.1").map(str),
    ipv6(st.ip_addresses(v=6).filter(lambda a: a != ipaddress.IPv6Address("::1"))),
)
INSIDE = st.one_of(any_case("localhost"), st.just("127.0.0.1"), ipv6(st.just(ipaddress.IPv6Address("::1"))))
PORT = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
USERINFO = st.one_of(st.just(""), st.builds(lambda u, p: f"{quote(u, safe='')}:{quote('s3cret' + p, safe='')}@",
                                            SAFE_TEXT.filter(bool), SAFE_TEXT))
TAIL = st.sampled_from(["", "/", "/shop", "/shop?replicaSet=rs0&w=majority", "/?directConnection=true", "?tls=false"])


def with_port(hosts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(hosts, PORT).map("".join)


HOST_LISTS = st.tuples(with_port(OUTSIDE), st.lists(with_port(st.one_of(INSIDE, OUTSIDE)), max_size=3)).map(
    lambda t: [t[0], *t[1]]).flatmap(st.permutations)


@PROPERTY
@given(st.one_of(
    st.tuples(st.just("mongodb://"), HOST_LISTS.map(",".join)),
    st.tuples(st.just("mongodb+srv://"), NAMES.filter(lambda n: n.lower() != "localhost")),
), USERINFO, TAIL)
def test_a_host_off_the_allowlist_is_never_looked_up_nor_connected_to(scheme_hosts, userinfo, tail):
    scheme, hosts = scheme_hosts
    uri = f"{scheme}{userinfo}{hosts}{tail}"
    with no_lookup_nor_connection() as calls, pytest.raises(MongoTargetRefused) as err:
        open_mongo_target(uri, "marketplace", ALLOW)
    assert calls == []
    text = str(err.value)
    assert "is not in MIGRATION_MONGO_ALLOWED_HOSTS" in text and "s3cret" not in text and "\n" not in text


@PROPERTY
@given(st.lists(with_port(INSIDE), min_size=1, max_size=4), USERINFO, TAIL)
def test_allowed_hosts_pass_whatever_the_userinfo_and_ports(hosts, userinfo, tail):
    uri = f"mongodb://{userinfo}{','.join(hosts)}{tail}"
    with no_lookup_nor_connection() as calls:
        found = check_mongo_allowed(uri, ALLOW)
    assert calls == [] and len(found) == len(hosts) and all(h in ALLOW for h in found)


FUZZ = st.text(st.sampled_from("ab1.:,@/?%[]=&;-_+ 2F"), max_size=8)
FUZZED_URIS = st.one_of(st.tuples(
    st.one_of(st.just(""), FUZZ.map(lambda s: s + "@")),
    st.lists(st.tuples(st.one_of(st.sampled_from(["a", "A", "b", "127.0.0.1", "[::1]", "[0:0::1]"]), FUZZ),
                       st.one_of(st.just(""), st.sampled_from([":1", ":27017"]), FUZZ.map(lambda s: ":" + s))
                       ).map("".join), min_size=1, max_size=3).map(",".join),
    st.one_of(st.just(""), st.tuples(st.sampled_from(["/", "?", "/db?"]), FUZZ).map("".join)),
).map("".join), FUZZ)


def same_address(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))  # pymongo keeps '0:0::1' as written; it is '::1'
    except ValueError:
        return host


@settings(PROPERTY, max_examples=1000)
@given(FUZZED_URIS)
def test_what_passes_the_check_is_only_ever_an_allowed_host_to_pymongo(rest):
    """Differential: whenever the hand-made reading lets a URI through, every host pymongo's
    own parser finds in it (no DNS for ``mongodb://``) is on the allowlist too."""
    allowed = ["a", "127.0.0.1", "::1"]
    uri = f"mongodb://{rest}"
    try:
        check_mongo_allowed(uri, allowed)
    except MongoTargetRefused:
        return
    try:
        nodes = pymongo.uri_parser.parse_uri(uri)["nodelist"]
    except Exception:
        return  # pymongo refuses it too
    assert all(host_allowed(same_address(h), allowed) for h, _ in nodes), (uri, nodes)
