/* attempt_limit.c — per-endpoint minute windows for failed connection attempts. */
#include "cli/attempt_limit.h"

#include <math.h>
#include <string.h>

void attempt_limit_init(struct attempt_limit *limit, uint32_t rows_per_minute)
{
    memset(limit, 0, sizeof *limit);
    limit->rows_per_minute = rows_per_minute;
}

/* IPv4 uses the first 4 bytes only; the rest is not set. */
static size_t address_len(const struct ip_address *address)
{
    return address->family == 4 ? 4 : sizeof address->bytes;
}

static bool same_endpoint(const struct attempt_window *w, const struct flow *flow,
                          enum stream_end how)
{
    return w->how == how && w->flow.server_port == flow->server_port &&
           w->flow.server.family == flow->server.family &&
           memcmp(w->flow.server.bytes, flow->server.bytes, address_len(&flow->server)) == 0;
}

static uint32_t address_hash(const struct ip_address *address)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (size_t i = 0; i < address_len(address); i++)
        h = (h ^ address->bytes[i]) * 16777619u;
    return h;
}

/* Linear counting over the sketch: n ≈ -m ln(zero bits / m); accurate to a few percent
 * up to about m, a lower bound (*saturated) past it. */
static uint32_t sketch_estimate(const uint8_t *bits, size_t bytes, bool *saturated)
{
    size_t m = bytes * 8, zeros = 0;
    for (size_t i = 0; i < bytes; i++)
        zeros += 8 - (size_t)__builtin_popcount(bits[i]);
    *saturated = zeros < m / 50;
    if (zeros == 0)
        return (uint32_t)m;
    uint32_t n = (uint32_t)lround(-(double)m * log((double)zeros / (double)m));
    return *saturated && n < m ? (uint32_t)m : n;
}

static void window_start(struct attempt_window *w, const struct flow *flow, enum stream_end how,
                         int64_t syn_us, bool pooled)
{
    memset(w, 0, sizeof *w);
    w->used = true;
    w->flow = *flow;
    w->how = how;
    w->start_us = syn_us;
    w->over.pooled = pooled;
}

bool attempt_limit_admit(struct attempt_limit *limit, const struct flow *flow,
                         enum stream_end how, int64_t syn_us)
{
    if (limit->rows_per_minute == 0)
        return true;
    struct attempt_window *w = NULL, *free_slot = NULL;
    for (int i = 0; i < ATTEMPT_ENDPOINTS - 2 && !w; i++) {
        struct attempt_window *c = &limit->windows[i];
        if (c->used && same_endpoint(c, flow, how))
            w = c;
        else if (!c->used && !free_slot)
            free_slot = c;
    }
    if (!w && free_slot) {
        w = free_slot;
        window_start(w, flow, how, syn_us, false);
    }
    if (!w) {   /* every slot busy: one pooled window per failure for the rest */
        w = &limit->windows[ATTEMPT_ENDPOINTS - (how == STREAM_REFUSED ? 1 : 2)];
        if (!w->used)
            window_start(w, flow, how, syn_us, true);
    }
    if (w->stored < limit->rows_per_minute) {
        w->stored++;
        return true;
    }
    struct attempt_summary *over = &w->over;
    if (over->counted == 0) {
        over->first_us = syn_us;
        over->how = how;
    }
    over->counted++;
    over->last_us = syn_us > over->last_us ? syn_us : over->last_us;
    over->flow = *flow;
    if (!over->pooled)
        over->flow.server = w->flow.server, over->flow.server_port = w->flow.server_port;
    uint32_t h = address_hash(&flow->client) % (sizeof w->seen * 8);
    w->seen[h / 8] |= (uint8_t)(1u << (h % 8));
    return false;
}

void attempt_limit_flush(struct attempt_limit *limit, int64_t now_us, bool all,
                         attempt_summary_fn callback, void *ctx)
{
    for (int i = 0; i < ATTEMPT_ENDPOINTS; i++) {
        struct attempt_window *w = &limit->windows[i];
        if (!w->used || (!all && now_us - w->start_us < ATTEMPT_WINDOW_US))
            continue;
        if (w->over.counted > 0) {
            w->over.sources = sketch_estimate(w->seen, sizeof w->seen, &w->over.sources_saturated);
            callback(ctx, &w->over);
        }
        w->used = false;
    }
}
