"""Minimal reference peer for the latency benchmark: the least a Python/boto3 responder can do to
contain a leaked key, two IAM writes and nothing else (no checks, no reads): deactivate the key,
then attach an inline deny-all to its user. Not a product: it is the floor killswitch is compared
with in scripts/bench_latency.py. Runs as a fresh process, as in a Lambda cold start.

Usage: reference_minimal.py ACCESS_KEY_ID USER_NAME  (prints the wall time containment finished)
"""

import json
import sys
import time

import boto3  # imported at start, as a Lambda cold start would

key, user = sys.argv[1], sys.argv[2]
iam = boto3.client("iam")
iam.update_access_key(UserName=user, AccessKeyId=key, Status="Inactive")
iam.put_user_policy(UserName=user, PolicyName="KillSwitchDenyAll", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}))
print(time.time())
