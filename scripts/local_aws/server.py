"""main: moto patched (every patch_moto_* of the package, in order), served on 127.0.0.1 behind the
harness, bootstrapped, then authentication enforced and the env file written for clients."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from . import (authorizer, cloudformation, iam, identity_center, lag, organizations, organizations_auth, policy_eval,
               root_access, simulate)
from .bootstrap import bootstrap
from .cloudtrail import CloudTrailDouble
from .common import ACCOUNT_ID
from .harness import Harness

# Applied in this order before the server starts.
PATCHES = (
    iam.patch_moto_inactive_keys,
    iam.patch_moto_signature_body,
    iam.patch_moto_trust_policies,
    cloudformation.patch_moto_cloudformation_inline_policies,
    cloudformation.patch_moto_cloudformation_no_value_in_lists,
    cloudformation.patch_moto_cloudformation_unsupported_types,
    iam.patch_moto_user_resources,
    iam.patch_moto_aws_deny_all,
    iam.patch_moto_inline_policy_quota,
    iam.patch_moto_managed_policy_limits,
    policy_eval.patch_moto_principal_condition_keys,
    root_access.patch_moto_task_policy_condition_key,
    iam.patch_moto_service_specific_credentials,
    iam.patch_moto_iam_error_shape,
    iam.patch_moto_user_permissions_boundaries,
    simulate.patch_moto_simulate_principal_policy,
    organizations.patch_moto_organizations_limits,
    organizations.patch_moto_organizations_management_only,
    organizations_auth.patch_moto_organizations_authorization,
    identity_center.patch_moto_identity_center_authorization,
    identity_center.patch_moto_identity_center_instances,
    identity_center.patch_moto_sso_admin_assignments,
    identity_center.patch_moto_identity_center_roles_protected,
    # Last: they replace what the patches above read (keys, policies) and wrap every check.
    authorizer.patch_moto_lagged_authentication,
    authorizer.patch_moto_boundaries_and_scps,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=sys.modules[__package__].__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--env-file", required=True, help="where to write the shell environment for clients")
    return parser.parse_args()


def start_server(port: int):  # type: ignore[no-untyped-def]
    """moto, patched, behind the harness, serving on 127.0.0.1:`port` from a daemon thread:
    (server, harness, CloudTrail double)."""
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    for patch in PATCHES:
        patch()
    trail = CloudTrailDouble()
    app = Harness(DomainDispatcherApplication(create_backend_app), trail)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, app, trail


def enforce_authentication(app: Harness, trail: CloudTrailDouble) -> None:
    """From now on moto authenticates and authorizes every call; the bootstrap's calls (users,
    keys, the quarantine stack) are no incident's evidence, so the doubles forget them."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    trail.reset()
    app.hub.reset()
    app.bus.reset()
    # What the bootstrap built is in force since the beginning of time (no window to wait out).
    lag.JOURNAL.record(since=float("-inf"))


def write_env_file(path: str, endpoint: str, creds: dict) -> None:
    """The shell environment for clients, written atomically (its appearance means ready)."""
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        **creds,
        "KILLSWITCH_LOCAL_AWS": endpoint,
        "KILLSWITCH_LOCAL_ACCOUNT": ACCOUNT_ID,
        "KILLSWITCH_LOCAL_IAM_LAG_SECONDS": f"{lag.lag_seconds():g}",
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        for k, v in env.items():
            fh.write(f"export {k}={v}\n")
    os.replace(tmp, path)


def wait_for_stop_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


def main() -> int:
    args = parse_args()
    try:
        seconds = lag.configure()
    except ValueError as error:
        print(f"local AWS failed to start: {error}", file=sys.stderr, flush=True)
        return 1
    server, app, trail = start_server(args.port)
    endpoint = f"http://127.0.0.1:{args.port}"
    try:
        creds = bootstrap(endpoint)
    except Exception as error:  # noqa: BLE001 - fail start-up loudly: no env file, exit status 1
        import traceback

        traceback.print_exc()
        print(f"local AWS failed to start: bootstrap: {error}", file=sys.stderr, flush=True)
        server.shutdown()
        return 1
    enforce_authentication(app, trail)
    write_env_file(args.env_file, endpoint, creds)
    print(f"local AWS ready on {endpoint} (auth enforced, Inactive keys refused, LookupEvents and BatchUpdateFindings "
          f"doubles, IAM propagation lag {seconds:g} s, EventBridge delay {app.bus.delay:g} s)", flush=True)
    wait_for_stop_signal()
    server.shutdown()
    return 0
