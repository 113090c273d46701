/* overlap.c — the table of recent segments (see overlap.h). */
#include "reassembly/overlap.h"

#include <stdlib.h>
#include <string.h>

/* 2^18 entries of 24 bytes: at 200,000 data segments a second a segment is remembered for
 * about a second on average, longer than a retransmission timeout on a LAN, and the table
 * stays a tenth of the memory budget. */
#define OVERLAP_BITS 18

struct segment {
    uint64_t flow;      /* flow_key(); 0: empty */
    uint64_t digest;    /* payload_digest() of its len bytes */
    uint32_t seq;
    uint32_t len;
};

struct overlap_table {
    struct segment slot[1u << OVERLAP_BITS];
};

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t flow_key(const struct overlap_flow *flow)
{
    uint64_t key = mix(((uint64_t)flow->src << 32 | flow->dst) ^
                       mix((uint64_t)flow->sport << 16 | flow->dport));
    return key ? key : 1;
}

/* Segments up to this size are digested whole: commands and replies, where a forged
 * resend changes what the dialogue says. Of a longer segment (a message body, a literal)
 * the digest takes its first DIGEST_EDGE bytes and its last word: every byte added a fifth
 * to the time of a read of the benchmark's mail traffic, where bodies are skipped by count,
 * and a word in every 256 bytes still a tenth. */
#define DIGEST_WHOLE_MAX 512
#define DIGEST_EDGE 64

static inline uint64_t lane_step(uint64_t lane, const uint8_t *p)
{
    uint64_t word;
    memcpy(&word, p, 8);
    lane = (lane ^ word) * 0x9fb21c651e98df25ULL;
    return lane ^ lane >> 29;
}

/* Four independent lanes of 8 bytes, in registers. Not cryptographic: two copies that
 * differ by chance, or by a sender that does not know the digest, differ in it. */
static uint64_t digest_bytes(const uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t a = seed ^ 0x9e3779b97f4a7c15ULL, b = seed ^ 0xbf58476d1ce4e5b9ULL,
             c = seed ^ 0x94d049bb133111ebULL, d = seed ^ 0x2545f4914f6cdd1dULL;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        a = lane_step(a, p + i);
        b = lane_step(b, p + i + 8);
        c = lane_step(c, p + i + 16);
        d = lane_step(d, p + i + 24);
    }
    for (; i + 8 <= len; i += 8)
        a = lane_step(a, p + i);
    uint64_t tail = 0;
    for (int shift = 0; i < len; i++, shift += 8)
        tail |= (uint64_t)p[i] << shift;
    return mix(a ^ mix(b ^ mix(c ^ mix(d ^ tail ^ len))));
}

static uint64_t payload_digest(const uint8_t *p, size_t len)
{
    if (len <= DIGEST_WHOLE_MAX)
        return digest_bytes(p, len, 0);
    return mix(lane_step(digest_bytes(p, DIGEST_EDGE, len), p + len - 8));
}

struct overlap_table *overlap_new(void)
{
    return calloc(1, sizeof(struct overlap_table));
}

void overlap_free(struct overlap_table *table)
{
    free(table);
}

static size_t slot_index(uint64_t key, uint32_t seq)
{
    return (size_t)(mix(key ^ seq) >> (64 - OVERLAP_BITS));
}

void overlap_prefetch(const struct overlap_table *table, const struct overlap_flow *flow,
                      uint32_t seq)
{
    __builtin_prefetch(&table->slot[slot_index(flow_key(flow), seq)], 1);
}

bool overlap_conflicts(struct overlap_table *table, const struct overlap_flow *flow,
                       uint32_t seq, const uint8_t *payload, size_t len)
{
    if (len == 0)
        return false;
    uint64_t key = flow_key(flow);
    struct segment *s = &table->slot[slot_index(key, seq)];
    if (s->flow == key && s->seq == seq) {
        if (len < s->len)
            return false;   /* a shorter resend: not comparable */
        if (payload_digest(payload, s->len) != s->digest)
            return true;
        if (len == s->len)
            return false;
    }
    *s = (struct segment){ .flow = key, .seq = seq, .len = (uint32_t)len,
                           .digest = payload_digest(payload, len) };
    return false;
}
