"""Images over a store: names, the image graph, import, export (and copy, verify).

Everything here is written over the Store's public API, never over a driver: ``graph`` (the
children of manifests and indexes, containerd's gc labels, walking an image), ``importer``
(OCI layouts and archives, docker-archives), ``exporter`` (OCI layouts and archives). Image
names themselves live at store level, in ``cargohold.names``.
"""
