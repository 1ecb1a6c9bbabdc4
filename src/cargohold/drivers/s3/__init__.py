"""``s3://bucket/prefix``: Amazon S3 and S3-compatible services (see docs/drivers/s3.md).

``driver`` holds the driver, ``client`` its options and botocore client, ``errors`` its error table.
"""

from .client import S3Options, S3Settings
from .driver import S3Driver, from_url

__all__ = ["S3Driver", "S3Options", "S3Settings", "from_url"]
