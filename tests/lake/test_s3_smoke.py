"""moto's S3 server on loopback, as pyarrow sees it: Parquet round trip, credentials from the standard AWS
variables, and the errors for a wrong secret and a wrong endpoint (which the lake code turns into one line).

What pyarrow 26 raises here (all plain ``OSError``; the message names the operation and an AWS error code):
- wrong secret or unknown key, on HEAD (``get_file_info``, opening a file): ``AWS Error ACCESS_DENIED during
  HeadObject operation: No response body.`` (a HEAD response has no body to say more);
- wrong secret on a request with a body (listing, upload): ``AWS Error SIGNATURE_DOES_NOT_MATCH``;
- nothing listening: ``AWS Error NETWORK_CONNECTION ... curlCode: 7, Could not connect to server``;
- a missing bucket or key on read: ``FileNotFoundError`` (``get_file_info`` answers ``FileType.NotFound``).
None of the messages contains the secret.
"""

from __future__ import annotations

import socket
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

TABLE = pa.table(
    {
        "model": ["gpt-4o-mini", "claude-3-5-haiku", "local-llama"],
        "input_tokens": pa.array([120, 3400, 9], pa.int64()),
        "cost_usd": pa.array(
            [Decimal("0.000018000000000"), Decimal("98765432109876543210.123456789012345"), None],
            pa.decimal128(38, 15),
        ),
    }
)
ONE_TRY = fs.AwsStandardS3RetryStrategy(max_attempts=1)


def test_parquet_round_trip(s3_server: Any) -> None:
    assert s3_server.make_bucket("smoke-round-trip") == "s3://smoke-round-trip"
    s3 = s3_server.filesystem()
    pq.write_table(TABLE, "smoke-round-trip/lake/requests/part-1.parquet", filesystem=s3)
    listed = s3.get_file_info(fs.FileSelector("smoke-round-trip/lake", recursive=True))
    assert [i.path for i in listed if i.type == fs.FileType.File] == [
        "smoke-round-trip/lake/requests/part-1.parquet"
    ]
    with s3.open_input_file("smoke-round-trip/lake/requests/part-1.parquet") as f:
        back = pq.read_table(f)
    assert back.equals(TABLE)
    assert back.schema.field("cost_usd").type == pa.decimal128(38, 15)


def test_the_standard_aws_variables_are_enough(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # FileSystem.from_uri honours AWS_ENDPOINT_URL; the bare S3FileSystem() constructor does not (it
    # would go to amazonaws.com), so code that takes its endpoint from the environment uses from_uri.
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    s3_server.make_bucket("smoke-env")
    s3, path = fs.FileSystem.from_uri("s3://smoke-env/x.parquet")
    pq.write_table(TABLE, path, filesystem=s3)
    assert pq.read_table(path, filesystem=s3).num_rows == 3


def test_a_wrong_secret_is_refused(s3_server: Any) -> None:
    s3_server.make_bucket("smoke-secret")
    pq.write_table(TABLE, "smoke-secret/x.parquet", filesystem=s3_server.filesystem())
    bad = s3_server.filesystem(secret_key="not-the-secret", retry_strategy=ONE_TRY)
    with pytest.raises(OSError, match=r"AWS Error ACCESS_DENIED during HeadObject") as head:
        bad.get_file_info("smoke-secret/x.parquet")
    with pytest.raises(OSError, match=r"AWS Error SIGNATURE_DOES_NOT_MATCH during ListObjectsV2") as listing:
        bad.get_file_info(fs.FileSelector("smoke-secret"))
    with pytest.raises(OSError, match=r"AWS Error SIGNATURE_DOES_NOT_MATCH during CreateMultipartUpload"):
        pq.write_table(TABLE, "smoke-secret/y.parquet", filesystem=bad)
    unknown = s3_server.filesystem(access_key="AKIANOSUCHKEY0000000", retry_strategy=ONE_TRY)
    with pytest.raises(OSError, match=r"AWS Error ACCESS_DENIED"):
        unknown.get_file_info("smoke-secret/x.parquet")
    for error in (head.value, listing.value):
        assert type(error) is OSError
        assert s3_server.secret_key not in str(error) and "not-the-secret" not in str(error)


def test_a_wrong_endpoint_is_a_connection_error(s3_server: Any) -> None:
    with socket.socket() as sock:  # a port nothing listens on: bound, never listened on, then closed
        sock.bind(("127.0.0.1", 0))
        nothing = f"http://127.0.0.1:{sock.getsockname()[1]}"
    s3 = s3_server.filesystem(endpoint_override=nothing, retry_strategy=ONE_TRY, connect_timeout=2)
    with pytest.raises(OSError, match=r"AWS Error NETWORK_CONNECTION during HeadObject .*curlCode: 7") as e:
        s3.get_file_info("smoke-missing/x.parquet")
    assert type(e.value) is OSError


def test_a_missing_bucket_is_not_found(s3_server: Any) -> None:
    s3 = s3_server.filesystem()
    assert s3.get_file_info("smoke-no-such-bucket/x.parquet").type == fs.FileType.NotFound
    with pytest.raises(FileNotFoundError):
        pq.read_table("smoke-no-such-bucket/x.parquet", filesystem=s3)
