"""cargohold: containerd's content store on cloud object storage."""
