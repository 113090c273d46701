/* gen_capture.c — deterministic generator of realistic mail traffic as a classic pcap
 * (Ethernet / IPv4 / TCP), plus a NAME.counts.json sidecar with the truth it generated.
 *
 * Every connection is a full TCP conversation: handshake, data with correct sequence
 * numbers, the receiver ACKing every second segment (libnids drops data beyond the
 * receiver's advertised window, so the ACKs matter), FIN/FIN/ACK or RST. Many
 * connections run at once and their packets interleave. A few data segments are sent
 * twice (retransmission) or swapped with the next one (reordering).
 *
 * Addresses are private (10/8) and documentation/benchmark ranges (192.0.2/24,
 * 198.51.100/24, 203.0.113/24, 198.18/15): it is a file, nothing is sent anywhere.
 *
 *   gen_capture --out FILE [--counts FILE] [--seed N] [--size-mb N]
 *               [--profile normal|sessions|concurrent|synflood] [--concurrent N]
 *               [--flood-ratio R] [--bulk-share F]
 * --out - writes the capture to stdout (then --counts is required). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MSS = 1460,
    WINDOW = 65535,
    TEXT_MAX = 2048,     /* one command or reply, or the prefix before a body */
    TAIL_MAX = 128,      /* what follows a body: ".\r\n", ")\r\nA5 OK ..." */
    LINE = 78,           /* body line: 76 characters + CRLF */
    PATTERN_LINES = 509,
    OUTBUF = 8 << 20,
    EPHEMERAL_LO = 32768, EPHEMERAL_COUNT = 28232,
};

enum proto { P_SMTP, P_POP3, P_IMAP, P_COUNT };
static const char *const proto_names[P_COUNT] = { "smtp", "pop3", "imap" };

/* The status words mailtap is expected to give (see protocols/session.h). */
enum status { S_DELIVERED, S_PARTIAL, S_NO_MAIL, S_AUTH_FAILED, S_LOGIN_OK, S_REFUSED,
              S_NO_RESPONSE, S_COUNT };
static const char *const status_names[S_COUNT] = {
    "delivered", "partial", "no_mail", "auth_failed", "login_ok", "refused", "no_response",
};

enum profile { PR_NORMAL, PR_SESSIONS, PR_CONCURRENT, PR_SYNFLOOD };
static const char *const profile_names[] = { "normal", "sessions", "concurrent", "synflood" };

/* What kind of connection, decided when it starts. */
enum kind {
    K_SMTP, K_SMTP_PROBE, K_POP3, K_IMAP, K_REFUSED, K_UNANSWERED, K_BULK,
};

enum phase { PH_SYN, PH_SYNACK, PH_HSACK, PH_DATA, PH_FIN1, PH_FIN2, PH_FIN3, PH_RST, PH_DONE };

/* --- deterministic PRNG: xoshiro256** seeded by splitmix64 ---------------------- */

struct rng { uint64_t s[4]; };

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

static uint32_t rng_below(struct rng *r, uint32_t n) { return (uint32_t)((rng_next(r) >> 32) * n >> 32); }
static double rng_unit(struct rng *r) { return (double)(rng_next(r) >> 11) / 9007199254740992.0; }
static bool rng_chance(struct rng *r, double p) { return rng_unit(r) < p; }
static uint32_t rng_range(struct rng *r, uint32_t lo, uint32_t hi) { return lo + rng_below(r, hi - lo + 1); }

/* Log-uniform size in [lo, hi]: many small messages, some large. */
static uint64_t rng_size(struct rng *r, uint64_t lo, uint64_t hi)
{
    double l = log((double)lo), h = log((double)hi);
    return (uint64_t)exp(l + (h - l) * rng_unit(r));
}

/* --- the truth ------------------------------------------------------------------- */

struct truth {
    uint64_t sessions[P_COUNT];
    uint64_t status[P_COUNT][S_COUNT];
    uint64_t auth_failures[P_COUNT];
    uint64_t smtp_messages, smtp_message_bytes, rcpt_total, rcpt_rejected;
    uint64_t retr_count, retr_bytes, fetch_count, fetch_bytes;
    uint64_t flood_syns, bulk_connections, bulk_bytes;
    uint64_t retransmitted, reordered;
    uint64_t packets, file_bytes, payload_bytes;
    uint32_t peak_concurrent_mail;
    uint64_t capture_us;
};

/* --- one connection -------------------------------------------------------------- */

struct turn {
    int side;                 /* 0 client, 1 server */
    char text[TEXT_MAX];      /* sent first */
    size_t text_len, text_off;
    uint64_t body_len, body_off;   /* then body_len generated body bytes */
    uint32_t body_variant;
    char tail[TAIL_MAX];      /* then this */
    size_t tail_len, tail_off;
};

struct conn {
    enum kind kind;
    enum proto proto;
    enum phase phase;
    uint32_t ip[2];           /* client, server (host order) */
    uint16_t port[2];
    uint32_t seq[2];          /* next sequence number each side sends */
    int unacked[2];           /* data segments from this side not yet ACKed */
    bool turn_active;
    struct turn turn;
    /* script */
    int step;
    int msg_total, msg_index, rcpt_total, rcpt_index, rcpt_ok;
    bool auth, auth_fail, msg_partial, any_partial;
    uint64_t msg_size[4];
    uint32_t serial;
    int tag;
    uint64_t bulk_left;
    uint64_t planned, sent;
    bool established_counted;
};

struct gen {
    enum profile profile;
    struct rng rng;
    FILE *out;
    uint8_t *buf;
    size_t buf_len;
    int64_t now_ns;
    uint16_t ip_id;
    uint64_t target_bytes;
    uint64_t planned_active;      /* planned bytes not yet sent, over active connections */
    uint32_t concurrent;
    double flood_ratio, bulk_share;
    uint64_t bulk_started, mail_started;
    uint64_t conn_serial;
    uint32_t live_mail;           /* established mail connections right now */
    struct truth t;
    char pattern[LINE * PATTERN_LINES];
    uint8_t payload[2][MSS];
};

/* --- pcap output ----------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static void le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }   /* pcap headers: host order */

static void flush_out(struct gen *g)
{
    if (g->buf_len && fwrite(g->buf, 1, g->buf_len, g->out) != g->buf_len) {
        fprintf(stderr, "gen_capture: write failed: %s\n", strerror(errno));
        exit(1);
    }
    g->buf_len = 0;
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    uint64_t acc = sum;
    while (len >= 2) {
        acc += (uint32_t)(p[0] << 8 | p[1]);
        p += 2;
        len -= 2;
    }
    if (len)
        acc += (uint32_t)p[0] << 8;
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint32_t)acc;
}

/* Writes one Ethernet/IPv4/TCP frame; the time advances as on a 1 Gbit/s link. */
static void emit_raw(struct gen *g, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                     uint8_t flags, uint32_t seq, uint32_t ack, const uint8_t *data, size_t len)
{
    bool syn = flags & 0x02;
    size_t tcp_hdr = syn ? 24 : 20;
    size_t frame = 14 + 20 + tcp_hdr + len;
    if (g->buf_len + 16 + frame > OUTBUF)
        flush_out(g);
    g->now_ns += (int64_t)(frame + 24) * 8 + (int64_t)rng_below(&g->rng, 2000);
    uint8_t *p = g->buf + g->buf_len;
    int64_t us = g->now_ns / 1000;
    le32(p, (uint32_t)(us / 1000000));
    le32(p + 4, (uint32_t)(us % 1000000));
    le32(p + 8, (uint32_t)frame);
    le32(p + 12, (uint32_t)frame);
    uint8_t *eth = p + 16;
    static const uint8_t mac_a[6] = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01 };
    static const uint8_t mac_b[6] = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x02 };
    bool to_b = (src ^ dst) & 1 ? src < dst : sport < dport;
    memcpy(eth, to_b ? mac_b : mac_a, 6);
    memcpy(eth + 6, to_b ? mac_a : mac_b, 6);
    put16(eth + 12, 0x0800);
    uint8_t *ip = eth + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + tcp_hdr + len));
    put16(ip + 4, g->ip_id++);
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 6;
    put32(ip + 12, src);
    put32(ip + 16, dst);
    put16(ip + 10, (uint16_t)~sum16(ip, 20, 0));
    uint8_t *tcp = ip + 20;
    memset(tcp, 0, tcp_hdr);
    put16(tcp, sport);
    put16(tcp + 2, dport);
    put32(tcp + 4, seq);
    put32(tcp + 8, ack);
    tcp[12] = (uint8_t)((tcp_hdr / 4) << 4);
    tcp[13] = flags;
    put16(tcp + 14, WINDOW);
    if (syn) {          /* MSS option */
        tcp[20] = 2;
        tcp[21] = 4;
        put16(tcp + 22, MSS);
    }
    if (len)
        memcpy(tcp + tcp_hdr, data, len);
    uint8_t pseudo[12];
    put32(pseudo, src);
    put32(pseudo + 4, dst);
    pseudo[8] = 0;
    pseudo[9] = 6;
    put16(pseudo + 10, (uint16_t)(tcp_hdr + len));
    uint32_t sum = sum16(pseudo, 12, 0);
    sum = sum16(tcp, tcp_hdr + len, sum);
    put16(tcp + 16, (uint16_t)~sum);
    g->buf_len += 16 + frame;
    g->t.packets++;
    g->t.file_bytes += 16 + frame;
    g->t.payload_bytes += len;
}

enum { F_FIN = 0x01, F_SYN = 0x02, F_RST = 0x04, F_PSH = 0x08, F_ACK = 0x10 };

static void emit(struct gen *g, struct conn *c, int side, uint8_t flags, uint32_t seq,
                 const uint8_t *data, size_t len)
{
    uint32_t ack = (flags & F_ACK) ? c->seq[!side] : 0;
    emit_raw(g, c->ip[side], c->ip[!side], c->port[side], c->port[!side], flags, seq, ack, data, len);
    if (flags & F_ACK)
        c->unacked[!side] = 0;
    c->sent += len;
}

/* --- message bodies -------------------------------------------------------------- */

static void pattern_init(struct gen *g)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int l = 0; l < PATTERN_LINES; l++) {
        char *line = g->pattern + l * LINE;
        for (int i = 0; i < 76; i++)
            line[i] = b64[rng_below(&g->rng, 64)];
        line[76] = '\r';
        line[77] = '\n';
    }
}

/* Copies body bytes [off, off + n) of a body of len bytes: lines of 76 characters and
 * CRLF; the last line is shorter and still ends in CRLF (len % LINE is never 1). */
static void body_bytes(const struct gen *g, uint32_t variant, uint64_t off, uint64_t len,
                       uint8_t *dst, size_t n)
{
    uint64_t full = len - len % LINE;
    size_t done = 0;
    while (done < n) {
        uint64_t pos = off + done;
        if (pos < full) {
            uint64_t p = (pos + (uint64_t)variant * LINE) % sizeof g->pattern;
            size_t run = sizeof g->pattern - p;
            if (run > n - done)
                run = n - done;
            if (run > full - pos)
                run = full - pos;
            memcpy(dst + done, g->pattern + p, run);
            done += run;
        } else {
            uint64_t r = len - full, col = pos - full;
            dst[done++] = col == r - 2 ? '\r' : col == r - 1 ? '\n' : 'Q';
        }
    }
}

/* A body size that the line scheme can carry: never one byte after a full line. */
static uint64_t body_fit(uint64_t len) { return len % LINE == 1 ? len + 1 : len; }

/* --- turns ----------------------------------------------------------------------- */

static void turn_begin(struct conn *c, int side)
{
    struct turn *t = &c->turn;
    t->side = side;
    t->text_len = t->text_off = 0;
    t->body_len = t->body_off = 0;
    t->tail_len = t->tail_off = 0;
    c->turn_active = true;
}

__attribute__((format(printf, 2, 3)))
static void turn_text(struct conn *c, const char *fmt, ...)
{
    struct turn *t = &c->turn;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->text + t->text_len, TEXT_MAX - t->text_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->text_len += (size_t)n < TEXT_MAX - t->text_len ? (size_t)n : TEXT_MAX - 1 - t->text_len;
}

__attribute__((format(printf, 2, 3)))
static void turn_tail(struct conn *c, const char *fmt, ...)
{
    struct turn *t = &c->turn;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->tail, TAIL_MAX, fmt, ap);
    va_end(ap);
    t->tail_len = n > 0 ? (size_t)n : 0;
}

static uint64_t turn_left(const struct turn *t)
{
    return (t->text_len - t->text_off) + (t->body_len - t->body_off) + (t->tail_len - t->tail_off);
}

static size_t turn_read(const struct gen *g, struct turn *t, uint8_t *dst, size_t max)
{
    size_t n = 0;
    while (n < max) {
        if (t->text_off < t->text_len) {
            size_t k = t->text_len - t->text_off;
            if (k > max - n)
                k = max - n;
            memcpy(dst + n, t->text + t->text_off, k);
            t->text_off += k;
            n += k;
        } else if (t->body_off < t->body_len) {
            uint64_t k = t->body_len - t->body_off;
            if (k > max - n)
                k = max - n;
            body_bytes(g, t->body_variant, t->body_off, t->body_len, dst + n, (size_t)k);
            t->body_off += k;
            n += (size_t)k;
        } else if (t->tail_off < t->tail_len) {
            size_t k = t->tail_len - t->tail_off;
            if (k > max - n)
                k = max - n;
            memcpy(dst + n, t->tail + t->tail_off, k);
            t->tail_off += k;
            n += k;
        } else {
            break;
        }
    }
    return n;
}

/* Headers that start a message (counted in its size), then the generated body. */
static void turn_message(struct gen *g, struct conn *c, uint64_t size, int index)
{
    struct turn *t = &c->turn;
    size_t before = t->text_len;
    turn_text(c, "From: User %u <user%u@example.org>\r\n"
                 "To: <rcpt%u@example.net>\r\n"
                 "Subject: bench message %u.%d\r\n"
                 "Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n"
                 "Message-ID: <%u.%d@bench.example.org>\r\n"
                 "MIME-Version: 1.0\r\n"
                 "Content-Type: text/plain\r\n\r\n",
              c->serial % 1000, c->serial % 1000, c->serial % 977, c->serial, index,
              c->serial, index);
    uint64_t headers = t->text_len - before;
    t->body_len = size - headers;
    t->body_variant = (uint32_t)rng_below(&g->rng, PATTERN_LINES);
}

/* A message size of at least lo bytes whose body part fits the line scheme. */
static uint64_t message_size(struct gen *g, uint64_t lo, uint64_t hi)
{
    return body_fit(rng_size(&g->rng, lo, hi));
}

/* --- scripts: each step fills one turn; false when the conversation is over ------ */

static bool smtp_step(struct gen *g, struct conn *c)
{
    struct truth *t = &g->t;
    switch (c->step++) {
    case 0:
        turn_begin(c, 1);
        turn_text(c, "220 mx%u.example.net ESMTP Postfix\r\n", c->ip[1] & 0xff);
        return true;
    case 1:
        turn_begin(c, 0);
        turn_text(c, "EHLO client%u.example.org\r\n", c->serial % 5000);
        return true;
    case 2:
        turn_begin(c, 1);
        turn_text(c, "250-mx%u.example.net\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
                     "250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                     "250 SMTPUTF8\r\n", c->ip[1] & 0xff);
        if (c->kind == K_SMTP_PROBE)
            c->step = 100;
        else if (!c->auth)
            c->step = 10;
        return true;
    case 3:
        turn_begin(c, 0);
        /* base64("\0userN\0secret") stand-in: mailtap masks it whatever it is */
        turn_text(c, "AUTH PLAIN AHVzZXIlMDAwAHNlY3JldHBhc3N3b3Jk\r\n");
        return true;
    case 4:
        turn_begin(c, 1);
        if (c->auth_fail) {
            turn_text(c, "535 5.7.8 Error: authentication failed: authentication failure\r\n");
            t->auth_failures[P_SMTP]++;
            c->step = 100;
        } else {
            turn_text(c, "235 2.7.0 Authentication successful\r\n");
            c->step = 10;
        }
        return true;
    case 10:   /* MAIL FROM of message msg_index */
        if (c->msg_index >= c->msg_total) {
            c->step = 100;
            return smtp_step(g, c);
        }
        turn_begin(c, 0);
        turn_text(c, "MAIL FROM:<user%u@example.org> SIZE=%llu\r\n", c->serial % 1000,
                  (unsigned long long)c->msg_size[c->msg_index]);
        c->rcpt_total = (int)rng_range(&g->rng, 1, 5);
        c->rcpt_index = c->rcpt_ok = 0;
        c->msg_partial = false;
        return true;
    case 11:
        turn_begin(c, 1);
        turn_text(c, "250 2.1.0 Ok\r\n");
        return true;
    case 12:
        turn_begin(c, 0);
        turn_text(c, "RCPT TO:<rcpt%u.%d@example.net>\r\n", c->serial % 977, c->rcpt_index);
        return true;
    case 13: {
        turn_begin(c, 1);
        bool last = c->rcpt_index == c->rcpt_total - 1;
        bool reject = rng_chance(&g->rng, g->profile == PR_SESSIONS ? 0.15 : 0.12);
        if (reject && last && c->rcpt_ok == 0)
            reject = false;   /* every transaction keeps one accepted recipient */
        t->rcpt_total++;
        if (reject) {
            turn_text(c, "550 5.1.1 <rcpt%u.%d@example.net>: Recipient address rejected: "
                         "User unknown in virtual mailbox table\r\n", c->serial % 977, c->rcpt_index);
            t->rcpt_rejected++;
            c->msg_partial = true;
        } else {
            turn_text(c, "250 2.1.5 Ok\r\n");
            c->rcpt_ok++;
        }
        if (++c->rcpt_index < c->rcpt_total)
            c->step = 12;
        return true;
    }
    case 14:
        turn_begin(c, 0);
        turn_text(c, "DATA\r\n");
        return true;
    case 15:
        turn_begin(c, 1);
        turn_text(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
        return true;
    case 16:
        turn_begin(c, 0);
        turn_message(g, c, c->msg_size[c->msg_index], c->msg_index);
        turn_tail(c, ".\r\n");
        return true;
    case 17:
        turn_begin(c, 1);
        turn_text(c, "250 2.0.0 Ok: queued as %08X%X\r\n", c->serial, c->msg_index);
        t->smtp_messages++;
        t->smtp_message_bytes += c->msg_size[c->msg_index];
        if (c->msg_partial)
            c->any_partial = true;
        c->msg_index++;
        c->step = 10;
        return true;
    case 100:
        turn_begin(c, 0);
        turn_text(c, "QUIT\r\n");
        return true;
    case 101:
        turn_begin(c, 1);
        turn_text(c, "221 2.0.0 Bye\r\n");
        return true;
    default:
        return false;
    }
}

static bool pop3_step(struct gen *g, struct conn *c)
{
    struct truth *t = &g->t;
    switch (c->step++) {
    case 0:
        turn_begin(c, 1);
        turn_text(c, "+OK Dovecot (Debian) ready.\r\n");
        return true;
    case 1:
        turn_begin(c, 0);
        turn_text(c, "USER user%u\r\n", c->serial % 1000);
        return true;
    case 2:
        turn_begin(c, 1);
        turn_text(c, "+OK\r\n");
        return true;
    case 3:
        turn_begin(c, 0);
        turn_text(c, "PASS secret%u\r\n", c->serial % 1000);
        return true;
    case 4:
        turn_begin(c, 1);
        if (c->auth_fail) {
            turn_text(c, "-ERR [AUTH] Authentication failed.\r\n");
            t->auth_failures[P_POP3]++;
            c->step = 100;
        } else {
            turn_text(c, "+OK Logged in.\r\n");
        }
        return true;
    case 5:
        turn_begin(c, 0);
        turn_text(c, "STAT\r\n");
        return true;
    case 6: {
        uint64_t total = 0;
        for (int i = 0; i < c->msg_total; i++)
            total += c->msg_size[i];
        turn_begin(c, 1);
        turn_text(c, "+OK %d %llu\r\n", c->msg_total, (unsigned long long)total);
        c->step = 10;
        return true;
    }
    case 10:
        if (c->msg_index >= c->msg_total) {
            c->step = 100;
            return pop3_step(g, c);
        }
        turn_begin(c, 0);
        turn_text(c, "RETR %d\r\n", c->msg_index + 1);
        return true;
    case 11:
        turn_begin(c, 1);
        turn_text(c, "+OK %llu octets\r\n", (unsigned long long)c->msg_size[c->msg_index]);
        turn_message(g, c, c->msg_size[c->msg_index], c->msg_index);
        turn_tail(c, ".\r\n");
        t->retr_count++;
        t->retr_bytes += c->msg_size[c->msg_index];
        return true;
    case 12:
        turn_begin(c, 0);
        turn_text(c, "DELE %d\r\n", c->msg_index + 1);
        return true;
    case 13:
        turn_begin(c, 1);
        turn_text(c, "+OK Marked to be deleted.\r\n");
        c->msg_index++;
        c->step = 10;
        return true;
    case 100:
        turn_begin(c, 0);
        turn_text(c, "QUIT\r\n");
        return true;
    case 101:
        turn_begin(c, 1);
        turn_text(c, c->auth_fail ? "+OK Logging out\r\n" : "+OK Logging out, messages deleted.\r\n");
        return true;
    default:
        return false;
    }
}

static bool imap_step(struct gen *g, struct conn *c)
{
    struct truth *t = &g->t;
    switch (c->step++) {
    case 0:
        turn_begin(c, 1);
        turn_text(c, "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
                     "AUTH=PLAIN AUTH=LOGIN] Dovecot (Debian) ready.\r\n");
        return true;
    case 1:
        turn_begin(c, 0);
        turn_text(c, "a%d LOGIN user%u secret%u\r\n", ++c->tag, c->serial % 1000, c->serial % 1000);
        return true;
    case 2:
        turn_begin(c, 1);
        if (c->auth_fail) {
            turn_text(c, "a%d NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", c->tag);
            t->auth_failures[P_IMAP]++;
            c->step = 100;
        } else {
            turn_text(c, "a%d OK [CAPABILITY IMAP4rev1 IDLE SORT] Logged in\r\n", c->tag);
        }
        return true;
    case 3:
        turn_begin(c, 0);
        turn_text(c, "a%d SELECT INBOX\r\n", ++c->tag);
        return true;
    case 4:
        turn_begin(c, 1);
        turn_text(c, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                     "* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1795868045] UIDs valid\r\n"
                     "* OK [UIDNEXT %d] Predicted next UID\r\n"
                     "a%d OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n",
                  c->msg_total, c->msg_total + 1, c->tag);
        c->step = 10;
        return true;
    case 10:
        if (c->msg_index >= c->msg_total) {
            c->step = 100;
            return imap_step(g, c);
        }
        turn_begin(c, 0);
        turn_text(c, "a%d FETCH %d (UID FLAGS BODY.PEEK[])\r\n", ++c->tag, c->msg_index + 1);
        return true;
    case 11:
        turn_begin(c, 1);
        turn_text(c, "* %d FETCH (UID %d FLAGS (\\Seen) BODY[] {%llu}\r\n", c->msg_index + 1,
                  c->msg_index + 1, (unsigned long long)c->msg_size[c->msg_index]);
        turn_message(g, c, c->msg_size[c->msg_index], c->msg_index);
        turn_tail(c, ")\r\na%d OK Fetch completed (0.001 + 0.000 secs).\r\n", c->tag);
        t->fetch_count++;
        t->fetch_bytes += c->msg_size[c->msg_index];
        c->msg_index++;
        c->step = 10;
        return true;
    case 100:
        turn_begin(c, 0);
        turn_text(c, "a%d LOGOUT\r\n", ++c->tag);
        return true;
    case 101:
        turn_begin(c, 1);
        turn_text(c, "* BYE Logging out\r\na%d OK Logout completed.\r\n", c->tag);
        return true;
    default:
        return false;
    }
}

/* Bulk (non-mail) traffic: the server streams opaque bytes to the client. */
static bool bulk_step(struct gen *g, struct conn *c)
{
    if (c->step++ == 0) {
        turn_begin(c, 0);
        turn_text(c, "GET /download/%u HTTP/1.1\r\nHost: files.example.net\r\n\r\n", c->serial);
        return true;
    }
    if (c->bulk_left == 0)
        return false;
    turn_begin(c, 1);
    uint64_t n = c->bulk_left < 65536 ? c->bulk_left : 65536;
    c->turn.body_len = body_fit(n < 2 ? 2 : n);
    c->turn.body_variant = (uint32_t)rng_below(&g->rng, PATTERN_LINES);
    c->bulk_left -= n;
    return true;
}

static bool script_step(struct gen *g, struct conn *c)
{
    switch (c->kind) {
    case K_SMTP:
    case K_SMTP_PROBE: return smtp_step(g, c);
    case K_POP3: return pop3_step(g, c);
    case K_IMAP: return imap_step(g, c);
    case K_BULK: return bulk_step(g, c);
    default: return false;
    }
}

/* --- the expected outcome of a connection, counted when it is finished ----------- */

static void count_outcome(struct gen *g, const struct conn *c)
{
    struct truth *t = &g->t;
    if (c->kind == K_BULK) {
        t->bulk_connections++;
        return;
    }
    enum status s;
    switch (c->kind) {
    case K_REFUSED: s = S_REFUSED; break;
    case K_UNANSWERED: s = S_NO_RESPONSE; break;
    case K_SMTP_PROBE: s = S_NO_MAIL; break;
    case K_SMTP:
        s = c->auth_fail ? S_AUTH_FAILED : c->msg_total == 0 ? S_NO_MAIL
            : c->any_partial ? S_PARTIAL : S_DELIVERED;
        break;
    default:
        s = c->auth_fail ? S_AUTH_FAILED : S_LOGIN_OK;
        break;
    }
    t->sessions[c->proto]++;
    t->status[c->proto][s]++;
}

/* --- starting connections -------------------------------------------------------- */

static uint32_t ipv4(int a, int b, int c, int d)
{
    return (uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | (uint32_t)d;
}

/* Client and server addresses, unique per connection serial: inbound (outside client,
 * local server) or outbound (local client, outside server); bulk goes to port 443. */
static void conn_addresses(struct gen *g, struct conn *c, uint16_t server_port)
{
    uint64_t n = g->conn_serial++;
    bool inbound = c->proto != P_SMTP || rng_chance(&g->rng, 0.7);
    uint32_t host = (uint32_t)(n % 4000);
    /* Linux's ephemeral range: a client port never looks like a mail port (2525). */
    uint16_t cport = (uint16_t)(EPHEMERAL_LO + (n / 4000) % EPHEMERAL_COUNT);
    if (c->kind == K_BULK) {
        c->ip[0] = ipv4(10, 20, (int)(host >> 8), (int)(host & 0xff));
        c->ip[1] = ipv4(192, 0, 2, 10 + (int)(n % 200));
    } else if (inbound) {
        bool net = (n / (EPHEMERAL_COUNT * 250)) % 2;
        c->ip[0] = ipv4(net ? 198 : 203, net ? 51 : 0, net ? 100 : 113,
                        (int)(1 + (n / EPHEMERAL_COUNT) % 250));
        c->ip[1] = ipv4(10, 1, 0, 10 + (int)(n % 8));
        cport = (uint16_t)(EPHEMERAL_LO + n % EPHEMERAL_COUNT);
    } else {
        c->ip[0] = ipv4(10, 2, (int)(host >> 8), (int)(host & 0xff));
        c->ip[1] = ipv4(203, 0, 113, 200 + (int)(n % 50));
    }
    c->port[0] = cport;
    c->port[1] = server_port;
    c->seq[0] = (uint32_t)rng_next(&g->rng);
    c->seq[1] = (uint32_t)rng_next(&g->rng);
}

struct sizes { uint64_t lo, hi; int max_msgs; };

static void plan_mailbox(struct gen *g, struct conn *c, struct sizes sz, double fail, int min_msgs)
{
    c->auth_fail = rng_chance(&g->rng, fail);
    c->msg_total = c->auth_fail ? 0 : (int)rng_range(&g->rng, (uint32_t)min_msgs, (uint32_t)sz.max_msgs);
    for (int i = 0; i < c->msg_total; i++) {
        c->msg_size[i] = message_size(g, sz.lo, sz.hi);
        c->planned += c->msg_size[i];
    }
    c->planned += 600;
}

static void conn_start(struct gen *g, struct conn *c)
{
    memset(c, 0, sizeof *c);
    c->serial = (uint32_t)g->conn_serial;
    struct rng *r = &g->rng;
    struct sizes sz = { 2048, 2u << 20, 4 };
    if (g->profile == PR_CONCURRENT)
        sz = (struct sizes){ 2048, 32768, 2 };
    else if (g->profile == PR_SESSIONS)
        sz = (struct sizes){ 2048, 8192, 1 };

    uint64_t mail_bytes = g->mail_started, bulk_bytes = g->bulk_started;
    if (g->bulk_share > 0 && (double)bulk_bytes < g->bulk_share * (double)(mail_bytes + bulk_bytes)) {
        c->kind = K_BULK;
        c->proto = P_SMTP;
        c->bulk_left = rng_size(r, 1u << 20, 20u << 20);
        c->planned = c->bulk_left + 100;
        conn_addresses(g, c, 443);
        g->bulk_started += c->planned;
        g->t.bulk_bytes += c->bulk_left;
        g->planned_active += c->planned;
        return;
    }

    uint32_t roll = rng_below(r, 100);
    uint16_t port;
    if (g->profile == PR_SESSIONS) {
        if (roll < 35) {
            c->kind = K_SMTP_PROBE, c->proto = P_SMTP, port = 25;
        } else if (roll < 55) {
            c->kind = K_REFUSED;
            uint32_t p = rng_below(r, 10);
            c->proto = p < 6 ? P_SMTP : p < 8 ? P_POP3 : P_IMAP;
            port = c->proto == P_SMTP ? 25 : c->proto == P_POP3 ? 110 : 143;
        } else if (roll < 58) {
            c->kind = K_UNANSWERED, c->proto = P_SMTP, port = 25;
        } else if (roll < 80) {
            c->kind = K_SMTP, c->proto = P_SMTP;
            c->auth = roll < 63;
            port = c->auth ? 587 : 25;
            c->auth_fail = c->auth && rng_chance(r, 0.5);
            c->msg_total = c->auth_fail ? 0 : 1;
        } else if (roll < 90) {
            c->kind = K_POP3, c->proto = P_POP3, port = 110;
            plan_mailbox(g, c, (struct sizes){ 2048, 8192, 1 }, 0.2, 0);
        } else {
            c->kind = K_IMAP, c->proto = P_IMAP, port = 143;
            plan_mailbox(g, c, (struct sizes){ 2048, 8192, 1 }, 0.2, 0);
        }
    } else if (roll < 50) {
        c->kind = K_SMTP, c->proto = P_SMTP;
        c->auth = rng_chance(r, 0.5);
        port = c->auth ? 587 : 25;
        c->auth_fail = c->auth && rng_chance(r, 0.1);
        c->msg_total = c->auth_fail ? 0 : (int)rng_range(r, 1, (uint32_t)sz.max_msgs);
    } else if (roll < 75) {
        c->kind = K_POP3, c->proto = P_POP3, port = 110;
        plan_mailbox(g, c, sz, 0.08, 1);
    } else {
        c->kind = K_IMAP, c->proto = P_IMAP, port = 143;
        plan_mailbox(g, c, sz, 0.08, 1);
    }
    if (c->kind == K_SMTP) {
        for (int i = 0; i < c->msg_total; i++) {
            c->msg_size[i] = message_size(g, sz.lo, sz.hi);
            c->planned += c->msg_size[i];
        }
        c->planned += 800;
    }
    c->planned += 200;
    conn_addresses(g, c, port);
    g->mail_started += c->planned;
    g->planned_active += c->planned;
}

/* --- driving one connection a few packets further -------------------------------- */

/* The receiver of side's data sends a pure ACK. */
static void ack_from(struct gen *g, struct conn *c, int receiver)
{
    emit(g, c, receiver, F_ACK, c->seq[receiver], NULL, 0);
}

static void send_segment(struct gen *g, struct conn *c, int side, const uint8_t *data, size_t len,
                         uint32_t seq, bool push)
{
    emit(g, c, side, (uint8_t)(F_ACK | (push ? F_PSH : 0)), seq, data, len);
}

/* Sends up to two segments of the current turn; returns false when the conversation
 * is over (no turn left). */
static bool pump_data(struct gen *g, struct conn *c)
{
    if (!c->turn_active || turn_left(&c->turn) == 0) {
        if (!script_step(g, c)) {
            c->turn_active = false;
            return false;
        }
    }
    struct turn *t = &c->turn;
    int side = t->side;
    /* Occasionally swap two full segments (reordering) or send one twice. */
    if (turn_left(t) >= 2 * MSS + 1 && rng_chance(&g->rng, 0.003)) {
        size_t a = turn_read(g, t, g->payload[0], MSS);
        size_t b = turn_read(g, t, g->payload[1], MSS);
        uint32_t seq = c->seq[side];
        send_segment(g, c, side, g->payload[1], b, seq + (uint32_t)a, false);
        send_segment(g, c, side, g->payload[0], a, seq, false);
        c->seq[side] += (uint32_t)(a + b);
        c->unacked[side] += 2;
        g->t.reordered++;
    } else {
        for (int i = 0; i < 2 && turn_left(t) > 0; i++) {
            size_t n = turn_read(g, t, g->payload[0], MSS);
            bool last = turn_left(t) == 0;
            send_segment(g, c, side, g->payload[0], n, c->seq[side], last);
            if (rng_chance(&g->rng, 0.003)) {
                send_segment(g, c, side, g->payload[0], n, c->seq[side], last);
                g->t.retransmitted++;
            }
            c->seq[side] += (uint32_t)n;
            c->unacked[side]++;
        }
    }
    if (c->unacked[side] >= 2)
        ack_from(g, c, !side);
    return true;
}

/* Advances c; returns true when it is finished. */
static bool conn_pump(struct gen *g, struct conn *c)
{
    uint64_t sent_before = c->sent;
    switch (c->phase) {
    case PH_SYN:
        emit(g, c, 0, F_SYN, c->seq[0]++, NULL, 0);
        c->phase = c->kind == K_UNANSWERED ? PH_DONE : c->kind == K_REFUSED ? PH_RST : PH_SYNACK;
        break;
    case PH_RST:
        emit_raw(g, c->ip[1], c->ip[0], c->port[1], c->port[0], F_RST | F_ACK, 0, c->seq[0], NULL, 0);
        c->phase = PH_DONE;
        break;
    case PH_SYNACK:
        emit(g, c, 1, F_SYN | F_ACK, c->seq[1]++, NULL, 0);
        c->phase = PH_HSACK;
        break;
    case PH_HSACK:
        emit(g, c, 0, F_ACK, c->seq[0], NULL, 0);
        c->phase = PH_DATA;
        if (c->kind != K_BULK) {
            c->established_counted = true;
            if (++g->live_mail > g->t.peak_concurrent_mail)
                g->t.peak_concurrent_mail = g->live_mail;
        }
        break;
    case PH_DATA:
        if (!pump_data(g, c))
            c->phase = PH_FIN1;
        break;
    case PH_FIN1:   /* the client closes first, the server answers with its own FIN */
        emit(g, c, 0, F_FIN | F_ACK, c->seq[0]++, NULL, 0);
        c->phase = PH_FIN2;
        break;
    case PH_FIN2:
        emit(g, c, 1, F_FIN | F_ACK, c->seq[1]++, NULL, 0);
        c->phase = PH_FIN3;
        break;
    case PH_FIN3:
        emit(g, c, 0, F_ACK, c->seq[0], NULL, 0);
        c->phase = PH_DONE;
        break;
    case PH_DONE:
        break;
    }
    uint64_t sent = c->sent - sent_before;
    g->planned_active -= sent < g->planned_active ? sent : g->planned_active;
    if (c->phase != PH_DONE)
        return false;
    if (c->established_counted)
        g->live_mail--;
    return true;
}

/* --- the run --------------------------------------------------------------------- */

static void emit_flood_syn(struct gen *g)
{
    uint64_t k = g->t.flood_syns++;
    uint32_t src = ipv4(198, 18, 0, 0) + (uint32_t)(k % 131072);
    uint16_t sport = (uint16_t)(EPHEMERAL_LO + (k / 131072) % EPHEMERAL_COUNT);
    emit_raw(g, src, ipv4(10, 1, 0, 10), sport, 25, F_SYN, (uint32_t)rng_next(&g->rng), 0, NULL, 0);
}

static void write_pcap_header(struct gen *g)
{
    uint8_t h[24];
    le32(h, 0xa1b2c3d4);
    uint16_t major = 2, minor = 4;   /* host order, like the magic */
    memcpy(h + 4, &major, 2);
    memcpy(h + 6, &minor, 2);
    memset(h + 8, 0, 8);
    le32(h + 16, 262144);
    le32(h + 20, 1);   /* LINKTYPE_ETHERNET */
    memcpy(g->buf + g->buf_len, h, sizeof h);
    g->buf_len += sizeof h;
    g->t.file_bytes += sizeof h;
}

static void run(struct gen *g)
{
    struct conn *active = calloc(g->concurrent, sizeof *active);
    if (!active) {
        fprintf(stderr, "gen_capture: out of memory\n");
        exit(1);
    }
    uint32_t n = 0;
    for (; n < g->concurrent; n++)
        conn_start(g, &active[n]);
    while (n > 0) {
        uint32_t i = rng_below(&g->rng, n);
        bool done = conn_pump(g, &active[i]);
        if (g->profile == PR_SYNFLOOD && rng_chance(&g->rng, g->flood_ratio - (int)g->flood_ratio))
            emit_flood_syn(g);
        for (int k = 0; g->profile == PR_SYNFLOOD && k < (int)g->flood_ratio; k++)
            emit_flood_syn(g);
        if (!done)
            continue;
        count_outcome(g, &active[i]);
        if (g->t.file_bytes + g->planned_active < g->target_bytes)
            conn_start(g, &active[i]);
        else
            active[i] = active[--n];
    }
    free(active);
}

static void write_counts(const struct gen *g, const char *path, uint64_t seed, uint64_t size_mb)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "gen_capture: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    const struct truth *t = &g->t;
    fprintf(f, "{\n  \"format\": 2, \"profile\": \"%s\", \"seed\": %llu, \"size_mb\": %llu, \"concurrent\": %u,\n",
            profile_names[g->profile], (unsigned long long)seed, (unsigned long long)size_mb,
            g->concurrent);
    fprintf(f, "  \"packets\": %llu, \"file_bytes\": %llu, \"payload_bytes\": %llu, \"capture_seconds\": %.6f,\n",
            (unsigned long long)t->packets, (unsigned long long)t->file_bytes,
            (unsigned long long)t->payload_bytes, (double)g->now_ns / 1e9);
    uint64_t total = 0;
    for (int p = 0; p < P_COUNT; p++)
        total += t->sessions[p];
    fprintf(f, "  \"sessions_total\": %llu,\n  \"sessions\": {", (unsigned long long)total);
    for (int p = 0; p < P_COUNT; p++)
        fprintf(f, "%s\"%s\": %llu", p ? ", " : "", proto_names[p], (unsigned long long)t->sessions[p]);
    fprintf(f, "},\n  \"status\": {\n");
    for (int p = 0; p < P_COUNT; p++) {
        fprintf(f, "    \"%s\": {", proto_names[p]);
        bool first = true;
        for (int s = 0; s < S_COUNT; s++) {
            if (!t->status[p][s])
                continue;
            fprintf(f, "%s\"%s\": %llu", first ? "" : ", ", status_names[s],
                    (unsigned long long)t->status[p][s]);
            first = false;
        }
        fprintf(f, "}%s\n", p + 1 < P_COUNT ? "," : "");
    }
    fprintf(f, "  },\n  \"auth_failures\": {");
    for (int p = 0; p < P_COUNT; p++)
        fprintf(f, "%s\"%s\": %llu", p ? ", " : "", proto_names[p], (unsigned long long)t->auth_failures[p]);
    fprintf(f, "},\n");
    fprintf(f, "  \"smtp_messages\": %llu, \"smtp_message_bytes\": %llu,\n"
               "  \"rcpt_total\": %llu, \"rcpt_rejected\": %llu,\n"
               "  \"retr_count\": %llu, \"retr_bytes\": %llu, \"fetch_count\": %llu, \"fetch_bytes\": %llu,\n"
               "  \"flood_syns\": %llu, \"bulk_connections\": %llu, \"bulk_bytes\": %llu,\n"
               "  \"retransmitted\": %llu, \"reordered\": %llu, \"peak_concurrent_mail\": %u\n}\n",
            (unsigned long long)t->smtp_messages, (unsigned long long)t->smtp_message_bytes,
            (unsigned long long)t->rcpt_total, (unsigned long long)t->rcpt_rejected,
            (unsigned long long)t->retr_count, (unsigned long long)t->retr_bytes,
            (unsigned long long)t->fetch_count, (unsigned long long)t->fetch_bytes,
            (unsigned long long)t->flood_syns, (unsigned long long)t->bulk_connections,
            (unsigned long long)t->bulk_bytes, (unsigned long long)t->retransmitted,
            (unsigned long long)t->reordered, t->peak_concurrent_mail);
    if (fclose(f) != 0) {
        fprintf(stderr, "gen_capture: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: gen_capture --out FILE|- [--counts FILE] [--seed N] [--size-mb N]\n"
                    "       [--profile normal|sessions|concurrent|synflood] [--concurrent N]\n"
                    "       [--flood-ratio R] [--bulk-share F]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static struct gen gen;
    struct gen *g = &gen;
    const char *out = NULL, *counts = NULL;
    uint64_t seed = 1, size_mb = 1024;
    long concurrent = -1;
    double bulk_share = -1;
    g->flood_ratio = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--counts")) counts = v;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--size-mb")) size_mb = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--concurrent")) concurrent = strtol(v, NULL, 10);
        else if (!strcmp(a, "--flood-ratio")) g->flood_ratio = strtod(v, NULL);
        else if (!strcmp(a, "--bulk-share")) bulk_share = strtod(v, NULL);
        else if (!strcmp(a, "--profile")) {
            int found = -1;
            for (int p = 0; p < 4; p++)
                if (!strcmp(v, profile_names[p]))
                    found = p;
            if (found < 0)
                usage();
            g->profile = (enum profile)found;
        } else {
            usage();
        }
        i++;
    }
    if (!out || size_mb == 0 || (!strcmp(out, "-") && !counts) || g->flood_ratio < 0)
        usage();
    static const uint32_t default_concurrent[] = { 64, 256, 20000, 64 };
    g->concurrent = concurrent > 0 ? (uint32_t)concurrent : default_concurrent[g->profile];
    g->bulk_share = bulk_share >= 0 ? bulk_share : g->profile == PR_NORMAL ? 0.2 : 0.0;
    g->target_bytes = size_mb << 20;
    rng_seed(&g->rng, seed);
    pattern_init(g);
    g->now_ns = 1780000000LL * 1000000000LL;   /* 2026-05-28 */
    int64_t start_ns = g->now_ns;
    g->buf = malloc(OUTBUF);
    if (!g->buf) {
        fprintf(stderr, "gen_capture: out of memory\n");
        return 1;
    }
    g->out = strcmp(out, "-") ? fopen(out, "wb") : stdout;
    if (!g->out) {
        fprintf(stderr, "gen_capture: %s: %s\n", out, strerror(errno));
        return 1;
    }
    write_pcap_header(g);
    run(g);
    /* A quiet tail: the capture goes on 31 s past its traffic (one packet then, to a port
     * mailtap does not follow). An unanswered SYN is one time was seen to pass after;
     * mailtap takes a SYN the file's end cut within 3 s for an unfinished connection. */
    g->now_ns += 31LL * 1000000000;
    emit_raw(g, 0xc6336401u, 0xc6336402u, 40000, 9, 0x02, 1, 0, NULL, 0);   /* 198.51.100.x */
    flush_out(g);
    if (g->out != stdout ? fclose(g->out) != 0 : fflush(g->out) != 0) {
        fprintf(stderr, "gen_capture: %s: %s\n", out, strerror(errno));
        return 1;
    }
    g->now_ns -= start_ns;
    char path[4096];
    if (!counts) {
        snprintf(path, sizeof path, "%s.counts.json", out);
        counts = path;
    }
    write_counts(g, counts, seed, size_mb);
    free(g->buf);
    return 0;
}
