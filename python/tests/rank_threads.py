"""The Python tests' stand-in for N processes: fn(rank, communicator) on one thread per rank of an
in-process group (which works because kirzl releases the GIL while it waits)."""
import threading

import kirzl


def run_ranks(n, fn, timeout=60):
    """Runs fn(rank, comm) on n threads, each in its own GeneratorScope (as a process would draw);
    returns the results in rank order and re-raises the first error."""
    comms = kirzl.comm.make_in_process_group(n, timeout=timeout)
    results, errors = [None] * n, []

    def body(r):
        try:
            with kirzl.GeneratorScope(0):  # each rank thread draws as a process of its own would
                results[r] = fn(r, comms[r])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=body, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
