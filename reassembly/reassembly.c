/* reassembly.c — the libnids wrapper: IP in, stream events out. */
#include "reassembly.h"

#include "reassembly/attempts.h"
#include "reassembly/ipv6map.h"
#include "reassembly/overlap.h"

#include <arpa/inet.h>
#include <nids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A refused connection attempt (SYN answered by a RST) is reported once it has been quiet
 * this long: clients retry a refused SYN within about a second (Windows twice, 0.5 s
 * apart), and those retries belong to the same row; the SYN timeout (30 s) made a live
 * "is port 25 closed?" test wait half a minute for its row. */
#define REFUSED_QUIET_US (3LL * 1000000)

enum {
    IPV4_HEADER_MIN = 20,
    IPV6_HEADER = 40,
    TCP_HEADER_MIN = 20,
    TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_RST = 0x04, TCP_ACK = 0x10,
    IPV6_EXT_HEADERS_MAX = 8,
    SYNTH_PACKET_MAX = IPV4_HEADER_MIN + 65535,
    /* Above this many open streams, each stream's receive buffers are given back as soon
     * as their bytes are delivered (see release_delivered()), and the streams' records no
     * longer stay in the cache from one segment to the next (see prepare_segment()). */
    MANY_STREAMS = 1024,
    /* Receive buffers given back, kept to be lent again (lend_buffer()); libnids' own
     * size for a segment under 2 KiB, the ones it grew are freed. */
    SPARE_BUFFERS = 16,
    NIDS_BUFFER_BYTES = 4096,
};

/* Our record of a stream libnids is following for us, on a list in activity order so idle
 * streams are found from the old end without scanning. The order is last_us's give or
 * take IDLE_LIST_MOVE_US: a delivery moves a stream to the newest end only when it was
 * put there that long ago (unlinking writes to both neighbours, two cache misses with
 * 20,000 streams open; moving at every delivery was 3% of the decoding thread there).
 * reassembly_tick() stops at the first stream that is not idle, so a stream times out
 * never early and at most IDLE_LIST_MOVE_US late. */
#define IDLE_LIST_MOVE_US 1000000
struct stream_slot {
    struct tcp_stream *nids;
    struct tuple4 addr;         /* libnids' key of it: still_ours() */
    void *user;
    int64_t last_us;            /* the last delivery */
    int64_t queued_us;          /* when it was last put at the newest end */
    struct stream_slot *newer, *older;
};

struct reassembler {
    struct reassembly_config config;
    struct reassembly_events events;
    struct reassembly_stats stats;
    struct ipv6map *ipv6;
    struct attempts *attempts;
    struct overlap_table *overlaps;
    struct stream_slot *newest, *oldest;
    int64_t now_us;
    pcap_t *raw_dead;   /* a DLT_RAW descriptor: libnids then takes IP with no link header */
    char *spare[SPARE_BUFFERS];   /* last given back on top: still in the cache */
    size_t spare_count;
    uint8_t synth[SYNTH_PACKET_MAX];
};

/* libnids calls back through plain functions with no context pointer: the one global
 * it forces on us. */
static struct reassembler *active;

static uint16_t read_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static bool port_collected(uint16_t port)
{
    return active->config.ports[port >> 3] & (1u << (port & 7));
}

static bool udp_port_collected(uint16_t port)
{
    return active->config.udp_ports[port >> 3] & (1u << (port & 7));
}

void reassembly_config_defaults(struct reassembly_config *config)
{
    memset(config, 0, sizeof *config);
    config->max_streams = 32768;
    config->idle_timeout_us = 31LL * 60 * 1000000;   /* longer than IMAP IDLE's 29 min */
    config->syn_timeout_us = 30LL * 1000000;         /* covers SYN retransmissions */
    config->answer_window_us = 3LL * 1000000;        /* the first resend, and some */
    config->max_attempts = 16384;   /* ~180 bytes each: a held SYN and its bookkeeping */
    static const uint16_t mail_ports[] = { 25, 465, 587, 2525, 110, 995, 143, 993 };
    for (size_t i = 0; i < sizeof mail_ports / sizeof mail_ports[0]; i++)
        reassembly_config_add_port(config, mail_ports[i]);
    config->udp_ports[53 >> 3] |= 1u << (53 & 7);   /* DNS */
}

/* --- addresses ------------------------------------------------------------------ */

static void address_from_nids(uint32_t v4_network, struct ip_address *out)
{
    uint32_t host = ntohl(v4_network);
    memset(out, 0, sizeof *out);
    if (ipv6map_is_synthetic(host) && ipv6map_from_v4(active->ipv6, host, out->bytes)) {
        out->family = 6;
        return;
    }
    out->family = 4;
    memcpy(out->bytes, &v4_network, 4);
}

static void flow_from_key(const struct attempt_key *key, struct flow *flow)
{
    address_from_nids(key->client, &flow->client);
    address_from_nids(key->server, &flow->server);
    flow->client_port = key->client_port;
    flow->server_port = key->server_port;
}

/* --- stream bookkeeping -------------------------------------------------------- */

static void slot_unlink(struct stream_slot *slot)
{
    if (slot->newer)
        slot->newer->older = slot->older;
    else
        active->newest = slot->older;
    if (slot->older)
        slot->older->newer = slot->newer;
    else
        active->oldest = slot->newer;
    slot->newer = slot->older = NULL;
}

static void slot_push_newest(struct stream_slot *slot)
{
    slot->queued_us = active->now_us;
    slot->older = active->newest;
    slot->newer = NULL;
    if (active->newest)
        active->newest->newer = slot;
    else
        active->oldest = slot;
    active->newest = slot;
}

/* The stream is over for the layer above; the record stays (slot_close() frees it). */
static void slot_end(struct stream_slot *slot, enum stream_end how)
{
    slot_unlink(slot);
    if (slot->nids)
        slot->nids->user = NULL;
    active->stats.concurrent--;
    /* Out-of-order segments still queued: a hole that was never filled. */
    bool data_lost = slot->nids && (slot->nids->client.list || slot->nids->server.list);
    active->stats.streams_with_gaps += data_lost;
    active->events.closed(active->events.ctx, slot->user, how, data_lost, active->now_us);
    slot->user = NULL;
}

static void slot_close(struct stream_slot *slot, enum stream_end how)
{
    slot_end(slot, how);
    free(slot);
}

static void deliver(struct stream_slot *slot, struct half_stream *half, enum stream_side from)
{
    if (half->count_new <= 0)
        return;
    int available = half->count - half->offset;
    const char *bytes = half->data + available - half->count_new;
    active->events.data(active->events.ctx, slot->user, from, bytes, (size_t)half->count_new,
                        active->now_us);
}

/* libnids keeps a receive buffer per direction (4 KiB at least) for the life of the
 * stream, although we take every byte it delivers at once: with 20,000 idle connections
 * that is 160 MB holding nothing. Once many streams are open we free a buffer right after
 * its bytes were delivered. This relies on libnids 1.26's half_stream contract, read in
 * its tcp.c: after the callback it moves count - offset - read bytes (0 here: we never
 * call nids_discard) and the next segment allocates afresh when data is NULL. Below the
 * threshold the buffers are kept: re-allocating per segment costs time and the memory is
 * small. */
static void release_delivered(struct half_stream *half)
{
    if (!half->data)
        return;
    if (half->bufsize == NIDS_BUFFER_BYTES && active->spare_count < SPARE_BUFFERS)
        active->spare[active->spare_count++] = half->data;
    else
        free(half->data);
    half->data = NULL;
    half->bufsize = 0;
}

static void on_nids_tcp(struct tcp_stream *nids, void **param)
{
    struct stream_slot *slot = *param;
    switch (nids->nids_state) {
    case NIDS_JUST_EST: {
        struct attempt_key key = { .client = nids->addr.saddr, .server = nids->addr.daddr,
                                   .client_port = nids->addr.source,
                                   .server_port = nids->addr.dest };
        attempts_on_established(active->attempts, &key);
        if (!port_collected(nids->addr.dest))
            return;
        struct flow flow;
        address_from_nids(nids->addr.saddr, &flow.client);
        address_from_nids(nids->addr.daddr, &flow.server);
        flow.client_port = nids->addr.source;
        flow.server_port = nids->addr.dest;
        void *user = active->events.opened(active->events.ctx, &flow, active->now_us);
        if (!user)
            return;
        slot = calloc(1, sizeof *slot);
        if (!slot) {
            active->events.closed(active->events.ctx, user, STREAM_END_OF_INPUT, false, active->now_us);
            return;
        }
        slot->nids = nids;
        slot->addr = nids->addr;
        nids->user = slot;   /* for slot_of(): libnids zeroes it in a new stream */
        slot->user = user;
        slot->last_us = active->now_us;
        slot_push_newest(slot);
        *param = slot;
        nids->client.collect++;
        nids->server.collect++;
        active->stats.streams_opened++;
        if (++active->stats.concurrent > active->stats.peak_concurrent)
            active->stats.peak_concurrent = active->stats.concurrent;
        return;
    }
    case NIDS_DATA:
        if (!slot)
            return;
        slot->last_us = active->now_us;
        if (slot != active->newest && slot->last_us - slot->queued_us >= IDLE_LIST_MOVE_US) {
            slot_unlink(slot);
            slot_push_newest(slot);
        }
        /* libnids' "server" half holds what the client sent, and vice versa. */
        deliver(slot, &nids->server, STREAM_FROM_CLIENT);
        deliver(slot, &nids->client, STREAM_FROM_SERVER);
        if (active->stats.concurrent > MANY_STREAMS) {
            release_delivered(&nids->server);
            release_delivered(&nids->client);
        }
        return;
    case NIDS_CLOSE:
        if (slot) {
            active->stats.streams_closed++;
            slot_close(slot, STREAM_CLOSED);
        }
        return;
    case NIDS_RESET:
        if (slot) {
            active->stats.streams_reset++;
            slot_close(slot, STREAM_RESET);
        }
        return;
    case NIDS_TIMED_OUT:   /* only raised when the table is full: the oldest is evicted */
        if (slot) {
            active->stats.streams_evicted++;
            slot_close(slot, STREAM_EVICTED);
        }
        return;
    case NIDS_EXITING:   /* ended before, in order (reassembly_finish()) */
        return;
    default:
        return;
    }
}

static void on_nids_warning(int type, int errnum, struct ip *iph, void *data)
{
    (void)type; (void)errnum; (void)iph; (void)data;
    active->stats.nids_warnings++;
}

static void on_attempt_settled(void *ctx, const struct attempt *attempt,
                               enum attempt_outcome outcome, int64_t now_us)
{
    (void)ctx;
    struct flow flow;
    flow_from_key(&attempt->key, &flow);
    enum stream_end how = STREAM_UNANSWERED;
    if (outcome == ATTEMPT_REFUSED) {
        how = STREAM_REFUSED;
        active->stats.attempts_refused++;
    } else if (outcome == ATTEMPT_ONE_SIDED) {
        how = STREAM_ONE_SIDED;
        active->stats.attempts_one_sided++;
    } else if (outcome == ATTEMPT_SERVER_ONLY) {
        how = STREAM_SERVER_ONLY;
        active->stats.attempts_server_only++;
    } else if (outcome == ATTEMPT_NOT_ESTABLISHED) {
        how = STREAM_NOT_ESTABLISHED;
        active->stats.attempts_not_established++;
    } else if (outcome == ATTEMPT_CUT) {
        how = STREAM_END_OF_INPUT;
        active->stats.attempts_cut++;
    } else {
        active->stats.attempts_unanswered++;
    }
    (void)now_us;
    active->events.attempt(active->events.ctx, &flow, how, attempt);
}

/* --- packets in ---------------------------------------------------------------- */

static uint16_t ipv4_checksum(const uint8_t *header, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += read_be16(header + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Walks an IPv6 packet's extension headers to its transport header: returns the
 * protocol number and the transport header's [*offset, *end), or -1 (counted). */
static int ipv6_transport(const uint8_t *ip, size_t len, size_t *offset, size_t *end)
{
    if (len < IPV6_HEADER)
        return active->stats.malformed++, -1;
    size_t payload = read_be16(ip + 4);
    if (IPV6_HEADER + payload > len)
        return active->stats.snap_truncated++, -1;
    *end = IPV6_HEADER + payload;
    uint8_t next = ip[6];
    *offset = IPV6_HEADER;
    for (int i = 0; i < IPV6_EXT_HEADERS_MAX && next != IPPROTO_TCP && next != IPPROTO_UDP; i++) {
        if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
            return active->stats.ipv6_unsupported++, -1;  /* fragments, ESP, ... */
        if (*offset + 8 > *end)
            return active->stats.malformed++, -1;
        next = ip[*offset];
        *offset += 8 + (size_t)ip[*offset + 1] * 8;
    }
    if (next != IPPROTO_TCP && next != IPPROTO_UDP)
        return active->stats.ipv6_unsupported++, -1;
    if (*offset > *end)
        return active->stats.malformed++, -1;
    return next;
}

/* Builds an IPv4 packet with synthetic addresses around the TCP segment found at
 * ip[offset, end) of an IPv6 packet. Returns its length, or 0 when it cannot be carried. */
static size_t ipv6_to_synthetic_v4(const uint8_t *ip, size_t offset, size_t end)
{
    if (offset + TCP_HEADER_MIN > end)
        return active->stats.malformed++, 0;
    size_t tcp_len = end - offset;
    if (tcp_len + IPV4_HEADER_MIN > 65535)
        return active->stats.ipv6_unsupported++, 0;
    uint32_t src, dst;
    if (!ipv6map_to_v4(active->ipv6, ip + 8, &src) || !ipv6map_to_v4(active->ipv6, ip + 24, &dst))
        return active->stats.ipv6_table_full++, 0;
    uint8_t *v4 = active->synth;
    memset(v4, 0, IPV4_HEADER_MIN);
    v4[0] = 0x45;
    uint16_t total = (uint16_t)(IPV4_HEADER_MIN + tcp_len);
    v4[2] = (uint8_t)(total >> 8);
    v4[3] = (uint8_t)total;
    v4[8] = ip[7];   /* hop limit as TTL */
    v4[9] = IPPROTO_TCP;
    uint32_t src_n = htonl(src), dst_n = htonl(dst);
    memcpy(v4 + 12, &src_n, 4);
    memcpy(v4 + 16, &dst_n, 4);
    uint16_t sum = ipv4_checksum(v4, IPV4_HEADER_MIN);
    v4[10] = (uint8_t)(sum >> 8);
    v4[11] = (uint8_t)sum;
    memcpy(v4 + IPV4_HEADER_MIN, ip + offset, tcp_len);
    return IPV4_HEADER_MIN + tcp_len;
}

/* libnids drops IPv4 packets whose header checksum is wrong or whose total length is 0
 * (TSO captures): repair such headers in a copy. Returns the packet to hand over. */
/* Sets a zero total length (TSO captures) to the captured length and recomputes the header
 * checksum, in place. */
static void fix_ipv4_header(uint8_t *ip, size_t len, size_t header_len)
{
    if (read_be16(ip + 2) == 0 && len <= 65535) {
        ip[2] = (uint8_t)(len >> 8);
        ip[3] = (uint8_t)len;
    }
    ip[10] = ip[11] = 0;
    uint16_t sum = ipv4_checksum(ip, header_len);
    ip[10] = (uint8_t)(sum >> 8);
    ip[11] = (uint8_t)sum;
}

/* libnids drops IPv4 packets whose header checksum is wrong or whose total length is 0
 * (TSO captures): repair such headers in a copy. Returns the packet to hand over. */
static const uint8_t *repair_ipv4(const uint8_t *ip, size_t len, size_t header_len)
{
    if (read_be16(ip + 2) != 0 && ipv4_checksum(ip, header_len) == 0)
        return ip;
    if (ip != active->synth)
        memcpy(active->synth, ip, len);
    fix_ipv4_header(active->synth, len, header_len);
    return active->synth;
}

static void hand_to_nids(const uint8_t *ip, size_t len);

enum tcp_verdict { TCP_NOT_COLLECTED, TCP_PASS, TCP_HELD };

/* libnids follows that connection (a SYN-ACK of a stream it has is a retransmission). */
static bool nids_knows(const struct attempt_key *key)
{
    struct tuple4 tuple = { .source = key->client_port, .dest = key->server_port };
    memcpy(&tuple.saddr, &key->client, 4);
    memcpy(&tuple.daddr, &key->server, 4);
    return nids_find_tcp_stream(&tuple) != NULL;
}

/* Looks at the TCP header of a (v4, possibly synthetic) packet: decides whether the
 * packet concerns a collected port, feeds the SYN tracker, and holds a client's SYN until
 * the server answers (the SYN is then handed over just before the SYN-ACK). */
static enum tcp_verdict tcp_wanted(const uint8_t *ip, size_t len, size_t header_len,
                                   bool *to_server)
{
    if (len < header_len + TCP_HEADER_MIN)
        return TCP_NOT_COLLECTED;
    const uint8_t *tcp = ip + header_len;
    uint16_t sport = read_be16(tcp), dport = read_be16(tcp + 2);
    uint8_t flags = tcp[13];
    struct attempt_key key;
    /* A client whose ephemeral port happens to be a mail port (2525): the SYN says which
     * side is the server; otherwise the lower port is taken as the server's. */
    *to_server = port_collected(dport) &&
                 (!port_collected(sport) || (flags & (TCP_SYN | TCP_ACK)) == TCP_SYN ||
                  ((flags & TCP_SYN) == 0 && dport < sport));
    if (*to_server) {
        memcpy(&key.client, ip + 12, 4);
        memcpy(&key.server, ip + 16, 4);
        key.client_port = sport;
        key.server_port = dport;
        if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
            uint8_t held[ATTEMPT_SYN_MAX];
            if (len > sizeof held)
                return attempts_on_syn(active->attempts, &key, active->now_us, NULL, 0), TCP_PASS;
            memcpy(held, ip, len);
            fix_ipv4_header(held, len, header_len);
            return attempts_on_syn(active->attempts, &key, active->now_us, held, len) ? TCP_HELD
                                                                                     : TCP_PASS;
        }
        if (!(flags & TCP_SYN)) {
            size_t tcp_header = (size_t)(tcp[12] >> 4) * 4, at = header_len + tcp_header;
            uint32_t seq = (uint32_t)read_be16(tcp + 4) << 16 | read_be16(tcp + 6);
            bool data = tcp_header >= TCP_HEADER_MIN && at < len;
            attempts_on_client_packet(active->attempts, &key, flags & TCP_RST,
                                      data ? ip + at : NULL, data ? len - at : 0, seq,
                                      active->now_us);
        }
        return TCP_PASS;
    }
    if (port_collected(sport)) {
        memcpy(&key.client, ip + 16, 4);
        memcpy(&key.server, ip + 12, 4);
        key.client_port = dport;
        key.server_port = sport;
        uint8_t syn[ATTEMPT_SYN_MAX];
        bool syn_ack = (flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK);
        size_t held = attempts_on_server_packet(active->attempts, &key, flags & TCP_RST, syn_ack,
                                                active->now_us, syn);
        if (held)
            hand_to_nids(syn, held);
        else if (syn_ack && !attempts_known(active->attempts, &key) && !nids_knows(&key))
            attempts_on_orphan_syn_ack(active->attempts, &key, active->now_us);
        return TCP_PASS;
    }
    return TCP_NOT_COLLECTED;
}

/* Our slot of the stream a packet of `flow` belongs to, and which side sent it; NULL when
 * libnids follows no such stream for us. A stream is found by its client-to-server tuple,
 * and which way the packet went is not known here: both are tried. For rare packets only
 * (a conflict, a RST): it costs a second hash lookup. */
static struct stream_slot *slot_of(const struct overlap_flow *flow, enum stream_side *from)
{
    struct tuple4 tuple = { .source = flow->sport, .dest = flow->dport,
                            .saddr = flow->src, .daddr = flow->dst };
    *from = STREAM_FROM_CLIENT;
    struct tcp_stream *nids = nids_find_tcp_stream(&tuple);
    if (!nids) {
        tuple = (struct tuple4){ .source = flow->dport, .dest = flow->sport,
                                 .saddr = flow->dst, .daddr = flow->src };
        *from = STREAM_FROM_SERVER;
        nids = nids_find_tcp_stream(&tuple);
    }
    return nids ? nids->user : NULL;
}

/* A segment contradicted data seen before (overlap.h): counted, and reported on its
 * stream when libnids follows one for us. */
static void conflict_found(const struct overlap_flow *flow)
{
    active->stats.overlap_conflicts++;
    enum stream_side from;
    struct stream_slot *slot = active->events.conflict ? slot_of(flow, &from) : NULL;
    if (slot)
        active->events.conflict(active->events.ctx, slot->user, from, active->now_us);
}

/* The addresses and ports of an IPv4 packet whose TCP ports are at ip + header_len. */
static void flow_of(const uint8_t *ip, size_t header_len, struct overlap_flow *flow)
{
    const uint8_t *tcp = ip + header_len;
    *flow = (struct overlap_flow){ .sport = read_be16(tcp), .dport = read_be16(tcp + 2) };
    memcpy(&flow->src, ip + 12, 4);
    memcpy(&flow->dst, ip + 16, 4);
}

/* A TCP segment's flow (always set), sequence number and payload; false when it has no
 * data libnids would take (a SYN's, a RST's) or its header does not fit. */
static bool segment_of(const uint8_t *ip, size_t len, size_t header_len,
                       struct overlap_flow *flow, uint32_t *seq, const uint8_t **payload,
                       size_t *payload_len)
{
    const uint8_t *tcp = ip + header_len;
    size_t tcp_header = (size_t)(tcp[12] >> 4) * 4;
    flow_of(ip, header_len, flow);
    if (tcp_header < TCP_HEADER_MIN || header_len + tcp_header >= len ||
        (tcp[13] & (TCP_SYN | TCP_RST)))
        return false;
    *seq = (uint32_t)read_be16(tcp + 4) << 16 | read_be16(tcp + 6);
    *payload = tcp + tcp_header;
    *payload_len = len - header_len - tcp_header;
    return true;
}

/* A TCP packet the snap length cut (ip: its IPv4 header and as much as was kept): its
 * stream is told, so that the gap it leaves is not blamed on the mirror port. */
static void snap_cut_check(const uint8_t *ip, size_t len)
{
    size_t header_len = (size_t)(ip[0] & 0x0f) * 4;
    if (!active->events.snap_cut || ip[9] != IPPROTO_TCP || len < header_len + 4 ||
        (read_be16(ip + 6) & 0x1fff) != 0)   /* a later fragment has no ports */
        return;
    struct overlap_flow flow;
    flow_of(ip, header_len, &flow);
    enum stream_side from;
    struct stream_slot *slot = slot_of(&flow, &from);
    if (slot)
        active->events.snap_cut(active->events.ctx, slot->user, active->now_us);
}

/* Who sent a RST (tcp: its header; flow: segment_of()'s): libnids reports the reset, never
 * its sender. Before libnids, which closes the stream on it. */
/* A RST or a FIN (two a connection): reported on its stream before libnids takes it. */
static void end_flags_check(const uint8_t *tcp, const struct overlap_flow *flow)
{
    bool rst = (tcp[13] & TCP_RST) && active->events.reset;
    bool fin = (tcp[13] & TCP_FIN) && active->events.fin;
    if (!rst && !fin)
        return;
    enum stream_side from;
    struct stream_slot *slot = slot_of(flow, &from);
    if (slot && rst)
        active->events.reset(active->events.ctx, slot->user, from, active->now_us);
    else if (slot)
        active->events.fin(active->events.ctx, slot->user, from, active->now_us);
}

static void hand_to_nids(const uint8_t *ip, size_t len)
{
    struct pcap_pkthdr header;
    header.ts.tv_sec = (time_t)(active->now_us / 1000000);
    header.ts.tv_usec = (suseconds_t)(active->now_us % 1000000);
    header.caplen = header.len = (bpf_u_int32)len;
    nids_pcap_handler(NULL, &header, (u_char *)ip);
}

/* A UDP datagram (DNS): no reassembly needed, so it goes straight up with its real
 * addresses, IPv4 or IPv6. */
static void handle_udp(int family, const uint8_t *src, const uint8_t *dst,
                       const uint8_t *udp, size_t len)
{
    if (len < 8)
        return (void)active->stats.malformed++;
    uint16_t sport = read_be16(udp), dport = read_be16(udp + 2);
    size_t udp_len = read_be16(udp + 4);
    if (udp_len < 8 || udp_len > len)
        udp_len = len;   /* trust what was captured, never more */
    bool to_server = udp_port_collected(dport);
    if (!active->events.datagram || (!to_server && !udp_port_collected(sport)))
        return (void)active->stats.not_collected++;
    struct flow flow;
    memset(&flow, 0, sizeof flow);
    flow.client.family = flow.server.family = family;
    size_t bytes = family == 6 ? 16 : 4;
    memcpy(flow.client.bytes, to_server ? src : dst, bytes);
    memcpy(flow.server.bytes, to_server ? dst : src, bytes);
    flow.client_port = to_server ? sport : dport;
    flow.server_port = to_server ? dport : sport;
    active->stats.udp_collected++;
    active->events.datagram(active->events.ctx, &flow,
                            to_server ? STREAM_FROM_CLIENT : STREAM_FROM_SERVER,
                            udp + 8, udp_len - 8, active->now_us);
}

/* A stream whose receive buffer was given back (release_delivered()) gets one of the
 * spares before libnids copies a segment in: libnids would malloc a new one, and free()
 * it after delivery, for every segment (a tenth of the decoding thread with 20,000
 * streams open). libnids frees a lent buffer like its own when the stream ends. */
static void lend_buffer(struct half_stream *half)
{
    if (half->data || !half->collect || active->spare_count == 0)
        return;
    half->data = active->spare[--active->spare_count];
    half->bufsize = NIDS_BUFFER_BYTES;
}

/* For a data segment, once many streams are open. libnids' record of a stream, ours and
 * what the layer above keeps for it are then each a cache miss, met one after the other
 * as the segment goes up: finding the stream here (libnids' own lookup then hits) and
 * asking for the layer above's record lets that one load while libnids works on the
 * segment; and the half that receives it may borrow a buffer. After tcp_wanted() checked
 * the TCP header is there and said which way the segment went (libnids keys a stream by
 * its client's side, and files what the client sends in its server half). */
static void prepare_segment(const uint8_t *ip, size_t header_len, bool to_server)
{
    const uint8_t *tcp = ip + header_len;
    struct tuple4 tuple = { .source = read_be16(tcp), .dest = read_be16(tcp + 2) };
    memcpy(&tuple.saddr, ip + 12, 4);
    memcpy(&tuple.daddr, ip + 16, 4);
    if (!to_server)
        tuple = (struct tuple4){ .source = tuple.dest, .dest = tuple.source,
                                 .saddr = tuple.daddr, .daddr = tuple.saddr };
    struct tcp_stream *nids = nids_find_tcp_stream(&tuple);
    if (!nids)
        return;
    const struct stream_slot *slot = nids->user;
    if (slot)
        __builtin_prefetch(slot->user);
    lend_buffer(to_server ? &nids->server : &nids->client);
}

void reassembly_ip_packet(const struct ip_frame *frame, int64_t ts_us)
{
    const uint8_t *ip = frame->ip;
    size_t len = frame->len;
    /* Capture files are not always in time order (merged files, per-CPU clocks): time
     * never goes back here, so nothing ends before it started. */
    if (ts_us > active->now_us)
        active->now_us = ts_us;
    active->stats.ip_packets++;
    if (frame->version == 6) {
        active->stats.ipv6_packets++;
        size_t offset, end;
        int proto = ipv6_transport(ip, len, &offset, &end);
        if (proto == IPPROTO_UDP)
            return handle_udp(6, ip + 8, ip + 24, ip + offset, end - offset);
        if (proto != IPPROTO_TCP || (len = ipv6_to_synthetic_v4(ip, offset, end)) == 0)
            return;
        ip = active->synth;
    } else {
        if (len < IPV4_HEADER_MIN || (ip[0] & 0x0f) < 5 || (size_t)(ip[0] & 0x0f) * 4 > len)
            return (void)active->stats.malformed++;
        uint32_t src = (uint32_t)ip[12] << 24, dst = (uint32_t)ip[16] << 24;
        if (ipv6map_is_synthetic(src) || ipv6map_is_synthetic(dst))
            return (void)active->stats.reserved_v4_dropped++;
        size_t total = read_be16(ip + 2);
        if (total > len) {
            active->stats.snap_truncated++;
            snap_cut_check(ip, len);
            return;
        }
        if (total != 0 && total < len)
            len = total;  /* Ethernet padding */
    }
    size_t header_len = (size_t)(ip[0] & 0x0f) * 4;
    bool fragment = (read_be16(ip + 6) & 0x3fff) != 0;
    if (ip[9] == IPPROTO_UDP && !fragment && frame->version == 4)
        return handle_udp(4, ip + 12, ip + 16, ip + header_len, len - header_len);
    if (ip[9] != IPPROTO_TCP)
        return (void)active->stats.not_collected++;
    bool to_server = false;
    enum tcp_verdict verdict = fragment ? TCP_PASS : tcp_wanted(ip, len, header_len, &to_server);
    if (verdict == TCP_NOT_COLLECTED)
        return (void)active->stats.not_collected++;
    active->stats.tcp_collected++;
    if (verdict == TCP_HELD)
        return;
    /* tcp_wanted() checked that the TCP header is there. The overlap table's entry is
     * loaded while libnids works on the packet, and checked after: libnids keeps the first
     * copy either way, and the table's cache miss is hidden. */
    struct overlap_flow flow;
    uint32_t seq = 0;
    const uint8_t *payload = NULL;
    size_t payload_len = 0;
    bool data = false;
    if (!fragment) {
        data = segment_of(ip, len, header_len, &flow, &seq, &payload, &payload_len);
        if (data)
            overlap_prefetch(active->overlaps, &flow, seq);
        if (data && active->stats.concurrent > MANY_STREAMS)
            prepare_segment(ip, header_len, to_server);
        end_flags_check(ip + header_len, &flow);
    }
    hand_to_nids(repair_ipv4(ip, len, header_len), len);
    if (data && overlap_conflicts(active->overlaps, &flow, seq, payload, payload_len))
        conflict_found(&flow);
}

uint32_t reassembly_concurrent(void)
{
    return active ? active->stats.concurrent : 0;
}

void reassembly_tick(int64_t now_us)
{
    if (now_us > active->now_us)
        active->now_us = now_us;
    attempts_expire(active->attempts, active->now_us, active->config.syn_timeout_us,
                    REFUSED_QUIET_US);
    if (active->config.idle_timeout_us <= 0)
        return;
    while (active->oldest && active->oldest->last_us + active->config.idle_timeout_us < active->now_us) {
        struct stream_slot *slot = active->oldest;
        struct tcp_stream *nids = slot->nids;
        active->stats.streams_idle++;
        slot_close(slot, STREAM_IDLE_TIMEOUT);
        nids_free_tcp_stream(nids);
    }
}

int reassembly_start(const struct reassembly_config *config,
                     const struct reassembly_events *events, char *err, size_t errlen)
{
    if (active) {
        snprintf(err, errlen, "reassembly already running");
        return -1;
    }
    struct reassembler *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->config = *config;
    r->events = *events;
    r->ipv6 = ipv6map_new();
    r->attempts = attempts_new(config->max_attempts, on_attempt_settled, NULL);
    r->overlaps = overlap_new();
    r->raw_dead = pcap_open_dead(DLT_RAW, 65535);
    if (!r->ipv6 || !r->attempts || !r->overlaps || !r->raw_dead) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    active = r;
    nids_params.pcap_desc = r->raw_dead;
    nids_params.filename = NULL;
    nids_params.device = NULL;
    nids_params.n_tcp_streams = (int)config->max_streams;
    nids_params.scan_num_hosts = 0;       /* the port-scan detector costs time, tells us nothing */
    nids_params.tcp_workarounds = 0;
    nids_params.multiproc = 0;
    nids_params.syslog = on_nids_warning;
    nids_params.pcap_filter = NULL;
    if (!nids_init()) {
        snprintf(err, errlen, "libnids: %s", nids_errbuf);
        goto fail;
    }
    /* Offloaded and loopback captures carry wrong TCP checksums: never verify them. */
    static struct nids_chksum_ctl no_checksums = { 0, 0, NIDS_DONT_CHKSUM, 0 };
    nids_register_chksum_ctl(&no_checksums, 1);
    nids_register_tcp((void *)on_nids_tcp);
    return 0;
fail:
    active = NULL;
    if (r->raw_dead)
        pcap_close(r->raw_dead);
    ipv6map_free(r->ipv6);
    attempts_free(r->attempts);
    overlap_free(r->overlaps);
    free(r);
    return -1;
}

/* Whether libnids still has the stream of slot: it may have freed one without a word
 * (fuzz_pcapfile found such), and its record may since hold another stream. */
static bool still_ours(const struct stream_slot *slot)
{
    struct tuple4 addr = slot->addr;
    const struct tcp_stream *found = slot->nids ? nids_find_tcp_stream(&addr) : NULL;
    return found == slot->nids && found->user == slot;
}

void reassembly_finish(int64_t now_us, struct reassembly_stats *final_stats)
{
    if (!active) {
        memset(final_stats, 0, sizeof *final_stats);
        return;
    }
    if (now_us > active->now_us)
        active->now_us = now_us;
    attempts_flush(active->attempts, active->now_us, active->config.answer_window_us);
    /* The streams still open end here, the least recently active first: nids_exit() would
     * end them in the order of its hash table, which its random key changes from run to
     * run, and the sessions' ids with it (a capture read twice numbered them otherwise).
     * Their records stay until nids_exit() has raised NIDS_EXITING with them. */
    struct stream_slot *ended = NULL;
    while (active->oldest) {
        struct stream_slot *slot = active->oldest;
        active->stats.streams_open_at_end++;
        if (!still_ours(slot))
            slot->nids = NULL;
        slot_end(slot, STREAM_END_OF_INPUT);
        slot->newer = ended;
        ended = slot;
    }
    nids_exit();   /* raises NIDS_EXITING for every stream libnids still has */
    while (ended) {
        struct stream_slot *next = ended->newer;
        free(ended);
        ended = next;
    }
    /* The callback's list node: the next nids_init() (another run in this process) would
     * forget it unfreed. */
    nids_unregister_tcp((void *)on_nids_tcp);
    *final_stats = active->stats;
    while (active->spare_count > 0)
        free(active->spare[--active->spare_count]);
    pcap_close(active->raw_dead);
    ipv6map_free(active->ipv6);
    attempts_free(active->attempts);
    overlap_free(active->overlaps);
    free(active);
    active = NULL;
}
