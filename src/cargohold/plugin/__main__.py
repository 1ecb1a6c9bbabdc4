"""``python -m cargohold.plugin``: the same command as ``cargohold serve``."""

from .command import serve

if __name__ == "__main__":
    serve(prog_name="cargohold serve")
