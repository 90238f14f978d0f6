"""The lake: many machines' runs in one Parquet tree on a directory or on S3-compatible storage.

``costlens publish`` appends finished runs (``publish.py``); ``--lake URI`` readers see it as a
session like a DuckDB file's (``read.py``). Where the lake is (a directory or ``s3://``) is
``location.py``; its layout, schema version and manifests are ``layout.py``. README "The lake"
documents the layout for other engines (Spark, Trino, Athena).
"""
