/* SPDX-License-Identifier: MIT */
/*
 * An oracle for function tracing, written without anything of Ferret's:
 * preloaded into a program built with -finstrument-functions, it counts
 * every __cyg_profile_func_enter by (function, call site) and writes the
 * counts to $CYG_COUNTER_OUT at exit, one "function call-site count" line
 * each, in hex. The call site is the return address in the caller, so the
 * caller comes from the symbol table, not from a stack of our own: a
 * longjmp cannot confuse it.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS (1u << 18)

static struct {
        uintptr_t fn, site;
        unsigned long count;
} table[SLOTS];
static atomic_flag lock = ATOMIC_FLAG_INIT;

/* The compiler emits the calls; no header declares them. */
void __cyg_profile_func_enter(void *fn, void *site);
void __cyg_profile_func_exit(void *fn, void *site);

__attribute__((no_instrument_function)) void __cyg_profile_func_enter(void *fn, void *site)
{
        uintptr_t f = (uintptr_t)fn, s = (uintptr_t)site;
        size_t i = (size_t)((f * 31 + s) >> 2) & (SLOTS - 1);
        while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
                ;
        while (table[i].fn && (table[i].fn != f || table[i].site != s))
                i = (i + 1) & (SLOTS - 1);
        table[i].fn = f;
        table[i].site = s;
        table[i].count++;
        atomic_flag_clear_explicit(&lock, memory_order_release);
}

__attribute__((no_instrument_function)) void __cyg_profile_func_exit(void *fn, void *site)
{
        (void)fn;
        (void)site;
}

__attribute__((destructor, no_instrument_function)) static void dump(void)
{
        const char *path = getenv("CYG_COUNTER_OUT");
        FILE *f = path ? fopen(path, "w") : NULL;
        if (!f)
                return;
        for (size_t i = 0; i < SLOTS; i++)
                if (table[i].fn)
                        fprintf(f, "%lx %lx %lu\n", (unsigned long)table[i].fn, (unsigned long)table[i].site,
                                table[i].count);
        fclose(f);
}
