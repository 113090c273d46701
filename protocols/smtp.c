/* smtp.c — SMTP decoder (RFC 5321 with PIPELINING, CHUNKING, STARTTLS and AUTH).
 *
 * Owns: the SMTP state machine over both byte streams of one connection, matching each
 * server reply to the command it answers (a FIFO, since clients pipeline), turning
 * replies into statuses (the table right below), which SASL response names the user
 * (sasl.c finds it, never a secret), and a scan of message headers for the summary. It
 * fills the mt_session it is given; the session owns everything stored, this state owns
 * only buffers it frees itself.
 *
 * Design notes. The client stream decides how the next client bytes are read (commands,
 * SASL responses, message data, BDAT chunks); the server stream is a sequence of replies,
 * each one consumed by the oldest pending command. A transaction is followed twice: the
 * client side creates its message record and recipients as commands are seen, the server
 * side (struct smtp_txn) counts the replies and decides the outcome, in reply order.
 * A sensor holds tens of thousands of these states at once, most of them idle: what
 * one holds is sized to what was seen (the pending ring, each saved line) or kept only
 * while it is read (the header scan), and running out of memory only loses detail. */
#include "smtp.h"

#include "decoder.h"
#include "headers.h"
#include "linereader.h"
#include "sasl.h"
#include "session.h"
#include "text.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

/* Commands awaiting a reply. Clients pipeline a whole transaction (RFC 2920), and one
 * MAIL with 1,000 RCPTs is Postfix's default recipient limit: 32 bytes each, allocated
 * only as a connection needs them. Past this the connection is read unpaired (desync). */
#define SMTP_PENDING_MAX 4096
#define SMTP_PENDING_MIN 8            /* the ring's first size; it doubles up to the max */
#define SMTP_REPLY_LINES_MAX 100      /* lines of one reply kept in the transcript */
#define SMTP_HEADER_BYTES_MAX (64 * 1024)
#define SMTP_HEADER_LINES_MAX 1000
#define SMTP_SASL_MAX 1024            /* decoded SASL response, enough to find a user */
#define SMTP_NOTES_MAX 8              /* protocol-error notes per connection */
#define SMTP_MASK "*****"

/* ---- Where SMTP replies become statuses ---------------------------------------------
 *
 * A transaction (MAIL FROM .. end of data) is decided by one reply:
 *   MAIL FROM not 2xx ..... that reply, phase MAIL (sender_rejected, too_big, temp_failed)
 *   end of data, BDAT ..... that reply, phase DATA; 2xx is delivered, or partial when a
 *                           recipient was refused (4xx or 5xx) — partial keeps the refusal
 *                           as its deciding line; a reply while the message is still being
 *                           read means its end was lost in a capture gap (capture_gap)
 *   DATA not 354 .......... phase DATA, unless no recipient was accepted: then as below
 *   no data sent .......... by the recipients, when every one was refused: relay_denied
 *                           when all 5xx refusals were relay refusals, else rcpt_rejected
 *                           when some were 5xx, else temp_failed (greylisting)
 *   421 at any time ....... temp_failed: the server is closing the connection
 *   otherwise ............. aborted (RSET, QUIT, EHLO, new MAIL, connection closed or
 *                           reset); at the end of the capture, incomplete when a reply
 *                           or message data was still awaited.
 * The session status, first match wins:
 *   greeting 4xx/5xx -> server_rejected; no server byte at all -> no_response (nothing
 *   can be decided without a server); any transaction -> the most severe one (enum order,
 *   status_worse) with the line that decided it; an AUTH answered and none succeeded ->
 *   auth_failed; TLS with no plaintext after it -> encrypted; RST -> reset; capture end,
 *   timeout or eviction before QUIT -> incomplete; else no_mail. */
enum {
    PH_MAIL = 1u << SMTP_PHASE_MAIL,
    PH_RCPT = 1u << SMTP_PHASE_RCPT,
    PH_DATA = 1u << SMTP_PHASE_DATA,
    PH_ALL = PH_MAIL | PH_RCPT | PH_DATA,
};

/* First matching rule wins. enhanced: "c.s.d", with x as the class for any class. text:
 * case-insensitive substring of any line of the reply. */
static const struct smtp_rule {
    unsigned phases;
    char cls;                 /* first digit of the code */
    int codes[3];             /* exact codes, or {0} for any */
    const char *enhanced;
    const char *text;
    enum mt_status status;
} smtp_rules[] = {
    { PH_ALL, '2', {0}, NULL, NULL, MT_STATUS_DELIVERED },
    /* A relay refusal is one whatever its class: a 454 (Postfix's defer_unauth_destination,
     * soft_bounce) will not pass on a retry either. */
    { PH_RCPT, '4', {0}, NULL, "relay access denied", MT_STATUS_RELAY_DENIED },
    { PH_RCPT, '4', {0}, NULL, "relaying denied", MT_STATUS_RELAY_DENIED },
    { PH_ALL, '4', {0}, NULL, NULL, MT_STATUS_TEMP_FAILED },   /* greylisting, deferral, 421 */
    { PH_MAIL | PH_DATA, '5', {552}, NULL, NULL, MT_STATUS_TOO_BIG },
    { PH_MAIL | PH_DATA, '5', {0}, "x.3.4", NULL, MT_STATUS_TOO_BIG },  /* too big for system */
    { PH_MAIL | PH_DATA, '5', {0}, "x.2.3", NULL, MT_STATUS_TOO_BIG },  /* over admin limit */
    { PH_MAIL, '5', {0}, NULL, NULL, MT_STATUS_SENDER_REJECTED },
    /* Postfix applies its sender, client and HELO restrictions at RCPT time by default
     * (smtpd_delay_reject): the refusal names what it is about, not the recipient. */
    { PH_RCPT, '5', {0}, NULL, "sender address rejected", MT_STATUS_SENDER_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "client host rejected", MT_STATUS_SENDER_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "helo command rejected", MT_STATUS_SENDER_REJECTED },
    /* The client's IP on a DNS blocklist, said at RCPT (Postfix's reject_rbl_client:
     * "Client host [192.0.2.1] blocked using zen.spamhaus.org"; Microsoft 365's "banned
     * sending IP"): the sending host is refused, whoever the recipient, and no
     * authentication helps. 5.7.1 alone says "not authorized", not "relay": a recipient
     * access rule answers with it too. A refusal that names the recipient comes first (an
     * address may hold these words; Postfix's reject_rhsbl_recipient says "Recipient
     * address rejected: ... blocked using": the recipient's domain is listed). */
    { PH_RCPT, '5', {0}, NULL, "recipient address rejected", MT_STATUS_RCPT_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "blocked using", MT_STATUS_SENDER_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "client host [", MT_STATUS_SENDER_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "banned sending ip", MT_STATUS_SENDER_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "blacklist", MT_STATUS_SENDER_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "blocklist", MT_STATUS_SENDER_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "black list", MT_STATUS_SENDER_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "block list", MT_STATUS_SENDER_REJECTED },
    { PH_RCPT, '5', {0}, NULL, "relay access denied", MT_STATUS_RELAY_DENIED },
    { PH_RCPT, '5', {0}, NULL, "relaying denied", MT_STATUS_RELAY_DENIED },
    { PH_RCPT, '5', {0}, NULL, "not permitted to relay", MT_STATUS_RELAY_DENIED },
    { PH_RCPT, '5', {0}, NULL, "relay not permitted", MT_STATUS_RELAY_DENIED },   /* Exim */
    { PH_RCPT, '5', {0}, NULL, "unable to relay", MT_STATUS_RELAY_DENIED },
    { PH_RCPT, '5', {0}, NULL, "relaying not allowed", MT_STATUS_RELAY_DENIED },
    { PH_RCPT, '5', {0}, NULL, "not allowed to relay", MT_STATUS_RELAY_DENIED },
    { PH_RCPT, '5', {0}, NULL, "we do not relay", MT_STATUS_RELAY_DENIED },
    { PH_RCPT, '5', {0}, NULL, NULL, MT_STATUS_RCPT_REJECTED },
    /* The DATA command refused for want of recipients (Postfix after a recipient refused
     * later, Exim): no message was sent, so nothing about its content. */
    { PH_DATA, '5', {0}, NULL, "no valid recipients", MT_STATUS_RCPT_REJECTED },
    { PH_DATA, '5', {0}, NULL, "valid rcpt command must precede", MT_STATUS_RCPT_REJECTED },
    { PH_DATA, '5', {0}, NULL, NULL, MT_STATUS_CONTENT_REJECTED },
};

/* ---- Reply parsing --------------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* Length of the first word of s[0..len). */
static size_t word_len(const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && !is_space(s[n]))
        n++;
    return n;
}

/* The word in s[0..len) equals word, case-insensitively. */
static bool word_is(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && text_starts_with_ci(s, len, word);
}

bool smtp_enhanced_code(const char *text, size_t len, struct smtp_enhanced *out)
{
    int part[3];
    size_t i = 0;
    for (int k = 0; k < 3; k++) {
        if (k > 0 && (i >= len || text[i++] != '.'))
            return false;
        size_t digits = 0;
        part[k] = 0;
        while (i < len && is_digit(text[i]) && digits < 4) {
            part[k] = part[k] * 10 + (text[i++] - '0');
            digits++;
        }
        if (digits == 0 || digits > (k == 0 ? 1u : 3u))
            return false;
    }
    if (part[0] != 2 && part[0] != 4 && part[0] != 5)
        return false;
    if (i < len && text[i] != ' ' && text[i] != '\t')
        return false;
    *out = (struct smtp_enhanced){ part[0], part[1], part[2] };
    return true;
}

/* Length of the run of base64 at s; *verb_like when it is all upper-case letters. */
static size_t base64_run(const char *s, size_t len, bool *verb_like)
{
    size_t n = 0;
    *verb_like = true;
    for (; n < len && (is_alpha(s[n]) || is_digit(s[n]) || s[n] == '+' || s[n] == '/' || s[n] == '='); n++)
        *verb_like &= s[n] >= 'A' && s[n] <= 'Z';
    return n;
}

/* Strict reply syntax: three digits (first 2..5), then end, ' ' or '-'. -1 otherwise. */
static int reply_code(const char *line, size_t len)
{
    if (len < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) || !is_digit(line[2]))
        return -1;
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return -1;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* Bit i set: rule i's text pattern occurs in line. */
static unsigned rule_text_hits(const char *line, size_t len)
{
    unsigned hits = 0;
    for (size_t i = 0; i < ARRAY_LEN(smtp_rules); i++)
        if (smtp_rules[i].text && text_find_ci(line, len, smtp_rules[i].text) >= 0)
            hits |= 1u << i;
    return hits;
}

static bool enhanced_matches(const char *pattern, const struct smtp_enhanced *e)
{
    char have[24];
    snprintf(have, sizeof have, "%d.%d.%d", e->cls, e->subject, e->detail);
    if (pattern[0] == 'x')
        return strcmp(pattern + 1, have + 1) == 0;
    return strcmp(pattern, have) == 0;
}

static enum mt_status classify(enum smtp_phase phase, int code, const struct smtp_enhanced *enh,
                               unsigned text_hits)
{
    for (size_t i = 0; i < ARRAY_LEN(smtp_rules); i++) {
        const struct smtp_rule *rule = &smtp_rules[i];
        if (!(rule->phases & (1u << phase)) || rule->cls != '0' + code / 100)
            continue;
        if (rule->codes[0] && code != rule->codes[0] && code != rule->codes[1] &&
            code != rule->codes[2])
            continue;
        if (rule->enhanced && !(enh && enhanced_matches(rule->enhanced, enh)))
            continue;
        if (rule->text && !(text_hits & (1u << i)))
            continue;
        return rule->status;
    }
    return MT_STATUS_UNKNOWN;
}

enum mt_status smtp_classify_line(enum smtp_phase phase, const char *line, size_t len)
{
    struct smtp_enhanced enh;
    int code = reply_code(line, len);
    if (code < 0)
        return MT_STATUS_UNKNOWN;
    const char *text = len > 4 ? line + 4 : "";
    size_t text_len = len > 4 ? len - 4 : 0;
    bool has_enh = smtp_enhanced_code(text, text_len, &enh);
    return classify(phase, code, has_enh ? &enh : NULL, rule_text_hits(text, text_len));
}

/* ---- State ----------------------------------------------------------------------- */

/* How the next client bytes are read. The server side needs no state of its own: every
 * reply goes to the oldest pending command. */
enum smtp_state {
    SMTP_GREETING,   /* no greeting yet; client lines are still commands (early talkers) */
    SMTP_COMMAND,    /* client lines are commands */
    SMTP_AUTH,       /* client lines are SASL responses: masked */
    SMTP_DATA_WAIT,  /* DATA sent, no 354 yet: client lines are already message data */
    SMTP_MESSAGE,    /* 354 seen: message data, body skipped by the line reader */
    SMTP_BDAT,       /* a BDAT chunk is being skipped */
    SMTP_TLS,        /* TLS: nothing readable any more, both readers discard */
};

static const char *smtp_state_name(enum smtp_state state)
{
    static const char *const names[] = {
        [SMTP_GREETING] = "greeting", [SMTP_COMMAND] = "command", [SMTP_AUTH] = "auth",
        [SMTP_DATA_WAIT] = "data-wait", [SMTP_MESSAGE] = "message", [SMTP_BDAT] = "bdat",
        [SMTP_TLS] = "tls",
    };
    if ((size_t)state < ARRAY_LEN(names) && names[state])
        return names[state];
    return "unknown";
}

/* One server line (or event text), raw: sanitized once, where it is stored. Its text is a
 * struct mt_line_buf (session.h): on the heap, grown to fit, reused for the next line. A
 * connection holds these as long as it is open. Copy with saved_copy, never with =, or
 * two of them would own one buffer. */
struct smtp_saved {
    struct mt_line_buf buf;   /* cap 0 with text: not ours (saved_event) */
    int code;                 /* 0 for an event */
    int tline;                /* transcript index, -1 if none */
};

struct smtp_reply {
    bool open;                /* lines seen, final line not yet */
    int code;
    bool has_enh;
    struct smtp_enhanced enh;
    unsigned text_hits;
    uint64_t lines, hidden;   /* hidden: lines over SMTP_REPLY_LINES_MAX, not transcribed */
    struct smtp_saved first;
};

struct smtp;
struct smtp_pending;

struct smtp_command {
    const char *verb;
    bool masked;              /* the handler writes its own (masked) transcript line */
    void (*on_command)(struct smtp *st, struct smtp_pending *p, const char *arg, size_t len);
    bool (*on_reply)(struct smtp *st, const struct smtp_pending *p); /* true: answered */
    void (*on_line)(struct smtp *st, const char *line, size_t len);  /* each reply line */
};

static const struct smtp_command smtp_end_of_data;   /* defined with the command table */

struct smtp_pending {
    const struct smtp_command *cmd;
    uint32_t txn;             /* transaction it belongs to, 0 for none */
    int msg;                  /* MAIL: its message index, -1 */
    int rcpt;                 /* RCPT: its recipient index, -1 */
    int tline;                /* transcript index of the command line, -1 */
    bool last;                /* BDAT ... LAST */
    bool opens_txn;           /* MAIL */
    int64_t sent_us;          /* when it was sent (or the message's end seen) */
};

/* The server's view of the current transaction, advanced in reply order. */
struct smtp_txn {
    uint32_t id;              /* 0: none */
    int msg;
    bool decided;
    unsigned accepted, relay, refused, deferred;
    unsigned sender_refused;  /* RCPT refused for the sender, client or HELO (Postfix) */
    struct smtp_saved relay_line, refused_line, deferred_line, sender_line;   /* first of each */
};

static unsigned txn_refusals(const struct smtp_txn *t)
{
    return t->relay + t->refused + t->deferred + t->sender_refused;
}

/* The client's message being sent with DATA. */
struct smtp_body {
    uint32_t txn;
    int msg;
    uint64_t start;           /* client stream offset of the first message byte */
    uint64_t line_end;        /* offset past the last message line read as a line */
    uint64_t before_dot;      /* message bytes before the line reader took over */
    bool in_body, dot_mode;   /* in_body: the header section is over */
    char *bdat_tail;          /* a header line cut by a BDAT chunk's end, until the rest */
    size_t bdat_tail_len;
    unsigned header_lines;
    struct header_scan *headers;  /* the fields of smtp_headers[]; only until in_body */
    struct smtp_saved subject;    /* the raw Subject, for the summary line */
};

struct smtp {
    struct mt_session *session;
    struct line_reader reader[2];   /* indexed by enum mt_side */
    enum smtp_state state;
    int64_t ts;
    uint64_t server_bytes;
    bool probe[2];                  /* the next line of that side may start TLS */
    bool starttls_done, has_starttls, has_pipelining, has_chunking;
    bool plain_after_starttls[2];  /* a side spoke plaintext after STARTTLS's 220 */
    bool quit_seen, greeting_rejected, auth_ok, auth_answered;
    /* More commands awaited replies than the ring holds: replies can no longer be paired
     * with commands. Only what reading the client stream needs is still followed (a 354
     * starts the message data, which stays data whatever else the server says), so message
     * data is never read as commands and transactions keep the outcome they had. */
    bool desync;
    unsigned notes;

    /* A ring that doubles as commands pile up, to SMTP_PENDING_MAX: most clients wait for
     * each reply, so a few entries are all most connections ever need. */
    struct { struct smtp_pending *items; unsigned head, count, cap; } fifo;
    struct smtp_reply reply;
    struct smtp_txn txn;

    uint32_t client_txn;            /* last transaction opened by the client */
    int client_msg;
    bool client_in_txn;
    struct smtp_body body;
    struct { uint32_t txn; uint64_t chunk, total, chunk_start; unsigned chunks; bool last; } bdat;
    /* ir_complete: AUTH carried a whole one-round initial response (PLAIN, EXTERNAL,
     * XOAUTH2, OAUTHBEARER): a client line is a SASL response only after a 334 challenge;
     * before one, it is a command pipelined behind the AUTH (RFC 4954 section 4). */
    struct {
        enum sasl_mech mech;
        unsigned responses;
        bool cancelled, ask_password, ir_complete;
    } sasl;

    enum mt_status worst;
    /* The first transaction the client abandoned with nothing refused (RSET, QUIT, HELO,
     * a new MAIL): it decides the session only when nothing else did. */
    bool abandoned;
    struct smtp_saved worst_line, abandoned_line, greeting, auth_line, tls_line, last_reply;
    /* Refusals that decide a session without a transaction: HELO/EHLO refused for its name
     * (the 503 to MAIL that follows is their consequence), STARTTLS refused, the server
     * closing (421) before any transaction. */
    struct smtp_saved helo_refused, starttls_refused, closing;
};

static void smtp_enter_state(struct smtp *st, enum smtp_state next)
{
    if (st->state == SMTP_TLS)   /* terminal: the readers discard from here on */
        return;
    st->state = next;
}

static void saved_set(struct smtp_saved *s, int code, const char *text, size_t len, int tline)
{
    s->code = code;
    s->tline = tline;
    line_buf_set(&s->buf, text, len);
}

static void saved_copy(struct smtp_saved *to, const struct smtp_saved *from)
{
    if (to != from)
        saved_set(to, from->code, from->buf.text, from->buf.len, from->tline);
}

static void saved_free(struct smtp_saved *s)
{
    line_buf_free(&s->buf);
    *s = (struct smtp_saved){ 0 };
}

/* An event that decides something but is only read, never kept: its text stays the
 * caller's (buf, at least MT_TEXT_MAX bytes), so no allocation can fail here. */
static struct smtp_saved saved_event(char *buf, const char *event, int tline)
{
    size_t len = strlen(event);
    if (len > MT_TEXT_MAX)
        len = MT_TEXT_MAX;
    memcpy(buf, event, len);
    return (struct smtp_saved){ { buf, (uint16_t)len, 0 }, 0, tline };
}

/* A transcript note plus the same text as a saved event. */
static int smtp_note(struct smtp *st, const char *text)
{
    return session_transcript_add(st->session, st->ts, 'I', text, strlen(text));
}

static void smtp_protocol_error(struct smtp *st, const char *what)
{
    st->session->flags |= MT_FLAG_PROTOCOL_ERROR;
    if (st->notes++ < SMTP_NOTES_MAX)
        session_transcript_addf(st->session, st->ts, 'I', "[protocol error in state %s: %s]",
                                smtp_state_name(st->state), what);
}

static struct mt_message *message_at(struct smtp *st, int msg)
{
    return msg >= 0 && (size_t)msg < st->session->message_count ? &st->session->messages[msg] : NULL;
}

/* ---- Pending commands ------------------------------------------------------------ */

/* i < count, so cap > 0. */
static struct smtp_pending *fifo_at(struct smtp *st, unsigned i)
{
    return &st->fifo.items[(st->fifo.head + i) % st->fifo.cap];
}

static void fifo_pop(struct smtp *st)
{
    if (st->fifo.count == 0)
        return;
    st->fifo.head = (st->fifo.head + 1) % st->fifo.cap;
    st->fifo.count--;
}

/* Nothing is pending any more, and (421, TLS) nothing readable is likely to follow. */
static void fifo_clear(struct smtp *st)
{
    free(st->fifo.items);
    st->fifo.items = NULL;
    st->fifo.head = st->fifo.count = st->fifo.cap = 0;
}

/* Doubles the ring, its entries moved to the start in order. False at SMTP_PENDING_MAX
 * or without memory: the ring is then unchanged. */
static bool fifo_grow(struct smtp *st)
{
    unsigned cap = st->fifo.cap ? st->fifo.cap * 2 : SMTP_PENDING_MIN;
    if (cap > SMTP_PENDING_MAX)
        cap = SMTP_PENDING_MAX;
    if (cap <= st->fifo.cap)
        return false;
    struct smtp_pending *items = malloc(cap * sizeof *items);
    if (!items)
        return false;
    for (unsigned i = 0; i < st->fifo.count; i++)
        items[i] = *fifo_at(st, i);
    free(st->fifo.items);
    st->fifo.items = items;
    st->fifo.head = 0;
    st->fifo.cap = cap;
    return true;
}

static void fifo_push(struct smtp *st, const struct smtp_pending *p)
{
    if (st->desync)
        return;
    if (st->fifo.count == st->fifo.cap && !fifo_grow(st)) {
        /* Full, or no memory to grow: no reply can be paired with its command any more. */
        smtp_protocol_error(st, st->fifo.cap == SMTP_PENDING_MAX
                                    ? "too many commands without a reply, replies no longer"
                                      " paired with commands"
                                    : "no memory for a command awaiting its reply, replies"
                                      " no longer paired with commands");
        st->desync = true;
        fifo_clear(st);
        return;
    }
    struct smtp_pending *entry = fifo_at(st, st->fifo.count++);
    *entry = *p;
    entry->sent_us = st->ts;
}

/* ---- Transactions ---------------------------------------------------------------- */

/* Stores the outcome of the transaction whose message is msg (-1: over the cap) and keeps
 * the most severe outcome of the connection with the line that decided it. */
static void record_message_outcome(struct smtp *st, int msg, enum mt_status status,
                                   const struct smtp_saved *line)
{
    struct mt_message *m = message_at(st, msg);
    if (m) {
        m->status = status;
        m->reply_code = line->code;
        if (line->code && line->buf.len > 4)
            session_text_set(&m->reply, MT_MSG_REPLY_MAX, line->buf.text + 4,
                             line->buf.len - 4);
        else
            session_text_copy(&m->reply, MT_MSG_REPLY_MAX, "", 0);
    }
}

static void record_outcome(struct smtp *st, int msg, enum mt_status status,
                           const struct smtp_saved *line)
{
    record_message_outcome(st, msg, status, line);
    if (st->worst == MT_STATUS_UNKNOWN || status_worse(st->worst, status) != st->worst) {
        st->worst = status;
        saved_copy(&st->worst_line, line);
    }
}

/* A new transaction. Refusals are rare: their lines' buffers are given back, not kept. */
static void txn_clear(struct smtp_txn *t)
{
    saved_free(&t->relay_line);
    saved_free(&t->refused_line);
    saved_free(&t->deferred_line);
    saved_free(&t->sender_line);
    memset(t, 0, sizeof *t);
}

static void txn_decide(struct smtp *st, enum mt_status status, const struct smtp_saved *line)
{
    st->txn.decided = true;
    record_outcome(st, st->txn.msg, status, line);
}

/* The transaction ends without message data: the recipients decide when all were refused. */
static void txn_end_without_data(struct smtp *st, enum mt_status fallback,
                                 const struct smtp_saved *why)
{
    struct smtp_txn *t = &st->txn;
    if (!t->id || t->decided)
        return;
    if (t->accepted > 0 || txn_refusals(t) == 0)
        txn_decide(st, fallback, why);
    else if (t->sender_refused > 0)   /* about every recipient, whatever else was said */
        txn_decide(st, MT_STATUS_SENDER_REJECTED, &t->sender_line);
    else if (t->refused == 0 && t->relay > 0)
        txn_decide(st, MT_STATUS_RELAY_DENIED, &t->relay_line);
    else if (t->refused > 0)
        txn_decide(st, MT_STATUS_RCPT_REJECTED, &t->refused_line);
    else
        txn_decide(st, MT_STATUS_TEMP_FAILED, &t->deferred_line);
}

static void txn_end_event(struct smtp *st, enum mt_status fallback, const char *event, int tline)
{
    char buf[MT_TEXT_MAX];
    struct smtp_saved why = saved_event(buf, event, tline);
    txn_end_without_data(st, fallback, &why);
}

/* The client's command (RSET, QUIT, HELO/EHLO, another MAIL) ends the transaction. With a
 * refusal, the refusal decides as for any end without data. Without one, the client
 * changed its mind: its message is aborted, but the session is not failed by it when
 * another transaction decided something (a client that resets and then sends delivered;
 * a callout probe, MAIL RCPT RSET, is aborted by its RSET). */
static void txn_abandoned(struct smtp *st, const char *command, int tline)
{
    struct smtp_txn *t = &st->txn;
    if (!t->id || t->decided)
        return;
    if (t->accepted == 0 && txn_refusals(t) > 0) {
        txn_end_event(st, MT_STATUS_ABORTED, command, tline);
        return;
    }
    char buf[MT_TEXT_MAX];
    struct smtp_saved why = saved_event(buf, command, tline);
    t->decided = true;
    record_message_outcome(st, t->msg, MT_STATUS_ABORTED, &why);
    if (!st->abandoned) {
        st->abandoned = true;
        saved_copy(&st->abandoned_line, &why);
    }
}

/* A reply in phase DATA: to DATA (not 354), to the final dot, or to BDAT. Also the
 * reply handler of the end of data. */
static bool txn_data_reply(struct smtp *st, const struct smtp_pending *p)
{
    const struct smtp_reply *r = &st->reply;
    struct smtp_txn *t = &st->txn;
    if (!t->id || t->id != p->txn || t->decided)
        return true;
    if (r->code / 100 != 2 && t->accepted == 0 && txn_refusals(t) > 0) {
        txn_end_without_data(st, MT_STATUS_ABORTED, &r->first);
        return true;
    }
    enum mt_status status = classify(SMTP_PHASE_DATA, r->code, r->has_enh ? &r->enh : NULL,
                                     r->text_hits);
    if (status == MT_STATUS_DELIVERED && txn_refusals(t) > 0) {
        /* The message keeps its end-of-data reply (the queue id); the session's deciding
         * line is the refusal, which is what the admin needs to see. */
        txn_decide(st, MT_STATUS_PARTIAL, &r->first);
        if (st->worst == MT_STATUS_PARTIAL)
            saved_copy(&st->worst_line, t->refused ? &t->refused_line
                                        : t->relay ? &t->relay_line
                                        : t->sender_refused ? &t->sender_line
                                        : &t->deferred_line);
        return true;
    }
    if (status != MT_STATUS_UNKNOWN)
        txn_decide(st, status, &r->first);
    return true;
}

/* 421: the server closes the connection; nothing pending will be answered. */
static void smtp_server_closing(struct smtp *st)
{
    if (st->txn.id && !st->txn.decided)
        txn_decide(st, MT_STATUS_TEMP_FAILED, &st->reply.first);
    else if (!st->closing.buf.len)
        saved_copy(&st->closing, &st->reply.first);
    for (unsigned i = 0; i < st->fifo.count; i++) {
        struct smtp_pending *p = fifo_at(st, i);
        if (p->opens_txn)
            record_outcome(st, p->msg, MT_STATUS_TEMP_FAILED, &st->reply.first);
    }
    fifo_clear(st);
    if (st->state == SMTP_AUTH)
        smtp_enter_state(st, SMTP_COMMAND);
}

/* ---- Message data (DATA) --------------------------------------------------------- */

static const struct header_field smtp_headers[] = {
    HEADER_TEXT_FIELD("Subject", subject, MT_MSG_SUBJECT_MAX),
    HEADER_TEXT_FIELD("From", header_from, MT_MSG_HEADER_FROM_MAX),
    HEADER_TEXT_FIELD("To", header_to, MT_MSG_HEADER_TO_MAX),
    HEADER_FIELD("Date", date, MT_MSG_DATE_MAX),
    HEADER_FIELD("Message-ID", message_id, MT_MSG_MESSAGE_ID_MAX),
};

/* The header section is over: the scan (1 KiB) goes as soon as the body starts, a big
 * body being the longest part of a message to wait for. The Subject stays for the
 * summary line. */
static void headers_end(struct smtp *st)
{
    struct smtp_body *b = &st->body;
    b->in_body = true;
    if (!b->headers)
        return;
    header_scan_flush(b->headers, smtp_headers, ARRAY_LEN(smtp_headers), message_at(st, b->msg));
    saved_set(&b->subject, 0, b->headers->subject, b->headers->subject_len, -1);
    free(b->headers);
    b->headers = NULL;
}

static void header_line(struct smtp *st, const char *line, size_t len)
{
    struct smtp_body *b = &st->body;
    if (len == 0 || !b->headers) {
        headers_end(st);
        return;
    }
    if (line[0] == '.')   /* dot-stuffed; the lone "." was handled by the caller */
        line++, len--;
    /* A line that is no header field: the body has begun without a blank line. */
    if (!header_scan_line(b->headers, smtp_headers, ARRAY_LEN(smtp_headers),
                          message_at(st, b->msg), line, len))
        headers_end(st);
}

/* A line of message data (DATA or BDAT) starting at stream offset line_start, while the
 * header section lasts: scanned, until the section ends or grows past its caps (the rest
 * is body). */
static void header_section_line(struct smtp *st, uint64_t line_start, const char *line,
                                size_t len)
{
    struct smtp_body *b = &st->body;
    if (!b->in_body && (++b->header_lines > SMTP_HEADER_LINES_MAX ||
                        line_start - b->start > SMTP_HEADER_BYTES_MAX))
        headers_end(st);   /* headers too long: the rest is body */
    if (!b->in_body)
        header_line(st, line, len);
}

/* "[message 51118 bytes, Subject: Hello]" built from raw bytes: sanitized once, on add. */
static void message_summary(struct smtp *st, uint64_t size, const char *how)
{
    char line[64 + MT_TEXT_MAX];
    int n = snprintf(line, sizeof line, "[message %llu bytes%s", (unsigned long long)size, how);
    size_t len = (size_t)n;
    const struct smtp_saved *subject = &st->body.subject;   /* set by headers_end() */
    if (subject->buf.len > 0) {
        memcpy(line + len, ", Subject: ", 11);
        len += 11;
        memcpy(line + len, subject->buf.text, subject->buf.len);
        len += subject->buf.len;
    }
    line[len++] = ']';
    session_transcript_add(st->session, st->ts, 'I', line, len);
}

/* The message is over, or never came: nothing of it is read any more. */
static void message_release(struct smtp *st)
{
    free(st->body.headers);
    st->body.headers = NULL;
    free(st->body.bdat_tail);
    st->body.bdat_tail = NULL;
    st->body.bdat_tail_len = 0;
    saved_free(&st->body.subject);
}

static void message_begin(struct smtp *st, uint32_t txn, int msg)
{
    struct smtp_body *b = &st->body;
    message_release(st);
    memset(b, 0, sizeof *b);
    b->txn = txn;
    b->msg = msg;
    b->start = b->line_end = st->reader[MT_CLIENT].offset;
    b->headers = malloc(sizeof *b->headers);
    if (b->headers)
        header_scan_init(b->headers);
    else
        b->in_body = true;   /* no memory to read headers: the message is all body */
}

static void message_end(struct smtp *st, uint64_t size, const char *how)
{
    headers_end(st);
    struct mt_message *m = message_at(st, st->body.msg);
    if (m)
        m->size = size;
    message_summary(st, size, how);
    message_release(st);
    struct smtp_pending p = { &smtp_end_of_data, st->body.txn, st->body.msg, -1, -1, false, false,
                              0 };
    fifo_push(st, &p);
    st->client_in_txn = false;
    smtp_enter_state(st, SMTP_COMMAND);
}

/* The server answered a message whose end we never saw: the final dot was in segments the
 * capture lost (libnids stalls a stream at such a hole). The reply still decides the
 * transaction; the client stream cannot be followed past the hole, so it is dropped. */
static void message_end_lost(struct smtp *st)
{
    struct line_reader *r = &st->reader[MT_CLIENT];
    st->session->flags |= MT_FLAG_CAPTURE_GAP;
    message_end(st, r->offset - st->body.start, " seen, end lost in a capture gap");
    lr_discard(r);
}

static bool reader_at_line_start(const struct line_reader *r)
{
    return r->mode == LR_LINES && r->pending_len == 0 && r->overlong_dropped == 0;
}

/* Past the headers and the 354 is in: let the line reader skip the body at memchr speed.
 * Only at a line start, or a partial line would be lost inside the reader. */
static void message_skip_body(struct smtp *st)
{
    struct line_reader *r = &st->reader[MT_CLIENT];
    if (st->body.dot_mode || !reader_at_line_start(r))
        return;
    st->body.before_dot = r->offset - st->body.start;
    st->body.dot_mode = true;
    lr_expect_dot_body(r);
}

/* A line of message data read as a line: headers, or body lines before the 354. */
static void message_line(struct smtp *st, const struct lr_event *ev, const char *line, size_t len)
{
    struct smtp_body *b = &st->body;
    uint64_t line_start = b->line_end;
    b->line_end = st->reader[MT_CLIENT].offset;
    if (len == 1 && line[0] == '.' && !ev->unterminated) {
        message_end(st, line_start - b->start, "");
        return;
    }
    header_section_line(st, line_start, line, len);
    if (b->in_body && st->state == SMTP_MESSAGE)
        message_skip_body(st);
}

/* ---- SASL ------------------------------------------------------------------------ */

/* One SASL response (initial response or continuation line). Writes what the transcript
 * may show into shown: "*" (cancel), "[user: alice]" for a LOGIN user, otherwise a mask. */
static size_t sasl_response(struct smtp *st, const char *data, size_t len, char *shown, size_t cap)
{
    if (len == 0 || (len == 1 && (data[0] == '=' || data[0] == '*'))) {
        if (len == 1 && data[0] == '*')
            st->sasl.cancelled = true;
        memcpy(shown, data, len);   /* no secret in an empty response or a cancel */
        return len;
    }
    /* Only the first response names the user (EXTERNAL's is any value: never take a
     * later one). LOGIN sends one value per prompt, "Username:" then "Password:", but a
     * server that prompts "Username:" after the user came as the initial response gets
     * the password: a later response is never taken for a name, whatever the prompt. */
    bool first = st->sasl.responses == 0;
    bool names_user = first && !(st->sasl.mech == SASL_MECH_LOGIN && st->sasl.ask_password);
    unsigned char user[SMTP_SASL_MAX];
    size_t user_len = 0;
    if (names_user)
        user_len = sasl_response_user(st->sasl.mech, data, len, user, sizeof user);
    size_t out = strlen(SMTP_MASK);
    memcpy(shown, SMTP_MASK, out);
    if (user_len > 0) {
        if (!st->auth_ok)
            text_sanitize(st->session->user, sizeof st->session->user, (const char *)user, user_len);
        if (st->sasl.mech == SASL_MECH_LOGIN && user_len + 9 <= cap) {
            memcpy(shown, "[user: ", 7);
            memcpy(shown + 7, user, user_len);
            shown[7 + user_len] = ']';
            out = user_len + 8;
        }
    }
    st->sasl.responses++;
    st->sasl.ask_password = false;
    return out;
}

static void cmd_auth(struct smtp *st, struct smtp_pending *p, const char *arg, size_t len)
{
    size_t word = word_len(arg, len);
    memset(&st->sasl, 0, sizeof st->sasl);
    st->sasl.mech = sasl_mech_from_name(arg, word);
    st->session->auth_attempts++;

    char line[MT_TRANSCRIPT_LINE_MAX];
    size_t n = 4;
    memcpy(line, "AUTH", 4);
    if (word > 0 && !sasl_mech_name_valid(arg, word)) {   /* maybe a credential: hide all */
        memcpy(line + n, " " SMTP_MASK, strlen(" " SMTP_MASK));
        p->tline = session_transcript_add(st->session, st->ts, 'C', line, n + strlen(" " SMTP_MASK));
        smtp_enter_state(st, SMTP_AUTH);
        return;
    }
    if (word > 0)
        line[n++] = ' ';
    memcpy(line + n, arg, word);
    n += word;
    const char *ir = arg + word;
    size_t ir_len = len - word;
    while (ir_len > 0 && is_space(*ir))
        ir++, ir_len--;
    if (ir_len > 0) {
        line[n++] = ' ';
        n += sasl_response(st, ir, ir_len, line + n, sizeof line - n);
    }
    p->tline = session_transcript_add(st->session, st->ts, 'C', line, n);
    enum sasl_mech m = st->sasl.mech;
    st->sasl.ir_complete = ir_len > 0 && !(ir_len == 1 && ir[0] == '=') &&
                           (m == SASL_MECH_PLAIN || m == SASL_MECH_EXTERNAL ||
                            m == SASL_MECH_XOAUTH2 || m == SASL_MECH_OAUTHBEARER);
    smtp_enter_state(st, SMTP_AUTH);
}

static void auth_continuation(struct smtp *st, const char *line, size_t len)
{
    char shown[MT_NAME_MAX + 16];
    size_t n = sasl_response(st, line, len, shown, sizeof shown);
    session_transcript_add(st->session, st->ts, 'C', shown, n);
}

static bool reply_auth(struct smtp *st, const struct smtp_pending *p)
{
    (void)p;
    const struct smtp_reply *r = &st->reply;
    if (r->code == 334) {   /* LOGIN prompts say which value comes next */
        st->sasl.ir_complete = false;   /* a challenge: the next client line answers it */
        unsigned char prompt[64];
        const struct mt_line_buf *b = &r->first.buf;
        long n = b->len > 4 ? text_base64_decode(prompt, sizeof prompt, b->text + 4, b->len - 4)
                            : 0;
        if (n > 0)
            st->sasl.ask_password = text_find_ci((const char *)prompt, (size_t)n, "pass") >= 0;
        return false;
    }
    if (st->state == SMTP_AUTH)
        smtp_enter_state(st, SMTP_COMMAND);
    st->auth_answered = true;
    if (r->code / 100 == 2) {
        st->auth_ok = true;
    } else if (!st->sasl.cancelled) {
        st->session->auth_failures++;
        saved_copy(&st->auth_line, &r->first);
    }
    return true;
}

/* ---- Commands -------------------------------------------------------------------- */

static void cmd_helo(struct smtp *st, struct smtp_pending *p, const char *arg, size_t len)
{
    text_sanitize(st->session->helo, sizeof st->session->helo, arg, word_len(arg, len));
    p->txn = st->client_in_txn ? st->client_txn : 0;
    st->client_in_txn = false;   /* EHLO resets the transaction (RFC 5321 4.1.4) */
}

static void cmd_mail(struct smtp *st, struct smtp_pending *p, const char *arg, size_t len)
{
    struct mt_message *m = session_add_message(st->session);
    st->client_msg = m ? (int)(st->session->message_count - 1) : -1;
    if (m) {
        char path[MT_MSG_MAIL_FROM_MAX];
        size_t path_len = text_extract_path(path, sizeof path, arg, len);
        session_text_copy(&m->mail_from, sizeof path, path, path_len);
        m->start_us = st->ts;
    }
    st->client_txn++;
    st->client_in_txn = true;
    p->txn = st->client_txn;
    p->msg = st->client_msg;
    p->opens_txn = true;
}

static void cmd_rcpt(struct smtp *st, struct smtp_pending *p, const char *arg, size_t len)
{
    struct mt_recipient *r = session_add_recipient(st->session);
    if (r) {
        char path[MT_RCPT_ADDR_MAX];
        size_t path_len = text_extract_path(path, sizeof path, arg, len);
        session_text_copy(&r->addr, sizeof path, path, path_len);
        r->message = st->client_in_txn ? st->client_msg : -1;
        p->rcpt = (int)(st->session->recipient_count - 1);
    }
    p->txn = st->client_in_txn ? st->client_txn : 0;
}

static void cmd_data(struct smtp *st, struct smtp_pending *p, const char *arg, size_t len)
{
    (void)arg, (void)len;
    p->txn = st->client_in_txn ? st->client_txn : 0;
    message_begin(st, p->txn, st->client_in_txn ? st->client_msg : -1);
    smtp_enter_state(st, SMTP_DATA_WAIT);
}

static void bdat_chunk_done(struct smtp *st)
{
    st->bdat.total += st->bdat.chunk;
    st->bdat.chunks++;
    struct mt_message *m = message_at(st, st->client_in_txn ? st->client_msg : -1);
    if (m)
        m->size = st->bdat.total;
    if (st->bdat.last) {
        char how[48];
        snprintf(how, sizeof how, " in %u BDAT chunks", st->bdat.chunks);
        headers_end(st);
        message_summary(st, st->bdat.total, how);
        message_release(st);
        st->client_in_txn = false;
        st->bdat.total = 0;
        st->bdat.chunks = 0;
    }
    smtp_enter_state(st, SMTP_COMMAND);
}

/* "BDAT <size> [LAST]": the chunk follows at once, with no reply in between. */
static void cmd_bdat(struct smtp *st, struct smtp_pending *p, const char *arg, size_t len)
{
    uint64_t size = 0;
    size_t i = 0;
    while (i < len && is_digit(arg[i]) && i < 18)
        size = size * 10 + (uint64_t)(arg[i++] - '0');
    size_t rest = i;
    while (rest < len && arg[rest] == ' ')
        rest++;
    bool last = len - rest == 4 && text_starts_with_ci(arg + rest, 4, "LAST");
    p->txn = st->client_in_txn ? st->client_txn : 0;
    p->last = last;
    if (i == 0 || (i < len && arg[i] != ' ') || (rest < len && !last)) {
        smtp_protocol_error(st, "malformed BDAT");   /* no idea how many bytes follow */
        return;
    }
    if (st->bdat.txn != p->txn || p->txn == 0) {
        st->bdat.total = 0;
        st->bdat.chunks = 0;
    }
    if (st->bdat.chunks == 0)   /* the message begins: its header section is read */
        message_begin(st, p->txn, st->client_in_txn ? st->client_msg : -1);
    st->bdat.txn = p->txn;
    st->bdat.chunk = size;
    st->bdat.last = last;
    st->bdat.chunk_start = st->reader[MT_CLIENT].offset;
    if (size == 0) {
        bdat_chunk_done(st);
        return;
    }
    smtp_enter_state(st, SMTP_BDAT);
    /* Until the header section ends, a chunk's lines go to the header scan (no dot
     * stuffing in a chunk); after it, chunks are skipped by count. */
    if (st->body.in_body)
        lr_skip(&st->reader[MT_CLIENT], size);
    else
        lr_read_block(&st->reader[MT_CLIENT], size);
}

/* Keeps the bytes of a line a BDAT chunk cut (clients send chunks of any size: 129 bytes
 * in a capture from the wild) until the next chunk brings the rest; capped as a line. */
static bool bdat_tail_add(struct smtp_body *b, const char *bytes, size_t len, bool cr)
{
    size_t want = b->bdat_tail_len + len + (cr ? 1 : 0);
    if (want > LR_LINE_MAX)
        want = LR_LINE_MAX;
    if (!b->bdat_tail) {
        b->bdat_tail = malloc(LR_LINE_MAX);
        if (!b->bdat_tail)
            return false;
    }
    size_t room = want - b->bdat_tail_len, take = len < room ? len : room;
    memcpy(b->bdat_tail + b->bdat_tail_len, bytes, take);
    b->bdat_tail_len += take;
    if (cr && b->bdat_tail_len < want)
        b->bdat_tail[b->bdat_tail_len++] = '\r';
    return true;
}

/* A line of a BDAT chunk read for the header section; one cut by the chunk's end is
 * joined with its rest from the next chunk. */
static void bdat_line(struct smtp *st, const struct lr_event *ev, const char *line, size_t len)
{
    struct smtp_body *b = &st->body;
    if (ev->block_tail || b->bdat_tail_len > 0) {
        if (!bdat_tail_add(b, line, len, ev->tail_cr)) {
            headers_end(st);   /* no memory to join it: the rest is body */
            lr_skip_rest(&st->reader[MT_CLIENT]);
            return;
        }
        if (ev->block_tail)
            return;   /* the rest comes with the next chunk */
        line = b->bdat_tail;
        len = b->bdat_tail_len;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        b->bdat_tail_len = 0;   /* the buffer stays until the message is released */
    }
    uint64_t line_start = b->line_end;
    b->line_end = st->reader[MT_CLIENT].offset;
    header_section_line(st, line_start, line, len);
    if (b->in_body)
        lr_skip_rest(&st->reader[MT_CLIENT]);
}

static void cmd_rset(struct smtp *st, struct smtp_pending *p, const char *arg, size_t len)
{
    (void)arg, (void)len;
    p->txn = st->client_in_txn ? st->client_txn : 0;
    st->client_in_txn = false;
}

static void cmd_quit(struct smtp *st, struct smtp_pending *p, const char *arg, size_t len)
{
    cmd_rset(st, p, arg, len);
    st->quit_seen = true;
}

/* ---- Replies --------------------------------------------------------------------- */

static bool looks_like_host(const char *s, size_t len)
{
    bool dot = false;
    if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-' || s[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.')
            dot = true;
        else if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    }
    return dot;
}

static bool reply_greeting(struct smtp *st, const struct smtp_pending *p)
{
    (void)p;
    const struct smtp_reply *r = &st->reply;
    struct mt_session *s = st->session;
    if (st->state == SMTP_GREETING)
        smtp_enter_state(st, SMTP_COMMAND);
    if (r->code / 100 != 2) {
        st->greeting_rejected = true;
        saved_copy(&st->greeting, &r->first);
        return true;
    }
    text_sanitize(s->banner, sizeof s->banner, line_buf_text(&r->first.buf), r->first.buf.len);
    const char *host = r->first.buf.len > 4 ? r->first.buf.text + 4 : "";
    size_t len = word_len(host, r->first.buf.len > 4 ? r->first.buf.len - 4 : 0);
    if (looks_like_host(host, len))
        text_sanitize(s->server_name, sizeof s->server_name, host, len);
    return true;
}

static void ehlo_line(struct smtp *st, const char *line, size_t len)
{
    if (st->reply.lines == 0 || st->reply.code != 250 || len < 4)
        return;   /* the first line is the server's name, not an extension */
    size_t word = word_len(line + 4, len - 4);
    st->has_starttls |= word_is(line + 4, word, "STARTTLS");
    st->session->starttls_offered |= st->has_starttls;
    st->has_pipelining |= word_is(line + 4, word, "PIPELINING");
    st->has_chunking |= word_is(line + 4, word, "CHUNKING");
}

/* RSET, QUIT, HELO/EHLO and an unterminated transaction's MAIL all end it. */
static bool reply_reset(struct smtp *st, const struct smtp_pending *p)
{
    if (p->txn && p->txn == st->txn.id)
        txn_abandoned(st, p->cmd->verb, p->tline);
    return true;
}

/* HELO/EHLO end a transaction as RSET does. Refused by policy (Postfix's "Helo command
 * rejected" when its HELO restrictions are not delayed), the refusal is kept; an EHLO a
 * server does not know (500-502, 504: the client falls back to HELO) is no refusal. */
static bool reply_helo(struct smtp *st, const struct smtp_pending *p)
{
    int code = st->reply.code;
    if (code / 100 == 5 && (code < 500 || code > 504) && !st->helo_refused.buf.len)
        saved_copy(&st->helo_refused, &st->reply.first);
    else if (code / 100 == 2)
        saved_free(&st->helo_refused);   /* named again, accepted */
    return reply_reset(st, p);
}

static bool reply_mail(struct smtp *st, const struct smtp_pending *p)
{
    const struct smtp_reply *r = &st->reply;
    if (st->txn.id)
        txn_abandoned(st, "MAIL", p->tline);
    txn_clear(&st->txn);
    st->txn.id = p->txn;
    st->txn.msg = p->msg;
    enum mt_status status = classify(SMTP_PHASE_MAIL, r->code, r->has_enh ? &r->enh : NULL,
                                     r->text_hits);
    if (status == MT_STATUS_UNKNOWN)
        smtp_protocol_error(st, "unexpected reply to MAIL");
    else if (status != MT_STATUS_DELIVERED && r->code == 503 && st->helo_refused.buf.len)
        txn_decide(st, MT_STATUS_SENDER_REJECTED, &st->helo_refused);   /* the cause */
    else if (status != MT_STATUS_DELIVERED)
        txn_decide(st, status, &r->first);
    return true;
}

static bool reply_rcpt(struct smtp *st, const struct smtp_pending *p)
{
    const struct smtp_reply *r = &st->reply;
    struct smtp_txn *t = &st->txn;
    struct mt_recipient *rcpt = p->rcpt >= 0 ? &st->session->recipients[p->rcpt] : NULL;
    if (rcpt) {
        rcpt->code = r->code;
        rcpt->accepted = r->code / 100 == 2;
        if (r->first.buf.len > 4)
            session_text_set(&rcpt->reply, MT_RCPT_REPLY_MAX, r->first.buf.text + 4,
                             r->first.buf.len - 4);
    }
    if (!t->id || p->txn != t->id)
        return true;
    enum mt_status status = classify(SMTP_PHASE_RCPT, r->code, r->has_enh ? &r->enh : NULL,
                                     r->text_hits);
    if (status == MT_STATUS_DELIVERED)
        t->accepted++;
    else if (status == MT_STATUS_TEMP_FAILED && t->deferred++ == 0)
        saved_copy(&t->deferred_line, &r->first);
    else if (status == MT_STATUS_RELAY_DENIED && t->relay++ == 0)
        saved_copy(&t->relay_line, &r->first);
    else if (status == MT_STATUS_RCPT_REJECTED && t->refused++ == 0)
        saved_copy(&t->refused_line, &r->first);
    else if (status == MT_STATUS_SENDER_REJECTED && t->sender_refused++ == 0)
        saved_copy(&t->sender_line, &r->first);
    else if (status == MT_STATUS_UNKNOWN)
        smtp_protocol_error(st, "unexpected reply to RCPT");
    return true;
}

static bool reply_data(struct smtp *st, const struct smtp_pending *p)
{
    if (st->reply.code == 354) {
        if (st->state == SMTP_DATA_WAIT) {
            smtp_enter_state(st, SMTP_MESSAGE);
            if (st->body.in_body)
                message_skip_body(st);
        }
        return true;
    }
    if (st->state == SMTP_DATA_WAIT) {   /* no message follows after all */
        smtp_enter_state(st, SMTP_COMMAND);
        message_release(st);
    }
    return txn_data_reply(st, p);
}

static bool reply_bdat(struct smtp *st, const struct smtp_pending *p)
{
    return p->last || st->reply.code / 100 != 2 ? txn_data_reply(st, p) : true;
}

static bool reply_starttls(struct smtp *st, const struct smtp_pending *p)
{
    (void)p;
    if (st->reply.code / 100 == 4 || st->reply.code / 100 == 5) {
        /* 454 TLS not available: a client that requires TLS gives up (decided at close,
         * when nothing else did); one that goes on in plaintext did not skip TLS. */
        st->session->starttls_refused = true;
        saved_copy(&st->starttls_refused, &st->reply.first);
    }
    if (st->reply.code != 220)
        return true;
    /* Whether TLS really follows is told by the first bytes of each side (smtp_probe). */
    st->session->tls = true;
    st->starttls_done = true;
    saved_copy(&st->tls_line, &st->reply.first);
    st->probe[MT_CLIENT] = st->probe[MT_SERVER] = true;
    return true;
}

static const struct smtp_command smtp_commands[] = {
    { "HELO", false, cmd_helo, reply_helo, NULL },
    { "EHLO", false, cmd_helo, reply_helo, ehlo_line },
    { "MAIL", false, cmd_mail, reply_mail, NULL },
    { "RCPT", false, cmd_rcpt, reply_rcpt, NULL },
    { "DATA", false, cmd_data, reply_data, NULL },
    { "BDAT", false, cmd_bdat, reply_bdat, NULL },
    { "RSET", false, cmd_rset, reply_reset, NULL },
    { "QUIT", false, cmd_quit, reply_reset, NULL },
    { "AUTH", true, cmd_auth, reply_auth, NULL },
    { "STARTTLS", false, NULL, reply_starttls, NULL },
    { "NOOP", false, NULL, NULL, NULL },
    { "VRFY", false, NULL, NULL, NULL },
    { "EXPN", false, NULL, NULL, NULL },
    { "HELP", false, NULL, NULL, NULL },
};
static const struct smtp_command smtp_greeting = { "(greeting)", false, NULL, reply_greeting, NULL };
static const struct smtp_command smtp_end_of_data = { "(end of data)", false, NULL, txn_data_reply, NULL };
static const struct smtp_command smtp_unknown = { "(unknown)", false, NULL, NULL, NULL };

/* ---- Lines from the wire ----------------------------------------------------------- */

/* The line reader delivers a line it could not buffer whole either cut (truncated) or,
 * when the line arrived in one piece, whole: cut both alike so the result never depends
 * on where the segments were split. */
static size_t line_bound(const struct lr_event *ev, bool *overlong)
{
    size_t len = ev->len;
    *overlong = ev->truncated || len >= LR_LINE_MAX;
    if (!*overlong)
        return len;
    if (len > LR_LINE_MAX)
        len = LR_LINE_MAX;
    while (len > 0 && ev->line[len - 1] == '\r')
        len--;
    return len;
}

static void tls_begin(struct smtp *st)
{
    lr_discard(&st->reader[MT_CLIENT]);
    /* The server's first bytes, when not seen yet, are still probed: a refusal in
     * plaintext (421 TLS not available, an SMTP banner on port 465) is shown before its
     * side is given up. */
    if (!st->probe[MT_SERVER])
        lr_discard(&st->reader[MT_SERVER]);
    st->session->tls = true;
    fifo_clear(st);
    int tline = smtp_note(st, "[TLS from here on: the handshake and what follows are not"
                                  " shown]");
    if (!st->starttls_done)   /* implicit TLS (port 465): this note is what decided */
        saved_set(&st->tls_line, 0, "TLS from the first byte", 23, tline);
    smtp_enter_state(st, SMTP_TLS);
}

/* The first line of a side after STARTTLS's 220 (or at connection start): a TLS record
 * (0x16) means encryption; plaintext (a command letter, a reply digit) after STARTTLS
 * means the capture was decrypted. True when the line is not SMTP. */
static bool smtp_probe(struct smtp *st, enum mt_side side, const char *line, size_t len)
{
    char first = len > 0 ? line[0] : 0;
    bool plaintext = side == MT_CLIENT ? is_alpha(first) : is_digit(first);
    st->probe[side] = false;
    if (side == MT_SERVER && st->state == SMTP_TLS) {   /* the client began TLS already */
        /* any TLS record type (change_cipher_spec 0x14 .. application_data 0x17): a
         * server refusing the hello answers with an alert (0x15), in TLS */
        if ((unsigned char)first < 0x14 || (unsigned char)first > 0x17) {
            session_transcript_add(st->session, st->ts, 'S', line, len);
            smtp_note(st, "[the server answered the TLS handshake in plaintext]");
        }
        lr_discard(&st->reader[MT_SERVER]);
        return true;
    }
    if (first != 0x16 && (plaintext || !st->starttls_done)) {
        /* Plaintext on both sides after the 220: a decrypted capture (or a server that
         * never began TLS). On one side only, TLS failed: a client that went on in
         * plaintext and a server that dropped it (decided at close). */
        if (st->starttls_done && !st->plain_after_starttls[side]) {
            st->plain_after_starttls[side] = true;
            if (!st->plain_after_starttls[!side])
                smtp_note(st, "[plaintext after STARTTLS]");
            else if (!(st->session->flags & MT_FLAG_DECRYPTED))
                st->session->flags |= MT_FLAG_DECRYPTED;
        }
        return false;
    }
    tls_begin(st);
    return true;
}

/* Where the words that follow are secret when another protocol's client talks to what was
 * declared an SMTP port (--port smtp:110): POP3's "PASS secret", IMAP's "tag LOGIN user
 * secret". len when there is no such command. */
static size_t foreign_secret_start(const char *line, size_t len)
{
    size_t first = word_len(line, len), i = first;
    while (i < len && is_space(line[i]))
        i++;
    if (word_is(line, first, "PASS"))
        return i;
    size_t second = word_len(line + i, len - i);
    if (!word_is(line + i, second, "LOGIN"))
        return len;
    for (i += second; i < len && is_space(line[i]); i++)
        ;
    for (i += word_len(line + i, len - i); i < len && is_space(line[i]); i++)
        ;
    return i;   /* past the user name */
}

/* A client that goes on after a refused or mistyped AUTH sends credentials as unknown
 * commands. Masked: a first token opening with base64 that is not an upper-case verb,
 * any later token of 12 or more base64 characters, and the secrets of POP3's and IMAP's
 * login commands (foreign_secret_start). */
static int transcript_unknown(struct smtp *st, const char *line, size_t len)
{
    char out[MT_TRANSCRIPT_LINE_MAX];
    size_t n = 0, i = 0, foreign = foreign_secret_start(line, len);
    while (i < len && n + sizeof SMTP_MASK < sizeof out) {
        size_t word = word_len(line + i, len - i);
        bool verb_like;
        size_t run = base64_run(line + i, word, &verb_like);
        bool secret = i >= foreign ||
                      (!verb_like && (i == 0 ? run >= 8 : run == word && run >= 12));
        size_t take = secret ? strlen(SMTP_MASK) : word;
        if (take > sizeof out - sizeof SMTP_MASK - n)
            take = sizeof out - sizeof SMTP_MASK - n;
        memcpy(out + n, secret ? SMTP_MASK : line + i, take);
        n += take;
        for (i += word; i < len && is_space(line[i]) && n < sizeof out; i++)
            out[n++] = line[i];
    }
    return session_transcript_add(st->session, st->ts, 'C', out, n);
}

static void command_line(struct smtp *st, const char *line, size_t len)
{
    size_t verb = word_len(line, len);
    const struct smtp_command *cmd = &smtp_unknown;
    for (size_t i = 0; i < ARRAY_LEN(smtp_commands); i++)
        if (word_is(line, verb, smtp_commands[i].verb))
            cmd = &smtp_commands[i];
    size_t arg = verb < len ? verb + 1 : len;
    struct smtp_pending p = { cmd, 0, -1, -1, -1, false, false, 0 };
    if (cmd == &smtp_unknown)
        p.tline = transcript_unknown(st, line, len);
    else if (!cmd->masked)
        p.tline = session_transcript_add(st->session, st->ts, 'C', line, len);
    if (cmd->on_command)
        cmd->on_command(st, &p, line + arg, len - arg);
    fifo_push(st, &p);
}

/* A client line that can only be a command: MAIL FROM:, RCPT TO: (a space and a colon: no
 * base64), or a bare verb whose base64 reading is unprintable bytes. */
static bool command_after_silence(const char *line, size_t len)
{
    static const char *const prefixes[] = { "MAIL FROM:", "RCPT TO:", "EHLO ", "HELO " };
    static const char *const verbs[] = { "DATA", "QUIT", "RSET", "NOOP", "STARTTLS" };
    for (size_t i = 0; i < ARRAY_LEN(prefixes); i++)
        if (text_starts_with_ci(line, len, prefixes[i]))
            return true;
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
        if (word_is(line, len, verbs[i]))
            return true;
    return false;
}

static void smtp_client_line(struct smtp *st, const struct lr_event *ev)
{
    bool overlong;
    size_t len = line_bound(ev, &overlong);
    if (st->probe[MT_CLIENT] && smtp_probe(st, MT_CLIENT, ev->line, len))
        return;
    /* Message lines are not flagged: the body is read as lines or skipped as a block
     * depending on when the 354 came, and the record must not depend on that. */
    if (overlong && st->state != SMTP_DATA_WAIT && st->state != SMTP_MESSAGE &&
        st->state != SMTP_BDAT)
        st->session->flags |= MT_FLAG_LINE_TRUNCATED;
    switch (st->state) {
    case SMTP_DATA_WAIT:
    case SMTP_MESSAGE:
        message_line(st, ev, ev->line, len);
        break;
    case SMTP_AUTH:
        if (st->server_bytes == 0 && command_after_silence(ev->line, len)) {
            /* The server's side is not in the capture: no reply ends the exchange, and a
             * command (never base64, or base64 of bytes no password holds) does. */
            smtp_enter_state(st, SMTP_COMMAND);
            command_line(st, ev->line, len);
        } else if (st->sasl.ir_complete)
            command_line(st, ev->line, len);
        else
            auth_continuation(st, ev->line, len);
        break;
    case SMTP_BDAT:   /* lines only while the header section is read */
        bdat_line(st, ev, ev->line, len);
        break;
    case SMTP_TLS:
        break;
    case SMTP_GREETING:
    case SMTP_COMMAND:
        command_line(st, ev->line, len);
        break;
    }
}

static void smtp_reply_done(struct smtp *st)
{
    struct smtp_reply *r = &st->reply;
    saved_copy(&st->last_reply, &r->first);
    if (st->desync) {
        if (r->code == 354 && st->state == SMTP_DATA_WAIT) {
            smtp_enter_state(st, SMTP_MESSAGE);
            if (st->body.in_body)
                message_skip_body(st);
        }
        return;
    }
    if (st->fifo.count == 0 && st->state == SMTP_MESSAGE)
        message_end_lost(st);   /* pushes the end of data this reply answers */
    if (st->fifo.count == 0) {
        if (r->code == 421)   /* e.g. an idle timeout: expected, not a desync */
            smtp_server_closing(st);
        else if (!(st->session->flags & MT_FLAG_CAPTURE_GAP))
            smtp_protocol_error(st, "reply without a command");   /* after a gap: expected */
        return;
    }
    struct smtp_pending p = *fifo_at(st, 0);
    if (!p.cmd->on_reply || p.cmd->on_reply(st, &p))
        fifo_pop(st);
    if (r->code == 421)
        smtp_server_closing(st);
}

static void smtp_server_line(struct smtp *st, const struct lr_event *ev)
{
    struct smtp_reply *r = &st->reply;
    bool overlong;
    size_t len = line_bound(ev, &overlong);
    const char *line = ev->line;
    if (st->probe[MT_SERVER] && smtp_probe(st, MT_SERVER, line, len))
        return;
    if (overlong)
        st->session->flags |= MT_FLAG_LINE_TRUNCATED;
    int code = reply_code(line, len);
    int tline = -1;
    if (r->open && r->lines >= SMTP_REPLY_LINES_MAX) {
        if (r->hidden++ == 0)
            smtp_protocol_error(st, "reply too long");
    } else {
        tline = session_transcript_add(st->session, st->ts, 'S', line, len);
    }
    if (code < 0) {
        smtp_protocol_error(st, "malformed reply line");
        return;
    }
    const char *text = len > 4 ? line + 4 : "";
    size_t text_len = len > 4 ? len - 4 : 0;
    if (!r->open) {
        struct smtp_saved first = r->first;   /* moved, not copied: its buffer is reused */
        memset(r, 0, sizeof *r);
        r->first = first;
        r->open = true;
        r->code = code;
        r->has_enh = smtp_enhanced_code(text, text_len, &r->enh);
        saved_set(&r->first, code, line, len, tline);
    } else if (code != r->code) {
        smtp_protocol_error(st, "reply code changed inside a reply");
    }
    if (code / 100 >= 4 && tline >= 0)   /* only 4xx/5xx rules look at text; bound the search */
        r->text_hits |= rule_text_hits(text, text_len < MT_TEXT_MAX ? text_len : MT_TEXT_MAX);
    if (st->fifo.count > 0 && fifo_at(st, 0)->cmd->on_line)
        fifo_at(st, 0)->cmd->on_line(st, line, len);
    r->lines++;
    if (len > 3 && line[3] == '-')
        return;
    if (r->hidden > 0)
        session_transcript_addf(st->session, st->ts, 'I', "[%llu more reply lines not shown]",
                                (unsigned long long)r->hidden);
    r->open = false;
    smtp_reply_done(st);
}

static void smtp_client_event(void *ctx, const struct lr_event *ev)
{
    struct smtp *st = ctx;
    switch (ev->kind) {
    case LR_EVENT_LINE:
        smtp_client_line(st, ev);
        break;
    case LR_EVENT_BODY_END:
        message_end(st, st->body.before_dot + ev->body_bytes, "");
        break;
    case LR_EVENT_SKIP_DONE:
        bdat_chunk_done(st);
        break;
    }
}

static void smtp_server_event(void *ctx, const struct lr_event *ev)
{
    if (ev->kind == LR_EVENT_LINE)
        smtp_server_line(ctx, ev);
}

/* ---- Decoder callbacks ------------------------------------------------------------- */

static void *smtp_open(struct mt_session *session)
{
    struct smtp *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->session = session;
    lr_init(&st->reader[MT_CLIENT]);
    lr_init(&st->reader[MT_SERVER]);
    st->state = SMTP_GREETING;
    st->probe[MT_CLIENT] = st->probe[MT_SERVER] = true;   /* implicit TLS */
    st->client_msg = -1;
    st->worst = MT_STATUS_UNKNOWN;
    struct smtp_pending greeting = { &smtp_greeting, 0, -1, -1, -1, false, false, 0 };
    fifo_push(st, &greeting);
    return st;
}

static void smtp_data(void *state, struct mt_session *session, enum mt_side from,
                      const char *bytes, size_t len, int64_t ts_us)
{
    struct smtp *st = state;
    (void)session;   /* the same as st->session */
    st->ts = ts_us;
    if (from == MT_SERVER) {
        st->server_bytes += len;
        lr_feed(&st->reader[MT_SERVER], bytes, len, smtp_server_event, st);
    } else {
        lr_feed(&st->reader[MT_CLIENT], bytes, len, smtp_client_event, st);
    }
}

/* Transactions the connection's end leaves open. At the end of the capture, one still
 * waiting for a reply or for its data is incomplete: nobody failed. */
static void settle_open_transactions(struct smtp *st)
{
    struct mt_session *s = st->session;
    bool eof = s->end == MT_END_EOF;
    bool sending = st->state == SMTP_DATA_WAIT || st->state == SMTP_MESSAGE ||
                   st->state == SMTP_BDAT;
    uint32_t sending_txn = st->state == SMTP_BDAT ? st->bdat.txn : st->body.txn;
    if (st->state == SMTP_DATA_WAIT || st->state == SMTP_MESSAGE) {
        headers_end(st);
        uint64_t size = st->reader[MT_CLIENT].offset - st->body.start;
        struct mt_message *m = message_at(st, st->body.msg);
        if (m)
            m->size = size;
        message_summary(st, size, " so far, unfinished");
    } else if (st->state == SMTP_BDAT) {
        headers_end(st);
        struct mt_message *m = message_at(st, st->client_in_txn ? st->client_msg : -1);
        if (m)
            m->size = st->bdat.total + (st->reader[MT_CLIENT].offset - st->bdat.chunk_start);
    }

    /* Who ended it, when the RST's sender was seen (session->reset_by); and whether the
     * whole message had gone and only its verdict was missing: then the message may well
     * have been delivered (the server queues it before it answers), and a client that
     * sends it again makes a duplicate. */
    bool verdict_missing = false;
    for (unsigned i = 0; i < st->fifo.count; i++)
        verdict_missing |= fifo_at(st, i)->cmd == &smtp_end_of_data &&
                           fifo_at(st, i)->txn == st->txn.id;
    const char *by = s->end != MT_END_RESET ? "closed" : s->reset_by == MT_SERVER
                     ? "reset by the server" : s->reset_by == MT_CLIENT ? "reset by the client"
                     : "reset";
    char event[160];
    if (verdict_missing)
        snprintf(event, sizeof event, "no reply to the end of the message: the connection was %s;"
                 " delivered or not is unknown", by);
    else
        snprintf(event, sizeof event, "connection %s during the transaction", by);
    if (st->txn.id && !st->txn.decided) {
        bool waiting = sending && sending_txn == st->txn.id;
        for (unsigned i = 0; i < st->fifo.count && !waiting; i++)
            waiting = fifo_at(st, i)->txn == st->txn.id;
        /* at the end of the capture nobody abandoned it, waiting for a reply or not (the
         * next command in the next rotated file) */
        if (eof)
            txn_end_event(st, MT_STATUS_INCOMPLETE, "capture ended during the transaction", -1);
        else
            txn_end_event(st, MT_STATUS_ABORTED, event, -1);
    }
    char buf[MT_TEXT_MAX];
    struct smtp_saved unanswered = saved_event(buf, "no reply to MAIL FROM", -1);
    for (unsigned i = 0; i < st->fifo.count; i++)
        if (fifo_at(st, i)->opens_txn)
            record_outcome(st, fifo_at(st, i)->msg, eof ? MT_STATUS_INCOMPLETE : MT_STATUS_ABORTED,
                           &unanswered);
}

static void decide(struct mt_session *s, enum mt_status status, const struct smtp_saved *line)
{
    session_decide(s, status, line_buf_text(&line->buf), line->buf.len,
                   line->buf.len ? line->tline : -1);
}

static void decide_event(struct mt_session *s, enum mt_status status, const char *event)
{
    session_decide(s, status, event, strlen(event), -1);
}

/* A 421 that says the client was idle too long ("4.4.2 ... Error: timeout exceeded"): the
 * words POP3 and IMAP goodbyes are judged by, and SMTP's code for a connection dropped. */
static bool closing_for_idleness(const struct smtp_saved *closing)
{
    const char *text = line_buf_text(&closing->buf);
    return session_goodbye_for_inactivity(text, closing->buf.len) ||
           text_find_ci(text, closing->buf.len, "4.4.2") >= 0;
}

static void smtp_close(void *state, struct mt_session *s)
{
    struct smtp *st = state;
    st->ts = s->end_us;
    lr_finish(&st->reader[MT_CLIENT], smtp_client_event, st);
    lr_finish(&st->reader[MT_SERVER], smtp_server_event, st);
    settle_open_transactions(st);
    /* how long the oldest command still awaiting its reply was unanswered at the end */
    int64_t quiet_s = st->fifo.count > 0 ? session_silent_at_end_s(s, fifo_at(st, 0)->sent_us)
                                         : 0;

    if (s->end == MT_END_REFUSED)
        decide_event(s, MT_STATUS_REFUSED, "connection refused");
    else if (st->greeting_rejected)
        decide(s, MT_STATUS_SERVER_REJECTED, &st->greeting);
    else if (st->server_bytes == 0)
        decide_event(s, MT_STATUS_NO_RESPONSE, "no reply from the server");
    else if (quiet_s > 0) {
        /* the capture went on long after a command with no reply: no cut, a silence (a
         * hung server, queue or content filter: the end of a message is the classic) */
        const struct smtp_command *cmd = fifo_at(st, 0)->cmd;
        char line[160];
        snprintf(line, sizeof line, "no reply to %s for %lld s %s",
                 cmd == &smtp_end_of_data ? "the end of the message"
                 : cmd->verb[0] == '(' ? "a command" : cmd->verb,
                 (long long)quiet_s, session_silence_end_words(s));
        decide_event(s, MT_STATUS_NO_RESPONSE, line);
        session_end_at_silence(s, fifo_at(st, 0)->sent_us);   /* open, waiting, until then */
    }
    else if ((st->plain_after_starttls[MT_CLIENT] || st->plain_after_starttls[MT_SERVER]) &&
             !(s->flags & MT_FLAG_DECRYPTED) && s->end == MT_END_EOF)
        decide_event(s, MT_STATUS_INCOMPLETE, "capture ended before the other side answered"
                                              " the plaintext after STARTTLS's 220");
    else if (st->plain_after_starttls[MT_CLIENT] && !(s->flags & MT_FLAG_DECRYPTED))
        decide_event(s, MT_STATUS_TLS_FAILED, "the client sent plaintext after STARTTLS's 220"
                                              " instead of starting TLS");
    else if (st->plain_after_starttls[MT_SERVER] && !(s->flags & MT_FLAG_DECRYPTED))
        decide_event(s, MT_STATUS_TLS_FAILED, "the server sent plaintext after STARTTLS's 220"
                                              " instead of starting TLS");
    else if (st->worst != MT_STATUS_UNKNOWN)
        decide(s, st->worst, &st->worst_line);
    /* a 421 before any transaction (to EHLO: Gmail throttling a sender): the server sent
     * the client away for now; unless for its idleness, which is the client's doing */
    else if (st->closing.buf.len && !closing_for_idleness(&st->closing))
        decide(s, MT_STATUS_TEMP_FAILED, &st->closing);
    else if (st->abandoned)
        decide(s, MT_STATUS_ABORTED, &st->abandoned_line);
    else if (st->helo_refused.buf.len)
        decide(s, MT_STATUS_SENDER_REJECTED, &st->helo_refused);
    else if (st->starttls_refused.buf.len && !s->tls)
        decide(s, MT_STATUS_TLS_FAILED, &st->starttls_refused);
    else if (s->auth_attempts > 0 && st->auth_answered && !st->auth_ok && st->auth_line.buf.len)
        decide(s, MT_STATUS_AUTH_FAILED, &st->auth_line);
    else if (st->starttls_done && st->state != SMTP_TLS && s->end == MT_END_EOF &&
             !(s->flags & MT_FLAG_DECRYPTED))
        /* the capture ended between the 220 and the first handshake byte: nothing was
         * seen encrypted (the next file has it) */
        decide_event(s, MT_STATUS_INCOMPLETE, "capture ended after STARTTLS's 220, before"
                                              " the TLS handshake");
    else if (s->tls && !(s->flags & MT_FLAG_DECRYPTED))
        decide(s, MT_STATUS_ENCRYPTED, &st->tls_line);
    else if (s->end == MT_END_RESET)
        decide_event(s, MT_STATUS_RESET, "connection reset");
    else if ((s->end == MT_END_EOF || s->end == MT_END_TIMEOUT || s->end == MT_END_EVICTED) &&
             !st->quit_seen)
        decide_event(s, MT_STATUS_INCOMPLETE, "capture ended before QUIT");
    else if (st->desync && s->message_count > 0)
        decide_event(s, MT_STATUS_INCOMPLETE, "outcome unknown: replies could not be paired"
                                              " with commands (over " TEXT_XSTR(SMTP_PENDING_MAX)
                                              " awaited at once)");
    else if (s->auth_attempts > 0 && st->auth_answered && !st->auth_ok)
        /* RFC 4954 4: "*" cancels; no password was judged, the client gave up */
        decide_event(s, MT_STATUS_NO_MAIL, "the client cancelled authentication and sent no mail");
    else
        decide(s, MT_STATUS_NO_MAIL, &st->last_reply);
}

static void smtp_free(void *state)
{
    struct smtp *st = state;
    if (!st)
        return;
    lr_free(&st->reader[MT_CLIENT]);
    lr_free(&st->reader[MT_SERVER]);
    fifo_clear(st);
    message_release(st);
    txn_clear(&st->txn);
    saved_free(&st->reply.first);
    saved_free(&st->worst_line);
    saved_free(&st->abandoned_line);
    saved_free(&st->helo_refused);
    saved_free(&st->starttls_refused);
    saved_free(&st->closing);
    saved_free(&st->greeting);
    saved_free(&st->auth_line);
    saved_free(&st->tls_line);
    saved_free(&st->last_reply);
    free(st);
}

const struct mt_decoder smtp_decoder = {
    .proto = MT_PROTO_SMTP,
    .open = smtp_open,
    .data = smtp_data,
    .close = smtp_close,
    .free = smtp_free,
};
