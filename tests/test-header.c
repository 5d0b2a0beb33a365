/* SPDX-License-Identifier: MIT */
/*
 * What ferret.h promises a program, checked through the header's own macros
 * against the library, run twice (tests/meson.build): with FERRET_DISABLE=1,
 * where every span is NULL, and with tracing on and no daemon, where spans
 * are real (and dropped when sent).
 *
 * The tag macros evaluate their span, key and value exactly once, whether
 * tracing is on or off: `ferret_span_tag_int(s, "n", i++)` must not change
 * what the program does when tracing is disabled. FERRET_SCOPE is a for
 * loop, so `break` and `continue` inside it leave the scope, not the loop
 * around it, as the header warns. ferret_stats_t carries its size.
 */
#include <errno.h>
#include <ferret.h>
#include <unistd.h>

#include "harness.h"

#ifdef FERRET_NO_TAG_MACROS
#error "this test is about the macros"
#endif

static char runtime_dir[] = "/tmp/ferret-tag-macros-XXXXXX";

static void remove_runtime_dir(void)
{
        rmdir(runtime_dir);
}

/* Sets the process up as FERRET_TEST_TRACING says, before its first call
 * configures the client: "off" (FERRET_DISABLE=1, set by meson) or "on"
 * against nothing (a runtime directory where no daemon listens). Returns
 * whether spans are expected. */
static bool tracing_expected(void)
{
        static int expected = -1;
        if (expected >= 0)
                return expected;
        const char *mode = getenv("FERRET_TEST_TRACING");
        CHECK(mode && (strcmp(mode, "on") == 0 || strcmp(mode, "off") == 0));
        expected = strcmp(mode, "on") == 0;
        if (expected) {
                CHECK(mkdtemp(runtime_dir));
                atexit(remove_runtime_dir);
                setenv("FERRET_RUNTIME_DIR", runtime_dir, 1);
                unsetenv("FERRET_DISABLE");
                setenv("FERRET_EXIT_TIMEOUT_MS", "0", 1);
                CHECK(ferret_enabled());
        } else {
                CHECK_STR(getenv("FERRET_DISABLE"), "1");
                CHECK(!ferret_enabled());
        }
        return expected;
}

static ferret_span_t *span_for_test(void)
{
        bool on = tracing_expected();
        ferret_span_t *s = ferret_span_begin("tags");
        CHECK(on ? s != NULL : s == NULL);
        return s;
}

static int span_reads;

static ferret_span_t *read_span(ferret_span_t *s)
{
        span_reads++;
        return s;
}

TEST(value_evaluated_once)
{
        ferret_span_t *s = span_for_test();
        int64_t i = 0;
        int j = 0, k = 0, b = 0;
        ferret_span_tag_int(s, "n", i++);
        CHECK_EQ(i, 1);
        ferret_span_tag_double(s, "x", (double)j++ / 2);
        CHECK_EQ(j, 1);
        const char *words[] = { "zero", "one", "two" };
        ferret_span_tag_str(s, "word", words[k++]);
        CHECK_EQ(k, 1);
        ferret_span_tag_bool(s, "odd", b++ % 2);
        CHECK_EQ(b, 1);
        ferret_span_end(s);
}

TEST(key_evaluated_once)
{
        ferret_span_t *s = span_for_test();
        const char *keys[] = { "a", "b", "c", "d", "e" };
        int k = 0;
        ferret_span_tag_int(s, keys[k++], 1);
        ferret_span_tag_double(s, keys[k++], 1.5);
        ferret_span_tag_str(s, keys[k++], "v");
        ferret_span_tag_bool(s, keys[k++], true);
        CHECK_EQ(k, 4);
        ferret_span_end(s);
}

TEST(span_evaluated_once)
{
        ferret_span_t *s = span_for_test();
        span_reads = 0;
        ferret_span_tag_int(read_span(s), "n", 1);
        ferret_span_tag_double(read_span(s), "x", 0.5);
        ferret_span_tag_str(read_span(s), "w", "v");
        ferret_span_tag_bool(read_span(s), "b", false);
        CHECK_EQ(span_reads, 4);
        /* A computed key takes the function's path: once there too. */
        char key[8];
        snprintf(key, sizeof(key), "k%d", 1);
        ferret_span_tag_int(read_span(s), key, 2);
        CHECK_EQ(span_reads, 5);
        ferret_span_end(s);
}

/* The way a program gets bitten: a loop whose counter moves in a tag runs
 * the same number of times with tracing on and off (with the old macros it
 * never ended with tracing off; the bound makes that a failure). */
TEST(loop_unchanged)
{
        ferret_span_t *s = span_for_test();
        int64_t i = 0;
        int rounds = 0;
        while (i < 10 && rounds < 1000) {
                ferret_span_tag_int(s, "i", i++);
                rounds++;
        }
        CHECK_EQ(rounds, 10);
        ferret_span_end(s);
}

TEST(scope_break_leaves_the_scope)
{
        tracing_expected();
        int after_scope = 0, rounds = 0;
        for (int n = 0; n < 3; n++) {
                FERRET_SCOPE(s, "round") {
                        rounds++;
                        break;          /* leaves FERRET_SCOPE, not the loop */
                }
                after_scope++;
        }
        CHECK_EQ(rounds, 3);
        CHECK_EQ(after_scope, 3);
}

TEST(scope_continue_leaves_the_scope)
{
        tracing_expected();
        int after_scope = 0;
        for (int n = 0; n < 3; n++) {
                FERRET_SCOPE(s, "round") {
                        continue;       /* ends the span; the code after the scope still runs */
                }
                after_scope++;
        }
        CHECK_EQ(after_scope, 3);
}

/* Ending a scope's span early, as the header shows: the scope then ends
 * nothing more (one span recorded, not two). */
TEST(scope_end_early)
{
        bool on = tracing_expected();
        ferret_stats_t before = { .size = sizeof(before) }, after = { .size = sizeof(after) };
        CHECK_EQ(ferret_get_stats(&before), 0);
        FERRET_SCOPE(s, "early") {
                ferret_span_end(s);
                s = NULL;
        }
        CHECK_EQ(ferret_get_stats(&after), 0);
        CHECK_EQ(after.recorded - before.recorded, on ? 1 : 0);
}

/* ferret_stats_t's size: the caller says how much it knows, the library
 * fills that much and says how much it filled; less than the first
 * version's is refused, leaving the structure as it was. */
TEST(stats_size)
{
        ferret_span_end(span_for_test());
        CHECK_EQ(ferret_get_stats(NULL), -EINVAL);

        ferret_stats_t st = { .size = sizeof(st) };
        CHECK_EQ(ferret_get_stats(&st), 0);
        CHECK_EQ(st.size, sizeof(st));
        if (tracing_expected())
                CHECK_CMP(st.recorded + st.dropped, >=, 1);     /* the span above, at least */
        else
                CHECK_EQ(st.recorded + st.dropped, 0);

        ferret_stats_t zero = { 0 };
        CHECK_EQ(ferret_get_stats(&zero), -EINVAL);
        CHECK_EQ(zero.size, 0);
        ferret_stats_t short_one = { .size = FERRET_STATS_SIZE_V1 - 1, .recorded = 12345 };
        CHECK_EQ(ferret_get_stats(&short_one), -EINVAL);
        CHECK_EQ(short_one.size, FERRET_STATS_SIZE_V1 - 1);
        CHECK_EQ(short_one.recorded, 12345);

        /* A program built with a later header, whose structure has a field
         * this library does not know: it is left alone, and size says so. */
        struct {
                ferret_stats_t known;
                uint64_t later;
        } newer = { .known.size = sizeof(newer), .later = 777 };
        CHECK_EQ(ferret_get_stats(&newer.known), 0);
        CHECK_EQ(newer.known.size, sizeof(ferret_stats_t));
        CHECK_EQ(newer.known.recorded, st.recorded);
        CHECK_EQ(newer.later, 777);
}
