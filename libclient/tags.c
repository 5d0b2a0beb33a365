/* SPDX-License-Identifier: MIT */
/*
 * What a span carries besides its times: tags, its status and message, its
 * kind. They are written into the span's slot, behind its record, with
 * record.h's payload writers, and travel with the record when the span
 * ends. Only the calling thread may write a span's payload: tagging one
 * span from two threads at once, or while another thread ends it, is not
 * safe (ferret.h says so).
 */
#include <string.h>

#include "compiler.h"
#include "intern.h"
#include "slot.h"

/* What does not fit in a span's payload is not dropped unseen: an int tag
 * OMITTED_KEY counts the entries (tags, the status message) left out. Room
 * for it is kept at the end, and its offset in the payload's last two bytes
 * (plus one), which no entry reaches; an offset left by the slot's previous
 * span is told apart by what it points at. */
#define OMITTED_KEY "ferret.omitted"
#define OMITTED_KEY_LEN (sizeof(OMITTED_KEY) - 1)
#define OMITTED_ENTRY_BYTES (2 + OMITTED_KEY_LEN + 1 + 8)
#define PAYLOAD_ROOM (SLOT_PAYLOAD - OMITTED_ENTRY_BYTES - 2)
_Static_assert(PAYLOAD_ROOM + OMITTED_ENTRY_BYTES + 2 == SLOT_PAYLOAD, "the count always has room");

static bool omitted_entry_at(const struct ferret_span *s, size_t at)
{
        if (at + OMITTED_ENTRY_BYTES > s->rec.payload_len)
                return false;
        struct payload_entry e;
        const char *p = s->payload + at;
        return payload_next(p, p + OMITTED_ENTRY_BYTES, &e) && e.kind == ENTRY_TAG_INT && e.key &&
               e.key_len == OMITTED_KEY_LEN && memcmp(e.key, OMITTED_KEY, OMITTED_KEY_LEN) == 0;
}

static __attribute__((noinline)) void payload_omit(struct ferret_span *s)
{
        char *where = s->payload + SLOT_PAYLOAD - 2;
        uint16_t stored;
        int64_t n = 1;
        memcpy(&stored, where, 2);
        if (stored && omitted_entry_at(s, stored - 1u)) {
                char *count = s->payload + stored - 1 + OMITTED_ENTRY_BYTES - 8;
                memcpy(&n, count, 8);
                n++;
                memcpy(count, &n, 8);
                return;
        }
        uint16_t at = s->rec.payload_len;
        char *p = payload_put_text_key(s->payload + at, ENTRY_TAG_INT, OMITTED_KEY, OMITTED_KEY_LEN);
        payload_put_scalar(p, ENTRY_TAG_INT, &n);
        s->rec.payload_len = (uint16_t)(at + OMITTED_ENTRY_BYTES);
        stored = (uint16_t)(at + 1);
        memcpy(where, &stored, 2);
}

/* Appends an entry with its key as text (a message has none); entries that
 * do not fit are counted (above). */
static void payload_put(struct ferret_span *s, enum entry_kind kind, const char *key, const void *value,
                        size_t value_len)
{
        size_t key_len = kind == ENTRY_MESSAGE ? 0 : text_len(key ? key : "", TAG_KEY_MAX_BYTES);
        size_t need = 2 + (kind == ENTRY_MESSAGE ? 0 : key_len + 1) + entry_value_bytes(kind, value_len);
        if (s->rec.payload_len + need > PAYLOAD_ROOM) {
                payload_omit(s);
                return;
        }
        char *p = s->payload + s->rec.payload_len;
        p = kind == ENTRY_MESSAGE ? payload_put_message_key(p) : payload_put_text_key(p, kind, key ? key : "", key_len);
        if (entry_is_string(kind))
                payload_put_string(p, value, value_len);
        else
                payload_put_scalar(p, kind, value);
        s->rec.payload_len = (uint16_t)(s->rec.payload_len + need);
}

void (ferret_span_tag_str)(ferret_span_t *s, const char *key, const char *value)
{
        if (!s)
                return;
        value = value ? value : "";
        payload_put(s, ENTRY_TAG_STRING, key, value, text_len(value, TAG_VALUE_MAX_BYTES));
}

void (ferret_span_tag_int)(ferret_span_t *s, const char *key, int64_t value)
{
        if (s)
                payload_put(s, ENTRY_TAG_INT, key, &value, sizeof(value));
}

void (ferret_span_tag_double)(ferret_span_t *s, const char *key, double value)
{
        if (s)
                payload_put(s, ENTRY_TAG_DOUBLE, key, &value, sizeof(value));
}

void (ferret_span_tag_bool)(ferret_span_t *s, const char *key, bool value)
{
        uint8_t v = value;
        if (s)
                payload_put(s, ENTRY_TAG_BOOL, key, &v, 1);
}

/* The key's interned number, numbered now on the call site's first use;
 * 0 when the table is full. */
static inline uint32_t key_number(ferret_name_t *cache, const char *key)
{
        uint32_t id = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        if (unlikely(!id)) {
                id = intern_name(key);
                if (id)
                        __atomic_store_n(cache, id, __ATOMIC_RELEASE);
        }
        return id;
}

/* payload_put() with the key as its interned number: fixed-size stores only. */
static void payload_put_keyed(struct ferret_span *s, enum entry_kind kind, ferret_name_t *cache, const char *key,
                              const void *value, size_t value_len)
{
        uint32_t id = key_number(cache, key);
        if (!id) {
                payload_put(s, kind, key, value, value_len);
                return;
        }
        size_t need = ENTRY_KEY_ID_BYTES + entry_value_bytes(kind, value_len);
        if (unlikely(s->rec.payload_len + need > PAYLOAD_ROOM)) {
                payload_omit(s);
                return;
        }
        char *p = payload_put_id_key(s->payload + s->rec.payload_len, kind, id);
        if (entry_is_string(kind))
                payload_put_string(p, value, value_len);
        else
                payload_put_scalar(p, kind, value);
        s->rec.payload_len = (uint16_t)(s->rec.payload_len + need);
}

static __attribute__((noinline)) void tag_str_slow(struct ferret_span *s, ferret_name_t *cache, const char *key,
                                                    const char *value)
{
        value = value ? value : "";
        payload_put_keyed(s, ENTRY_TAG_STRING, cache, key, value, text_len(value, TAG_VALUE_MAX_BYTES));
}

/* Values are mostly short: up to TAG_STR_SHORT bytes are measured while
 * they are copied, without the calls to strnlen() and memcpy(). */
#define TAG_STR_SHORT 16

void ferret__span_tag_str_named(ferret_span_t *s, ferret_name_t *cache, const char *key, const char *value)
{
        if (!s)
                return;
        uint32_t id = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        size_t used = s->rec.payload_len;
        if (unlikely(!id || !value ||
                     used + ENTRY_KEY_ID_BYTES + entry_value_bytes(ENTRY_TAG_STRING, TAG_STR_SHORT) > PAYLOAD_ROOM))
                return tag_str_slow(s, cache, key, value);
        char *bytes = s->payload + used + ENTRY_KEY_ID_BYTES + 2;
        size_t n = 0;
        while (n < TAG_STR_SHORT && value[n]) {
                bytes[n] = value[n];
                n++;
        }
        if (unlikely(n == TAG_STR_SHORT && value[n]))
                return tag_str_slow(s, cache, key, value);     /* overwrites what was copied */
        bytes[n] = '\0';
        payload_put_string_length(payload_put_id_key(s->payload + used, ENTRY_TAG_STRING, id), n);
        s->rec.payload_len = (uint16_t)(used + ENTRY_KEY_ID_BYTES + entry_value_bytes(ENTRY_TAG_STRING, n));
}

static __attribute__((noinline)) void tag_int_slow(struct ferret_span *s, ferret_name_t *cache, const char *key,
                                                    int64_t value)
{
        payload_put_keyed(s, ENTRY_TAG_INT, cache, key, &value, sizeof(value));
}

void ferret__span_tag_int_named(ferret_span_t *s, ferret_name_t *cache, const char *key, int64_t value)
{
        if (!s)
                return;
        uint32_t id = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        size_t used = s->rec.payload_len;
        size_t need = ENTRY_KEY_ID_BYTES + entry_value_bytes(ENTRY_TAG_INT, 0);
        if (unlikely(!id || used + need > PAYLOAD_ROOM))
                return tag_int_slow(s, cache, key, value);
        payload_put_scalar(payload_put_id_key(s->payload + used, ENTRY_TAG_INT, id), ENTRY_TAG_INT, &value);
        s->rec.payload_len = (uint16_t)(used + need);
}

void ferret__span_tag_double_named(ferret_span_t *s, ferret_name_t *cache, const char *key, double value)
{
        if (s)
                payload_put_keyed(s, ENTRY_TAG_DOUBLE, cache, key, &value, sizeof(value));
}

void ferret__span_tag_bool_named(ferret_span_t *s, ferret_name_t *cache, const char *key, bool value)
{
        uint8_t v = value;
        if (s)
                payload_put_keyed(s, ENTRY_TAG_BOOL, cache, key, &v, 1);
}

void ferret_span_set_status(ferret_span_t *s, ferret_status_t status, const char *message)
{
        if (!s || (unsigned)status > FERRET_STATUS_ERROR)
                return;
        s->rec.flags = (uint8_t)((s->rec.flags & ~FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK) | status);
        if (message)
                payload_put(s, ENTRY_MESSAGE, NULL, message, text_len(message, TAG_VALUE_MAX_BYTES));
}

void ferret_span_set_kind(ferret_span_t *s, ferret_kind_t kind)
{
        if (!s)
                return;
        uint8_t bits = (kind & FERRET_KIND_ASYNC ? FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC : 0) |
                       (kind & FERRET_KIND_SUSPENSION ? FERRET__SPAN_FLAG__SPAN_FLAG_SUSPENSION : 0);
        s->rec.flags = (uint8_t)((s->rec.flags & ~(FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC |
                                                   FERRET__SPAN_FLAG__SPAN_FLAG_SUSPENSION)) | bits);
}
