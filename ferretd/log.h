/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr with journal priority prefixes ("<3>" for errors), so
 * journald files each line at its level. On a terminal the prefix is a word.
 * log_*_errno() return -abs(error), so a caller can log and return at once:
 *
 *         return log_error_errno(r, "Failed to open %s: %m", path);
 */
#pragma once

#include <errno.h>
#include <syslog.h>

void log_set_level(int level);
int log_get_level(void);
/* "error", "warning", "notice", "info", "debug" or a number 0-7; -EINVAL if not. */
int log_level_from_string(const char *s);
int log_internal(int level, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
