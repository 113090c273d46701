/* fuzz_packet.c — libFuzzer target for the whole packet path: link layer
 * (link_find_ip) → reassembly (reassembly_ip_packet, libnids) → the real decoders,
 * wired as cli/pipeline.c does but with no store: each finished session is checked
 * against the invariants of fuzz_check.h and freed.
 *
 * Input: byte 0 picks the link type (index into link_types[] below, modulo its size);
 * then frames, each  [time byte][length: 2 bytes big-endian][frame bytes]. The time byte
 * v advances the clock by (v & 63) << (5 * (v >> 6)) ms (up to ~34 min, so the 30 s SYN
 * timeout and the idle timeout are reachable).
 *
 * reassembly is process-global (libnids): it is started in LLVMFuzzerInitialize with a
 * small stream table and restarted (reassembly_finish + reassembly_start) every
 * FUZZ_PACKET_RESTART inputs (environment variable, default 1: every input is decoded
 * from a fresh state, so crashes reproduce from the input alone). */
#include "capture/linklayer.h"
#include "fuzz_check.h"
#include "protocols/decoder.h"
#include "protocols/tlsfollow.h"
#include "reassembly/reassembly.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libnids' nids_init() forgets the callback list of the previous run without freeing it
 * (16 bytes per nids_register_tcp): harmless for mailtap, which starts reassembly once
 * per process, but LeakSanitizer would report it at every restart here. libnids has no
 * frame pointers, so the fast unwinder stops at its allocator, test_malloc: that is what
 * we must name (this also hides any other leak of memory libnids allocated; mailtap's
 * own allocations are still checked). */
const char *__lsan_default_suppressions(void)
{
    return "leak:register_callback\nleak:test_malloc\n";
}

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif

/* Every link type mailtap supports (make_seeds.py maps pcap link types to these indexes). */
static const int link_types[] = {
    DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW, 101 /* LINKTYPE_RAW */,
    DLT_IPV4, DLT_IPV6, DLT_NULL, DLT_LOOP,
};
#define LINK_TYPE_COUNT (sizeof link_types / sizeof link_types[0])

#define FUZZ_START_US 1767225600000000LL   /* 2026-01-01T00:00:00Z */
#define TICK_INTERVAL_US 1000000           /* as cli/pipeline.c */
#define LIVE_MAGIC 0x6c697665u

enum { NO_PROTO = 0xff };

/* A connection being decoded, as cli/pipeline.c's live_session. */
struct live {
    uint32_t magic;
    struct mt_session *session;
    const struct mt_decoder *decoder;
    void *state;
    struct tls_follow *tls;
};

static uint8_t port_proto[65536];
static struct reassembly_config config;
static long live_streams;       /* opened and not yet closed */
static long restart_every = 1;
static long inputs_since_start;
static bool running;

static void *on_opened(void *ctx, const struct flow *flow, int64_t ts_us)
{
    (void)ctx;
    uint8_t proto = port_proto[flow->server_port];
    if (proto == NO_PROTO)
        fuzz_fail("opened() for port %u, which is not collected", flow->server_port);
    /* DNS over TCP (port 53) is not collected here: dnswatch is not part of this target. */
    if (flow->client.family != 4 && flow->client.family != 6)
        fuzz_fail("opened(): client address family %d", flow->client.family);
    struct live *live = calloc(1, sizeof *live);
    if (!live)
        return NULL;
    live->magic = LIVE_MAGIC;
    live->session = session_new((enum mt_proto)proto);
    if (!live->session) {
        free(live);
        return NULL;
    }
    struct mt_session *s = live->session;
    ip_address_format(&flow->client, s->client_ip, sizeof s->client_ip);
    ip_address_format(&flow->server, s->server_ip, sizeof s->server_ip);
    s->client_port = flow->client_port;
    s->server_port = flow->server_port;
    s->start_us = s->end_us = ts_us;
    live->decoder = decoder_for((enum mt_proto)proto);
    live->state = live->decoder ? live->decoder->open(s) : NULL;
    live->tls = tls_follow_new();
    live_streams++;
    return live;
}

static struct live *live_from(void *stream)
{
    struct live *live = stream;
    if (!live || live->magic != LIVE_MAGIC)
        fuzz_fail("a stream event for a handle opened() never gave");
    return live;
}

static void on_data(void *ctx, void *stream, enum stream_side from, const char *bytes,
                    size_t len, int64_t ts_us)
{
    (void)ctx;
    struct live *live = live_from(stream);
    struct mt_session *s = live->session;
    if (len == 0)
        fuzz_fail("data() with zero bytes");
    if (from == STREAM_FROM_CLIENT)
        s->bytes_c2s += len;
    else
        s->bytes_s2c += len;
    s->end_us = ts_us;
    if (live->state)
        live->decoder->data(live->state, s, from == STREAM_FROM_CLIENT ? MT_CLIENT : MT_SERVER,
                            bytes, len, ts_us);
    if (live->tls)
        tls_follow_data(live->tls, s, from == STREAM_FROM_CLIENT ? MT_CLIENT : MT_SERVER,
                        bytes, len, ts_us);
}

static enum mt_end end_from_stream(enum stream_end how)
{
    switch (how) {
    case STREAM_CLOSED: return MT_END_CLOSE;
    case STREAM_RESET: return MT_END_RESET;
    case STREAM_IDLE_TIMEOUT: return MT_END_TIMEOUT;
    case STREAM_EVICTED: return MT_END_EVICTED;
    case STREAM_REFUSED: return MT_END_REFUSED;
    case STREAM_UNANSWERED: return MT_END_UNANSWERED;
    case STREAM_ONE_SIDED:
    case STREAM_END_OF_INPUT: return MT_END_EOF;
    }
    fuzz_fail("stream end %d out of range", (int)how);
}

static void on_closed(void *ctx, void *stream, enum stream_end how, bool data_lost, int64_t ts_us)
{
    (void)ctx;
    struct live *live = live_from(stream);
    struct mt_session *s = live->session;
    s->end = end_from_stream(how);
    if (how == STREAM_REFUSED || how == STREAM_UNANSWERED || how == STREAM_ONE_SIDED)
        fuzz_fail("closed() with an attempts-only ending %d", (int)how);
    if (ts_us > s->end_us && how != STREAM_END_OF_INPUT && how != STREAM_IDLE_TIMEOUT)
        s->end_us = ts_us;
    if (live->state) {
        live->decoder->close(live->state, s);
        live->decoder->free(live->state);
    }
    tls_follow_settle(live->tls, s);
    tls_follow_free(live->tls);
    if (data_lost)
        session_capture_lost(s, s->end_us, "a sequence gap (segments missing)");
    fuzz_check_session(s, s->proto);
    session_free(s);
    live->magic = 0;
    free(live);
    live_streams--;
}

static void on_attempt(void *ctx, const struct flow *flow, enum stream_end how,
                       int64_t syn_us, int64_t end_us)
{
    (void)ctx;
    if (how != STREAM_REFUSED && how != STREAM_UNANSWERED && how != STREAM_ONE_SIDED)
        fuzz_fail("attempt() with ending %d", (int)how);
    if (end_us < syn_us)
        fuzz_fail("attempt ends (%lld) before its SYN (%lld)", (long long)end_us,
                  (long long)syn_us);
    uint8_t proto = port_proto[flow->server_port];
    if (proto == NO_PROTO)
        fuzz_fail("attempt() for port %u, which is not collected", flow->server_port);
    struct mt_session *s = session_new((enum mt_proto)proto);
    if (!s)
        return;
    ip_address_format(&flow->client, s->client_ip, sizeof s->client_ip);
    ip_address_format(&flow->server, s->server_ip, sizeof s->server_ip);
    s->end = end_from_stream(how);
    const char *line = "attempt";
    int index = session_transcript_add(s, syn_us, 'I', line, strlen(line));
    session_decide(s, MT_STATUS_REFUSED, line, strlen(line), index);
    fuzz_check_session(s, s->proto);
    session_free(s);
}

/* Reads every payload byte, so ASan sees a datagram pointing past its packet. */
static volatile uint8_t datagram_sink;
static void on_datagram(void *ctx, const struct flow *flow, enum stream_side from,
                        const uint8_t *payload, size_t len, int64_t ts_us)
{
    (void)ctx; (void)flow; (void)from; (void)ts_us;
    uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= payload[i];
    datagram_sink = x;
}

static void start(void)
{
    static const struct reassembly_events events = {
        .opened = on_opened, .data = on_data, .closed = on_closed,
        .attempt = on_attempt, .datagram = on_datagram,
    };
    char err[256];
    if (reassembly_start(&config, &events, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_packet: reassembly_start: %s\n", err);
        abort();
    }
    running = true;
    inputs_since_start = 0;
}

static void finish(int64_t now_us)
{
    struct reassembly_stats stats;
    reassembly_finish(now_us, &stats);
    running = false;
    if (live_streams != 0)
        fuzz_fail("%ld streams opened but never closed after reassembly_finish", live_streams);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    const char *every = getenv("FUZZ_PACKET_RESTART");
    if (every && atol(every) > 0)
        restart_every = atol(every);
    memset(port_proto, NO_PROTO, sizeof port_proto);
    static const struct { uint16_t port; enum mt_proto proto; } ports[] = {
        { 25, MT_PROTO_SMTP }, { 465, MT_PROTO_SMTP }, { 587, MT_PROTO_SMTP },
        { 2525, MT_PROTO_SMTP }, { 2526, MT_PROTO_SMTP }, { 110, MT_PROTO_POP3 },
        { 995, MT_PROTO_POP3 }, { 1110, MT_PROTO_POP3 }, { 143, MT_PROTO_IMAP },
        { 993, MT_PROTO_IMAP }, { 1143, MT_PROTO_IMAP },
    };
    reassembly_config_defaults(&config);
    memset(config.ports, 0, sizeof config.ports);
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        port_proto[ports[i].port] = (uint8_t)ports[i].proto;
        reassembly_config_add_port(&config, ports[i].port);
    }
    config.max_streams = 64;     /* libnids evicts at 48: reachable */
    config.max_attempts = 16;
    start();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!running)
        start();
    int dlt = link_types[data[0] % LINK_TYPE_COUNT];
    /* A fresh reassembler starts the clock again; a shared one sees time go on. */
    static int64_t clock_us = FUZZ_START_US;
    int64_t now = inputs_since_start == 0 ? FUZZ_START_US : clock_us, next_tick = 0;
    size_t pos = 1;
    while (size - pos >= 3) {
        uint8_t t = data[pos];
        size_t len = (size_t)data[pos + 1] << 8 | data[pos + 2];
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        now += (int64_t)((t & 63) << (5 * (t >> 6))) * 1000;
        /* A copy of exactly the frame's size, so ASan catches any read past it. */
        uint8_t *frame = malloc(len ? len : 1);
        if (!frame)
            return 0;
        memcpy(frame, data + pos, len);
        pos += len;
        struct ip_frame ip;
        int found = link_find_ip(dlt, frame, len, &ip);
        if (found > 0) {
            if (ip.version != 4 && ip.version != 6)
                fuzz_fail("link_find_ip: version %d", ip.version);
            if (ip.ip < frame || ip.len > len || ip.ip + ip.len > frame + len)
                fuzz_fail("link_find_ip: IP packet outside the frame");
            reassembly_ip_packet(&ip, now);
        } else if (found != 0 && found != -1) {
            fuzz_fail("link_find_ip returned %d", found);
        }
        free(frame);
        if (now >= next_tick) {
            reassembly_tick(now);
            next_tick = now + TICK_INTERVAL_US;
        }
    }
    clock_us = now;
    if (++inputs_since_start >= restart_every)
        finish(now);
    return 0;
}
