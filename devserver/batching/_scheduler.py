"""TensorFlow's ``SharedBatchScheduler``: one pool of batch threads serving many task queues.

Each queue (one per model version and run signature) gathers tasks into batches; the threads go
round the queues and take a batch that is ready: a closed one, or the open one when it is full,
or its oldest task has waited ``batch_timeout_micros``. Capacity checks, error codes and messages
are TensorFlow's (``shared_batch_scheduler.h``), large-batch splitting included
(``input_split_metadata.cc``). One condition variable guards every queue: the GIL serialises
Python anyway, and it lets an idle thread sleep until the next batch is due instead of polling.

At most ``num_batch_threads`` batches run at once, as in TensorFlow. One difference in *which*
thread runs them: a batch that is ready while a slot is free runs on the thread of a request
waiting in it, not on a batch thread. When a task makes its batch ready and a slot is free, the
request's own thread runs it; when a request's thread gives a slot back and the next batch is
ready, it hands that batch to one of its waiting requests (:class:`Waiter`), whose thread wakes
to run it. Each waiting request is woken once, as it must be to answer; TensorFlow's way, waking
a batch thread that then wakes the requests, costs one more hand-off between threads per batch,
which under Python's GIL costs more than a small model's whole run. Batches are formed exactly
as TensorFlow forms them; the batch threads still run what a timeout makes ready.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from .._status import StatusError

__all__ = ["Batch", "BatchQueue", "QueueOptions", "SharedBatchScheduler", "Task", "Waiter", "split_sizes"]

logger = logging.getLogger(__name__)


class Waiter:
    """The request thread behind one or more queued tasks, blocked in :meth:`wait` until woken.

    It is woken once its task is done (:meth:`wake`), or to run a batch holding one of its tasks
    (:meth:`hand`). ``busy`` (under the scheduler's lock) says its thread is running a batch or
    has one handed to it, so it is handed at most one at a time; and since a handed batch holds
    one of its tasks, its task cannot be done before it runs that batch: the lock, a binary
    semaphore, is never released twice between two waits.
    """

    __slots__ = ("_wake", "busy", "handed")

    def __init__(self) -> None:
        self._wake = threading.Lock()  # a bare lock: the cheapest thing to block on and wake
        self._wake.acquire()
        self.busy = False
        self.handed: tuple[BatchQueue, Batch] | None = None

    def wake(self) -> None:
        self._wake.release()

    def hand(self, queue: BatchQueue, batch: Batch) -> None:
        """Called under the scheduler's lock with a batch whose slot is claimed: this thread runs it."""
        self.busy = True
        self.handed = (queue, batch)
        self._wake.release()

    def wait(self, done: Callable[[], bool]) -> None:
        """Block until ``done()``, running each batch handed over meanwhile."""
        while not done():
            self._wake.acquire()
            handed, self.handed = self.handed, None
            if handed is not None:
                handed[0].process(handed[1], self)


class Task(Protocol):
    size: int
    enqueue_time: float
    waiter: Waiter

    def split(self, sizes: list[int]) -> list[Task]: ...


@dataclass(frozen=True)
class QueueOptions:
    """``SharedBatchScheduler::QueueOptions`` as TF Serving fills them from ``BatchingParameters``."""

    input_batch_size_limit: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 1000

    @property
    def execution_limit(self) -> int:
        return self.max_execution_batch_size if self.enable_large_batch_splitting else self.input_batch_size_limit

    def checked(self) -> QueueOptions:
        """``AddQueue``'s checks (a failure fails the model's load), with its rewrite of a zero queue length."""
        if self.input_batch_size_limit <= 0:
            raise StatusError.invalid_argument(
                f"input_batch_size_limit must be positive; was {self.input_batch_size_limit}")
        if self.batch_timeout_micros < 0:
            raise StatusError.invalid_argument(
                f"batch_timeout_micros must be non-negative; was {self.batch_timeout_micros}")
        options = self
        if not self.enable_large_batch_splitting and self.max_enqueued_batches == 0:
            options = QueueOptions(self.input_batch_size_limit, self.batch_timeout_micros, 1)
        if options.max_enqueued_batches <= 0:
            raise StatusError.invalid_argument(
                f"max_enqueued_batches must be positive; was {options.max_enqueued_batches}")
        if options.enable_large_batch_splitting:
            if options.input_batch_size_limit < options.max_execution_batch_size:
                raise StatusError.invalid_argument(
                    "When enable_large_batch_splitting is true, input_batch_size_limit must be greater than or equal "
                    f"to max_execution_batch_size.1{options.input_batch_size_limit}{options.max_execution_batch_size}")
            if options.max_execution_batch_size <= 0:
                # TensorFlow would split into batches of 0 forever; refuse the load instead.
                raise StatusError.invalid_argument(
                    f"max_execution_batch_size must be positive; was {options.max_execution_batch_size}")
        return options


def split_sizes(size: int, open_batch_remaining: int, limit: int) -> list[int]:
    """``InputSplitMetadata``: fill the open batch first, then whole batches, then the rest."""
    sizes: list[int] = []
    left = size
    first = open_batch_remaining if open_batch_remaining > 0 else limit
    while left > 0:
        take = min(first if not sizes else limit, left)
        sizes.append(take)
        left -= take
    return sizes


class Batch:
    """Tasks run together; ``size`` is the sum of their dimension 0."""

    def __init__(self) -> None:
        self.tasks: list[Any] = []
        self.size = 0

    def add(self, task: Task) -> None:
        self.tasks.append(task)
        self.size += task.size


class BatchQueue:
    """One queue of a :class:`SharedBatchScheduler` (TensorFlow's ``internal::Queue``)."""

    def __init__(self, scheduler: SharedBatchScheduler, options: QueueOptions,
                 process: Callable[[Batch], None]) -> None:
        self._scheduler = scheduler
        self.options = options
        self._process = process
        self._batches: deque[Batch] = deque([Batch()])
        self._open_since = 0.0
        self._processing = 0
        self.closed = False

    def schedule(self, task: Task) -> None:
        """Add a task to the open batch (splitting it if allowed); raise TensorFlow's error when it cannot go.

        If that makes a batch ready while a batch slot is free, run it here, on the caller's thread.
        """
        scheduler = self._scheduler
        with scheduler.cond:
            self._validate(task)
            limit = self.options.execution_limit
            remaining = limit - self._batches[-1].size
            pieces = [task]
            if task.size > remaining and self.options.enable_large_batch_splitting:
                pieces = task.split(split_sizes(task.size, remaining, limit))
            for piece in pieces:
                if self._batches[-1].size + piece.size > limit:
                    self._batches.append(Batch())
                if not self._batches[-1].tasks:
                    self._open_since = time.monotonic()
                self._batches[-1].add(piece)
            scheduler.queued += len(pieces)
            free = scheduler.slot_free()
            batch = scheduler.claim_slot(self) if free else None
            if batch is not None:
                task.waiter.busy = True
            elif free:  # not ready yet: a batch thread keeps its timeout
                scheduler.cond.notify()  # (with no slot free, the slot's release hands the batch on)
        if batch is not None:
            self.process(batch, task.waiter)

    def claim_alone(self, size: int) -> bool:
        """Claim a slot for a task TensorFlow would run at once as a batch of its own.

        That is when the queue holds nothing, a slot is free and a batch of ``size`` is due at once
        (no timeout to wait for company, or already full). The caller runs it, then calls
        :meth:`release_alone`.
        """
        options = self.options
        if options.batch_timeout_micros and size < options.execution_limit:
            return False
        scheduler = self._scheduler
        with scheduler.cond:
            if (self.closed or size > options.execution_limit or len(self._batches) > 1 or self._batches[0].tasks
                    or not scheduler.slot_free()):
                return False
            scheduler.claim_slot_alone()
            self._processing += 1
            return True

    def release_alone(self) -> None:
        """Give back a slot claimed by :meth:`claim_alone`, handing the next ready batch on."""
        following = self._batch_done(None, hand_off=True)
        if following is not None:
            following[0].process(following[1])

    def _batch_done(self, waiter: Waiter | None, hand_off: bool) -> tuple[BatchQueue, Batch] | None:
        """A batch of this queue has run: give its slot back (see ``release_slot``)."""
        with self._scheduler.cond:
            self._processing -= 1
            if self.closed:
                self._scheduler.drained.notify_all()  # close_and_wait() waits for the last batch
            return self._scheduler.release_slot(waiter, hand_off)

    # Everything below but process() runs under the scheduler's lock.
    def _validate(self, task: Task) -> None:
        options = self.options
        if task.size > options.input_batch_size_limit:
            raise StatusError.invalid_argument(
                f"Task size {task.size} is larger than maximum input batch size {options.input_batch_size_limit}")
        if options.enable_large_batch_splitting:
            capacity = self._capacity()
            if task.size > capacity:
                raise StatusError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"The batch scheduling queue to which this task was submitted is full; task size is {task.size} "
                    f"but scheduling capacity is only {capacity} (num_enqueued_batches={len(self._batches)}, "
                    f"max_enqueued_batches={options.max_enqueued_batches}, open_batch_size="
                    f"{self._batches[-1].size}, max_execution_batch_size={options.execution_limit})")
            return
        if (self._batches[-1].size + task.size > options.input_batch_size_limit
                and len(self._batches) >= options.max_enqueued_batches):
            raise StatusError(
                grpc.StatusCode.UNAVAILABLE,
                f"The batch scheduling queue to which this task was submitted is full; currently "
                f"{len(self._batches)} batches enqueued and max_enqueued_batches is {options.max_enqueued_batches}")

    def _capacity(self) -> int:
        limit = self.options.execution_limit
        return (self.options.max_enqueued_batches - len(self._batches)) * limit + limit - self._batches[-1].size

    def due(self) -> float | None:
        """When the open batch may run (monotonic seconds), or None when it is empty."""
        open_batch = self._batches[-1]
        if not open_batch.tasks:
            return None
        if self.closed or open_batch.size >= self.options.execution_limit:
            return 0.0
        return self._open_since + self.options.batch_timeout_micros / 1e6

    def take_batch(self, now: float) -> Batch | None:
        """``ScheduleBatch``: close a ready open batch, then hand out the oldest closed one."""
        if len(self._batches) == 1:
            due = self.due()
            if due is not None and now >= due:
                self._batches.append(Batch())
        if len(self._batches) >= 2:
            self._processing += 1
            batch = self._batches.popleft()
            self._scheduler.queued -= len(batch.tasks)
            return batch
        return None

    def empty(self) -> bool:
        return self._processing == 0 and len(self._batches) == 1 and not self._batches[-1].tasks

    def pending(self) -> bool:
        return len(self._batches) > 1 or bool(self._batches[-1].tasks)

    def process(self, batch: Batch, waiter: Waiter | None = None) -> None:
        """Run a batch taken with a slot (outside the lock), then give the slot back.

        ``waiter`` is the request thread running it (None on a batch thread): giving the slot
        back, it hands the next ready batch to a request waiting in it, or runs it itself when
        one of its own tasks is there.
        """
        queue = self
        while True:
            try:
                queue._process(batch)
            finally:
                following = queue._batch_done(waiter, hand_off=waiter is not None)
            if following is None:
                return
            queue, batch = following

    def close_and_wait(self) -> None:
        """Accept nothing more and wait until every enqueued task has run (TensorFlow's queue handle destructor)."""
        with self._scheduler.cond:
            self.closed = True
            self._scheduler.cond.notify_all()  # the open batch is due now
            while not self.empty():
                self._scheduler.drained.wait()


class SharedBatchScheduler:
    """``num_batch_threads`` threads going round the queues, one batch at a time."""

    def __init__(self, num_batch_threads: int, thread_pool_name: str = "batch_threads") -> None:
        if num_batch_threads < 1:
            raise StatusError.invalid_argument(f"num_batch_threads must be positive; was {num_batch_threads}")
        self.thread_pool_name = thread_pool_name
        lock = threading.RLock()
        #: Batch threads wait on ``cond`` for work; ``drained`` is only for closing queues (so a notify
        #: meant for a batch thread never lands on a closing queue's waiter instead).
        self.cond = threading.Condition(lock)
        self.drained = threading.Condition(lock)
        self._queues: list[BatchQueue] = []
        self._next = 0
        self._stopped = False
        self._slots = num_batch_threads  # batches that may run at once
        self._running = 0
        #: Tasks waiting in every queue: giving a slot back looks at the queues only when some wait.
        self.queued = 0
        self._threads = [threading.Thread(target=self._thread_logic, name=f"{thread_pool_name}_{i}", daemon=True)
                         for i in range(num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def add_queue(self, options: QueueOptions, process: Callable[[Batch], None]) -> BatchQueue:
        queue = BatchQueue(self, options.checked(), process)
        with self.cond:
            self._queues.append(queue)
        return queue

    # Called under ``cond``.
    def slot_free(self) -> bool:
        return self._running < self._slots

    def claim_slot(self, queue: BatchQueue) -> Batch | None:
        batch = queue.take_batch(time.monotonic())
        if batch is not None:
            self._running += 1
        return batch

    def claim_slot_alone(self) -> None:
        self._running += 1

    def release_slot(self, waiter: Waiter | None, hand_off: bool = False) -> tuple[BatchQueue, Batch] | None:
        """Give a slot back; a request's thread (``hand_off``) passes it on to the next ready batch.

        That batch goes to one of its waiting requests, or comes back to run on this thread when
        one of ``waiter``'s own tasks is in it (or, rarely, every request in it is busy).
        """
        self._running -= 1
        if waiter is not None:
            waiter.busy = False
        if not self.queued:
            return None
        if hand_off:
            ready = self._take_ready(time.monotonic())
            if ready is not None:
                queue, batch = ready
                owners = [task.waiter for task in batch.tasks]
                idle = None if waiter in owners else next((owner for owner in owners if not owner.busy), None)
                if idle is None:  # this thread runs it
                    if waiter is not None:
                        waiter.busy = True
                    return ready
                idle.hand(queue, batch)
                return None
        if any(q.pending() for q in self._queues):
            self.cond.notify()  # a batch thread takes what waited for the slot, or waits until it is due
        return None

    def _take_ready(self, now: float) -> tuple[BatchQueue, Batch] | None:
        """A ready batch (round robin from where the last one was taken), its slot claimed."""
        count = len(self._queues)
        for offset in range(count):
            index = (self._next + offset) % count
            queue = self._queues[index]
            batch = queue.take_batch(now)
            if batch is not None:
                self._next = index + 1
                self._running += 1
                return queue, batch
        return None

    def _next_work(self) -> tuple[BatchQueue, Batch] | float | None:
        """A batch to run (round robin from where the last thread stopped), else when one is next due."""
        if not self.slot_free():
            return None  # woken by release_slot()
        now = time.monotonic()
        ready = self._take_ready(now)
        if ready is not None:
            return ready
        due: float | None = None
        for queue in self._queues:
            queue_due = queue.due()
            if queue_due is not None:
                due = queue_due if due is None else min(due, queue_due)
        # Closed queues with nothing left are dropped, as TensorFlow's threads do.
        self._queues = [q for q in self._queues if not (q.closed and q.empty())]
        return due

    def _thread_logic(self) -> None:
        while True:
            with self.cond:
                while True:
                    if self._stopped:
                        return
                    work = self._next_work()
                    if isinstance(work, tuple):
                        break
                    self.cond.wait(None if work is None else max(work - time.monotonic(), 0.0001))
            queue, batch = work
            try:
                queue.process(batch)
            except Exception:  # a batch callback reports to its tasks; this only keeps the thread alive
                logger.exception("batch processing failed")

    def stop(self) -> None:
        with self.cond:
            self._stopped = True
            self.cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

