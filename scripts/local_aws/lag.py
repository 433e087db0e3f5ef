"""IAM's propagation window: authentication and authorization read the IAM and SCP state of D
seconds earlier, while control-plane reads (moto's own answers) see every write at once.

D is `KILLSWITCH_IAM_LAG_SECONDS`, read once at start (see `configure`); 0 means no window at all,
and then `current_view` is the live state and nothing is journaled.

With D > 0 the harness calls `JOURNAL.record()` after every successful write to a service that
holds authorization state (IAM, Organizations, CloudFormation, Identity Center), and once when
authentication is switched on (that first snapshot is in force since the beginning of time: the
bootstrap's users and keys work at once). A request that arrived at t is authenticated and
authorized against the snapshot in force at t - D (`current_view`).

What a snapshot holds, per account: users and roles (ID, ARN, path, tags, inline policy
documents, attached managed policy ARNs, groups, permissions boundary, trust policy, whether a
login profile exists), groups (inline documents, managed ARNs), the default version's document of
every managed policy a principal references, access keys (owner, secret, status); and for the
organization, the SCPs in force on each member account, level by level (root, OUs, account).
"""

from __future__ import annotations

import bisect
import json
import os
import threading
import time
from dataclasses import dataclass, field

from .common import REQUEST

LAG_ENV = "KILLSWITCH_IAM_LAG_SECONDS"


@dataclass(frozen=True)
class Principal:
    """An IAM user or role as authorization sees it."""

    kind: str  # "user" or "role"
    name: str
    id: str
    arn: str
    path: str
    tags: dict = field(default_factory=dict)
    inline: tuple = ()
    managed: tuple = ()
    groups: tuple = ()
    boundary: str | None = None
    trust: str | None = None
    login_profile: bool = False


@dataclass(frozen=True)
class Key:
    user: str
    secret: str
    status: str


@dataclass
class AccountState:
    users: dict = field(default_factory=dict)
    roles: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)  # name -> (inline docs, managed ARNs)
    policies: dict = field(default_factory=dict)  # ARN -> default version's document
    keys: dict = field(default_factory=dict)  # access key ID -> Key


@dataclass(frozen=True)
class OrgState:
    """The SCPs in force: member account -> levels (root first, the account last), each a tuple
    of (policy ID, policy name, document) attached directly at that level."""

    id: str
    management: str
    members: dict


def _text(doc) -> str:  # type: ignore[no-untyped-def]
    if isinstance(doc, str):
        import urllib.parse

        return doc if doc.lstrip().startswith("{") else urllib.parse.unquote(doc)
    return json.dumps(doc)


def _default_document(policy) -> str | None:  # type: ignore[no-untyped-def]
    for version in getattr(policy, "versions", []):
        if version.is_default:
            return _text(version.document)
    return None


def _tags(pairs) -> dict:  # type: ignore[no-untyped-def]
    if isinstance(pairs, dict):
        return {k: (v.get("Value", "") if isinstance(v, dict) else v) for k, v in pairs.items()}
    return {t["Key"]: t.get("Value", "") for t in pairs or [] if isinstance(t, dict) and "Key" in t}


def extract_user(backend, user) -> Principal:  # type: ignore[no-untyped-def]
    groups = tuple(g.name for g in list(backend.groups.values()) if user in g.users)
    tags = backend.tagger.list_tags_for_resource(user.arn).get("Tags", [])
    return Principal("user", user.name, user.id, user.arn, user.path, _tags(tags),
                     tuple(_text(d) for d in list(user.policies.values())), tuple(list(user.managed_policies)),
                     groups, getattr(user, "permissions_boundary_arn", None), None, bool(user.password))


def extract_role(role) -> Principal:  # type: ignore[no-untyped-def]
    return Principal("role", role.name, role.id, role.arn, role.path, _tags(role.tags),
                     tuple(_text(d) for d in list(role.policies.values())), tuple(list(role.managed_policies)),
                     (), role.permissions_boundary_arn or None, _text(role.assume_role_policy_document), False)


def _policy_document(backend, arn: str) -> str | None:  # type: ignore[no-untyped-def]
    policy = backend.managed_policies.get(arn)
    return _default_document(policy) if policy is not None else None


def extract_account(backend) -> AccountState:  # type: ignore[no-untyped-def]
    state = AccountState()
    for user in list(backend.users.values()):
        state.users[user.name] = extract_user(backend, user)
        for key in list(user.access_keys):
            state.keys[key.access_key_id] = Key(user.name, key.secret_access_key, key.status)
    for role in list(backend.roles.values()):
        state.roles[role.name] = extract_role(role)
    for group in list(backend.groups.values()):
        state.groups[group.name] = (tuple(_text(d) for d in list(group.policies.values())),
                                    tuple(list(group.managed_policies)))
    wanted = {arn for p in [*state.users.values(), *state.roles.values()] for arn in (*p.managed, p.boundary) if arn}
    wanted |= {arn for _, managed in state.groups.values() for arn in managed}
    for arn in wanted:
        doc = _policy_document(backend, arn)
        if doc is not None:
            state.policies[arn] = doc
    return state


def extract_org() -> OrgState | None:
    """The organization's SCPs in force on each member account (the management account is never
    restricted, so it has no entry)."""
    from moto.organizations.models import organizations_backends

    for account in list(organizations_backends):
        backend = organizations_backends[account]["aws"]
        org = backend.org
        if org is None or org.master_account_id != account:
            continue
        units = {o.id: o for o in list(backend.ou)}

        def attached(target) -> tuple:  # type: ignore[no-untyped-def]
            return tuple((p.id, p.name, p.content) for p in list(target.attached_policies)
                         if p.type == "SERVICE_CONTROL_POLICY")

        members = {}
        for acct in list(backend.accounts):
            if acct.id == org.master_account_id:
                continue
            levels, parent = [attached(acct)], units.get(acct.parent_id)
            while parent is not None:
                levels.insert(0, attached(parent))
                parent = units.get(getattr(parent, "parent_id", None))
            members[acct.id] = tuple(levels)
        return OrgState(org.id, org.master_account_id, members)
    return None


class LiveAccount:
    """One account's live state, read on demand (D = 0)."""

    def __init__(self, backend) -> None:  # type: ignore[no-untyped-def]
        self.backend = backend

    def user(self, name: str) -> Principal | None:
        user = self.backend.users.get(name)
        return extract_user(self.backend, user) if user is not None else None

    def role(self, name: str) -> Principal | None:
        # moto keys roles by ID.
        role = next((r for r in list(self.backend.roles.values()) if r.name == name), None)
        return extract_role(role) if role is not None else None

    def group(self, name: str) -> tuple | None:
        group = self.backend.groups.get(name)
        if group is None:
            return None
        return tuple(_text(d) for d in group.policies.values()), tuple(group.managed_policies)

    def policy(self, arn: str) -> str | None:
        return _policy_document(self.backend, arn)

    def key(self, key_id: str) -> Key | None:
        for user in list(self.backend.users.values()):
            for key in list(user.access_keys):
                if key.access_key_id == key_id:
                    return Key(user.name, key.secret_access_key, key.status)
        return None


class SnapshotAccount:
    """One account's state as a snapshot holds it (D > 0)."""

    def __init__(self, state: AccountState) -> None:
        self.state = state

    def user(self, name: str) -> Principal | None:
        return self.state.users.get(name)

    def role(self, name: str) -> Principal | None:
        return self.state.roles.get(name)

    def group(self, name: str) -> tuple | None:
        return self.state.groups.get(name)

    def policy(self, arn: str) -> str | None:
        return self.state.policies.get(arn)

    def key(self, key_id: str) -> Key | None:
        return self.state.keys.get(key_id)


class LiveView:
    lagged = False

    def account(self, account_id: str) -> LiveAccount:
        from moto.iam.models import iam_backends

        return LiveAccount(iam_backends[account_id]["aws"])

    def org(self) -> OrgState | None:
        return extract_org()

    @staticmethod
    def may_be_member(account_id: str) -> bool:
        """False when `account_id` is surely no member of an organization (no SCP to read)."""
        from moto.organizations.models import organizations_backends

        return account_id in organizations_backends.master_accounts


@dataclass
class Snapshot:
    accounts: dict
    organization: OrgState | None
    lagged = True

    def account(self, account_id: str) -> SnapshotAccount:
        return SnapshotAccount(self.accounts.get(account_id) or AccountState())

    def org(self) -> OrgState | None:
        return self.organization

    def may_be_member(self, account_id: str) -> bool:
        return self.organization is not None and account_id in self.organization.members


def capture() -> Snapshot:
    """Every account's authorization state and the organization's SCPs, now. moto's dicts change
    under concurrent requests: a capture that saw one change size is taken again."""
    from moto.iam.models import iam_backends

    for _ in range(20):
        try:
            accounts = {a: extract_account(iam_backends[a]["aws"]) for a in list(iam_backends)}
            return Snapshot(accounts, extract_org())
        except RuntimeError:
            time.sleep(0.001)
    raise RuntimeError("IAM state kept changing while the lag journal captured it")


class Journal:
    """Append-only snapshots with the time each came into force (time.monotonic())."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds = 0.0
        self.times: list[float] = []
        self.snapshots: list[Snapshot] = []

    def record(self, since: float | None = None) -> None:
        if self.seconds <= 0:
            return
        snapshot = capture()
        with self.lock:
            if since is not None:
                # The origin (authentication switched on): what came before it is no window.
                self.times.clear()
                self.snapshots.clear()
            now = time.monotonic() if since is None else since
            self.times.append(now)
            self.snapshots.append(snapshot)
            # Keep what a request arriving from now on can still need: the one in force D ago.
            keep = max(0, bisect.bisect_right(self.times, time.monotonic() - self.seconds - 1.0) - 1)
            del self.times[:keep], self.snapshots[:keep]

    def at(self, moment: float) -> Snapshot | None:
        with self.lock:
            index = bisect.bisect_right(self.times, moment) - 1
            return self.snapshots[max(index, 0)] if self.snapshots else None


JOURNAL = Journal()
LIVE = LiveView()


def configure(environ: dict | None = None) -> float:
    """D from the environment (a number of seconds >= 0; anything else fails start-up)."""
    raw = (environ if environ is not None else os.environ).get(LAG_ENV, "0") or "0"
    seconds = float(raw)
    if not seconds >= 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"{LAG_ENV}={raw!r}: want a number of seconds >= 0")
    JOURNAL.seconds = seconds
    return seconds


def lag_seconds() -> float:
    return JOURNAL.seconds


def current_view():  # type: ignore[no-untyped-def]
    """What the request being served is authorized against: the live state when D = 0, else the
    snapshot in force D seconds before it arrived."""
    if JOURNAL.seconds <= 0:
        return LIVE
    arrived = getattr(REQUEST, "arrived", None)
    moment = (arrived if arrived is not None else time.monotonic()) - JOURNAL.seconds
    return JOURNAL.at(moment) or LIVE
