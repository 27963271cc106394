"""One deterministic partition of the item list, shared by the xdist scheduler
(which sends each worker its part) and the worker (which plans its pipeline
from the same part before the first item runs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def partition(items: Sequence[T], index: int, count: int) -> list[T]:
    """Return the strided part `index` of `count`: items index, index+count, ..."""
    return list(items[index::count])


def worker_slot(worker_id: str, worker_count: int) -> int | None:
    """Return the partition of xdist worker `gwN`, or None for a replacement worker.

    Workers that replace a crashed one get ids from gw<worker_count> upwards and
    receive whatever the crashed worker left, which no partition predicts.
    """
    if not worker_id.startswith("gw") or not worker_id[2:].isdigit():
        return None
    slot = int(worker_id[2:])
    return slot if slot < worker_count else None


def make_partition_scheduler(config: object, log: object) -> object:
    """Build an xdist scheduler that sends each worker its whole partition at once."""
    from xdist.scheduler import LoadScheduling

    class PartitionScheduling(LoadScheduling):  # type: ignore[misc]
        def schedule(self) -> None:
            if self.collection is not None or not self._check_nodes_have_same_collection():
                super().schedule()
                return
            self.collection = next(iter(self.node2collection.values()))
            # LoadScheduling sets this on its first schedule(), which is skipped
            # here; its crash handling reads it when a replacement worker starts.
            if self.maxschedchunk is None:
                self.maxschedchunk = len(self.collection)
            indices = range(len(self.collection))
            sent: set[int] = set()
            for node in self.nodes:
                slot = worker_slot(node.gateway.id, self.numnodes)
                part = partition(indices, slot, self.numnodes) if slot is not None else []
                if part:
                    self.node2pending[node].extend(part)
                    node.send_runtest_some(part)
                    sent.update(part)
            # Parts of workers that never started go to the first worker with free capacity.
            self.pending[:] = [index for index in indices if index not in sent]
            for node in self.nodes:
                self.check_schedule(node)

    return PartitionScheduling(config, log)
