/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <zmq.h>

#include "log.h"
#include "peers.h"

int peers_watch(struct peers *p, void *ctx, void *socket, const char *path, size_t max, _Atomic uint64_t *refused)
{
        char endpoint[64];
        *p = (struct peers){ .max = max, .refused = refused };
        if (snprintf(p->path, sizeof(p->path), "%s", path) >= (int)sizeof(p->path))
                return -ENAMETOOLONG;
        p->fds = calloc(max, sizeof(*p->fds));
        if (!p->fds)
                return -ENOMEM;
        snprintf(endpoint, sizeof(endpoint), "inproc://ferretd-peers-%p", socket);
        if (zmq_socket_monitor(socket, endpoint, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) < 0)
                goto fail;
        p->monitor = zmq_socket(ctx, ZMQ_PAIR);
        /* No bound on the events queued: ZeroMQ's I/O thread blocks on a
         * full monitor, and ours is read between other work. */
        int unbounded = 0;
        if (!p->monitor || zmq_setsockopt(p->monitor, ZMQ_RCVHWM, &unbounded, sizeof(unbounded)) < 0 ||
            zmq_connect(p->monitor, endpoint) < 0)
                goto fail;
        return 0;
fail:;
        int r = -errno;
        peers_free(p);
        return r ? r : -EIO;
}

/* Whether @fd is still a connection to our socket: by the time an event is
 * read, the connection may have ended and its number been reused. */
static bool ours(const struct peers *p, int fd)
{
        struct sockaddr_un addr;
        socklen_t len = sizeof(addr);
        if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0 || addr.sun_family != AF_UNIX)
                return false;
        return len > offsetof(struct sockaddr_un, sun_path) && strncmp(addr.sun_path, p->path, sizeof(addr.sun_path)) == 0;
}

static void accepted(struct peers *p, int fd)
{
        if (p->n < p->max) {
                p->fds[p->n++] = fd;
                return;
        }
        /* Not closed: the descriptor is ZeroMQ's, which sees the end of the
         * stream and closes it as it would any departed peer's. */
        if (ours(p, fd))
                shutdown(fd, SHUT_RDWR);
        if (atomic_fetch_add(p->refused, 1) == 0)
                log_warning("Refused a connection to %s: %zu peers are connected, the most it serves", p->path, p->max);
}

static void departed(struct peers *p, int fd)
{
        for (size_t i = 0; i < p->n; i++)
                if (p->fds[i] == fd) {
                        p->fds[i] = p->fds[--p->n];
                        return;
                }
}

void peers_handle(struct peers *p)
{
        for (;;) {
                zmq_msg_t event, address;
                zmq_msg_init(&event);
                if (zmq_msg_recv(&event, p->monitor, ZMQ_DONTWAIT) < 0) {
                        zmq_msg_close(&event);
                        return;
                }
                /* Two frames: the event (u16 number, u32 value), then the
                 * endpoint, which is always our socket's. */
                uint16_t number = 0;
                uint32_t value = 0;
                if (zmq_msg_size(&event) >= 6) {
                        memcpy(&number, zmq_msg_data(&event), 2);
                        memcpy(&value, (char *)zmq_msg_data(&event) + 2, 4);
                }
                bool more = zmq_msg_more(&event);
                zmq_msg_close(&event);
                if (more) {
                        zmq_msg_init(&address);
                        zmq_msg_recv(&address, p->monitor, 0);
                        zmq_msg_close(&address);
                }
                if (number == ZMQ_EVENT_ACCEPTED)
                        accepted(p, (int)value);
                else if (number == ZMQ_EVENT_DISCONNECTED)
                        departed(p, (int)value);
        }
}

void peers_free(struct peers *p)
{
        if (p->monitor)
                zmq_close(p->monitor);
        free(p->fds);
        *p = (struct peers){ 0 };
}
