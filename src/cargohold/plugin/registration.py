"""Registers the content service on a gRPC server with request parsing that cannot crash.

grpcio parses each request with the message type's ``FromString`` before a handler runs; a
message it cannot parse (a string field holding invalid UTF-8, say) makes grpcio itself end the
call with INTERNAL. Here every request is parsed by ``_lenient``, which turns such a message into
an ``Undecodable`` value instead, and the servicer answers it with INVALID_ARGUMENT like any
other bad input. The method table is the generated one's (``gen/content_pb2_grpc.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import DecodeError

from .gen import content_pb2 as pb

__all__ = ["SERVICE", "Undecodable", "add_content_service"]

SERVICE = "containerd.services.content.v1.Content"


@dataclass(frozen=True)
class Undecodable:
    """A request message that could not be parsed, and why."""

    reason: str


def _lenient(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(raw: bytes) -> Any:
        try:
            return parse(raw)
        except DecodeError as exc:
            return Undecodable(str(exc) or "the request message cannot be parsed")

    return deserialize


# method -> (grpc handler factory, request type, response type)
_METHODS: dict[str, tuple[Callable[..., grpc.RpcMethodHandler], Any, Any]] = {
    "Info": (grpc.unary_unary_rpc_method_handler, pb.InfoRequest, pb.InfoResponse),
    "Update": (grpc.unary_unary_rpc_method_handler, pb.UpdateRequest, pb.UpdateResponse),
    "List": (grpc.unary_stream_rpc_method_handler, pb.ListContentRequest, pb.ListContentResponse),
    "Delete": (grpc.unary_unary_rpc_method_handler, pb.DeleteContentRequest, Empty),
    "Read": (grpc.unary_stream_rpc_method_handler, pb.ReadContentRequest, pb.ReadContentResponse),
    "Status": (grpc.unary_unary_rpc_method_handler, pb.StatusRequest, pb.StatusResponse),
    "ListStatuses": (
        grpc.unary_unary_rpc_method_handler,
        pb.ListStatusesRequest,
        pb.ListStatusesResponse,
    ),
    "Write": (
        grpc.stream_stream_rpc_method_handler,
        pb.WriteContentRequest,
        pb.WriteContentResponse,
    ),
    "Abort": (grpc.unary_unary_rpc_method_handler, pb.AbortRequest, Empty),
}


def add_content_service(servicer: Any, server: grpc.Server) -> None:
    """Serve ``servicer``'s methods as containerd's content service on ``server``."""
    handlers = {
        name: factory(
            getattr(servicer, name),
            request_deserializer=_lenient(request.FromString),
            response_serializer=response.SerializeToString,
        )
        for name, (factory, request, response) in _METHODS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
