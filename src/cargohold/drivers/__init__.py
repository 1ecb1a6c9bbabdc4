"""Object storage drivers: the protocol (``base``), the wrapper every store puts around its
driver (``wrapper``), the option parser (``options``) and error-mapping helper (``errors``) that
every driver shares, and the drivers: ``memory``, ``local`` (``file://``), ``s3``, ``gcs``,
``azure``. Importing this package imports no SDK."""
