/* SPDX-License-Identifier: MIT */
/*
 * ferretd: stores the spans that Ferret clients send and answers queries
 * about them. main() only parses options and wires the parts together: the
 * store (store.c), the ingest thread (ingest.c) and the query thread
 * (query.c); it then waits for SIGTERM or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "daemon.h"
#include "forward.h"
#include "ingest.h"
#include "otlp-in.h"
#include "otlp-listen.h"
#include "otlp-post.h"
#include "log.h"
#include "buckets.h"
#include "paths.h"
#include "peers.h"
#include "query.h"
#include "runtime.h"
#include "runtime-dir.h"
#include "settings.h"
#include "store.h"
#include "wire.h"

#define STATUS_EVERY_S 5

#define DEFAULT_CONFIG "/etc/ferret/ferretd.conf"
/* After SIGTERM, what is stored is forwarded for at most this long; the
 * rest waits in the database for the next start. */
#define FORWARD_STOP_GRACE_MS 2000

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: ferretd [OPTION]...\n"
                "Store the spans Ferret clients send and answer the ferret command's queries.\n\n"
                "  -d, --db DIR            database directory (default: /var/lib/ferret/db as root,\n"
                "                          else $XDG_DATA_HOME/ferret/db)\n"
                "  -r, --runtime-dir DIR   where the sockets live (default: /run/ferret as root,\n"
                "                          else $XDG_RUNTIME_DIR/ferret, or /tmp/ferret-UID without it)\n"
                "  -l, --log-level LEVEL   error, warning, notice, info (default) or debug\n"
                "      --retain DAYS       remove runs whose last span is older than DAYS\n"
                "      --max-size SIZE     keep the database under SIZE (e.g. 500M, 20G) by removing\n"
                "                          the oldest runs, then the oldest spans of the last run\n"
                "      --max-clients N     connections served at once on each socket (default %u);\n"
                "                          one more is cut and counted, and its client retries\n"
                "      --max-paths N       distinct call paths a run keeps statistics of (default\n"
                "                          %u); new ones past it are counted as \"(other paths)\"\n"
                "      --bucket-seconds N  width of the time buckets that answer --since and --until\n"
                "                          for new runs (default %u)\n"
                "      --forward URL       send every span stored to an OpenTelemetry collector,\n"
                "                          OTLP/HTTP protobuf (http://HOST:4318; /v1/traces is added)\n"
                "      --forward-service NAME  service.name of what is forwarded (default: each\n"
                "                          process's program)\n"
                "      --forward-backlog N spans stored and not yet forwarded, at most (default %u);\n"
                "                          past it the oldest are dropped and counted\n"
                "      --otlp-listen ADDR:PORT  receive OTLP/HTTP (POST /v1/traces, protobuf or JSON)\n"
                "                          from OpenTelemetry SDKs, e.g. 127.0.0.1:4318; loopback only\n"
                "      --otlp-allow-remote let --otlp-listen take an address that is not loopback\n"
                "                          (OTLP has no authentication: anyone who reaches it can write)\n"
                "      --read-only         serve queries on an existing database, accept no spans\n"
                "      --exit-with-parent  stop (as on SIGTERM) when the process that started\n"
                "                          ferretd ends: for private daemons of ferret run\n"
                "  -c, --config FILE       settings file, \"key = value\" lines with these options'\n"
                "                          names (default: " DEFAULT_CONFIG " if it exists)\n"
                "  -h, --help              show this help\n"
                "  -V, --version           show the version\n",
                PEERS_MAX_DEFAULT, PATHS_MAX_DEFAULT, BUCKET_SECONDS_DEFAULT, FORWARD_BACKLOG_DEFAULT);
}

/* Returns 1 to go on, 0 to exit with success, or -EINVAL. The file comes
 * first and the command line overrides it, so the options are read twice:
 * once for --config, once for the rest. */
static int parse_options(int argc, char **argv, struct settings *o)
{
        enum { OPT_READ_ONLY = 0x100, OPT_RETAIN, OPT_MAX_SIZE, OPT_EXIT_WITH_PARENT, OPT_MAX_CLIENTS, OPT_MAX_PATHS,
               OPT_BUCKET_SECONDS, OPT_FORWARD, OPT_FORWARD_SERVICE, OPT_FORWARD_BACKLOG, OPT_OTLP_LISTEN,
               OPT_OTLP_ALLOW_REMOTE };
        static const struct option longopts[] = {
                { "db", required_argument, NULL, 'd' },
                { "runtime-dir", required_argument, NULL, 'r' },
                { "log-level", required_argument, NULL, 'l' },
                { "retain", required_argument, NULL, OPT_RETAIN },
                { "max-size", required_argument, NULL, OPT_MAX_SIZE },
                { "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
                { "max-paths", required_argument, NULL, OPT_MAX_PATHS },
                { "bucket-seconds", required_argument, NULL, OPT_BUCKET_SECONDS },
                { "forward", required_argument, NULL, OPT_FORWARD },
                { "forward-service", required_argument, NULL, OPT_FORWARD_SERVICE },
                { "forward-backlog", required_argument, NULL, OPT_FORWARD_BACKLOG },
                { "otlp-listen", required_argument, NULL, OPT_OTLP_LISTEN },
                { "otlp-allow-remote", no_argument, NULL, OPT_OTLP_ALLOW_REMOTE },
                { "read-only", no_argument, NULL, OPT_READ_ONLY },
                { "exit-with-parent", no_argument, NULL, OPT_EXIT_WITH_PARENT },
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        static const char shortopts[] = ":d:r:l:c:hV";
        const char *config = NULL;
        int c, r;

        runtime_default_db(o->db, sizeof(o->db));
        runtime_listen_dir(o->runtime_dir, sizeof(o->runtime_dir));
        o->log_level = LOG_INFO;
        o->max_clients = PEERS_MAX_DEFAULT;
        o->max_paths = PATHS_MAX_DEFAULT;
        o->bucket_seconds = BUCKET_SECONDS_DEFAULT;
        o->forward_backlog = FORWARD_BACKLOG_DEFAULT;
        opterr = 0;
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
                if (c == 'c')
                        config = optarg;
                else if (c == 'h') {
                        usage(stdout);
                        return 0;
                } else if (c == 'V') {
                        printf("ferretd %s\n", FERRET_VERSION);
                        return 0;
                } else if (c == ':')
                        return log_error_errno(EINVAL, "Option '%s' needs a value (see ferretd --help)", argv[optind - 1]);
                else if (c == '?')
                        return log_error_errno(EINVAL, "Unknown option '%s' (see ferretd --help)", argv[optind - 1]);
        }
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument '%s' (see ferretd --help)", argv[optind]);
        r = settings_load_file(o, config ? config : DEFAULT_CONFIG);
        if (r == -ENOENT && config)
                return log_error_errno(EINVAL, "No configuration file at %s", config);
        if (r < 0 && r != -ENOENT)
                return -EINVAL;

        optind = 0;     /* glibc: 0 re-initialises getopt */
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
                const char *key = NULL;
                switch (c) {
                case 'd': key = "db"; break;
                case 'r': key = "runtime-dir"; break;
                case 'l': key = "log-level"; break;
                case OPT_RETAIN: key = "retain-days"; break;
                case OPT_MAX_SIZE: key = "max-size"; break;
                case OPT_MAX_CLIENTS: key = "max-clients"; break;
                case OPT_MAX_PATHS: key = "max-paths"; break;
                case OPT_BUCKET_SECONDS: key = "bucket-seconds"; break;
                case OPT_FORWARD: key = "forward"; break;
                case OPT_FORWARD_SERVICE: key = "forward-service"; break;
                case OPT_FORWARD_BACKLOG: key = "forward-backlog"; break;
                case OPT_OTLP_LISTEN: key = "otlp-listen"; break;
                case OPT_OTLP_ALLOW_REMOTE: o->otlp_allow_remote = true; break;
                case OPT_READ_ONLY: o->read_only = true; break;
                case OPT_EXIT_WITH_PARENT: o->exit_with_parent = true; break;
                }
                if (key && settings_set(o, key, optarg, "") < 0)
                        return -EINVAL;
        }
        log_set_level(o->log_level);
        return 1;
}

/* Replies queued for a client that does not read them; past this ROUTER
 * drops them (a client waits for one reply at a time). */
#define REPLIES_QUEUED 8

/* A listening socket whose every connection holds at most
 * (PEER_QUEUE_MESSAGES + 1) messages of @max_message bytes, and whose
 * connections past @peers->max are cut. */
static void *bind_socket(void *ctx, int type, const char *dir, const char *name, int64_t max_message,
                         struct peers *peers, unsigned max_peers)
{
        char path[PATH_MAX], endpoint[PATH_MAX + 8];
        int hwm = PEER_QUEUE_MESSAGES, replies = REPLIES_QUEUED, zero = 0;
        if (runtime_socket_path(dir, name, path, sizeof(path)) < 0 ||
            runtime_endpoint(dir, name, endpoint, sizeof(endpoint)) < 0) {
                errno = ENAMETOOLONG;
                return NULL;
        }
        /* We hold the directory's lock, so a socket file left here is stale. */
        unlink(path);
        void *s = zmq_socket(ctx, type);
        if (!s)
                return NULL;
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(s, ZMQ_SNDHWM, &replies, sizeof(replies));
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_message, sizeof(max_message));
        int r = peers_watch(peers, ctx, s, path, max_peers, &counters_g.refused_connections);
        if (r < 0 || zmq_bind(s, endpoint) < 0) {
                int saved = r < 0 ? -r : errno;
                zmq_close(s);
                peers_free(peers);
                errno = saved;
                return NULL;
        }
        return s;
}

/* Each client holds a descriptor on each socket: let ferretd open as many
 * as it may, and serve no more clients than that allows. */
static unsigned clients_within_descriptors(unsigned wanted)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return wanted;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
                getrlimit(RLIMIT_NOFILE, &rl);
        }
        /* RocksDB's files, ZeroMQ's own pipes, the runtime directory. */
        const rlim_t reserved = 512;
        rlim_t room = rl.rlim_cur > 2 * reserved ? (rl.rlim_cur - reserved) / 2 : reserved / 2;
        if (room >= wanted)
                return wanted;
        log_warning("Serving %u clients at once, not %u: ferretd may open %llu descriptors", (unsigned)room, wanted,
                    (unsigned long long)rl.rlim_cur);
        return (unsigned)room;
}

/* Forwarding and the OTLP receiver need the network, which systemd's
 * RestrictAddressFamilies=AF_UNIX (ferretd.service) takes away: said
 * plainly at start rather than as every request failing. */
static int check_network(const char *what)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
                close(fd);
                return 0;
        }
        if (errno == EAFNOSUPPORT)
                return log_error_errno(EAFNOSUPPORT, "%s needs the network, which this ferretd may not use (systemd's "
                                       "RestrictAddressFamilies): allow AF_INET and AF_INET6 in a drop-in "
                                       "(see README, OpenTelemetry)", what);
        return 0;
}

/* Socket files outlive their sockets; a client that finds one would try
 * to connect to nobody. */
static void remove_sockets(const char *dir)
{
        char path[PATH_MAX];
        if (runtime_socket_path(dir, RUNTIME_INGEST_SOCKET, path, sizeof(path)) == 0)
                unlink(path);
        if (runtime_socket_path(dir, RUNTIME_QUERY_SOCKET, path, sizeof(path)) == 0)
                unlink(path);
}

static int wait_for_stop(void)
{
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        for (;;) {
                struct timespec every = { STATUS_EVERY_S, 0 };
                int sig = sigtimedwait(&set, NULL, &every);
                if (sig == SIGTERM || sig == SIGINT)
                        return sig;
                sd_notifyf(0, "STATUS=%llu spans stored, %llu rejected messages, %llu spans dropped by clients",
                           (unsigned long long)atomic_load(&counters_g.stored_spans),
                           (unsigned long long)atomic_load(&counters_g.rejected_messages),
                           (unsigned long long)atomic_load(&counters_g.dropped_by_clients));
        }
}

int main(int argc, char **argv)
{
        struct settings o = { 0 };
        struct store *store = NULL;
        struct ingest *ingest = NULL;
        struct query *query = NULL;
        struct forwarder *forwarder = NULL;
        struct otlp_in *otlp_in = NULL;
        struct otlp_listen *otlp_listen = NULL;
        struct acks acks;
        struct peers ingest_peers = { 0 }, query_peers = { 0 };
        void *ctx = NULL, *pull = NULL, *router = NULL;
        int lock_fd = -1, r;

        r = parse_options(argc, argv, &o);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        /* libcurl's global set-up, before any thread. */
        otlp_post_global_init();

        /* Sockets and files: owner and group (ferret) only. */
        umask(0007);
        counters_g.start_mono_ns = now_mono_ns();

        /* Signals are taken by sigtimedwait() below; every thread created
         * from here on inherits the block. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &set, NULL);

        /* A private daemon must not outlive the command that owns it, even
         * if that command is killed: the kernel sends us SIGTERM then. */
        if (o.exit_with_parent) {
                pid_t parent = getppid();
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) {
                        log_error("The process that started ferretd is gone");
                        return 1;
                }
        }

        lock_fd = runtime_lock(o.runtime_dir);
        if (lock_fd < 0)
                goto fail;
        if (!o.read_only) {
                r = runtime_mkdir_parents(o.db, 0755);
                if (r < 0) {
                        log_error_errno(r, "Failed to create the parents of %s: %m", o.db);
                        goto fail;
                }
        }
        r = store_open(o.db, o.read_only, &store);
        if ((r == -ENOSPC || (r < 0 && r != -EBUSY && r != -ENOENT && store_path_disk_full(o.db))) && !o.read_only) {
                /* RocksDB writes as it opens; on a full disk it can still be
                 * read. Spans wait for a ferretd restarted with space. */
                log_error("Disk full: serving %s read-only, taking no spans; restart ferretd once there is space",
                          o.db);
                o.read_only = true;
                atomic_store(&counters_g.disk_full, true);
                r = store_open(o.db, true, &store);
        }
        if (r == -EBUSY) {
                log_error("Database %s is in use by another process", o.db);
                goto fail;
        }
        if (r == -ENOENT) {
                log_error("No database at %s", o.db);
                goto fail;
        }
        if (r < 0)
                goto fail;
        if (acks_init(&acks) < 0) {
                log_error_errno(errno, "Failed to set up: %m");
                goto fail;
        }

        ctx = zmq_ctx_new();
        if (!ctx) {
                log_error_errno(errno, "Failed to create a ZeroMQ context: %m");
                goto fail;
        }
        unsigned max_clients = clients_within_descriptors(o.max_clients);
        paths_set_max(o.max_paths);
        buckets_set_width(o.bucket_seconds);
        router = bind_socket(ctx, ZMQ_ROUTER, o.runtime_dir, RUNTIME_QUERY_SOCKET, WIRE_MAX_REQUEST_BYTES, &query_peers,
                             max_clients);
        if (!router) {
                log_error("Failed to listen on %s/%s: %s", o.runtime_dir, RUNTIME_QUERY_SOCKET, zmq_strerror(errno));
                goto fail;
        }
        if (!o.read_only) {
                pull = bind_socket(ctx, ZMQ_PULL, o.runtime_dir, RUNTIME_INGEST_SOCKET, WIRE_MAX_MESSAGE_BYTES,
                                   &ingest_peers, max_clients);
                if (!pull) {
                        log_error("Failed to listen on %s/%s: %s", o.runtime_dir, RUNTIME_INGEST_SOCKET, zmq_strerror(errno));
                        goto fail;
                }
                if ((o.forward_url[0] && check_network("--forward") < 0) ||
                    (o.otlp_listen[0] && check_network("--otlp-listen") < 0))
                        goto fail;
                if (o.forward_url[0]) {
                        struct forward_config fc = { .url = o.forward_url, .backlog_spans = o.forward_backlog,
                                                     .service = o.forward_service[0] ? o.forward_service : NULL };
                        r = forward_start(store, &fc, &forwarder);
                        if (r < 0) {
                                log_error_errno(r, "Failed to start forwarding to %s: %m", o.forward_url);
                                goto fail;
                        }
                }
                r = ingest_start(store, &acks, pull, &ingest_peers, &o.retention, forwarder, &ingest);
                if (r < 0) {
                        log_error_errno(r, "Failed to start the ingest thread: %m");
                        goto fail;
                }
                pull = NULL;
                if (o.otlp_listen[0]) {
                        char endpoint[PATH_MAX + 32];
                        runtime_endpoint(o.runtime_dir, RUNTIME_INGEST_SOCKET, endpoint, sizeof(endpoint));
                        r = otlp_in_new(ctx, endpoint, &acks, ingest, &otlp_in);
                        if (r < 0) {
                                log_error_errno(r, "Failed to set up the OTLP receiver: %m");
                                goto fail;
                        }
                        if (otlp_listen_start(o.otlp_listen, o.otlp_allow_remote, otlp_in, &otlp_listen) < 0)
                                goto fail;
                }
        }
        struct query_config qc = { .runtime_dir = o.runtime_dir, .retention = o.retention, .peers = &query_peers,
                                   .forwarder = forwarder, .otlp_listen = otlp_listen ? otlp_listen_address(otlp_listen) : NULL };
        r = query_start(store, &acks, ingest, router, &qc, &query);
        if (r < 0) {
                log_error_errno(r, "Failed to start the query thread: %m");
                goto fail;
        }
        router = NULL;

        log_info("Ready to accept connections on %s (database %s%s)", o.runtime_dir, o.db,
                 o.read_only ? ", read-only" : "");
        sd_notifyf(0, "READY=1\nSTATUS=Serving %s\nMAINPID=%d", o.db, (int)getpid());

        int sig = wait_for_stop();
        sd_notify(0, "STOPPING=1\nSTATUS=Storing what was received");
        log_info("Received %s, storing what was received", sig == SIGTERM ? "SIGTERM" : "SIGINT");

        /* No more OTLP requests; the ones in flight have their answer. */
        otlp_listen_stop(otlp_listen);
        otlp_in_free(otlp_in);
        /* Ingest first: it stores everything and publishes the last acks,
         * which the query thread then still answers. */
        ingest_stop(ingest);
        /* What was just stored, sent while the collector answers at once. */
        forward_stop(forwarder, FORWARD_STOP_GRACE_MS);
        query_stop(query);
        log_info("Stopped: %llu spans received, %llu stored, %llu messages rejected",
                 (unsigned long long)atomic_load(&counters_g.received_spans),
                 (unsigned long long)atomic_load(&counters_g.stored_spans),
                 (unsigned long long)atomic_load(&counters_g.rejected_messages));
        peers_free(&ingest_peers);
        peers_free(&query_peers);
        zmq_ctx_term(ctx);
        store_close(store);
        acks_free(&acks);
        remove_sockets(o.runtime_dir);
        runtime_unlock(o.runtime_dir, lock_fd);
        return 0;

fail:
        otlp_listen_stop(otlp_listen);
        otlp_in_free(otlp_in);
        if (pull)
                zmq_close(pull);
        if (router)
                zmq_close(router);
        ingest_stop(ingest);
        forward_stop(forwarder, 0);
        query_stop(query);
        peers_free(&ingest_peers);
        peers_free(&query_peers);
        if (ctx)
                zmq_ctx_term(ctx);
        store_close(store);
        if (lock_fd >= 0)
                runtime_unlock(o.runtime_dir, lock_fd);
        return 1;
}
