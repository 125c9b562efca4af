"""BatchingSession on real SavedModels: merged runs give the unbatched results, errors are TF Serving's.

The session and scheduler run in this process on real TensorFlow sessions; the gRPC end of it is
in test_batching_server.py.
"""

import threading

import grpc
import numpy as np
import pytest

from tfsk import serving_config as sc
from tfsk.devserver._servable import load_servable
from tfsk.devserver._status import StatusError
from tfsk.devserver.batching._scheduler import SharedBatchScheduler, split_sizes
from tfsk.devserver.batching._session import BatchingSession

WAIT = 30  # seconds; every wait in this file is bounded


def build_variable_length(path):
    """A model over [batch, length] inputs: the row maximum and the first column (padding changes neither)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    info = v1.saved_model.utils.build_tensor_info
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [None, None], name="x")
        row_max = tf.reduce_max(x, axis=1, name="row_max")
        first = tf.identity(x[:, 0], name="first")
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
            "serving_default": v1.saved_model.signature_def_utils.build_signature_def(
                {"x": info(x)}, {"row_max": info(row_max), "first": info(first)}, "tensorflow/serving/predict")})
        builder.save()


@pytest.fixture(scope="module")
def half_plus_two(half_plus):
    servable = load_servable("default", 123, half_plus / "half_plus_two" / "00000123", ["serve"])
    yield servable
    servable.close()


@pytest.fixture(scope="module")
def variable_length(tmp_path_factory):
    path = tmp_path_factory.mktemp("varlen") / "1"
    build_variable_length(path)
    servable = load_servable("varlen", 1, path, ["serve"])
    yield servable
    servable.close()


@pytest.fixture
def scheduler():
    running = SharedBatchScheduler(2, "test_batch_threads")
    yield running
    running.stop()


class Recorder:
    def __init__(self):
        self.samples, self._lock = [], threading.Lock()

    def __call__(self, name, labels):
        def sample(value):
            with self._lock:
                self.samples.append((name.rsplit("/", 1)[-1], value, dict(labels)))

        return sample

    def values(self, short_name):
        return [value for name, value, _ in self.samples if name == short_name]


def session_for(servable, scheduler, recorder=None, run=None, **settings):
    return BatchingSession(scheduler, sc.BatchingSettings(**settings), run or servable.run_unbatched,
                           servable.signature_defs, recorder)


def x_feed(servable, rows):
    return {servable.signature_defs["serving_default"].inputs["x"].name: rows}


def y_name(servable):
    return servable.signature_defs["serving_default"].outputs["y"].name


def concurrently(calls):
    """Run the callables at the same time; return their results (or raised errors) in order."""
    results = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def worker(index):
        start.wait(WAIT)
        try:
            results[index] = calls[index]()
        except StatusError as error:
            results[index] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_concurrent_runs_merge_into_one_run_and_split_back(half_plus_two, scheduler):
    recorder = Recorder()
    # The batch waits for its 8 tasks (full at 8 rows... and 8 tasks of 1-3 rows fill 16), then runs once.
    session = session_for(half_plus_two, scheduler, recorder, max_batch_size=16, batch_timeout_micros=2_000_000)
    sizes = [1, 2, 3, 1, 2, 3, 2, 2]
    inputs = [np.arange(n, dtype=np.float32).reshape(n, 1) + 10 * i for i, n in enumerate(sizes)]
    fetch = [y_name(half_plus_two)]
    batched = concurrently([lambda v=v: session.run(x_feed(half_plus_two, v), fetch) for v in inputs])
    session.close()
    for value, (result,) in zip(inputs, batched, strict=True):
        (unbatched,) = half_plus_two.run_unbatched(x_feed(half_plus_two, value), fetch)
        assert result.shape == (len(value), 1)
        np.testing.assert_array_equal(result, unbatched)
        np.testing.assert_array_equal(result, value * 0.5 + 2)
    assert recorder.values("wrapped_run_count") == [1]
    assert recorder.values("processed_batch_size") == [16]
    assert sorted(recorder.values("input_batch_size")) == sorted(sizes)
    assert all(labels == {"thread_pool_name": ""} for name, _, labels in recorder.samples if name == "queuing_latency")


def test_allowed_batch_sizes_pad_the_batch_and_drop_the_padding(half_plus_two, scheduler):
    recorder = Recorder()
    session = session_for(half_plus_two, scheduler, recorder, max_batch_size=8, allowed_batch_sizes=(4, 8),
                          batch_timeout_micros=0)
    value = np.array([[1.0], [2.0], [3.0]], np.float32)
    (result,) = session.run(x_feed(half_plus_two, value), [y_name(half_plus_two)])
    session.close()
    np.testing.assert_array_equal(result, value * 0.5 + 2)
    assert recorder.values("processed_batch_size") == [4]
    assert [(v, labels) for name, v, labels in recorder.samples if name == "padding_size"] == [
        (1, {"execution_batch_size": "4"})]


def test_allowed_batch_sizes_must_end_with_max_batch_size(half_plus_two, scheduler):
    with pytest.raises(StatusError) as caught:
        session_for(half_plus_two, scheduler, max_batch_size=8, allowed_batch_sizes=(2, 4))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == ("Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; "
                                    "expected 8")


def test_variable_length_inputs_are_padded_when_asked(variable_length, scheduler):
    fetches = [variable_length.signature_defs["serving_default"].outputs[k].name for k in ("row_max", "first")]
    rows = [np.array([[1, 5, 2]], np.float32), np.array([[7, 3], [4, 9]], np.float32), np.array([[-1]], np.float32)]
    padded = session_for(variable_length, scheduler, max_batch_size=8, batch_timeout_micros=2_000_000,
                         pad_variable_length_inputs=True)
    results = concurrently([lambda r=r: padded.run(x_feed(variable_length, r), fetches) for r in rows] * 2 +
                           [lambda: padded.run(x_feed(variable_length, rows[1]), fetches)])
    padded.close()
    for value, (row_max, first) in zip(rows * 2 + [rows[1]], results, strict=True):
        np.testing.assert_array_equal(row_max, value.max(axis=1))
        np.testing.assert_array_equal(first, value[:, 0])


def test_variable_length_inputs_without_padding_fail_with_tf_servings_message(variable_length, scheduler):
    fetches = [variable_length.signature_defs["serving_default"].outputs["first"].name]
    strict = session_for(variable_length, scheduler, max_batch_size=4, batch_timeout_micros=2_000_000)
    short, long = np.ones((2, 2), np.float32), np.ones((2, 3), np.float32)
    results = concurrently([lambda: strict.run(x_feed(variable_length, short), fetches),
                            lambda: strict.run(x_feed(variable_length, long), fetches)])
    strict.close()
    assert all(isinstance(r, StatusError) for r in results)
    assert {r.code for r in results} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert results[0].message == (
        f"Tensors with name '{variable_length.signature_defs['serving_default'].inputs['x'].name}' from different "
        "tasks have different shapes and padding is turned off. Set pad_variable_length_inputs to true, or ensure "
        "that all tensors with the same name have equal dimensions starting with the first dim.")


def test_large_requests_are_split_across_batches_and_joined(half_plus_two, scheduler):
    recorder = Recorder()
    session = session_for(half_plus_two, scheduler, recorder, max_batch_size=32, enable_large_batch_splitting=True,
                          max_execution_batch_size=4, max_enqueued_batches=100)
    value = np.arange(10, dtype=np.float32).reshape(10, 1)
    (result,) = session.run(x_feed(half_plus_two, value), [y_name(half_plus_two)])
    session.close()
    np.testing.assert_array_equal(result, value * 0.5 + 2)
    assert sorted(recorder.values("processed_batch_size")) == [2, 4, 4]
    assert split_sizes(10, 3, 4) == [3, 4, 3] and split_sizes(8, 0, 4) == [4, 4] and split_sizes(2, 3, 4) == [2]


def test_task_larger_than_max_batch_size_is_refused(half_plus_two, scheduler):
    session = session_for(half_plus_two, scheduler, max_batch_size=4)
    with pytest.raises(StatusError) as caught:
        session.run(x_feed(half_plus_two, np.zeros((5, 1), np.float32)), [y_name(half_plus_two)])
    session.close()
    assert (caught.value.code, caught.value.message) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Task size 5 is larger than maximum input batch size 4")


@pytest.mark.parametrize("feeds, message", [
    ({"x": np.float32(2.0)}, "Batching Run() input tensors must have at least one dimension"),
    ({"a": np.zeros((2, 1), np.float32), "b": np.zeros((3, 1), np.float32)},
     "Batching Run() input tensors must have equal 0th-dimension size"),
    ({}, "Batching Run() must have at least one input tensor"),
])
def test_inputs_that_cannot_be_batched(half_plus_two, scheduler, feeds, message):
    session = session_for(half_plus_two, scheduler)
    with pytest.raises(StatusError) as caught:
        session.run(feeds, [y_name(half_plus_two)])
    session.close()
    assert (caught.value.code, caught.value.message) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_full_queue_is_unavailable(half_plus_two):
    scheduler = SharedBatchScheduler(1)
    release, started = threading.Event(), threading.Event()

    def gated_run(feeds, fetches):  # the real run, held until the test has filled the queue
        started.set()
        assert release.wait(WAIT)
        return half_plus_two.run_unbatched(feeds, fetches)

    session = session_for(half_plus_two, scheduler, run=gated_run, max_batch_size=2, max_enqueued_batches=1)
    fetch = [y_name(half_plus_two)]
    two = x_feed(half_plus_two, np.ones((2, 1), np.float32))
    running = []
    first = threading.Thread(target=lambda: running.append(session.run(two, fetch)))
    first.start()
    assert started.wait(WAIT)  # the only batch thread is busy with the first task
    second = threading.Thread(target=lambda: running.append(session.run(two, fetch)))
    second.start()

    queue = session._queues[(frozenset(two), frozenset(fetch))]
    for _ in range(3000):  # bounded: until the second task sits in the open batch
        if queue._batches[-1].size == 2:
            break
        threading.Event().wait(0.01)
    error = None
    try:
        session.run(x_feed(half_plus_two, np.ones((1, 1), np.float32)), fetch)
    except StatusError as caught:
        error = caught
    release.set()
    first.join(WAIT)
    second.join(WAIT)
    session.close()
    scheduler.stop()
    assert error is not None and error.code == grpc.StatusCode.UNAVAILABLE
    assert error.message == ("The batch scheduling queue to which this task was submitted is full; currently 1 "
                             "batches enqueued and max_enqueued_batches is 1")
    assert len(running) == 2


def test_output_filter_and_classify_runs_get_their_own_queues(half_plus_two, scheduler):
    session = session_for(half_plus_two, scheduler, max_batch_size=8)
    signature = half_plus_two.signature_defs["regress_x_to_y"]
    import tensorflow as tf

    examples = np.array([tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[v]))})).SerializeToString() for v in (1.0, 4.0)],
        dtype=object)
    (y,) = session.run({signature.inputs["inputs"].name: examples}, [signature.outputs["outputs"].name])
    session.close()
    np.testing.assert_array_equal(y.reshape(-1), [2.5, 4.0])


def test_closing_runs_what_is_queued_before_the_version_goes(half_plus_two, scheduler):
    # A batch that would wait a minute to fill runs at once when its version unloads.
    session = session_for(half_plus_two, scheduler, max_batch_size=64, batch_timeout_micros=60_000_000)
    value = np.array([[4.0]], np.float32)
    results = []
    caller = threading.Thread(target=lambda: results.append(session.run(x_feed(half_plus_two, value),
                                                                        [y_name(half_plus_two)])))
    caller.start()
    queue = session._queues[(frozenset(x_feed(half_plus_two, value)), frozenset([y_name(half_plus_two)]))]
    for _ in range(3000):  # bounded: until the task waits in the open batch
        if queue.pending():
            break
        threading.Event().wait(0.01)
    session.close()
    caller.join(WAIT)
    assert not caller.is_alive()
    np.testing.assert_array_equal(results[0][0], [[4.0]])


def test_a_lone_task_runs_at_once_on_its_own_thread_with_tf_servings_metrics(half_plus_two, scheduler):
    # An empty queue, a free slot and no timeout: TF Serving runs the task as a batch of one.
    recorder, threads = Recorder(), []

    def run(feeds, fetches):
        threads.append(threading.current_thread())
        return half_plus_two.run_unbatched(feeds, fetches)

    session = session_for(half_plus_two, scheduler, recorder, run=run, max_batch_size=8, batch_timeout_micros=0)
    (y,) = session.run(x_feed(half_plus_two, np.array([[4.0], [6.0]], np.float32)), [y_name(half_plus_two)])
    session.close()
    np.testing.assert_array_equal(y, [[4.0], [5.0]])
    assert threads == [threading.current_thread()]
    assert recorder.values("wrapped_run_count") == [1]
    assert recorder.values("processed_batch_size") == [2]
    assert recorder.values("input_batch_size") == [2]
    assert [(v, labels) for name, v, labels in recorder.samples if name == "padding_size"] == [
        (0, {"execution_batch_size": "2"})]
    (queuing,) = recorder.values("queuing_latency")
    assert 0 <= queuing < 10_000_000


@pytest.mark.parametrize("timeout", [0, 1000])
def test_outputs_without_the_batch_rows_fail_with_tf_servings_message(half_plus_two, scheduler, timeout):
    # Alone (timeout 0) or merged, a model whose output is not batch-major gets SplitOutputTensors' error.
    def one_row(feeds, fetches):
        return [value[:1] for value in half_plus_two.run_unbatched(feeds, fetches)]

    session = session_for(half_plus_two, scheduler, run=one_row, max_batch_size=8, batch_timeout_micros=timeout)
    with pytest.raises(StatusError) as caught:
        session.run(x_feed(half_plus_two, np.ones((3, 1), np.float32)), [y_name(half_plus_two)])
    session.close()
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.message == ("Batched output tensor's 0th dimension does not equal the sum of the 0th "
                                    "dimension sizes of the input tensors")


def test_a_failing_run_gives_its_slot_back(half_plus_two):
    # One slot: if a failed lone run kept it, the next run would wait forever.
    scheduler = SharedBatchScheduler(1)
    calls = []

    def fails_once(feeds, fetches):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return half_plus_two.run_unbatched(feeds, fetches)

    session = session_for(half_plus_two, scheduler, run=fails_once, max_batch_size=8)
    feed, fetch = x_feed(half_plus_two, np.ones((1, 1), np.float32)), [y_name(half_plus_two)]
    with pytest.raises(StatusError) as caught:
        session.run(feed, fetch)
    assert caught.value.code == grpc.StatusCode.INTERNAL and caught.value.message == "Batch processing failed: boom"
    (result,) = concurrently([lambda: session.run(feed, fetch)])
    session.close()
    scheduler.stop()
    np.testing.assert_array_equal(result[0], [[2.5]])


def test_tasks_queued_behind_a_busy_slot_run_as_one_batch_on_a_waiting_requests_thread(half_plus_two):
    scheduler = SharedBatchScheduler(1, "only")
    release, started, threads = threading.Event(), threading.Event(), []

    def gated_run(feeds, fetches):  # the first run holds the only slot until the others have queued
        threads.append(threading.current_thread())
        if len(threads) == 1:
            started.set()
            assert release.wait(WAIT)
        return half_plus_two.run_unbatched(feeds, fetches)

    recorder = Recorder()
    session = session_for(half_plus_two, scheduler, recorder, run=gated_run, max_batch_size=8)
    fetch = [y_name(half_plus_two)]
    results, callers = {}, []

    def call(index):
        callers.append(threading.current_thread())
        results[index] = session.run(x_feed(half_plus_two, np.full((1, 1), index, np.float32)), fetch)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert started.wait(WAIT)
    queued = [threading.Thread(target=call, args=(i,)) for i in (1, 2, 3)]
    for thread in queued:
        thread.start()
    queue = session._queues[(frozenset(x_feed(half_plus_two, np.ones((1, 1)))), frozenset(fetch))]
    for _ in range(3000):  # bounded: until the three tasks wait in the open batch
        if queue._batches[-1].size == 3:
            break
        threading.Event().wait(0.01)
    release.set()
    for thread in [first, *queued]:
        thread.join(WAIT)
    session.close()
    scheduler.stop()
    assert {i: r[0].tolist() for i, r in results.items()} == {i: [[i * 0.5 + 2]] for i in range(4)}
    assert recorder.values("processed_batch_size") == [1, 3]  # the three queued tasks merged into one run
    assert len(threads) == 2 and threads[1] in queued  # run by one of the waiting requests, no batch thread
    assert not any(t.name.startswith("only") for t in threads)


def test_no_more_batches_run_at_once_than_there_are_batch_threads(half_plus_two):
    # 24 threads on 2 slots, runs long enough to overlap: the alone, merged and handed-on paths all
    # take a slot, and every run gives the unbatched answer.
    scheduler = SharedBatchScheduler(2)
    lock, running, most = threading.Lock(), [0], [0]

    def counted_run(feeds, fetches):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            threading.Event().wait(0.002)
            return half_plus_two.run_unbatched(feeds, fetches)
        finally:
            with lock:
                running[0] -= 1

    session = session_for(half_plus_two, scheduler, run=counted_run, max_batch_size=32)
    fetch = [y_name(half_plus_two)]

    def many(index):
        def calls():
            return [session.run(x_feed(half_plus_two, np.full((1 + k % 3, 1), index + k, np.float32)), fetch)[0]
                    for k in range(20)]
        return calls

    results = concurrently([many(i * 100) for i in range(24)])
    session.close()
    scheduler.stop()
    for i, answers in enumerate(results):
        assert [a.tolist() for a in answers] == [[[(i * 100 + k) * 0.5 + 2]] * (1 + k % 3) for k in range(20)]
    assert most[0] == 2
