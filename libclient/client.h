/* SPDX-License-Identifier: MIT */
/*
 * The process-wide client (client.c): its state, its configuration from
 * the environment, its thread states and the flusher's requests. Nothing
 * of the library is exported but the API (the version script exports
 * ferret_* only).
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ferret.h"

/* Global client state; the hot path tests it against READY in one branch. */
enum client_state {
        CLIENT_UNINIT = 0,
        CLIENT_READY,
        CLIENT_DISABLED,
        CLIENT_SHUTDOWN,
        CLIENT_RESTART,               /* a forked child that must start its flusher */
};

struct thread_state;

struct client {
        _Atomic int state;
        pid_t pid;
        uint64_t client_id;
        uint64_t id_base;                    /* span ids: id_base + counter */
        _Atomic uint64_t id_counter;
        ferret_ctx_t root_parent;            /* FERRET_TRACEPARENT, or the span open at fork() */
        uint64_t root_path;                  /* its call path (FERRET_TRACESTATE), PATH_NONE if none */
        uint64_t path_salt;                  /* random: this process's keys of names it numbers */

        /* Configuration, read once from the environment. */
        char runtime_dir[256];
        char run_id[256];
        char executable[512];
        char command_line[1024];      /* /proc/self/cmdline, arguments joined by spaces */
        char hostname[256];
        uint64_t start_wall_ns;
        uint64_t buffer_bytes;
        int exit_timeout_ms;
        int full_wait_ms;                    /* FERRET_ON_FULL=block:MS, else 0 (drop) */
        bool observer;                       /* FERRET_OBSERVER=1: ferret run's own client */

        /* Thread states. */
        _Atomic(struct thread_state *) all_states;
        pthread_mutex_t free_lock;
        struct thread_state *free_states;
        _Atomic uint64_t allocated_bytes;
        _Atomic uint64_t dropped_global;     /* spans lost before reaching a ring */
        _Atomic uint64_t dropped_sending;    /* spans lost by the flusher (queue full) */
        pthread_key_t thread_key;

        /* The flusher thread and the requests it serves. */
        pthread_t flusher;
        bool flusher_running;
        int wake_fd;                         /* eventfd that wakes the flusher */
        pthread_mutex_t flush_lock;
        pthread_cond_t flush_cond;
        uint64_t flush_requested;            /* generation numbers, under flush_lock */
        uint64_t flush_done;
        int flush_result;
        bool stop_requested;
        uint64_t flush_deadline_ns;          /* CLOCK_MONOTONIC */

        /* Counters published by the flusher. */
        _Atomic uint64_t sent_spans;
        _Atomic uint64_t sent_batches;
};

extern struct client client_g;
extern volatile int ferret__off;
/* ferret__off is read by every thread without a lock (the header's macros
 * load it relaxed): it only lets them skip a call that would find the state
 * anyway, so relaxed stores suffice, but they must be atomic ones. */
static inline void client_set_off(int off)
{
        __atomic_store_n(&ferret__off, off, __ATOMIC_RELAXED);
}

/* Starts the client on first use (configuration, thread, sockets): 0, or
 * a negative errno when tracing is off. */
int client_start_slow(void);
int client_ensure_flusher(void);
