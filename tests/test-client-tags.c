/* SPDX-License-Identifier: MIT */
/*
 * Tags and text against the limits of a span, through a real ferretd:
 * string values of every length the client's hot path treats apart, names
 * and values cut at 255 bytes without splitting a UTF-8 character, numbers
 * JSON has no literal for, and a span given more tags than its slot holds.
 * A peer controls all of these, so each limit must cut cleanly and say
 * what it cut (ferret.omitted) rather than lose it unseen.
 */
#include <ferret.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "spans.h"
#include "traced-child.h"

/* String tag values of every length the hot path treats apart (short ones
 * are measured while copied, longer ones take the general path, past 255
 * bytes they are cut), keys given as literals or at run time, and a span
 * whose tags outgrow its slot: entries that do not fit are dropped whole. */
static const size_t tag_lengths[] = { 0, 1, 15, 16, 17, 100, 255, 300 };
#define N_TAG_LENGTHS (sizeof(tag_lengths) / sizeof(tag_lengths[0]))

static void tag_value(char *buf, size_t len)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = (char)('a' + i % 26);
        buf[len] = '\0';
}

TEST(tag_values_of_every_length)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("tags", 0);
        if (child == 0) {
                char value[301], key[16] = "runtime";
                for (size_t i = 0; i < N_TAG_LENGTHS; i++) {
                        tag_value(value, tag_lengths[i]);
                        FERRET_SCOPE(s, "length") {
                                ferret_span_tag_int(s, "n", (int64_t)tag_lengths[i]);
                                ferret_span_tag_str(s, "v", value);
                        }
                        FERRET_SCOPE(s, "length") {
                                ferret_span_tag_int(s, "n", (int64_t)tag_lengths[i]);
                                ferret_span_tag_str(s, key, value);
                        }
                }
                FERRET_SCOPE(s, "null") {
                        ferret_span_tag_str(s, "v", NULL);
                }
                /* Each entry takes 1 + 4 (key number) + 2 + 15 + 1 = 23
                 * bytes: 16 of them fit in a slot's 384 (416 less the room
                 * kept for ferret.omitted). */
                FERRET_SCOPE(s, "full") {
#define FILL(k) ferret_span_tag_str(s, k, "abcdefghijklmno")
                        FILL("k00"); FILL("k01"); FILL("k02"); FILL("k03"); FILL("k04");
                        FILL("k05"); FILL("k06"); FILL("k07"); FILL("k08"); FILL("k09");
                        FILL("k10"); FILL("k11"); FILL("k12"); FILL("k13"); FILL("k14");
                        FILL("k15"); FILL("k16"); FILL("k17"); FILL("k18"); FILL("k19");
#undef FILL
                        ferret_span_tag_int(s, "late", 1);
                }
                exit(0);
        }
        WAIT_OK(child);

        struct flat_tree t;
        flat_tree_load(&f, "tags", &t);
        CHECK_EQ(t.n, 2 * N_TAG_LENGTHS + 2);
        size_t lengths_seen = 0;
        for (size_t k = 0; k < t.n; k++) {
                json_t *s = t.spans[k].span;
                if (strcmp(span_name(s), "length") == 0) {
                        size_t len = (size_t)json_integer_value(span_tag(s, "n"));
                        char want[301];
                        tag_value(want, len < 255 ? len : 255);
                        json_t *v = span_tag(s, "v") ? span_tag(s, "v") : span_tag(s, "runtime");
                        CHECK_STR(json_string_value(v), want);
                        lengths_seen++;
                } else if (strcmp(span_name(s), "null") == 0)
                        CHECK_STR(json_string_value(span_tag(s, "v")), "");
                else {
                        CHECK_STR(span_name(s), "full");
                        for (int i = 0; i < 20; i++) {
                                char key[8];
                                snprintf(key, sizeof(key), "k%02d", i);
                                if (i < 16)
                                        CHECK_STR(json_string_value(span_tag(s, key)), "abcdefghijklmno");
                                else
                                        CHECK(span_tag(s, key) == NULL);
                        }
                        CHECK(span_tag(s, "late") == NULL);
                        CHECK_EQ(json_integer_value(span_tag(s, "ferret.omitted")), 5);
                }
        }
        CHECK_EQ(lengths_seen, 2 * N_TAG_LENGTHS);
        flat_tree_free(&t);
        fixture_cleanup(&f);
}

/* Limits never split a character: a 300-byte name of two-byte characters
 * keeps 127 of them (254 bytes); NaN and infinite tags reach the JSON. */
TEST(limits_keep_characters_whole)
{
        char long_name[301], want[255];
        for (int i = 0; i < 150; i++)
                memcpy(long_name + 2 * i, "\xc3\xa9", 2);     /* é */
        long_name[300] = '\0';
        memcpy(want, long_name, 254);
        want[254] = '\0';
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("text", 60);
        if (child == 0) {
                ferret_span_end(ferret_span_begin(long_name));
                ferret_span_t *s = ferret_span_begin("tags");
                ferret_span_tag_str(s, "value", long_name);
                ferret_span_tag_double(s, "nan", NAN);
                ferret_span_tag_double(s, "inf", INFINITY);
                ferret_span_end(s);
                exit_when_all_stored();
        }
        WAIT_OK(child);
        struct flat_tree t;
        flat_tree_load(&f, "text", &t);
        CHECK_EQ(t.n, 2);
        CHECK_EQ(flat_tree_count(&t, want), 1);
        json_t *span = t.spans[strcmp(span_name(t.spans[0].span), "tags") == 0 ? 0 : 1].span;
        json_t *value = span_tag(span, "value"), *nan = span_tag(span, "nan"), *inf = span_tag(span, "inf");
        CHECK(value && nan && inf);
        CHECK_EQ(strcmp(json_string_value(value), want), 0);
        CHECK_EQ(strcmp(json_string_value(nan), "NaN"), 0);
        CHECK_EQ(strcmp(json_string_value(inf), "Infinity"), 0);
        flat_tree_free(&t);
        fixture_cleanup(&f);
}

/* Tags past a span's room are counted, not lost unseen: 40 tags, 10 more
 * through the interned-key path, and a message on one span keep what fits,
 * and ferret.omitted counts the rest, so that the two add up. */
TEST(tags_past_the_room_are_counted)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("many-tags", 60);
        if (child == 0) {
                static ferret_name_t named[10];
                ferret_span_t *s = ferret_span_begin("crowded");
                char key[16];
                for (int i = 0; i < 40; i++) {
                        snprintf(key, sizeof(key), "k%02d", i);
                        ferret_span_tag_str(s, key, "twenty bytes of text");
                }
                for (int i = 0; i < 10; i++) {
                        snprintf(key, sizeof(key), "n%d", i);
                        ferret__span_tag_int_named(s, &named[i], key, i);
                }
                ferret_span_set_status(s, FERRET_STATUS_ERROR, "and a message");
                ferret_span_end(s);
                exit_when_all_stored();
        }
        WAIT_OK(child);
        struct flat_tree t;
        flat_tree_load(&f, "many-tags", &t);
        CHECK_EQ(t.n, 1);
        json_t *span = t.spans[0].span, *tags = json_object_get(span, "tags");
        json_t *omitted = json_object_get(tags, "ferret.omitted");
        CHECK(json_is_integer(omitted));
        CHECK(json_integer_value(omitted) > 0);
        CHECK(json_object_get(tags, "k00") != NULL);
        long long kept = (long long)json_object_size(tags) - 1 + (json_object_get(span, "message") != NULL);
        CHECK_EQ(kept + json_integer_value(omitted), 51);
        flat_tree_free(&t);
        fixture_cleanup(&f);
}
