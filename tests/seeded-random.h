/* SPDX-License-Identifier: MIT */
/*
 * Pseudo-random numbers from a seed the test chooses: the same sequence on
 * every run and every libc, so that a failing order of spans is the same
 * order when the test runs again. Not rand(): its state is shared by the
 * threads that draw from it.
 */
#pragma once

/* The next number of the sequence in @state, from 0 to 65535. */
static inline unsigned next_random(unsigned *state)
{
        *state = *state * 1103515245u + 12345u;
        return *state >> 16;
}
