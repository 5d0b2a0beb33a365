/* SPDX-License-Identifier: MIT */
/*
 * The README's function-tracing example: a program that knows nothing of
 * Ferret. Built with -finstrument-functions, `ferret run` records a span per
 * call of fib() and main().
 */
#include <stdio.h>
#include <stdlib.h>

static int fib(int n)
{
        return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(int argc, char **argv)
{
        int n = argc > 1 ? atoi(argv[1]) : 20;
        printf("fib(%d) = %d\n", n, fib(n));
        return 0;
}
