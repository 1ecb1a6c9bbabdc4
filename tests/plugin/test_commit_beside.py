"""A COMMIT sends this node's claim (holder record, deletion-marker check) beside the writer's
lease renewal, and publishes only once both are done."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from cargohold.drivers.base import IfMatch
from cargohold.errors import NotFoundError, UnavailableError
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.server import ENGINES
from cargohold.testing.helpers import random_bytes

from .conftest import Served, serving
from .test_request_cost import _stream
from .test_rpcs import code_of, sha


@pytest.fixture
def file_served(file_store_url: str) -> Iterator[Served]:
    with serving(file_store_url) as s:
        yield s


def test_the_claim_goes_out_beside_the_lease_renewal(
    file_served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = file_served.store.driver
    put = driver.put
    renewing = threading.Event()
    claimed_after_renewal: list[bool] = []

    def watching_put(key: str, data: bytes, *args: Any, **kwargs: Any) -> str:
        if "holders/" in key:
            # The holder record waits (5 s at most) until the renewal has gone out: with the
            # claim first and the renewal after it, it would wait in vain.
            claimed_after_renewal.append(renewing.wait(5))
        elif key.endswith("/lock") and isinstance(kwargs.get("precondition"), IfMatch):
            renewing.set()
        return put(key, data, *args, **kwargs)

    monkeypatch.setattr(driver, "put", watching_put)
    data = random_bytes(300_000, seed=81)
    replies = list(file_served.stub.Write(_stream("default/1/beside", data)))
    assert replies[-1].action == pb.COMMIT and replies[-1].digest == sha(data)
    assert claimed_after_renewal == [True]
    assert sha(data) in file_served.server.holdings.held()
    info = file_served.stub.Info(pb.InfoRequest(digest=sha(data))).info
    assert info.size == len(data)


def test_a_failed_claim_publishes_nothing(
    file_served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    holdings = file_served.server.holdings
    claim = holdings.claim

    def failing(digest: str) -> bool:
        raise UnavailableError("the holder record could not be written")

    monkeypatch.setattr(holdings, "claim", failing)
    data = random_bytes(200_000, seed=82)
    digest = sha(data)
    assert code_of(lambda: list(file_served.stub.Write(_stream("default/1/fails", data)))) == (
        grpc.StatusCode.UNAVAILABLE
    )
    with pytest.raises(NotFoundError):
        file_served.store.info(digest)
    monkeypatch.setattr(holdings, "claim", claim)
    replies = list(file_served.stub.Write(_stream("default/1/fails", data)))
    assert replies[-1].action == pb.COMMIT and replies[-1].digest == digest
    assert file_served.store.info(digest).size == len(data)
    assert digest in holdings.held()


def test_a_commit_that_fails_its_check_leaves_no_holder_record(file_served: Served) -> None:
    data = random_bytes(100_000, seed=83)
    wrong = sha(b"other bytes")

    def stream() -> Iterator[pb.WriteContentRequest]:
        yield pb.WriteContentRequest(action=pb.STAT, ref="default/1/wrong", total=len(data))
        yield pb.WriteContentRequest(action=pb.WRITE, offset=0, data=data)
        yield pb.WriteContentRequest(
            action=pb.COMMIT, offset=len(data), total=len(data), expected=wrong
        )

    code = code_of(lambda: list(file_served.stub.Write(stream())))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    held = file_served.server.holdings.held()
    assert sha(data) not in held and wrong not in held


STATUS_OF_ANSWERED = pb.StatusRequest(ref="default/1/answered")


@pytest.mark.parametrize("engine", ENGINES)
def test_the_commit_is_answered_before_the_ingestion_is_removed(
    file_store_url: str, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(file_store_url, engine=engine) as file_served:
        _answered_before_removed(file_served, monkeypatch)


def _answered_before_removed(file_served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    store = file_served.store
    driver = store.driver
    delete = driver.delete
    answered = threading.Event()
    removed_after_answer: list[bool] = []

    def waiting_delete(key: str, *args: Any, **kwargs: Any) -> None:
        if key.startswith(store.layout.ingestions) and key.endswith(("/state", "/lock")):
            # The ingestion's records (not its staged bytes, which publishing moves) wait
            # (5 s at most) for the COMMIT's answer: a removal before it would wait in vain.
            removed_after_answer.append(answered.wait(5))
        delete(key, *args, **kwargs)

    monkeypatch.setattr(driver, "delete", waiting_delete)
    data = random_bytes(3 * store.part_size + 11, seed=84)
    replies = file_served.stub.Write(_stream("default/1/answered", data))
    for reply in replies:
        if reply.action == pb.STAT and reply.offset == 0:  # opened: the ingestion is listed
            status = file_served.stub.Status(STATUS_OF_ANSWERED)
            assert status.status.ref == "default/1/answered"
        if reply.action == pb.COMMIT:
            assert reply.digest == sha(data)
            assert store.info(sha(data)).size == len(data)  # published before the answer
            # The ingestion is over for every client of this node, its records still there.
            assert [obj.key for obj in driver.list(store.layout.ingestions)]
            code = code_of(lambda: file_served.stub.Status(STATUS_OF_ANSWERED))
            assert code == grpc.StatusCode.NOT_FOUND
            listed = file_served.stub.ListStatuses(pb.ListStatusesRequest())
            assert list(listed.statuses) == []
            answered.set()
    assert removed_after_answer and all(removed_after_answer)
    assert [obj.key for obj in driver.list(store.layout.ingestions)] == []


@pytest.mark.parametrize("engine", ENGINES)
def test_a_client_gone_right_after_the_commit_answer_leaves_no_ingestion(
    file_store_url: str, engine: str
) -> None:
    with serving(file_store_url, engine=engine) as served:
        store = served.store
        data = random_bytes(2 * store.part_size + 5, seed=85)
        call = served.stub.Write(_stream("default/1/gone", data))
        for reply in call:
            if reply.action == pb.COMMIT:
                call.cancel()  # at once: the removal is still to come
                break
        assert store.info(sha(data)).size == len(data)
        deadline = time.monotonic() + 30
        while [obj.key for obj in store.driver.list(store.layout.ingestions)]:
            assert time.monotonic() < deadline, "the ingestion's records were left behind"
            time.sleep(0.05)
        # The ref is free again: a new ingestion of it starts from zero and commits.
        replies = list(served.stub.Write(_stream("default/1/gone", data[:100])))
        assert replies[-1].action == pb.COMMIT and replies[-1].digest == sha(data[:100])
