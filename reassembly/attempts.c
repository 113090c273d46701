/* attempts.c — fixed-size hash table of pending SYNs, kept in SYN-time order. */
#include "attempts.h"

#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

struct slot {
    struct attempt attempt;
    uint32_t hash_next;
    uint32_t older, newer;   /* time order; also the free list through `newer` */
    bool used;
};

/* An attempt answered by a RST, in the order of those first RSTs: refused attempts are
 * settled a few seconds after it (attempts_expire()), not after the SYN timeout. */
struct refusal {
    uint32_t index;
    struct attempt_key key;        /* with syn_us: still the same attempt in that slot? */
    int64_t syn_us, rst_us;
};

struct attempts {
    struct slot *slots;
    uint32_t *buckets;
    uint32_t capacity, bucket_mask, pending;
    uint32_t oldest, newest, free_head;
    struct refusal *refusals;      /* ring of capacity entries: an attempt enters it once */
    uint32_t refusal_head, refusal_count;
    attempt_settled_fn settled;
    void *ctx;
    size_t data_used;              /* client bytes kept by all attempts (+ record headers) */
};

enum { RECORD_HEADER = 12 };       /* an 8-byte time and a 4-byte length, then the bytes */

static void data_release(struct attempts *attempts, struct attempt *attempt)
{
    attempts->data_used -= attempt->data_cap;
    free(attempt->data);
    attempt->data = NULL;
    attempt->data_len = attempt->data_cap = 0;
}

static uint32_t hash_key(const struct attempt_key *key)
{
    uint32_t h = key->client * 2654435761u;
    h ^= key->server * 2246822519u;
    h ^= ((uint32_t)key->client_port << 16 | key->server_port) * 3266489917u;
    return h ^ (h >> 15);
}

static bool key_equal(const struct attempt_key *a, const struct attempt_key *b)
{
    return a->client == b->client && a->server == b->server &&
           a->client_port == b->client_port && a->server_port == b->server_port;
}

struct attempts *attempts_new(uint32_t capacity, attempt_settled_fn settled, void *ctx)
{
    struct attempts *attempts = calloc(1, sizeof *attempts);
    if (!attempts)
        return NULL;
    uint32_t buckets = 16;
    while (buckets < capacity)
        buckets <<= 1;
    attempts->slots = calloc(capacity, sizeof *attempts->slots);
    attempts->buckets = malloc(buckets * sizeof *attempts->buckets);
    attempts->refusals = malloc((capacity ? capacity : 1) * sizeof *attempts->refusals);
    if (!attempts->slots || !attempts->buckets || !attempts->refusals) {
        attempts_free(attempts);
        return NULL;
    }
    memset(attempts->buckets, 0xff, buckets * sizeof *attempts->buckets);
    attempts->capacity = capacity;
    attempts->bucket_mask = buckets - 1;
    attempts->oldest = attempts->newest = NIL;
    for (uint32_t i = 0; i < capacity; i++)
        attempts->slots[i].newer = i + 1 < capacity ? i + 1 : NIL;
    attempts->free_head = capacity ? 0 : NIL;
    attempts->settled = settled;
    attempts->ctx = ctx;
    return attempts;
}

void attempts_free(struct attempts *attempts)
{
    if (!attempts)
        return;
    for (uint32_t i = 0; attempts->slots && i < attempts->capacity; i++)
        free(attempts->slots[i].attempt.data);
    free(attempts->slots);
    free(attempts->buckets);
    free(attempts->refusals);
    free(attempts);
}

static uint32_t find(const struct attempts *attempts, const struct attempt_key *key)
{
    uint32_t index = attempts->buckets[hash_key(key) & attempts->bucket_mask];
    while (index != NIL && !key_equal(&attempts->slots[index].attempt.key, key))
        index = attempts->slots[index].hash_next;
    return index;
}

static void unlink_slot(struct attempts *attempts, uint32_t index)
{
    struct slot *slot = &attempts->slots[index];
    uint32_t *link = &attempts->buckets[hash_key(&slot->attempt.key) & attempts->bucket_mask];
    while (*link != index)
        link = &attempts->slots[*link].hash_next;
    *link = slot->hash_next;
    if (slot->older != NIL)
        attempts->slots[slot->older].newer = slot->newer;
    else
        attempts->oldest = slot->newer;
    if (slot->newer != NIL)
        attempts->slots[slot->newer].older = slot->older;
    else
        attempts->newest = slot->older;
    slot->used = false;
    data_release(attempts, &slot->attempt);
    slot->newer = attempts->free_head;
    attempts->free_head = index;
    attempts->pending--;
}

/* Reports and forgets an attempt. The record is copied first: the callback may not
 * see a slot that is being recycled. */
static void settle(struct attempts *attempts, uint32_t index, enum attempt_outcome outcome,
                   int64_t now_us)
{
    struct attempt done = attempts->slots[index].attempt;
    attempts->slots[index].attempt.data = NULL;   /* done owns it until the callback returns */
    attempts->slots[index].attempt.data_cap = 0;
    unlink_slot(attempts, index);
    if (outcome == ATTEMPT_UNANSWERED && done.server_only)
        outcome = ATTEMPT_SERVER_ONLY;
    else if (outcome == ATTEMPT_UNANSWERED && done.answered)
        outcome = ATTEMPT_NOT_ESTABLISHED;
    else if (outcome == ATTEMPT_UNANSWERED && done.rst_count > 0)
        outcome = ATTEMPT_REFUSED;
    else if (outcome == ATTEMPT_UNANSWERED && done.client_acked)
        outcome = ATTEMPT_ONE_SIDED;
    attempts->settled(attempts->ctx, &done, outcome, now_us);
    attempts->data_used -= done.data_cap;
    free(done.data);
}

/* The table is full. An answered attempt among the oldest few goes first, silently: libnids
 * has its stream and will report it (reporting it "never established" now would count
 * it twice). Otherwise the oldest pending SYN is settled early. */
static void make_room(struct attempts *attempts, int64_t now_us)
{
    uint32_t index = attempts->oldest;
    for (int looked = 0; index != NIL && looked < 16; looked++) {
        if (attempts->slots[index].attempt.answered) {
            unlink_slot(attempts, index);
            return;
        }
        index = attempts->slots[index].newer;
    }
    settle(attempts, attempts->oldest, ATTEMPT_UNANSWERED, now_us);
}

static bool hold_syn(struct attempt *attempt, const uint8_t *syn, size_t len)
{
    if (!syn || len == 0 || len > ATTEMPT_SYN_MAX)
        return false;
    memcpy(attempt->syn, syn, len);
    attempt->syn_len = (uint16_t)len;
    return true;
}

/* A new pending attempt for key, the oldest settled first when the table is full. */
static struct attempt *attempt_new(struct attempts *attempts, const struct attempt_key *key,
                                   int64_t now_us)
{
    if (attempts->free_head == NIL)
        make_room(attempts, now_us);
    uint32_t index = attempts->free_head;
    struct slot *slot = &attempts->slots[index];
    attempts->free_head = slot->newer;
    memset(slot, 0, sizeof *slot);
    slot->used = true;
    slot->attempt.key = *key;
    slot->attempt.syn_us = slot->attempt.last_us = now_us;
    slot->attempt.syn_count = 1;
    uint32_t bucket = hash_key(key) & attempts->bucket_mask;
    slot->hash_next = attempts->buckets[bucket];
    attempts->buckets[bucket] = index;
    slot->older = attempts->newest;
    slot->newer = NIL;
    if (attempts->newest != NIL)
        attempts->slots[attempts->newest].newer = index;
    else
        attempts->oldest = index;
    attempts->newest = index;
    attempts->pending++;
    return &slot->attempt;
}

bool attempts_on_syn(struct attempts *attempts, const struct attempt_key *key, int64_t now_us,
                     const uint8_t *syn, size_t len)
{
    if (attempts->capacity == 0)
        return false;
    uint32_t index = find(attempts, key);
    if (index != NIL) {           /* a retransmitted SYN: the newest one is handed over */
        struct attempt *attempt = &attempts->slots[index].attempt;
        if (attempt->server_only) {   /* its SYN came after all: an ordinary attempt */
            unlink_slot(attempts, index);
            return attempts_on_syn(attempts, key, now_us, syn, len);
        }
        if (attempt->answered)
            return false;         /* libnids has the stream: it takes the SYN itself */
        attempt->syn_count++;
        attempt->last_us = now_us;
        return hold_syn(attempt, syn, len);
    }
    return hold_syn(attempt_new(attempts, key, now_us), syn, len);
}

void attempts_on_orphan_syn_ack(struct attempts *attempts, const struct attempt_key *key,
                                int64_t now_us)
{
    if (attempts->capacity == 0 || find(attempts, key) != NIL)
        return;
    struct attempt *attempt = attempt_new(attempts, key, now_us);
    attempt->server_only = true;
    attempt->syn_count = 0;
}

bool attempts_known(struct attempts *attempts, const struct attempt_key *key)
{
    return attempts->pending > 0 && find(attempts, key) != NIL;
}

size_t attempts_on_server_packet(struct attempts *attempts, const struct attempt_key *key,
                                 bool rst, bool syn_ack, int64_t now_us, uint8_t *syn_out)
{
    if (attempts->pending == 0)
        return 0;
    uint32_t index = find(attempts, key);
    if (index == NIL)
        return 0;
    struct attempt *attempt = &attempts->slots[index].attempt;
    if (attempt->server_only) {
        attempt->last_us = now_us;   /* more of the same server side */
        return 0;
    }
    if (rst && attempt->answered) {
        unlink_slot(attempts, index);   /* a handshake aborted after the SYN-ACK */
        return 0;
    }
    if (rst) {
        if (attempt->rst_count++ == 0 && attempts->refusal_count < attempts->capacity) {
            uint32_t at = (attempts->refusal_head + attempts->refusal_count++) % attempts->capacity;
            attempts->refusals[at] = (struct refusal){ index, *key, attempt->syn_us, now_us };
        }
        attempt->last_us = now_us;
        return 0;
    }
    if (attempt->answered)
        return 0;                       /* a retransmitted SYN-ACK, or the server talking */
    if (!syn_ack) {
        unlink_slot(attempts, index);   /* answered in a way we did not see */
        return 0;
    }
    size_t held = attempt->syn_len;
    if (held)
        memcpy(syn_out, attempt->syn, held);
    attempt->answered = true;
    attempt->syn_len = 0;
    attempt->last_us = now_us;
    return held;
}

/* Appends a segment of client data in sequence order: a resent one is skipped (its new
 * tail kept), one after a hole ends the keeping (data_gap). */
static void keep_client_data(struct attempts *attempts, struct attempt *attempt,
                             const uint8_t *payload, size_t len, uint32_t seq, int64_t now_us)
{
    if (attempt->data_gap || len == 0)
        return;
    if (attempt->data_len == 0 && !attempt->data)
        attempt->next_seq = seq;   /* the first data segment starts the stream */
    uint32_t ahead = seq - attempt->next_seq;
    if (ahead != 0 && ahead < 0x80000000u) {
        attempt->data_gap = true;   /* a hole: what follows cannot be read in order */
        return;
    }
    uint32_t behind = attempt->next_seq - seq;
    if (behind >= len)
        return;                     /* all of it seen before */
    payload += behind;
    len -= behind;
    size_t need = attempt->data_len + RECORD_HEADER + len;
    if (need > ATTEMPT_DATA_MAX) {
        attempt->data_gap = true;
        return;
    }
    if (need > attempt->data_cap) {
        size_t cap = attempt->data_cap ? attempt->data_cap * 2 : 1024;
        while (cap < need)
            cap *= 2;
        if (cap > ATTEMPT_DATA_MAX)
            cap = ATTEMPT_DATA_MAX;
        uint8_t *grown = attempts->data_used - attempt->data_cap + cap <= ATTEMPTS_DATA_BUDGET
                             ? realloc(attempt->data, cap) : NULL;
        if (!grown) {
            attempt->data_gap = true;
            return;
        }
        attempts->data_used += cap - attempt->data_cap;
        attempt->data = grown;
        attempt->data_cap = (uint32_t)cap;
    }
    uint8_t *at = attempt->data + attempt->data_len;
    uint32_t len32 = (uint32_t)len;
    memcpy(at, &now_us, 8);
    memcpy(at + 8, &len32, 4);
    memcpy(at + RECORD_HEADER, payload, len);
    attempt->data_len += (uint32_t)(RECORD_HEADER + len);
    attempt->next_seq = seq + behind + len32;
}

bool attempts_data_next(const struct attempt *attempt, size_t *pos, int64_t *ts_us,
                        const uint8_t **bytes, uint32_t *len)
{
    if (!attempt->data || *pos + RECORD_HEADER > attempt->data_len)
        return false;
    memcpy(ts_us, attempt->data + *pos, 8);
    memcpy(len, attempt->data + *pos + 8, 4);
    *bytes = attempt->data + *pos + RECORD_HEADER;
    *pos += RECORD_HEADER + *len;
    return true;
}

void attempts_on_client_packet(struct attempts *attempts, const struct attempt_key *key,
                               bool rst, const uint8_t *payload, size_t len, uint32_t seq,
                               int64_t now_us)
{
    if (attempts->pending == 0)
        return;
    uint32_t index = find(attempts, key);
    if (index == NIL)
        return;
    struct attempt *attempt = &attempts->slots[index].attempt;
    if (attempt->server_only) {
        unlink_slot(attempts, index);   /* the client is captured: the handshake's start was not */
        return;
    }
    if (attempt->answered) {
        if (rst)
            unlink_slot(attempts, index);   /* the client gave up on the handshake */
        return;                             /* its ACK: libnids will say "established" */
    }
    attempt->client_acked = true;
    attempt->client_bytes += len;
    attempt->last_us = now_us;
    keep_client_data(attempts, attempt, payload, len, seq, now_us);
}

void attempts_on_established(struct attempts *attempts, const struct attempt_key *key)
{
    if (attempts->pending == 0)
        return;
    uint32_t index = find(attempts, key);
    if (index != NIL)
        unlink_slot(attempts, index);
}

void attempts_expire(struct attempts *attempts, int64_t now_us, int64_t timeout_us,
                     int64_t refused_quiet_us)
{
    while (attempts->oldest != NIL &&
           attempts->slots[attempts->oldest].attempt.syn_us + timeout_us < now_us)
        settle(attempts, attempts->oldest, ATTEMPT_UNANSWERED, now_us);
    while (attempts->refusal_count > 0) {
        struct refusal r = attempts->refusals[attempts->refusal_head];
        if (r.rst_us + refused_quiet_us >= now_us)
            break;
        attempts->refusal_head = (attempts->refusal_head + 1) % attempts->capacity;
        attempts->refusal_count--;
        const struct slot *slot = &attempts->slots[r.index];
        /* still that attempt, and not answered since (a retried SYN may be) */
        if (!slot->used || slot->attempt.syn_us != r.syn_us || slot->attempt.answered ||
            !key_equal(&slot->attempt.key, &r.key))
            continue;
        if (slot->attempt.last_us + refused_quiet_us < now_us) {
            settle(attempts, r.index, ATTEMPT_UNANSWERED, now_us);   /* with its RST: refused */
        } else {   /* retried since: looked at again once that has been quiet */
            r.rst_us = slot->attempt.last_us;
            attempts->refusals[(attempts->refusal_head + attempts->refusal_count++) %
                               attempts->capacity] = r;
        }
    }
}

void attempts_flush(struct attempts *attempts, int64_t now_us, int64_t timeout_us)
{
    while (attempts->oldest != NIL) {
        const struct attempt *a = &attempts->slots[attempts->oldest].attempt;
        /* a SYN the capture's end (a rotated file, a sensor stopped) caught before the
         * answer could come: it says nothing about the server */
        bool cut = now_us - a->syn_us < timeout_us && !a->server_only && a->rst_count == 0 &&
                   !a->client_acked;
        settle(attempts, attempts->oldest, cut ? ATTEMPT_CUT : ATTEMPT_UNANSWERED, now_us);
    }
}

uint32_t attempts_pending(const struct attempts *attempts)
{
    return attempts->pending;
}
