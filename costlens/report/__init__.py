"""What people read: the per-model summary and run list
(``summary``), exports (``export``), the report's figures (``data`` + ``sql/``) and its HTML
(``html`` + ``templates/``).

Reads the cost view; never sends anything.
"""
