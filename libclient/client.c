/* SPDX-License-Identifier: MIT */
/*
 * The process-wide client: configuration from the environment on first use,
 * the fork handlers, shutdown at exit, and the small public calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "flusher.h"
#include "function.h"
#include "ids.h"
#include "intern.h"
#include "notes.h"
#include "ring.h"
#include "runtime-dir.h"
#include "span.h"
#include "thread.h"

struct client client_g = {
        .free_lock = PTHREAD_MUTEX_INITIALIZER,
        .flush_lock = PTHREAD_MUTEX_INITIALIZER,
        .flush_cond = PTHREAD_COND_INITIALIZER,
        .wake_fd = -1,
};

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static bool atfork_registered;

#define DEFAULT_BUFFER_BYTES (16u << 20)
#define DEFAULT_EXIT_TIMEOUT_MS 2000
/* FERRET_ON_FULL=block without a time: a thread waits this long for room,
 * then drops (a daemon that has gone must not hang the program). */
#define DEFAULT_FULL_WAIT_MS 10000

static uint64_t parse_size(const char *s, uint64_t fallback)
{
        char *end;
        if (!s || !*s)
                return fallback;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s)
                return fallback;
        switch (*end) {
        case 'k': case 'K': v <<= 10; end++; break;
        case 'm': case 'M': v <<= 20; end++; break;
        case 'g': case 'G': v <<= 30; end++; break;
        }
        return *end ? fallback : v;
}

/* Says once, on stderr, why spans do not go to a directory: the one line
 * a library that never fails its program may write. */
static void warn_untrusted(const char *why)
{
        static _Atomic bool said;
        if (!atomic_exchange(&said, true))
                fprintf(stderr, "ferret: not sending spans there: %s\n", why);
}

/* The runtime directory, as runtime-dir.h decides for every part of
 * Ferret. A directory someone else could have made or may write is never
 * used: false then, and nothing is traced. */
static bool pick_runtime_dir(char *buf, size_t size)
{
        char why[PATH_MAX + 64];
        int r = runtime_find(NULL, buf, size, why, sizeof(why));
        if (r == -EPERM)
                warn_untrusted(why);
        return r == 0;
}

/* Whether a daemon that takes spans listens in @dir now. A check that
 * cannot be made counts as a daemon, so that tracing stays on. */
static bool daemon_listens(const char *dir)
{
        char why[PATH_MAX + 64];
        int r = runtime_probe(dir, RUNTIME_INGEST_SOCKET, why, sizeof(why));
        return r != -ENOENT && r != -ECONNREFUSED && r != -EACCES && r != -EPERM;
}

static void default_run_id(char *buf, size_t size)
{
        time_t now = time(NULL);
        struct tm tm;
        char stamp[32];
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
        snprintf(buf, size, "%s-%s-%d", program_invocation_short_name, stamp, (int)getpid());
}

/* The arguments of this process, joined by spaces and cut to @size: what
 * OTLP calls process.command_line. Empty when /proc cannot say. */
static void read_command_line(char *buf, size_t size)
{
        buf[0] = '\0';
        int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        ssize_t n = read(fd, buf, size - 1);
        close(fd);
        if (n <= 0)
                return;
        while (n > 0 && buf[n - 1] == '\0')
                n--;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        buf[n] = '\0';
}

static void read_identity(void)
{
        ssize_t n = readlink("/proc/self/exe", client_g.executable, sizeof(client_g.executable) - 1);
        client_g.executable[n > 0 ? n : 0] = '\0';
        read_command_line(client_g.command_line, sizeof(client_g.command_line));
        if (gethostname(client_g.hostname, sizeof(client_g.hostname)) < 0)
                client_g.hostname[0] = '\0';
        client_g.hostname[sizeof(client_g.hostname) - 1] = '\0';
        client_g.pid = getpid();
        client_g.start_wall_ns = clock_wall_ns();
        client_g.client_id = ids_random64();
        client_g.id_base = ids_random64();
        client_g.path_salt = ids_random64();
        atomic_store(&client_g.id_counter, 0);
}

/* Flush deadlines are on CLOCK_MONOTONIC, immune to wall-clock steps. */
static void init_flush_cond(void)
{
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&client_g.flush_cond, &attr);
        pthread_condattr_destroy(&attr);
}

static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

static int client_init(void)
{
        /* FERRET_DISABLE=absent: off when no daemon listens as the client
         * starts, so that a program run without one pays a branch a span
         * instead of recording spans that can only be dropped. */
        const char *disable = getenv("FERRET_DISABLE");
        bool if_absent = disable && strcmp(disable, "absent") == 0;
        if (disable && *disable && strcmp(disable, "0") != 0 && !if_absent) {
                atomic_store(&client_g.state, CLIENT_DISABLED);
                client_set_off(1);
                return -ECANCELED;
        }

        if (!pick_runtime_dir(client_g.runtime_dir, sizeof(client_g.runtime_dir)) ||
            (if_absent && !daemon_listens(client_g.runtime_dir))) {
                atomic_store(&client_g.state, CLIENT_DISABLED);
                client_set_off(1);
                return -ECANCELED;
        }
        const char *run = getenv("FERRET_RUN_ID");
        if (run && *run)
                snprintf(client_g.run_id, sizeof(client_g.run_id), "%s", run);
        else
                default_run_id(client_g.run_id, sizeof(client_g.run_id));
        ferret_ctx_t root = { 0 };
        if (ferret_ctx_parse(getenv("FERRET_TRACEPARENT"), &root) < 0)
                root = (ferret_ctx_t){ 0 };
        span_set_root_parent(root, ids_tracestate_path(getenv("FERRET_TRACESTATE"), root));

        client_g.buffer_bytes = parse_size(getenv("FERRET_BUFFER_SIZE"), DEFAULT_BUFFER_BYTES);
        client_g.exit_timeout_ms = (int)parse_size(getenv("FERRET_EXIT_TIMEOUT_MS"), DEFAULT_EXIT_TIMEOUT_MS);
        const char *observer = getenv("FERRET_OBSERVER");
        client_g.observer = observer && strcmp(observer, "1") == 0;
        const char *on_full = getenv("FERRET_ON_FULL");
        if (on_full && strcmp(on_full, "block") == 0)
                client_g.full_wait_ms = DEFAULT_FULL_WAIT_MS;
        else if (on_full && strncmp(on_full, "block:", 6) == 0)
                client_g.full_wait_ms = (int)parse_size(on_full + 6, 0);
        read_identity();
        clock_init();
        ring_detect_cpu();
        func_configure();

        init_flush_cond();
        int r = -pthread_key_create(&client_g.thread_key, thread_state_release);
        if (r < 0)
                goto fail;
        client_g.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (client_g.wake_fd < 0) {
                r = -errno;
                goto fail;
        }
        if (!atfork_registered) {
                pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
                atfork_registered = true;
        }
        r = flusher_start();
        if (r < 0)
                goto fail;
        atomic_store(&client_g.state, CLIENT_READY);
        return 0;

fail:
        /* Tracing off rather than a half-working client. */
        atomic_store(&client_g.state, CLIENT_DISABLED);
        client_set_off(1);
        return r;
}

/* Set while this thread holds init_lock: a signal handler that traces
 * during start-up gets no span instead of waiting for itself forever. */
static __thread bool starting __attribute__((tls_model("initial-exec")));

int client_start_slow(void)
{
        int r = 0;
        if (starting) {
                /* A span lost, but counted: reported with the first batch. */
                atomic_fetch_add(&client_g.dropped_global, 1);
                return -EAGAIN;
        }
        starting = true;
        atomic_signal_fence(memory_order_seq_cst);
        pthread_mutex_lock(&init_lock);
        switch (atomic_load(&client_g.state)) {
        case CLIENT_UNINIT:
                r = client_init();
                break;
        case CLIENT_RESTART:
                r = flusher_start();
                atomic_store(&client_g.state, r == 0 ? CLIENT_READY : CLIENT_DISABLED);
                client_set_off(r < 0);
                break;
        case CLIENT_READY:
                break;
        default:
                r = -ECANCELED;
        }
        pthread_mutex_unlock(&init_lock);
        atomic_signal_fence(memory_order_seq_cst);
        starting = false;
        return r;
}

/* fork(): hold every lock across it so the child's copies are consistent,
 * then give the child a client of its own. */
static void atfork_prepare(void)
{
        pthread_mutex_lock(&init_lock);
        pthread_mutex_lock(&client_g.free_lock);
        pthread_mutex_lock(&client_g.flush_lock);
        intern_before_fork();
}

static void atfork_parent(void)
{
        intern_after_fork(false);
        pthread_mutex_unlock(&client_g.flush_lock);
        pthread_mutex_unlock(&client_g.free_lock);
        pthread_mutex_unlock(&init_lock);
}

static void atfork_child(void)
{
        intern_after_fork(true);
        pthread_mutex_init(&init_lock, NULL);
        pthread_mutex_init(&client_g.free_lock, NULL);
        pthread_mutex_init(&client_g.flush_lock, NULL);
        init_flush_cond();

        int state = atomic_load(&client_g.state);
        if (state != CLIENT_READY && state != CLIENT_RESTART)
                return;

        ferret_ctx_t at_fork = ferret_current();
        if (ferret_ctx_is_valid(at_fork))
                span_set_root_parent(at_fork, span_path_of(at_fork));
        read_identity();
        thread_states_after_fork_child();
        notes_after_fork_child();
        flusher_after_fork_child();

        /* The eventfd is shared with the parent; the child needs its own. */
        if (client_g.wake_fd >= 0)
                close(client_g.wake_fd);
        client_g.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        client_g.flush_requested = client_g.flush_done = 0;
        client_g.stop_requested = false;
        atomic_store(&client_g.dropped_global, 0);
        atomic_store(&client_g.dropped_sending, 0);
        atomic_store(&client_g.sent_spans, 0);
        atomic_store(&client_g.sent_batches, 0);
        atomic_store(&client_g.state, client_g.wake_fd >= 0 ? CLIENT_RESTART : CLIENT_DISABLED);
        client_set_off(client_g.wake_fd < 0);
}

int ferret_flush(int timeout_ms)
{
        if (client_start_slow() < 0)
                return -ECANCELED;
        struct thread_state *ts = tls_state;
        span_write_lost(ts);
        int r = flusher_flush(timeout_ms);
        if (ts && ts->n_lost) {
                /* The ring was full: now it is not. */
                span_write_lost(ts);
                r = flusher_flush(timeout_ms);
        }
        return r;
}

void ferret_shutdown(void)
{
        if (starting)
                return;
        starting = true;
        atomic_signal_fence(memory_order_seq_cst);
        pthread_mutex_lock(&init_lock);
        client_set_off(1);
        if (atomic_load(&client_g.state) == CLIENT_READY) {
                /* The calling thread's counted calls, before the last batch
                 * (other threads' went when they exited). */
                func_thread_exit(tls_state);
                span_write_lost(tls_state);
                if (tls_state && tls_state->n_lost) {
                        /* The ring was full: room first, then say which
                         * calls' records were lost. */
                        flusher_flush(client_g.exit_timeout_ms);
                        span_write_lost(tls_state);
                }
                atomic_store(&client_g.state, CLIENT_SHUTDOWN);
                /* Spans ended before this point are in the rings; spans that
                 * other threads end from now on are dropped. */
                flusher_stop(client_g.exit_timeout_ms);
        } else if (atomic_load(&client_g.state) != CLIENT_DISABLED)
                atomic_store(&client_g.state, CLIENT_SHUTDOWN);
        pthread_mutex_unlock(&init_lock);
        atomic_signal_fence(memory_order_seq_cst);
        starting = false;
}

__attribute__((destructor)) static void client_at_exit(void)
{
        ferret_shutdown();
}

void ferret_set_default_parent(ferret_ctx_t parent)
{
        if (client_start_slow() == 0)
                span_set_root_parent(parent, span_path_of(parent));
}

bool ferret_enabled(void)
{
        return client_start_slow() == 0;
}

const char *ferret_run_id(void)
{
        client_start_slow();
        return client_g.run_id;
}

/* The caller's ferret_stats_t is as large as the header it was compiled
 * with says (its first field): it gets the counters that fit, so that the
 * structure can grow at its end without breaking a program built with an
 * older header, nor one built with a newer header and run with this
 * library (its size then says which fields it got). */
int ferret_get_stats(ferret_stats_t *ret)
{
        if (!ret || ret->size < FERRET_STATS_SIZE_V1)
                return -EINVAL;
        ferret_stats_t s = { 0 };
        for (struct thread_state *ts = atomic_load(&client_g.all_states); ts; ts = ts->next) {
                s.recorded += atomic_load_explicit(&ts->recorded, memory_order_relaxed);
                s.dropped += atomic_load_explicit(&ts->dropped, memory_order_relaxed);
        }
        s.dropped += atomic_load(&client_g.dropped_global) + atomic_load(&client_g.dropped_sending);
        s.sent = atomic_load(&client_g.sent_spans);
        s.batches = atomic_load(&client_g.sent_batches);
        s.size = ret->size < sizeof(s) ? ret->size : sizeof(s);
        memcpy(ret, &s, s.size);
        return 0;
}

const char *ferret_strerror(int error)
{
        switch (error) {
        case 0: return "success";
        case -ECONNREFUSED: return "no ferretd is listening";
        case -ETIMEDOUT: return "ferretd did not answer in time";
        case -ECANCELED: return "tracing is disabled or shut down";
        case -ENODATA: return "some spans were dropped";
        case -EPROTO: return "malformed message";
        default: return strerror(error < 0 ? -error : error);
        }
}
