/* fuzz_decoder.c — the shared bodies of the fuzz targets: one decoder fed a fuzzed,
 * interleaved client/server byte sequence; and the packet path from a link-layer frame
 * through reassembly to the decoders (see fuzz_decoder.h). */
#include "fuzz_decoder.h"

#include "capture/linklayer.h"
#include "cli/localnets.h"
#include "fuzz_check.h"
#include "protocols/connection.h"
#include "protocols/dnswatch.h"
#include "protocols/tlsfollow.h"
#include "reassembly/reassembly.h"

#include <nids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_START_US 1767225600000000LL   /* 2026-01-01T00:00:00Z */

int fuzz_decoder_run(const struct mt_decoder *decoder, const uint8_t *data, size_t size)
{
    struct mt_session *session = session_new(decoder->proto);
    if (!session)
        return 0;
    /* The two streams as the decoder sees them, for the password rule. */
    uint8_t *streams = malloc(size * 2 + 1);
    if (!streams) {
        session_free(session);
        return 0;
    }
    uint8_t *client = streams, *server = streams + size;
    size_t client_len = 0, server_len = 0;

    strcpy(session->client_ip, "192.0.2.1");
    strcpy(session->server_ip, "198.51.100.25");
    session->client_port = 40000;
    static const uint16_t ports[MT_PROTO_COUNT] = { 25, 110, 143 };
    session->server_port = ports[decoder->proto];
    session->start_us = session->end_us = FUZZ_START_US;
    void *state = decoder->open(session);
    if (!state)
        fuzz_fail("open() returned NULL");
    /* The TLS follower runs beside the decoder, as in cli/pipeline.c. */
    struct tls_follow *tls = tls_follow_new();

    int64_t now = FUZZ_START_US;
    size_t pos = 0;
    struct fuzz_chunk chunk;
    while (fuzz_next_chunk(data, size, &pos, &chunk)) {
        now += chunk.delta_us;
        if (chunk.len == 0)
            continue;
        if (chunk.side == MT_CLIENT) {
            memcpy(client + client_len, chunk.bytes, chunk.len);
            client_len += chunk.len;
            session->bytes_c2s += chunk.len;
        } else {
            memcpy(server + server_len, chunk.bytes, chunk.len);
            server_len += chunk.len;
            session->bytes_s2c += chunk.len;
        }
        session->end_us = now;
        decoder->data(state, session, (enum mt_side)chunk.side, (const char *)chunk.bytes,
                      chunk.len, now);
        if (tls)
            tls_follow_data(tls, session, (enum mt_side)chunk.side, (const char *)chunk.bytes,
                            chunk.len, now);
    }
    /* How the connection ended: from the input size, so every ending gets exercised. */
    session->end = (enum mt_end)(size % (MT_END_EOF + 1));
    if (session->end == MT_END_EOF)   /* the input went on a while, or a long while (a silence) */
        session->input_end_us = now + (size & 8 ? 120 : 1) * 1000000LL;
    decoder->close(state, session);
    decoder->free(state);
    tls_follow_settle(tls, session);
    tls_follow_free(tls);

    fuzz_check_session(session, decoder->proto);
    if (fuzz_secret_expected_hidden(decoder->proto, client, client_len, server, server_len))
        fuzz_check_no_secret(session);
    session_free(session);
    free(streams);
    return 0;
}

/* ---- The packet path (fuzz_packet, fuzz_pcapfile) ----------------------------------- */

#define LIVE_MAGIC 0x6c697665u

enum { NO_PROTO = 0xff, GUESS_PROTO = 0xfe };   /* as PIPELINE_*_PROTO */

/* A connection being decoded by the pipeline's own code (protocols/connection.c). */
struct live {
    uint32_t magic;
    struct mt_connection conn;
    size_t messages_announced;   /* to the DNS watch, as cli/pipeline.c does */
};

static uint8_t port_proto[65536];
static struct reassembly_config path_config;
static struct localnets local;
static bool with_dns;
static struct dns_watch *watch;   /* this input's, or NULL */
static long live_streams;         /* opened and not yet closed */
static bool running;
static bool finishing;            /* inside reassembly_finish() */
/* Per input, printed by fuzz_path_finish when FUZZ_PATH_VERBOSE is set (seed checks). */
static unsigned long n_sessions, n_attempts, n_dns_rows;

static void on_dns_row(void *ctx, struct mt_session *row)
{
    (void)ctx;
    fuzz_check_dns_row(row);
    session_free(row);
    n_dns_rows++;
}

/* The watch of this input; made on first use if fuzz_path_start was told no DNS could
 * come (a fallback: inbound sessions closed before it are then not remembered). */
static struct dns_watch *dns_watch_get(void)
{
    if (!watch && with_dns) {
        watch = dns_watch_new(on_dns_row, NULL);
        if (!watch)
            abort();
    }
    return watch;
}

static void *on_opened(void *ctx, const struct flow *flow, int64_t ts_us)
{
    (void)ctx;
    uint8_t proto = port_proto[flow->server_port];
    if (proto == NO_PROTO)
        fuzz_fail("opened() for port %u, which is not collected", flow->server_port);
    if (flow->client.family != 4 && flow->client.family != 6)
        fuzz_fail("opened(): client address family %d", flow->client.family);
    struct live *live = calloc(1, sizeof *live);
    if (!live)
        return NULL;
    bool guess = proto == GUESS_PROTO;
    if (!connection_open(&live->conn, guess ? MT_PROTO_SMTP : (enum mt_proto)proto, guess, flow,
                         localnets_contains(&local, &flow->server), ts_us)) {
        free(live);
        return NULL;
    }
    live->magic = LIVE_MAGIC;
    live_streams++;
    return live;
}

static struct live *live_from(void *stream)
{
    struct live *live = stream;
    if (!live || live->magic != LIVE_MAGIC)
        fuzz_fail("a stream event for a handle opened() never gave (or closed already)");
    return live;
}

static void on_data(void *ctx, void *stream, enum stream_side from, const char *bytes,
                    size_t len, int64_t ts_us)
{
    (void)ctx;
    struct live *live = live_from(stream);
    if (len == 0)
        fuzz_fail("data() with zero bytes");
    if (from != STREAM_FROM_CLIENT && from != STREAM_FROM_SERVER)
        fuzz_fail("data() from side %d", (int)from);
    /* The watch is made on first use: only for a DNS stream's bytes. */
    connection_data(&live->conn, live->conn.dns ? dns_watch_get() : NULL, from, bytes, len,
                    ts_us);
    const struct mt_session *s = live->conn.session;
    if (watch && s && s->message_count > live->messages_announced)
        dns_watch_inbound(watch, s, &live->messages_announced, false, ts_us);
}

/* A stream's ending as closed() may report it (connection_end() would map anything else
 * quietly; here it is a reassembly bug). */
static void check_stream_end(enum stream_end how)
{
    switch (how) {
    case STREAM_CLOSED:
    case STREAM_RESET:
    case STREAM_IDLE_TIMEOUT:
    case STREAM_EVICTED:
    case STREAM_END_OF_INPUT:
        return;
    case STREAM_REFUSED:
    case STREAM_UNANSWERED:
    case STREAM_ONE_SIDED:
    case STREAM_SERVER_ONLY:
    case STREAM_NOT_ESTABLISHED:
        fuzz_fail("closed() with an attempts-only ending %d", (int)how);
    }
    fuzz_fail("stream end %d out of range", (int)how);
}

static void on_closed(void *ctx, void *stream, enum stream_end how, bool data_lost, int64_t ts_us)
{
    (void)ctx;
    struct live *live = live_from(stream);
    check_stream_end(how);
    live->magic = 0;
    live_streams--;
    struct mt_session *s = connection_close(&live->conn, how, data_lost, ts_us);
    size_t announced = live->messages_announced;
    free(live);
    if (!s)
        return;   /* DNS over TCP: its lookups were checked as rows */
    if (s->end_us < s->start_us)
        fuzz_fail("session ends (%lld) before it starts (%lld)", (long long)s->end_us,
                  (long long)s->start_us);
    fuzz_check_session(s, s->proto);
    n_sessions++;
    if (watch)
        dns_watch_inbound(watch, s, &announced, true, s->end_us);
    session_free(s);
}

static void on_attempt(void *ctx, const struct flow *flow, enum stream_end how,
                       const struct attempt *attempt)
{
    (void)ctx;
    int64_t syn_us = attempt->syn_us, end_us = attempt->last_us;
    size_t pos = 0, kept = 0;
    int64_t ts;
    const uint8_t *bytes;
    uint32_t len;
    while (attempts_data_next(attempt, &pos, &ts, &bytes, &len))
        kept += len;
    if (kept > attempt->client_bytes || kept > ATTEMPT_DATA_MAX || pos > attempt->data_len)
        fuzz_fail("one-sided attempt kept %zu bytes of %llu", kept,
                  (unsigned long long)attempt->client_bytes);
    if (how != STREAM_REFUSED && how != STREAM_UNANSWERED && how != STREAM_ONE_SIDED &&
        how != STREAM_NOT_ESTABLISHED && how != STREAM_SERVER_ONLY &&
        !(how == STREAM_END_OF_INPUT && finishing))   /* cut by the end: only then */
        fuzz_fail("attempt() with ending %d", (int)how);
    if (end_us < syn_us)
        fuzz_fail("attempt ends (%lld) before its SYN (%lld)", (long long)end_us,
                  (long long)syn_us);
    uint8_t proto = port_proto[flow->server_port];
    if (proto == NO_PROTO)
        fuzz_fail("attempt() for port %u, which is not collected", flow->server_port);
    if (proto == MT_PROTO_DNS)
        return;   /* as cli/pipeline.c: a DNS-over-TCP attempt is no row */
    struct mt_session *s = session_new(proto == GUESS_PROTO ? MT_PROTO_SMTP : (enum mt_proto)proto);
    if (!s)
        return;
    connection_fill_endpoints(s, flow, localnets_contains(&local, &flow->server), syn_us);
    s->end_us = end_us;
    s->end = connection_end(how);
    static const char *const lines[] = { "refused", "one-sided", "no answer", "half-open",
                                         "server side only", "cut by the end" };
    const char *line = lines[how == STREAM_REFUSED ? 0 : how == STREAM_ONE_SIDED ? 1
                             : how == STREAM_UNANSWERED ? 2 : how == STREAM_SERVER_ONLY ? 4
                             : how == STREAM_END_OF_INPUT ? 5 : 3];
    enum mt_status status = how == STREAM_REFUSED ? MT_STATUS_REFUSED
                            : how == STREAM_UNANSWERED ? MT_STATUS_NO_RESPONSE
                                                       : MT_STATUS_INCOMPLETE;
    int index = session_transcript_add(s, syn_us, 'I', line, strlen(line));
    session_decide(s, status, line, strlen(line), index);
    fuzz_check_session(s, s->proto);
    n_attempts++;
    session_free(s);
}

/* Without DNS every payload byte is read, so ASan sees a datagram pointing past its packet. */
static volatile uint8_t datagram_sink;
/* A resend that contradicted the first copy: reported on a stream opened() gave. */
static void on_conflict(void *ctx, void *stream, enum stream_side from, int64_t ts_us)
{
    (void)ctx;
    struct live *live = live_from(stream);
    if (from != STREAM_FROM_CLIENT && from != STREAM_FROM_SERVER)
        fuzz_fail("conflict() from side %d", (int)from);
    connection_overlap_conflict(&live->conn, from, ts_us);
}

static void on_reset(void *ctx, void *stream, enum stream_side from, int64_t ts_us)
{
    (void)ctx;
    struct live *live = live_from(stream);
    if (from != STREAM_FROM_CLIENT && from != STREAM_FROM_SERVER)
        fuzz_fail("reset() from side %d", (int)from);
    connection_reset_by(&live->conn, from, ts_us);
}

static void on_fin(void *ctx, void *stream, enum stream_side from, int64_t ts_us)
{
    (void)ctx;
    struct live *live = live_from(stream);
    if (from != STREAM_FROM_CLIENT && from != STREAM_FROM_SERVER)
        fuzz_fail("fin() from side %d", (int)from);
    connection_fin_by(&live->conn, from, ts_us);
}

static void on_datagram(void *ctx, const struct flow *flow, enum stream_side from,
                        const uint8_t *payload, size_t len, int64_t ts_us)
{
    (void)ctx;
    if (dns_watch_get()) {
        dns_watch_datagram(watch, flow, from == STREAM_FROM_CLIENT, payload, len, ts_us);
        return;
    }
    uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= payload[i];
    datagram_sink = x;
}

void fuzz_path_init(bool dns)
{
    with_dns = dns;
    localnets_defaults(&local);
    memset(port_proto, NO_PROTO, sizeof port_proto);
    static const struct { uint16_t port; uint8_t proto; } ports[] = {
        { 25, MT_PROTO_SMTP }, { 465, MT_PROTO_SMTP }, { 587, MT_PROTO_SMTP },
        { 2525, MT_PROTO_SMTP }, { 110, MT_PROTO_POP3 }, { 995, MT_PROTO_POP3 },
        { 143, MT_PROTO_IMAP }, { 993, MT_PROTO_IMAP },
        /* as a bare --port: the protocol read from the greeting (seeds use these ports) */
        { 2526, GUESS_PROTO }, { 1110, GUESS_PROTO }, { 1143, GUESS_PROTO },
    };
    reassembly_config_defaults(&path_config);
    memset(path_config.ports, 0, sizeof path_config.ports);
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        port_proto[ports[i].port] = (uint8_t)ports[i].proto;
        reassembly_config_add_port(&path_config, ports[i].port);
    }
    if (dns) {   /* UDP 53 is in the defaults; DNS over TCP as mailtap collects it */
        port_proto[53] = MT_PROTO_DNS;
        reassembly_config_add_port(&path_config, 53);
    }
    path_config.max_streams = 64;     /* libnids evicts at 48: reachable */
    path_config.max_attempts = 16;
}

void fuzz_path_start(bool dns_possible)
{
    static const struct reassembly_events events = {
        .opened = on_opened, .data = on_data, .closed = on_closed,
        .attempt = on_attempt, .datagram = on_datagram, .conflict = on_conflict,
        .reset = on_reset, .fin = on_fin,
    };
    if (running)
        return;
    char err[256];
    if (reassembly_start(&path_config, &events, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz: reassembly_start: %s\n", err);
        abort();
    }
    running = true;
    if (dns_possible)
        dns_watch_get();
}

bool fuzz_path_running(void)
{
    return running;
}

int fuzz_path_frame(int dlt, const uint8_t *bytes, size_t len, int64_t now_us)
{
    uint8_t *frame = malloc(len ? len : 1);
    if (!frame)
        return -1;
    memcpy(frame, bytes, len);
    struct ip_frame ip;
    int found = link_find_ip(dlt, frame, len, &ip);
    if (found > 0) {
        if (ip.version != 4 && ip.version != 6)
            fuzz_fail("link_find_ip: version %d", ip.version);
        if (ip.ip < frame || ip.len > len || ip.ip + ip.len > frame + len)
            fuzz_fail("link_find_ip: IP packet outside the frame");
        reassembly_ip_packet(&ip, now_us);
    } else if (found != 0 && found != -1) {
        fuzz_fail("link_find_ip returned %d", found);
    }
    free(frame);
    return found;
}

void fuzz_path_tick(int64_t now_us)
{
    reassembly_tick(now_us);
    if (watch)
        dns_watch_tick(watch, now_us);
}

/* libnids' callback list (its struct proc_node; tcp_procs is exported by libnids 1.21).
 * nids_init() drops the previous run's list without freeing it: harmless for mailtap,
 * which starts reassembly once per process, but here every input would end with a
 * block more allocated than freed, and libFuzzer answers that with a full LeakSanitizer
 * scan after each input (~16 ms, most of the run time). So the list is unregistered
 * through libnids' own call once reassembly has finished. Weak: another libnids may not
 * export it (the targets' LeakSanitizer suppressions then hide the leak). */
struct nids_proc_node {
    void (*item)(void);
    struct nids_proc_node *next;
};
extern struct nids_proc_node *tcp_procs __attribute__((weak));

void fuzz_path_finish(int64_t reassembly_now_us, int64_t dns_now_us)
{
    struct reassembly_stats stats;
    finishing = true;
    reassembly_finish(reassembly_now_us, &stats);
    finishing = false;
    running = false;
    if (&tcp_procs != NULL)
        while (tcp_procs)
            nids_unregister_tcp((void *)tcp_procs->item);
    if (live_streams != 0)
        fuzz_fail("%ld streams opened but never closed after reassembly_finish", live_streams);
    if (watch) {
        dns_watch_finish(watch, dns_now_us);
        dns_watch_free(watch);
        watch = NULL;
    }
    if (getenv("FUZZ_PATH_VERBOSE"))
        fprintf(stderr, "fuzz: %llu packets, %lu sessions, %lu attempts, %lu dns rows\n",
                (unsigned long long)stats.ip_packets, n_sessions, n_attempts, n_dns_rows);
    n_sessions = n_attempts = n_dns_rows = 0;
}
