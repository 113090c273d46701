/* health.c — the capture-health window: counters in, one warning text out. */
#include "cli/health.h"

#include <stdio.h>
#include <string.h>

void health_init(struct capture_health *health)
{
    memset(health, 0, sizeof *health);
}

/* The port's counters; the last slot pools the ports that did not fit. */
static struct health_port *port_slot(struct capture_health *health, uint16_t port)
{
    for (int i = 0; i < HEALTH_PORTS - 1; i++) {
        struct health_port *slot = &health->ports[i];
        if (slot->port == port)
            return slot;
        if (slot->port == 0) {
            slot->port = port;
            return slot;
        }
    }
    return &health->ports[HEALTH_PORTS - 1];
}

void health_one_sided(struct capture_health *health, uint16_t server_port, bool server_side)
{
    struct health_port *slot = port_slot(health, server_port);
    if (server_side)
        slot->server_only++;
    else
        slot->one_sided++;
}

void health_answered(struct capture_health *health, uint16_t server_port)
{
    port_slot(health, server_port)->answered++;
}

void health_gap(struct capture_health *health)
{
    health->gaps++;
}

/* Appends one warning, "; "-separated, cut at the text's capacity. */
static void text_add(char *text, size_t *len, const char *piece)
{
    int n = snprintf(text + *len, HEALTH_TEXT_MAX - *len, "%s%s", *len ? "; " : "", piece);
    if (n > 0)
        *len += (size_t)n;
    if (*len > HEALTH_TEXT_MAX - 1)
        *len = HEALTH_TEXT_MAX - 1;
}

static bool window_close(struct capture_health *health, int64_t now_us, uint64_t drops_total);

bool health_tick(struct capture_health *health, int64_t now_us, uint64_t drops_total)
{
    if (!health->drops_known) {
        health->drops_known = true;
        health->drops_at_start = drops_total;
        health->window_start_us = now_us;
        return false;
    }
    if (now_us - health->window_start_us < HEALTH_WINDOW_US)
        return false;
    return window_close(health, now_us, drops_total);
}

bool health_finish(struct capture_health *health, int64_t now_us, uint64_t drops_total)
{
    /* A window in which nothing was counted says nothing new: the last verdict stands. */
    bool counted = health->gaps > 0 || drops_total > health->drops_at_start;
    for (int i = 0; i < HEALTH_PORTS; i++)
        counted |= health->ports[i].one_sided > 0 || health->ports[i].server_only > 0 ||
                   health->ports[i].answered > 0;
    return health->drops_known && counted && window_close(health, now_us, drops_total);
}

/* "45 s", "12 min", "28 h": a window is a minute on a live link, but in a capture file
 * read later it spans whatever quiet time the file holds ("in the last 101195 s"). */
static const char *span_text(char *buf, size_t cap, unsigned long long seconds)
{
    if (seconds < 120)
        snprintf(buf, cap, "%llu s", seconds);
    else if (seconds < 120 * 60)
        snprintf(buf, cap, "%llu min", seconds / 60);
    else
        snprintf(buf, cap, "%llu h", seconds / 3600);
    return buf;
}

static bool window_close(struct capture_health *health, int64_t now_us, uint64_t drops_total)
{
    char text[HEALTH_TEXT_MAX] = "", piece[256], span[32];
    size_t len = 0;
    unsigned long long seconds = now_us > health->window_start_us
                                     ? (unsigned long long)((now_us - health->window_start_us) / 1000000) : 0;
    span_text(span, sizeof span, seconds);
    for (int i = 0; i < HEALTH_PORTS; i++) {
        const struct health_port *p = &health->ports[i];
        /* Some one-sided connections are normal (a client giving up on a dead server is
         * an unanswered SYN, not this; a capture starts mid-handshake); a port where NO
         * connection was seen both ways is the mirror. */
        if (p->answered > 0)
            continue;
        char where[32];
        if (i == HEALTH_PORTS - 1)
            snprintf(where, sizeof where, "other ports");
        else
            snprintf(where, sizeof where, "port %u", p->port);
        for (int server_side = 0; server_side < 2; server_side++) {
            uint32_t count = server_side ? p->server_only : p->one_sided;
            if (count < HEALTH_ONE_SIDED_MIN)
                continue;
            snprintf(piece, sizeof piece, "only %s traffic on %s for %s (%u connections): "
                     "check that the mirror port copies both directions",
                     server_side ? "server-to-client" : "client-to-server", where, span, count);
            text_add(text, &len, piece);
        }
    }
    if (health->gaps > 0) {
        snprintf(piece, sizeof piece, "%llu session%s lost packets in the last %s",
                 (unsigned long long)health->gaps, health->gaps == 1 ? "" : "s", span);
        text_add(text, &len, piece);
    }
    if (drops_total > health->drops_at_start) {
        snprintf(piece, sizeof piece, "the kernel dropped %llu packets in the last %s: "
                 "raise -B or use --workers",
                 (unsigned long long)(drops_total - health->drops_at_start), span);
        text_add(text, &len, piece);
    }
    bool changed = strcmp(text, health->text) != 0;
    memcpy(health->text, text, sizeof text);
    memset(health->ports, 0, sizeof health->ports);
    health->gaps = 0;
    health->drops_at_start = drops_total;
    health->window_start_us = now_us;
    return changed;
}
