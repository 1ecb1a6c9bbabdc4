"""cargohold's images and containerd's, both ways, with a real containerd (builtin store):
an export is imported by ``ctr images import`` under the same full names, containerd sets the
same gc labels on the content as cargohold's import did, and ``ctr images export`` is imported
by cargohold under its full names again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cargohold
from cargohold.images.exporter import export
from cargohold.images.importer import import_images
from tests.emulators.containerd import Host
from tests.images.imagekit import build_oci_layout, skopeo

GC = "containerd.io/gc.ref.content"


def content_labels(host: Host) -> dict[str, dict[str, str]]:
    """``ctr content ls``: each blob's labels."""
    found: dict[str, dict[str, str]] = {}
    for line in host.ctr("content", "ls").stdout.decode().splitlines()[1:]:
        fields = line.split()
        labels = fields[-1] if len(fields) > 3 and "=" in fields[-1] else ""
        found[fields[0]] = dict(p.split("=", 1) for p in labels.split(",") if "=" in p)
    return found


def test_round_trip_with_containerd(
    containerd_host: Callable[..., Host], file_store_url: str, tmp_path: Path
) -> None:
    host = containerd_host(None)
    image = build_oci_layout(tmp_path / "layout", tag="1.0", layers=2)
    archive = tmp_path / "docker.tar"
    skopeo("copy", f"oci:{image.path}:1.0", f"docker-archive:{archive}:localhost/app:1.0")
    names = ["localhost/app:1.0", "localhost:5000/team/app:1.0"]
    with cargohold.open_store(file_store_url) as store:
        from_docker = import_images(store, archive, names=names[1:]).images[0].target
        from_oci = import_images(store, image.path, base_name="localhost/oci").images[0].target
        export(store, [*names, "localhost/oci:1.0"], tmp_path / "out.tar")
        ours = {
            digest: {k: v for k, v in store.info(digest).labels.items() if k.startswith(GC)}
            for digest in (from_docker.digest, from_oci.digest)
        }

    host.ctr("images", "import", "--no-unpack", "--all-platforms", str(tmp_path / "out.tar"))
    listed = host.ctr("images", "ls").stdout.decode().splitlines()[1:]
    by_name = {line.split()[0]: line.split()[2] for line in listed}
    assert by_name == {
        "localhost/app:1.0": from_docker.digest,
        "localhost:5000/team/app:1.0": from_docker.digest,
        "localhost/oci:1.0": from_oci.digest,
    }
    theirs = content_labels(host)
    for digest, labels in ours.items():
        assert set(labels) == {f"{GC}.config", f"{GC}.l.0", f"{GC}.l.1"}
        assert {k: v for k, v in theirs[digest].items() if k.startswith(GC)} == labels

    host.ctr("images", "export", str(tmp_path / "back.tar"), *names)
    with cargohold.open_store(f"{file_store_url}-back") as back:
        result = import_images(back, tmp_path / "back.tar")
        assert {name for i in result.images for name in i.names} == set(names)
        assert {n.name: n.target.digest for n in back.names.list()} == dict.fromkeys(
            names, from_docker.digest
        )
