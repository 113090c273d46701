/* dnstrack.c — bounded query/response matching, timeouts, the Postfix-style MX verdict
 * (with the A/AAAA fallback for domains without MX), and the recent-recipient ring. */
#include "protocols/dnstrack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

/* A lookup waiting for its response, or answered and kept for one timeout so that late
 * retransmissions and duplicate responses are recognised instead of starting anew. */
struct entry {
    struct dns_lookup lookup;
    bool used, answered;
    uint32_t bucket, hash_next;   /* hash chain */
    uint32_t older, newer;        /* query-time order */
};

/* An MX lookup that found no MX (or no domain), waiting for the A/AAAA lookups Postfix
 * makes next: its log then names the last of those. */
struct mx_wait {
    bool used;
    struct dns_lookup mx;
    bool mx_failed;               /* NXDOMAIN: a failure even if no fallback is seen */
    char mx_detail[DNS_DETAIL_MAX];
    int64_t last_us;              /* verdict time, or the latest fallback query */
    unsigned fallbacks_failed;
    char detail[DNS_DETAIL_MAX];  /* of the last failed fallback */
    uint64_t seq;                 /* age, for eviction */
};

struct dnstrack {
    struct dnstrack_config config;
    struct dnstrack_stats stats;
    struct entry *entries;
    uint32_t capacity, count, free_head;
    uint32_t *buckets, bucket_mask;
    uint32_t oldest, newest;
    struct mx_wait *waits;
    uint64_t wait_seq;
};

/* --- helpers ---------------------------------------------------------------------- */

static bool ascii_eq_ci(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
        if (x == '\0')
            return true;
    }
}

static size_t addr_len(const struct ip_address *a)
{
    return a->family == 6 ? 16 : 4;
}

static bool addr_eq(const struct ip_address *a, const struct ip_address *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, addr_len(a)) == 0;
}

static bool flow_eq(const struct flow *a, const struct flow *b)
{
    return a->client_port == b->client_port && a->server_port == b->server_port &&
           addr_eq(&a->client, &b->client) && addr_eq(&a->server, &b->server);
}

static uint32_t fnv(uint32_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static uint32_t key_hash(const struct flow *f, uint16_t id)
{
    uint8_t tail[6] = { (uint8_t)(f->client_port >> 8), (uint8_t)f->client_port,
                        (uint8_t)(f->server_port >> 8), (uint8_t)f->server_port,
                        (uint8_t)(id >> 8), (uint8_t)id };
    uint32_t h = fnv(2166136261u, f->client.bytes, addr_len(&f->client));
    h = fnv(h, f->server.bytes, addr_len(&f->server));
    return fnv(h, tail, sizeof tail);
}

static bool is_address_type(uint16_t type)
{
    return type == DNS_TYPE_A || type == DNS_TYPE_AAAA;
}

/* --- table ------------------------------------------------------------------------ */

struct dnstrack *dnstrack_new(const struct dnstrack_config *config)
{
    struct dnstrack *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->config = *config;
    if (t->config.capacity == 0)
        t->config.capacity = 4096;
    if (t->config.mx_wait_capacity == 0)
        t->config.mx_wait_capacity = 256;
    t->capacity = t->config.capacity;
    uint32_t nb = 1;
    while (nb < t->capacity * 2u && nb < (1u << 30))
        nb <<= 1;
    t->bucket_mask = nb - 1;
    t->entries = calloc(t->capacity, sizeof *t->entries);
    t->buckets = malloc(nb * sizeof *t->buckets);
    t->waits = calloc(t->config.mx_wait_capacity, sizeof *t->waits);
    if (!t->entries || !t->buckets || !t->waits) {
        dnstrack_free(t);
        return NULL;
    }
    for (uint32_t i = 0; i < nb; i++)
        t->buckets[i] = NONE;
    for (uint32_t i = 0; i < t->capacity; i++)
        t->entries[i].hash_next = i + 1 < t->capacity ? i + 1 : NONE;
    t->free_head = 0;
    t->oldest = t->newest = NONE;
    return t;
}

void dnstrack_free(struct dnstrack *t)
{
    if (!t)
        return;
    free(t->entries);
    free(t->buckets);
    free(t->waits);
    free(t);
}

const struct dnstrack_stats *dnstrack_stats(const struct dnstrack *t)
{
    return &t->stats;
}

/* Finds the entry for this flow and id whose question matches (qname NULL: any). */
static struct entry *entry_find(struct dnstrack *t, const struct flow *f, uint16_t id,
                                const char *qname, uint16_t qtype)
{
    uint32_t i = t->buckets[key_hash(f, id) & t->bucket_mask];
    for (; i != NONE; i = t->entries[i].hash_next) {
        struct entry *e = &t->entries[i];
        if (e->lookup.id == id && flow_eq(&e->lookup.flow, f) &&
            (!qname || (e->lookup.qtype == qtype && ascii_eq_ci(e->lookup.qname, qname))))
            return e;
    }
    return NULL;
}

/* Unlinks entry i from its chain and the age list and returns it to the free list. */
static void entry_remove(struct dnstrack *t, uint32_t i)
{
    struct entry *e = &t->entries[i];
    uint32_t *link = &t->buckets[e->bucket];
    while (*link != i)
        link = &t->entries[*link].hash_next;
    *link = e->hash_next;
    if (e->older != NONE)
        t->entries[e->older].newer = e->newer;
    else
        t->oldest = e->newer;
    if (e->newer != NONE)
        t->entries[e->newer].older = e->older;
    else
        t->newest = e->older;
    e->used = false;
    e->hash_next = t->free_head;
    t->free_head = i;
    t->count--;
}

/* --- MX verdicts -------------------------------------------------------------------- */

static void mx_failed(struct dnstrack *t, const struct dns_lookup *mx, const char *detail)
{
    t->stats.mx_failed++;
    if (t->config.on_mx_failed)
        t->config.on_mx_failed(t->config.ctx, mx, detail);
}

static void wait_settle(struct dnstrack *t, struct mx_wait *w)
{
    w->used = false;
    if (w->fallbacks_failed > 0)
        mx_failed(t, &w->mx, w->detail);
    else if (w->mx_failed)
        mx_failed(t, &w->mx, w->mx_detail);
}

/* An A/AAAA lookup finished: does it answer a domain-without-MX verdict? */
static void wait_feed(struct dnstrack *t, const struct dns_lookup *l)
{
    for (uint32_t i = 0; i < t->config.mx_wait_capacity; i++) {
        struct mx_wait *w = &t->waits[i];
        if (!w->used || !addr_eq(&w->mx.flow.client, &l->flow.client) ||
            !ascii_eq_ci(w->mx.qname, l->qname))
            continue;
        if (dns_fallback_failed(l, w->detail, sizeof w->detail))
            w->fallbacks_failed++;
        else if (l->status == DNS_LOOKUP_ANSWERED && l->has_address)
            w->used = false;          /* Postfix delivers to the address: no failure */
    }
}

/* Starts waiting for the fallback of an MX lookup that found no MX. Address lookups by
 * the same client for the name that are already under way or answered count too. */
static void wait_add(struct dnstrack *t, const struct dns_lookup *mx, const char *mx_detail)
{
    struct mx_wait *w = &t->waits[0];
    for (uint32_t i = 0; i < t->config.mx_wait_capacity && w->used; i++)
        if (!t->waits[i].used || t->waits[i].seq < w->seq)
            w = &t->waits[i];
    if (w->used) {                    /* full: the oldest verdict is dropped */
        t->stats.mx_waits_evicted++;
        w->used = false;
    }
    memset(w, 0, sizeof *w);
    w->used = true;
    w->mx = *mx;
    if (mx_detail) {
        w->mx_failed = true;
        snprintf(w->mx_detail, sizeof w->mx_detail, "%s", mx_detail);
    }
    w->last_us = mx->ts_us + (mx->response_us > 0 ? mx->response_us : 0);
    w->seq = ++t->wait_seq;
    for (uint32_t i = 0; i < t->capacity && w->used; i++) {
        const struct entry *e = &t->entries[i];
        if (!e->used || !is_address_type(e->lookup.qtype) ||
            !addr_eq(&e->lookup.flow.client, &mx->flow.client) ||
            !ascii_eq_ci(e->lookup.qname, mx->qname))
            continue;
        if (!e->answered) {
            if (e->lookup.ts_us > w->last_us)
                w->last_us = e->lookup.ts_us;
        } else if (dns_fallback_failed(&e->lookup, w->detail, sizeof w->detail)) {
            w->fallbacks_failed++;
        } else if (e->lookup.has_address) {
            w->used = false;
        }
    }
}

/* A lookup is finished: report it, then judge it as an MX lookup or as a fallback. */
static void finish(struct dnstrack *t, const struct dns_lookup *l)
{
    char detail[DNS_DETAIL_MAX];
    t->stats.lookups++;
    if (t->config.on_lookup)
        t->config.on_lookup(t->config.ctx, l);
    switch (dns_mx_classify(l, detail, sizeof detail)) {
    case DNS_MX_FAILED:
        /* After NXDOMAIN, Postfix still asks for A/AAAA of the name and logs the last
         * of those; without them, the MX answer is the reason. */
        if (l->status == DNS_LOOKUP_ANSWERED && l->rcode == DNS_RCODE_NXDOMAIN)
            wait_add(t, l, detail);
        else
            mx_failed(t, l, detail);
        break;
    case DNS_MX_NODATA:
        wait_add(t, l, NULL);
        break;
    default:
        break;
    }
    if (is_address_type(l->qtype))
        wait_feed(t, l);
}

static void timeout_entry(struct dnstrack *t, uint32_t i, bool evicted, bool at_end)
{
    struct entry *e = &t->entries[i];
    bool pending = !e->answered;
    entry_remove(t, i);               /* the slot keeps its data until reused */
    if (!pending)
        return;
    e->lookup.status = DNS_LOOKUP_TIMEOUT;
    e->lookup.evicted = evicted;
    e->lookup.at_end = at_end;
    t->stats.timeouts++;
    if (evicted)
        t->stats.evicted++;
    finish(t, &e->lookup);
}

/* Full table: forget one of the 8 oldest entries that is already answered, or else time
 * out the oldest query early (counted as evicted). */
static void make_room(struct dnstrack *t)
{
    uint32_t i = t->oldest;
    for (int look = 0; look < 8 && i != NONE; look++, i = t->entries[i].newer)
        if (t->entries[i].answered) {
            entry_remove(t, i);
            return;
        }
    timeout_entry(t, t->oldest, true, false);
}

/* --- queries and responses ----------------------------------------------------------- */

void dnstrack_query(struct dnstrack *t, const struct dns_message *m,
                    const struct flow *flow, int64_t ts_us)
{
    if (m->qr || m->opcode != 0 || !m->has_question || !dns_type_is_kept(m->qtype)) {
        t->stats.ignored++;
        return;
    }
    t->stats.queries++;
    struct entry *e = entry_find(t, flow, m->id, m->qname, m->qtype);
    if (e) {
        t->stats.retransmits++;
        if (!e->answered)
            e->lookup.retransmits++;
        return;
    }
    if (is_address_type(m->qtype))    /* a fallback under way keeps its MX verdict open */
        for (uint32_t i = 0; i < t->config.mx_wait_capacity; i++) {
            struct mx_wait *w = &t->waits[i];
            if (w->used && addr_eq(&w->mx.flow.client, &flow->client) &&
                ascii_eq_ci(w->mx.qname, m->qname) && ts_us > w->last_us)
                w->last_us = ts_us;
        }
    if (t->free_head == NONE)
        make_room(t);

    uint32_t i = t->free_head;
    e = &t->entries[i];
    t->free_head = e->hash_next;
    memset(&e->lookup, 0, sizeof e->lookup);
    e->used = true;
    e->answered = false;
    e->lookup.flow = *flow;
    e->lookup.id = m->id;
    memcpy(e->lookup.qname, m->qname, sizeof e->lookup.qname);
    e->lookup.qtype = m->qtype;
    e->lookup.rcode = -1;
    e->lookup.response_us = -1;
    e->lookup.ts_us = ts_us;
    e->bucket = key_hash(flow, m->id) & t->bucket_mask;
    e->hash_next = t->buckets[e->bucket];
    t->buckets[e->bucket] = i;
    e->older = t->newest;
    e->newer = NONE;
    if (t->newest != NONE)
        t->entries[t->newest].newer = i;
    else
        t->oldest = i;
    t->newest = i;
    t->count++;
}

/* Joins the kept answers as "a,b,c", ending in "..." when they do not all fit. */
static void summarize(struct dns_lookup *l, const struct dns_message *m)
{
    size_t used = 0;
    l->answers[0] = '\0';
    for (unsigned i = 0; i < m->answer_count; i++) {
        const struct dns_answer *a = &m->answers[i];
        size_t n = strlen(a->data);
        if (used + (used > 0) + n + 4 > sizeof l->answers) {
            memcpy(l->answers + used, "...", 4);
            break;
        }
        if (used > 0)
            l->answers[used++] = ',';
        memcpy(l->answers + used, a->data, n + 1);
        used += n;
    }
}

void dnstrack_response(struct dnstrack *t, const struct dns_message *m,
                       const struct flow *flow, int64_t ts_us)
{
    if (!m->qr || m->opcode != 0) {
        t->stats.ignored++;
        return;
    }
    t->stats.responses++;
    struct entry *e = m->has_question ? entry_find(t, flow, m->id, m->qname, m->qtype)
                                      : entry_find(t, flow, m->id, NULL, 0);
    if (!e) {
        t->stats.unmatched_responses++;
        return;
    }
    if (e->answered) {
        t->stats.duplicate_responses++;
        return;
    }
    struct dns_lookup *l = &e->lookup;
    e->answered = true;
    l->status = DNS_LOOKUP_ANSWERED;
    l->rcode = m->rcode;
    l->tc = m->tc;
    l->ancount = m->ancount;
    l->response_us = ts_us >= l->ts_us ? ts_us - l->ts_us : 0;
    unsigned mx_count = 0;
    for (unsigned i = 0; i < m->answer_count; i++) {
        uint16_t type = m->answers[i].type;
        if (type == DNS_TYPE_MX) {
            mx_count++;
            l->has_mx = true;
            l->null_mx = strcmp(m->answers[i].data, "0 .") == 0;
        }
        if (is_address_type(type))
            l->has_address = true;
    }
    if (mx_count != 1)
        l->null_mx = false;
    summarize(l, m);
    finish(t, l);
}

void dnstrack_expire(struct dnstrack *t, int64_t now_us, int64_t timeout_us)
{
    while (t->oldest != NONE && t->entries[t->oldest].lookup.ts_us + timeout_us <= now_us)
        timeout_entry(t, t->oldest, false, false);
    for (uint32_t i = 0; i < t->config.mx_wait_capacity; i++)
        if (t->waits[i].used && t->waits[i].last_us + timeout_us <= now_us)
            wait_settle(t, &t->waits[i]);
}

void dnstrack_flush(struct dnstrack *t)
{
    while (t->oldest != NONE)
        timeout_entry(t, t->oldest, false, true);
    for (uint32_t i = 0; i < t->config.mx_wait_capacity; i++)
        if (t->waits[i].used)
            wait_settle(t, &t->waits[i]);
}

/* --- verdict texts ---------------------------------------------------------------- */

/* Postfix dns_strerror() wording for what the resolver library made of the answer. */
static const char *resolver_text(const struct dns_lookup *l)
{
    if (l->status == DNS_LOOKUP_TIMEOUT)
        return "Host not found, try again";
    switch (l->rcode) {
    case DNS_RCODE_NOERROR:
        return "Host found but no data record of requested type";
    case DNS_RCODE_NXDOMAIN:
        return "Host not found";
    case DNS_RCODE_SERVFAIL:
    case DNS_RCODE_REFUSED:
        return "Host not found, try again";
    default:
        return "Non-recoverable error";
    }
}

static void detail_write(const struct dns_lookup *l, char *detail, size_t cap)
{
    char tbuf[16];
    if (cap > 0)
        snprintf(detail, cap, "Name service error for name=%s type=%s: %s", l->qname,
                 dns_type_name(l->qtype, tbuf), resolver_text(l));
}

enum dns_mx_verdict dns_mx_classify(const struct dns_lookup *l, char *detail, size_t cap)
{
    if (l->qtype != DNS_TYPE_MX)
        return DNS_MX_NOT_MX;
    if (l->status == DNS_LOOKUP_ANSWERED && l->rcode == DNS_RCODE_NOERROR) {
        if (l->null_mx) {
            if (cap > 0)
                snprintf(detail, cap, "Domain %s does not accept mail (nullMX)", l->qname);
            return DNS_MX_FAILED;
        }
        if (l->has_mx || l->tc)
            return DNS_MX_OK;
        return DNS_MX_NODATA;
    }
    detail_write(l, detail, cap);
    return DNS_MX_FAILED;
}

bool dns_lookup_failed_mx(const struct dns_lookup *l, char *detail, size_t cap)
{
    return dns_mx_classify(l, detail, cap) == DNS_MX_FAILED;
}

bool dns_fallback_failed(const struct dns_lookup *addr, char *detail, size_t cap)
{
    if (!is_address_type(addr->qtype))
        return false;
    if (addr->status == DNS_LOOKUP_ANSWERED && addr->rcode == DNS_RCODE_NOERROR &&
        (addr->has_address || addr->tc))
        return false;
    detail_write(addr, detail, cap);
    return true;
}

/* --- recent inbound recipients ----------------------------------------------------- */

struct recent_rcpts {
    struct recent_rcpt *ring;
    size_t capacity, next, count;
};

struct recent_rcpts *recent_rcpt_new(size_t capacity)
{
    struct recent_rcpts *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->capacity = capacity ? capacity : 1024;
    r->ring = calloc(r->capacity, sizeof *r->ring);
    if (!r->ring) {
        free(r);
        return NULL;
    }
    return r;
}

void recent_rcpt_free(struct recent_rcpts *r)
{
    if (!r)
        return;
    free(r->ring);
    free(r);
}

/* Lower-cases an ASCII domain into dst and drops one final dot. */
static void domain_normalize(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src[n] && n + 1 < cap; n++)
        dst[n] = (char)(src[n] >= 'A' && src[n] <= 'Z' ? src[n] - 'A' + 'a' : src[n]);
    if (n > 0 && dst[n - 1] == '.')
        n--;
    dst[n] = '\0';
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void recent_rcpt_add(struct recent_rcpts *r, const char *sender, const char *recipient,
                     const char *message_id, int64_t ts_us)
{
    const char *at = recipient ? strrchr(recipient, '@') : NULL;
    if (!at || at[1] == '\0')
        return;
    struct recent_rcpt *e = &r->ring[r->next];
    domain_normalize(e->domain, sizeof e->domain, at + 1);
    copy_str(e->sender, sizeof e->sender, sender);
    copy_str(e->recipient, sizeof e->recipient, recipient);
    copy_str(e->message_id, sizeof e->message_id, message_id);
    e->ts_us = ts_us;
    r->next = (r->next + 1) % r->capacity;
    if (r->count < r->capacity)
        r->count++;
}

const struct recent_rcpt *recent_rcpt_find(const struct recent_rcpts *r, const char *domain,
                                           int64_t now_us, int64_t window_us)
{
    char want[RECENT_ADDR_MAX];
    domain_normalize(want, sizeof want, domain);
    for (size_t k = 1; k <= r->count; k++) {
        const struct recent_rcpt *e = &r->ring[(r->next + r->capacity - k) % r->capacity];
        if (e->ts_us <= now_us && now_us - e->ts_us <= window_us &&
            strcmp(e->domain, want) == 0)
            return e;
    }
    return NULL;
}
