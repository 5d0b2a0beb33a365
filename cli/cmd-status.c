/* SPDX-License-Identifier: MIT */
/* ferret status: the daemon's health and counters. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "json-text.h"
#include "options.h"
#include "text.h"

static const char usage[] =
        "Usage: ferret status [--json]\n"
        "Show the daemon's health: spans received, stored, rejected, dropped by\n"
        "clients, database size and uptime.\n\n" COMMON_OPTIONS_HELP;

int cmd_status(struct cli *cli, int argc, char **argv)
{
        char dir[PATH_MAX];
        int r = cli_parse_common_options(cli, argc, argv, usage);
        if (r <= 0)
                return r;
        if (optind < argc)
                return cli_error(EINVAL, "unexpected argument '%s' (see ferret status --help)", argv[optind]);

        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__StatusRequest status_req = FERRET__STATUS_REQUEST__INIT;
        Ferret__Response *resp;
        req.body_case = FERRET__REQUEST__BODY_STATUS;
        req.status = &status_req;
        cli_find_runtime_dir(cli, dir, sizeof(dir));
        r = cli_request(dir, &req, 10000, &resp);
        if (r < 0)
                return r;
        const Ferret__StatusResponse *s = resp->status;
        if (cli->json) {
                json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:f, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:o}",
                                      "version", s->version, "pid", (int)s->pid, "db_path", s->db_path,
                                      "runtime_dir", s->runtime_dir, "uptime_ns", json_uint(s->uptime_ns),
                                      "received_batches", json_uint(s->received_batches),
                                      "received_spans", json_uint(s->received_spans),
                                      "stored_spans", json_uint(s->stored_spans),
                                      "rejected_messages", json_uint(s->rejected_messages),
                                      "dropped_by_clients", json_uint(s->dropped_by_clients),
                                      "db_size_bytes", json_uint(s->db_size_bytes), "runs", json_uint(s->runs),
                                      "read_only", s->read_only, "retain_days", s->retain_days,
                                      "max_size_bytes", json_uint(s->max_size_bytes),
                                      "runs_removed", json_uint(s->runs_removed),
                                      "lost_in_transit", json_uint(s->lost_in_transit),
                                      "duplicate_batches", json_uint(s->duplicate_batches),
                                      "early_batches", json_uint(s->early_batches), "disk_full", s->disk_full,
                                      "refused_connections", json_uint(s->refused_connections),
                                      "held_bytes", json_uint(s->held_bytes));
                if (*s->forward_url)
                        json_object_set_new(o, "forward", json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                                                                     "url", json_text(s->forward_url),
                                                                     "sent", json_uint(s->forward_sent),
                                                                     "backlog", json_uint(s->forward_backlog),
                                                                     "dropped", json_uint(s->forward_dropped),
                                                                     "rejected", json_uint(s->forward_rejected),
                                                                     "failures", json_uint(s->forward_failures),
                                                                     "last_error", json_text(s->forward_error)));
                if (*s->otlp_listen)
                        json_object_set_new(o, "otlp", json_pack("{s:o, s:o, s:o, s:o}", "listen", json_text(s->otlp_listen),
                                                                  "requests", json_uint(s->otlp_requests),
                                                                  "refused_requests", json_uint(s->otlp_refused_requests),
                                                                  "rejected_spans", json_uint(s->otlp_rejected_spans)));
                r = json_dumpf(o, stdout, JSON_INDENT(2)) < 0 ? -EIO : 0;
                putchar('\n');
                json_decref(o);
        } else {
                char up[32], size[32];
                printf("%sferretd %s%s (pid %u) is running%s\n", color(cli, C_GREEN), s->version, color(cli, C_RESET),
                       s->pid, s->read_only ? " read-only" : "");
                printf("  database:           %s (%s)\n", s->db_path, format_bytes(s->db_size_bytes, size, sizeof(size)));
                printf("  sockets:            %s\n", s->runtime_dir);
                printf("  uptime:             %s\n", format_duration(s->uptime_ns, up, sizeof(up)));
                printf("  runs:               %llu\n", (unsigned long long)s->runs);
                if (s->retain_days > 0)
                        printf("  runs kept:          %g days\n", s->retain_days);
                if (s->max_size_bytes)
                        printf("  size bound:         %s\n", format_bytes(s->max_size_bytes, size, sizeof(size)));
                if (s->retain_days > 0 || s->max_size_bytes || s->runs_removed)
                        printf("  runs removed:       %llu\n", (unsigned long long)s->runs_removed);
                printf("  spans received:     %llu in %llu batches\n", (unsigned long long)s->received_spans,
                       (unsigned long long)s->received_batches);
                printf("  spans stored:       %llu\n", (unsigned long long)s->stored_spans);
                printf("  rejected messages:  %s%llu%s\n", s->rejected_messages ? color(cli, C_YELLOW) : "",
                       (unsigned long long)s->rejected_messages, s->rejected_messages ? color(cli, C_RESET) : "");
                printf("  dropped by clients: %s%llu%s\n", s->dropped_by_clients ? color(cli, C_YELLOW) : "",
                       (unsigned long long)s->dropped_by_clients, s->dropped_by_clients ? color(cli, C_RESET) : "");
                printf("  lost in transit:    %s%llu%s\n", s->lost_in_transit ? color(cli, C_YELLOW) : "",
                       (unsigned long long)s->lost_in_transit, s->lost_in_transit ? color(cli, C_RESET) : "");
                if (s->disk_full && s->read_only)
                        printf("  disk:               %sfull: opened read-only, taking no spans until ferretd is "
                               "restarted with space%s\n", color(cli, C_RED), color(cli, C_RESET));
                else if (s->disk_full)
                        printf("  disk:               %sfull: holding what was received (%s), taking no more past "
                               "128 MiB (clients then drop and count) until there is space%s\n", color(cli, C_RED),
                               format_bytes(s->held_bytes, size, sizeof(size)), color(cli, C_RESET));
                if (s->refused_connections)
                        printf("  clients refused:    %s%llu%s connections (more than --max-clients at once; they retry)\n",
                               color(cli, C_YELLOW), (unsigned long long)s->refused_connections, color(cli, C_RESET));
                if (*s->forward_url) {
                        printf("  forwarding to:      ");
                        term_put(stdout, s->forward_url);
                        printf("\n");
                        printf("  forwarded:          %llu spans sent, %llu waiting", (unsigned long long)s->forward_sent,
                               (unsigned long long)s->forward_backlog);
                        if (s->forward_dropped || s->forward_rejected)
                                printf(", %s%llu dropped (backlog bound, or removed before sent), %llu rejected by the "
                                       "collector%s",
                                       color(cli, C_YELLOW), (unsigned long long)s->forward_dropped,
                                       (unsigned long long)s->forward_rejected, color(cli, C_RESET));
                        printf("\n");
                        if (*s->forward_error) {
                                printf("  last failure:       %s", color(cli, C_YELLOW));
                                term_put(stdout, s->forward_error);
                                printf("%s (%llu requests tried again)\n", color(cli, C_RESET),
                                       (unsigned long long)s->forward_failures);
                        }
                }
                if (*s->otlp_listen) {
                        printf("  OTLP listening on:  ");
                        term_put(stdout, s->otlp_listen);
                        printf(" (POST /v1/traces)\n");
                        printf("  OTLP requests:      %llu stored, %s%llu refused%s, %llu spans rejected in them\n",
                               (unsigned long long)s->otlp_requests, s->otlp_refused_requests ? color(cli, C_YELLOW) : "",
                               (unsigned long long)s->otlp_refused_requests, s->otlp_refused_requests ? color(cli, C_RESET) : "",
                               (unsigned long long)s->otlp_rejected_spans);
                }
                /* Clients resend what a restarted daemon may not have. */
                if (s->duplicate_batches || s->early_batches)
                        printf("  resent batches:     %llu already stored, %llu ahead of a missing one\n",
                               (unsigned long long)s->duplicate_batches, (unsigned long long)s->early_batches);
        }
        ferret__response__free_unpacked(resp, NULL);
        return r;
}
