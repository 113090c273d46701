/* reassembly.h — TCP reassembly of mail connections behind an interface of our own:
 * a stream opened, data from one side at a time T, closed how. libnids does the work;
 * this layer feeds it raw IP (IPv6 through synthetic IPv4 addresses), switches off
 * what costs or loses data (checksums, port-scan detection), reports connection
 * attempts libnids never reports, times out idle streams and counts evictions.
 * libnids is process-global, so there is one reassembler per process. */
#ifndef MAILTAP_REASSEMBLY_H
#define MAILTAP_REASSEMBLY_H

#include "capture/linklayer.h"
#include "reassembly/attempts.h"
#include "reassembly/flow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum stream_side { STREAM_FROM_CLIENT, STREAM_FROM_SERVER };

enum stream_end {
    STREAM_CLOSED,       /* FIN both ways */
    STREAM_RESET,
    STREAM_IDLE_TIMEOUT, /* nothing for reassembly_config.idle_timeout_us */
    STREAM_EVICTED,      /* libnids' table was full */
    STREAM_END_OF_INPUT, /* also an attempt the input's end caught within the SYN timeout */
    STREAM_REFUSED,      /* attempts only: SYN answered by RST */
    STREAM_UNANSWERED,   /* attempts only: SYN never answered */
    STREAM_ONE_SIDED,    /* attempts only: client traffic without any server packet */
    STREAM_SERVER_ONLY,  /* attempts only: a SYN-ACK (and server traffic) answering no SYN
                            seen, nothing from the client: its side was not captured */
    STREAM_NOT_ESTABLISHED, /* attempts only: SYN-ACK seen, never established (client never
                               completed the handshake, or libnids' full table dropped it) */
};

struct reassembly_events {
    void *ctx;
    /* A connection to a collected port was established. Return the per-stream handle
     * given back in data/closed, or NULL to ignore the stream. */
    void *(*opened)(void *ctx, const struct flow *flow, int64_t ts_us);
    void (*data)(void *ctx, void *stream, enum stream_side from, const char *bytes,
                 size_t len, int64_t ts_us);
    /* Always called exactly once for every stream opened() accepted. data_lost: segments
     * were queued behind a hole in the sequence space when it ended: packets of this
     * connection are missing from the capture and what followed the hole was never
     * delivered (libnids waits for a hole to fill; it never skips one). */
    void (*closed)(void *ctx, void *stream, enum stream_end how, bool data_lost, int64_t ts_us);
    /* A connection attempt that never became a stream (how: an attempts-only ending, or
     * STREAM_END_OF_INPUT for one the input's end caught within the SYN timeout, only in
     * reassembly_finish()): its SYN's time (syn_us), its last
     * packet's (last_us), and for STREAM_ONE_SIDED what the client sent (client_bytes,
     * and what was kept of it: attempts_data_next()). Valid during the call. */
    void (*attempt)(void *ctx, const struct flow *flow, enum stream_end how,
                    const struct attempt *attempt);
    /* A UDP datagram to or from a collected UDP port (DNS); may be NULL. flow->client is
     * the side that is not on the collected port. */
    void (*datagram)(void *ctx, const struct flow *flow, enum stream_side from,
                     const uint8_t *payload, size_t len, int64_t ts_us);
    /* A segment of the stream (from that side) overlapped data seen before with different
     * bytes; libnids delivered the first copy (reassembly/overlap.h). May be NULL. */
    void (*conflict)(void *ctx, void *stream, enum stream_side from, int64_t ts_us);
    /* A RST from that side reached the stream (libnids reports the reset, never its
     * sender); called before closed(). May be NULL. */
    void (*reset)(void *ctx, void *stream, enum stream_side from, int64_t ts_us);
    /* A FIN from that side reached the stream (libnids reports the close, never who began
     * it, nor a close whose other half the capture missed). May be NULL. */
    void (*fin)(void *ctx, void *stream, enum stream_side from, int64_t ts_us);
    /* A packet of the stream was cut by the capture's snap length: it is not given to
     * libnids, so its bytes are a gap (the stream ends with data_lost). IPv4. May be NULL. */
    void (*snap_cut)(void *ctx, void *stream, int64_t ts_us);
};

struct reassembly_config {
    uint32_t max_streams;        /* libnids table size; it evicts at 3/4 of it */
    int64_t idle_timeout_us;     /* 0: never time out */
    int64_t syn_timeout_us;      /* an unanswered SYN is settled after this */
    int64_t answer_window_us;    /* at the end of the input, a SYN (or handshake) younger
                                    than this is cut, not unanswered: a live server answers
                                    in milliseconds, and a client resends its SYN after 1 s */
    uint32_t max_attempts;       /* pending SYNs remembered */
    uint8_t ports[65536 / 8];    /* bitmap of TCP server ports to collect */
    uint8_t udp_ports[65536 / 8]; /* bitmap of UDP server ports handed to datagram() */
};

struct reassembly_stats {
    uint64_t ip_packets, ipv6_packets, tcp_collected, udp_collected, not_collected;
    uint64_t malformed, ipv6_unsupported, ipv6_table_full, reserved_v4_dropped, snap_truncated;
    uint64_t streams_opened, streams_closed, streams_reset, streams_idle, streams_evicted,
             streams_open_at_end, streams_with_gaps;
    uint64_t overlap_conflicts;   /* segments that contradicted data seen before */
    uint64_t attempts_refused, attempts_unanswered, attempts_one_sided, attempts_not_established,
             attempts_server_only, attempts_cut;   /* cut: pending when the input ended */
    uint64_t nids_warnings;
    uint32_t concurrent, peak_concurrent;
};

void reassembly_config_defaults(struct reassembly_config *config);
static inline void reassembly_config_add_port(struct reassembly_config *config, uint16_t port)
{
    config->ports[port >> 3] |= (uint8_t)(1u << (port & 7));
}

/* Starts libnids. Returns 0, or -1 with a message in err. */
int reassembly_start(const struct reassembly_config *config,
                     const struct reassembly_events *events, char *err, size_t errlen);

/* One IP packet (as found by link_find_ip) captured at ts_us. */
void reassembly_ip_packet(const struct ip_frame *frame, int64_t ts_us);

/* Settles what has waited too long: idle streams, unanswered SYNs. Cheap; call it for
 * every packet or at least once a second. */
void reassembly_tick(int64_t now_us);

/* Streams being followed now (0 when not running): the sensor's statistics. */
uint32_t reassembly_concurrent(void);

/* End of input: every pending attempt and open stream is reported, libnids stops,
 * and the final counters are copied out. */
void reassembly_finish(int64_t now_us, struct reassembly_stats *final_stats);


#endif
