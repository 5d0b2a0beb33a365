/* SPDX-License-Identifier: MIT */
/*
 * A tiny test harness: TEST(name) { ... } registers a test; CHECK*() fail it
 * with the file, line and values; SKIP() exits 77, which meson reports as
 * skipped. main() is in harness.c: `test-x` runs every test of the file,
 * `test-x NAME` runs one.
 */
#pragma once

#include <sys/types.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);

void harness_register(const char *name, test_fn fn);
void harness_fail(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));

#define TEST(name) \
        static void test_##name(void); \
        __attribute__((constructor)) static void register_##name(void) { harness_register(#name, test_##name); } \
        static void test_##name(void)

#define CHECK(cond) \
        do { \
                if (!(cond)) \
                        harness_fail(__FILE__, __LINE__, "%s", #cond); \
        } while (0)

#define CHECK_EQ(a, b) \
        do { \
                long long a_ = (long long)(a), b_ = (long long)(b); \
                if (a_ != b_) \
                        harness_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
        } while (0)

#define CHECK_CMP(a, op, b) \
        do { \
                long long a_ = (long long)(a), b_ = (long long)(b); \
                if (!(a_ op b_)) \
                        harness_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_); \
        } while (0)

#define CHECK_STR(a, b) \
        do { \
                const char *a_ = (a), *b_ = (b); \
                if (!a_ || !b_ || strcmp(a_, b_) != 0) \
                        harness_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
                                     b_ ? b_ : "(null)"); \
        } while (0)

#define CHECK_OK(expr) \
        do { \
                long long r_ = (long long)(expr); \
                if (r_ < 0) \
                        harness_fail(__FILE__, __LINE__, "%s failed: %lld (%s)", #expr, r_, strerror((int)-r_)); \
        } while (0)

/* Waits for the child @pid, which must exit with status 0. */
void harness_wait_ok(pid_t pid, const char *file, int line);
#define WAIT_OK(pid) harness_wait_ok((pid), __FILE__, __LINE__)

#define SKIP(...) \
        do { \
                printf("SKIP: " __VA_ARGS__); \
                printf("\n"); \
                exit(77); \
        } while (0)
