"""containerd's content service over gRPC, backed by a cargohold store (``cargohold serve``)."""
