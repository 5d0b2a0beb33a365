/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
        "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
};

void log_set_level(int level)
{
        max_level = level;
}

int log_get_level(void)
{
        return max_level;
}

int log_level_from_string(const char *s)
{
        for (int i = 0; i < 8; i++)
                if (strcmp(s, level_names[i]) == 0)
                        return i;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

/* Whether stderr is the journal's stream, which reads "<N>" prefixes as
 * priorities: systemd says which stream it gave (JOURNAL_STREAM=dev:ino),
 * and a stderr redirected since (or inherited by a child) is not it. */
static bool stderr_is_journal(void)
{
        const char *v = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        return v && sscanf(v, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
               (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_internal(int level, int error, const char *fmt, ...)
{
        int saved = errno;
        if (error < 0)
                error = -error;
        if (level <= max_level) {
                char msg[1024];
                va_list ap;
                errno = error;          /* for %m */
                va_start(ap, fmt);
                vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);

                pthread_mutex_lock(&log_lock);
                if (stderr_is_journal())
                        fprintf(stderr, "<%d>%s\n", level, msg);
                else if (level <= LOG_WARNING)
                        fprintf(stderr, "ferretd: %s: %s\n", level_names[level], msg);
                else
                        fprintf(stderr, "ferretd: %s\n", msg);
                fflush(stderr);
                pthread_mutex_unlock(&log_lock);
        }
        errno = saved;
        return -error;
}
