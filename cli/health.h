/* health.h — is what the sensor sees the truth? Per minute of capture time it counts the
 * connections seen from one side only (per server port), the sessions that lost segments
 * and the packets the kernel dropped, and turns them into one warning text for the log,
 * the database (sensor_stats.health), `mailtap stats` and the console's status bar. */
#ifndef MAILTAP_HEALTH_H
#define MAILTAP_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#define HEALTH_WINDOW_US (60LL * 1000000)
#define HEALTH_PORTS 8            /* server ports followed per window; more are pooled */
#define HEALTH_ONE_SIDED_MIN 3    /* one-sided connections before a port is suspect */
#define HEALTH_TEXT_MAX 512

struct health_port {
    uint16_t port;
    uint32_t one_sided, server_only, answered;
};

struct capture_health {
    int64_t window_start_us;
    struct health_port ports[HEALTH_PORTS];
    uint64_t gaps;                /* sessions that lost packets in this window */
    uint64_t drops_at_start;      /* kernel + interface drops when the window began */
    bool drops_known;
    char text[HEALTH_TEXT_MAX];   /* the last full window's warning; "" when all is well */
};

void health_init(struct capture_health *health);
/* A connection seen from one side only: its client spoke but its server was never seen,
 * or (server_side) the other way round. */
void health_one_sided(struct capture_health *health, uint16_t server_port, bool server_side);
/* A connection whose server was seen (it sent bytes). */
void health_answered(struct capture_health *health, uint16_t server_port);
/* A session with a sequence hole or open during kernel drops. */
void health_gap(struct capture_health *health);
/* Closes the window when it is a minute old; drops_total: kernel + interface drops so
 * far. Returns true when the warning text changed (log it). */
bool health_tick(struct capture_health *health, int64_t now_us, uint64_t drops_total);
/* The end of the capture: closes the window however old it is (a short file still gets
 * its verdict). Returns true when the warning text changed. */
bool health_finish(struct capture_health *health, int64_t now_us, uint64_t drops_total);

#endif
