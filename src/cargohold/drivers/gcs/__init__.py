"""``gs://bucket/prefix``: Google Cloud Storage (see docs/drivers/gcs.md).

``driver`` holds the driver, ``client`` its options and SDK client, ``errors`` its error table,
``claim`` the commit claim that guards create-only commits where preconditions are ignored.
"""

from .client import GCSConfig, GCSOptions
from .driver import GCSDriver, from_url

__all__ = ["GCSConfig", "GCSDriver", "GCSOptions", "from_url"]
