# SPDX-License-Identifier: MIT
"""A call-heavy Python program for bench/python-overhead: recursive fib and
many small methods. It times its own work (not the interpreter's start) and
prints one JSON line: the exact number of Python function calls it made in
the timed part and the nanoseconds they took."""

import json
import sys
import time


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def fib_calls(n):
    """Calls fib(n) makes: 1 for itself plus those of its two halves."""
    a, b = 1, 1  # calls of fib(0), fib(1)
    for _ in range(n - 1):
        a, b = b, a + b + 1
    return b if n >= 1 else a


class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        self.n += k

    def get(self):
        return self.n

    def step(self, k):
        self.add(k)
        return self.get()


def methods(rounds):
    c = Counter()                 # 1 call: __init__
    for i in range(rounds):
        c.step(i)                 # 3 calls: step, add, get
    return c.get()                # 1 call


def workload(fib_n, rounds):
    fib(fib_n)
    methods(rounds)


def main():
    fib_n = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    calls = 1 + fib_calls(fib_n) + 1 + 1 + 3 * rounds + 1  # workload, fib, methods, __init__, steps, get
    t0 = time.perf_counter_ns()
    workload(fib_n, rounds)
    ns = time.perf_counter_ns() - t0
    print(json.dumps({"calls": calls, "ns": ns}))


if __name__ == "__main__":
    main()
