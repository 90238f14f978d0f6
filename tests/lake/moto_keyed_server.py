"""``moto_server`` that checks request signatures against one key pair the tests choose.

Plain ``moto_server`` accepts any access key and any secret (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``
defaults to infinity), so a wrong-credentials test would pass silently. Real authentication in moto
needs an IAM user whose key moto knows, and moto draws that secret at random; the tests want a fixed,
recognisable one (secret-leak tests grep for it). So this script registers one IAM user with the key
pair from ``MOTO_TEST_ACCESS_KEY`` / ``MOTO_TEST_SECRET_KEY`` and an allow-all S3 policy straight
into moto's in-process IAM backend, turns authentication on from the first request, and then runs
moto's own server ``main`` with the same arguments as ``moto_server`` (``-H 127.0.0.1 -p PORT``).

It touches moto internals (pinned in the ``lake`` extra); if a moto upgrade breaks it, it fails at
start-up and the ``s3_server`` fixture shows this script's traceback.
"""

from __future__ import annotations

import json
import os
import sys

os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"  # read when moto.settings is first imported

from moto.core.models import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.server import main  # noqa: E402

ALLOW_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def register_key(access_key: str, secret_key: str) -> None:
    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user("us-east-1", "costlens-test")
    key = iam.create_access_key("costlens-test")
    del iam.access_keys[key.access_key_id]
    key.access_key_id, key.secret_access_key = access_key, secret_key
    iam.access_keys[access_key] = key
    iam.put_user_policy("costlens-test", "allow-s3", json.dumps(ALLOW_S3))


if __name__ == "__main__":
    register_key(os.environ["MOTO_TEST_ACCESS_KEY"], os.environ["MOTO_TEST_SECRET_KEY"])
    main(sys.argv[1:])
