/* SPDX-License-Identifier: MIT */
/* A shared library built with -finstrument-functions, for the function
 * tracing tests: an exported function and a static one. */
#include "funcs.h"

static __attribute__((noinline)) int lib_helper(int n)
{
        volatile int x = 0;
        for (int i = 0; i < n * 1000; i++)
                x += i;
        return x & 1;
}

int lib_compute(int n)
{
        return lib_helper(n) + 1;
}
