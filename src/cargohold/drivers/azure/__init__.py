"""``az://container/prefix``: Azure Blob Storage block blobs (see docs/drivers/azure.md).

``driver`` holds the driver, ``client`` its options and service client, ``errors`` its error
table, ``blocks`` how upload sessions map onto staged blocks.
"""

from .client import AzureOptions
from .driver import AzureDriver, from_url

__all__ = ["AzureDriver", "AzureOptions", "from_url"]
