"""Reference peer for the containment benchmark: the way today's Python/boto3 responders contain
a leaked key, making the same IAM calls in the same order as killswitch. Not a product: it exists
so the benchmark compares like with like in one run.

Usage: reference_responder.py ACCESS_KEY_ID USER_NAME  (prints the wall time containment finished)
"""

import json
import sys
import time

import boto3  # imported at start, as a Lambda cold start would

key, user = sys.argv[1], sys.argv[2]
sts, iam = boto3.client("sts"), boto3.client("iam")
sts.get_access_key_info(AccessKeyId=key)
iam.get_access_key_last_used(AccessKeyId=key)
status = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
if status.get(key) == "Active":
    iam.update_access_key(UserName=user, AccessKeyId=key, Status="Inactive")
try:
    iam.get_user_policy(UserName=user, PolicyName="KillSwitchDenyAll")
except iam.exceptions.NoSuchEntityException:
    pass
iam.put_user_policy(UserName=user, PolicyName="KillSwitchDenyAll", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}))
print(time.time())
