/* pop3.c — POP3 decoder (RFC 1939; CAPA and PIPELINING, RFC 2449; SASL AUTH, RFC 5034;
 * STLS, RFC 2595). Owns the per-connection state: the two line readers, the queue of
 * commands waiting for a reply, the SASL exchange and the TLS checks. Fills the caller's
 * session: banner, user, login verdict, mailbox counters and a transcript that never
 * holds a secret (passwords, APOP digests and SASL payloads are written as "*****").
 * A sensor holds this state for every open connection, so what only some connections
 * need lives on the heap, sized to use: the queue starts at POP3_PENDING_MIN entries and
 * doubles up to POP3_PENDING_MAX, a saved line's buffer is its text rounded up to
 * MT_LINE_BUF_ROUND bytes, and the header scan of a retrieved message exists only while
 * its header lines are read.
 *
 * Status (session->status), strongest first:
 *   server_rejected  the greeting was -ERR
 *   login_ok         some login succeeded (earlier failures stay counted)
 *   encrypted        TLS started (STLS accepted, or TLS from the first byte) before any
 *                    login we could see
 *   login_disabled   a login was refused because the connection is not encrypted
 *   auth_failed      every login attempt was refused
 * else, from how the connection ended: no_response (the server never sent a byte),
 * refused, reset, incomplete (capture ended without QUIT), or no_mail. no_mail
 * ("connection without any transaction") is what a session that never tried to log in
 * and ended cleanly (a CAPA/QUIT probe) gets: the status list has no closer word.
 * A login attempt is a verdict on credentials: -ERR to USER, any reply to PASS or APOP,
 * the final reply to AUTH once credentials went out (or refused for want of TLS).
 *
 * Counters: retr_count/top_count count the bodies that began: ended with their ".", or
 * cut by the connection's or the capture's end (as IMAP counts a cut FETCH: its message
 * line says "cut after X of Y bytes"); retr_bytes adds RETR body sizes as sent, or what
 * came of a cut one (dot-stuffing included, like SMTP message sizes); dele_count is
 * the messages deleted: marked by DELE (RSET unmarks them) and removed by a QUIT answered
 * +OK (RFC 1939's UPDATE state). A session that ends without one deleted nothing: the
 * count goes back to 0 and the transcript says how many stay on the server (the classic
 * "my mail downloads again and again").
 *
 * Retrieved messages: each RETR/TOP body that begins adds a session message (mail_from
 * empty, status unknown, reply "retrieved by RETR n") whose Message-ID and Subject come
 * from the header lines, read as lines like SMTP does after DATA (folded lines, dot-
 * stuffing, the same caps); at the blank line the reader skips the rest at memchr speed.
 * The message size is the body size counted as before (the transcript keeps its one
 * "[message N bytes]" line, no Subject), so `mailtap trace` finds the
 * retrieval hop of a message by its Message-ID. */
#include "decoder.h"
#include "explain.h"
#include "headers.h"
#include "linereader.h"
#include "sasl.h"
#include "session.h"
#include "text.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POP3_PENDING_MIN 4      /* the queue's first size: most clients wait for each reply */
/* Commands sent and not yet answered (PIPELINING, RFC 2449): emptying a mailbox pipelines
 * a DELE per message. 24 bytes each, allocated as a connection needs them; past this the
 * connection is read unpaired (desync). */
#define POP3_PENDING_MAX 2048
#define POP3_LISTING_SHOWN 20   /* lines of one CAPA/LIST/UIDL listing kept in the transcript */
#define POP3_MASK "*****"
#define POP3_HIDDEN_MAX 256     /* a hidden client line kept to mask the server's echo of it */
#define SASL_DECODED_MAX (LR_LINE_MAX / 4 * 3 + 3) /* a SASL line is <= LR_LINE_MAX base64 */
#define POP3_HEADER_BYTES_MAX (64 * 1024) /* as SMTP's: past these, the rest is body */
#define POP3_HEADER_LINES_MAX 1000

enum pop3_state {
    POP3_GREETING,      /* waiting for the server's first line */
    POP3_AUTHORIZATION, /* RFC 1939: before a successful login */
    POP3_SASL,          /* AUTH exchange: client lines are SASL answers */
    POP3_TRANSACTION,   /* logged in */
    POP3_TLS_PENDING,   /* STLS accepted: the next client bytes say TLS or plaintext */
    POP3_ENCRYPTED,     /* TLS: nothing more is readable, both readers discard */
    POP3_QUIT,          /* QUIT answered: only the close should follow */
};

static const char *const state_names[] = { "greeting", "authorization", "sasl", "transaction",
                                           "tls-pending", "encrypted", "quit" };
_Static_assert(sizeof state_names / sizeof state_names[0] == POP3_QUIT + 1, "state_names");

enum cmd_kind {
    CMD_OTHER, CMD_USER, CMD_PASS, CMD_APOP, CMD_AUTH, CMD_STLS, CMD_CAPA, CMD_STAT,
    CMD_LIST, CMD_UIDL, CMD_RETR, CMD_TOP, CMD_DELE, CMD_RSET, CMD_QUIT, CMD_LANG,
};

struct pop3_command {
    const char *name;
    enum cmd_kind kind;
    int mask_after; /* the transcript masks what follows this many words (verb first); 0: no */
};

static const struct pop3_command commands[] = {
    { "USER", CMD_USER, 0 }, { "PASS", CMD_PASS, 1 }, { "APOP", CMD_APOP, 2 },
    { "AUTH", CMD_AUTH, 2 }, { "STLS", CMD_STLS, 0 }, { "CAPA", CMD_CAPA, 0 },
    { "STAT", CMD_STAT, 0 }, { "LIST", CMD_LIST, 0 }, { "UIDL", CMD_UIDL, 0 },
    { "RETR", CMD_RETR, 0 }, { "TOP", CMD_TOP, 0 },   { "DELE", CMD_DELE, 0 },
    { "RSET", CMD_RSET, 0 }, { "NOOP", CMD_OTHER, 0 }, { "QUIT", CMD_QUIT, 0 },
    { "LAST", CMD_OTHER, 0 }, { "UTF8", CMD_OTHER, 0 }, { "LANG", CMD_LANG, 0 },
};

/* A command sent and not yet answered. */
struct pending {
    enum cmd_kind kind;
    bool has_arg;
    bool login; /* its reply judges credentials (never once logged in) */
    bool has_number;
    uint64_t number; /* RETR/TOP: the message number asked for */
    bool malformed;  /* its arguments are not RFC 1939's: a -ERR is the client's error */
    bool counted;    /* PASS/APOP: the login attempt counted when it was sent */
};

/* Header fields of a retrieved message kept in its session message. */
static const struct header_field retr_headers[] = {
    HEADER_TEXT_FIELD("Subject", subject, MT_MSG_SUBJECT_MAX),
    HEADER_FIELD("Message-ID", message_id, MT_MSG_MESSAGE_ID_MAX),
};

/* A RETR/TOP body being read: its header lines as lines, then skipped as a dot body. */
struct retr_body {
    bool active;                   /* a body began and its "." was not seen yet */
    size_t msg;                    /* index in session->messages, SIZE_MAX: none kept */
    uint64_t start;                /* server stream offset of the first body byte */
    uint64_t line_end;             /* offset past the last header line read */
    uint64_t before_dot;           /* body bytes read as lines before the dot-body skip */
    uint64_t announced;            /* "+OK 1200 octets": the size the server gave, 0 none */
    uint64_t number;               /* the message number asked for, 0 none */
    unsigned header_lines;
    /* The fields of retr_headers[] being read; non-NULL exactly while the server reader
     * delivers header lines (1 KiB, so not kept once the headers are over). */
    struct header_scan *headers;
};

/* Lines a conforming client sends when it gives no initial response; 0: not known, so
 * every client line until the verdict is masked. */
static const int sasl_answers_unasked[SASL_MECH_COUNT] = {
    [SASL_MECH_PLAIN] = 1, [SASL_MECH_LOGIN] = 2, [SASL_MECH_CRAM_MD5] = 1,
    [SASL_MECH_XOAUTH2] = 1, [SASL_MECH_OAUTHBEARER] = 1, [SASL_MECH_EXTERNAL] = 1,
};

/* How strongly a status decided by the dialogue holds: a later event replaces it only
 * with a rank at least as high. */
enum pop3_rank { RANK_NONE, RANK_TLS_REFUSED, RANK_AUTH_FAILED, RANK_TEMP_FAILED, RANK_LOGIN_DISABLED,
                 RANK_ENCRYPTED, RANK_LOGIN_OK, RANK_MAILBOX_FAILED, RANK_SERVER_REJECTED };

/* Why a side's next two bytes are checked for a TLS record. */
enum probe_reason { PROBE_OFF, PROBE_START, PROBE_STLS };

/* A server line kept raw (session_decide sanitizes) until it decides the status. Most
 * connections never keep one, so the text is on the heap (struct mt_line_buf); the buffer
 * has one owner: never copy the struct. */
struct saved_line {
    struct mt_line_buf buf;
    int index;                     /* transcript index */
};

struct pop3 {
    enum pop3_state state;
    struct mt_session *session;    /* valid during one data/close call */
    int64_t now;
    struct line_reader reader[2];  /* indexed by enum mt_side */
    bool stopped[2];               /* a handler stopped the reader at stop_offset */
    uint64_t stop_offset[2];

    struct pending *pending;       /* ring: a reply answers the oldest; NULL until a command */
    size_t pending_cap, head, count;
    /* The ring overflowed: no reply can be paired with its command, so none is known to
     * start a message or a listing. From here only +OK / -ERR lines are kept; any other
     * server line may be a message's and is only counted. */
    bool desync;
    uint64_t desync_hidden;

    bool greeted, server_spoke, logged_in, protocol_error;
    enum pop3_rank rank;
    bool quit_sent, quit_answered;
    struct saved_line quit_line, stls_line;
    /* The server's latest -ERR, and whether nothing came from it after (its goodbye when it
     * then closes: "-ERR Too many invalid bad commands.", "-ERR [SYS/TEMP] Server shutting
     * down."); unsolicited: answering no command (the server hanging up on its own). */
    struct saved_line last_err;
    bool err_was_last, err_unsolicited;
    /* A client line hidden as a possible password ("[unknown command, 9 bytes]"), kept until
     * the reply: servers echo unknown commands ("-ERR Unknown command: HUNTER2!X"), and the
     * echo is masked too. NULL when none (or longer than POP3_HIDDEN_MAX). */
    char *hidden;
    size_t hidden_len;

    bool listing;                  /* reading a multi-line listing as lines */
    uint64_t listing_lines;
    enum cmd_kind listing_kind;    /* CAPA, LIST, UIDL or AUTH (its mechanisms) */
    enum cmd_kind body_kind;       /* RETR or TOP whose body the server reader skips */
    struct retr_body retr;

    enum sasl_mech mech;           /* SASL_MECH_UNKNOWN: one we cannot read */
    bool sasl_initial, sasl_cancelled;
    uint64_t sasl_answers, sasl_challenges;

    enum probe_reason probe[2];
    bool held[2];                  /* a first byte 0x16 waits for the next one */
    bool stls_plain;               /* the client spoke plaintext right after STLS */
    bool plain_after_stls;         /* ... and STLS was accepted: decrypted once the server
                                    * answers in plaintext too, else TLS failed */
    bool plain_answer_seen;        /* the server's next bytes were looked at */
    int64_t last_bytes_us[2];      /* each side's latest bytes (the silence at the end) */
};

/* A command's name for a status line ("a command" for those counted as CMD_OTHER). */
static const char *command_name(enum cmd_kind kind)
{
    for (size_t i = 0; kind != CMD_OTHER && i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].kind == kind)
            return commands[i].name;
    return "a command";
}

/* Every state change goes through here (one place to trace or check transitions). */
static void set_state(struct pop3 *st, enum pop3_state next)
{
    st->state = next;
}

static void protocol_error(struct pop3 *st, const char *what)
{
    st->session->flags |= MT_FLAG_PROTOCOL_ERROR;
    if (st->protocol_error)
        return;
    st->protocol_error = true; /* noted once: garbage must not flood the transcript */
    session_transcript_addf(st->session, st->now, 'I', "[protocol error in state %s: %s]",
                            state_names[st->state], what);
}

static void decide(struct pop3 *st, enum mt_status status, const char *line, size_t len,
                   int index)
{
    enum pop3_rank rank = status == MT_STATUS_SERVER_REJECTED ? RANK_SERVER_REJECTED
                        : status == MT_STATUS_MAILBOX_FAILED  ? RANK_MAILBOX_FAILED
                        : status == MT_STATUS_LOGIN_OK        ? RANK_LOGIN_OK
                        : status == MT_STATUS_ENCRYPTED       ? RANK_ENCRYPTED
                        : status == MT_STATUS_LOGIN_DISABLED  ? RANK_LOGIN_DISABLED
                        : status == MT_STATUS_TEMP_FAILED     ? RANK_TEMP_FAILED
                        : status == MT_STATUS_TLS_FAILED      ? RANK_TLS_REFUSED
                                                              : RANK_AUTH_FAILED;
    if (rank < st->rank)
        return;
    st->rank = rank;
    session_decide(st->session, status, line, len, index);
}

static void hidden_forget(struct pop3 *st)
{
    text_secret_free(&st->hidden, &st->hidden_len);
}

static void save_line(struct saved_line *saved, const char *line, size_t len, int index)
{
    line_buf_set(&saved->buf, line, len);
    saved->index = index;
}

static void saved_free(struct saved_line *saved)
{
    line_buf_free(&saved->buf);
    *saved = (struct saved_line){ 0 };
}

/* Splits off the next word of s[0..*len) (spaces and tabs separate); advances s. */
static size_t next_word(const char **s, size_t *len, const char **word)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    *word = *s;
    size_t n = 0;
    while (n < *len && (*s)[n] != ' ' && (*s)[n] != '\t')
        n++;
    *s += n;
    *len -= n;
    return n;
}

static void set_user(struct mt_session *session, const char *user, size_t len)
{
    if (len > 0)
        text_copy_trimmed(session->user, sizeof session->user, user, len);
}

/* ---- TLS: a side's first bytes after connecting, or after STLS ---- */

static void on_client(void *ctx, const struct lr_event *event);
static void on_server(void *ctx, const struct lr_event *event);
static size_t probe_bytes(struct pop3 *st, enum mt_side side, const char *bytes, size_t len);

static void go_encrypted(struct pop3 *st, const char *note)
{
    int index = session_transcript_add(st->session, st->now, 'I', note, strlen(note));
    set_state(st, POP3_ENCRYPTED);
    st->session->tls = true;
    lr_discard(&st->reader[MT_CLIENT]);
    lr_discard(&st->reader[MT_SERVER]);
    if (st->stls_line.buf.len > 0)
        decide(st, MT_STATUS_ENCRYPTED, line_buf_text(&st->stls_line.buf),
               st->stls_line.buf.len, st->stls_line.index);
    else
        decide(st, MT_STATUS_ENCRYPTED, note, strlen(note), index);
}

/* Feeds one side's bytes to its reader. After STLS a handler stops the reader at the
 * line end, so the bytes that follow, even in the same segment, are probed for TLS. */
static void feed(struct pop3 *st, enum mt_side side, const char *bytes, size_t len)
{
    while (len > 0 && st->state != POP3_ENCRYPTED) {
        if (st->probe[side] != PROBE_OFF) {
            size_t used = probe_bytes(st, side, bytes, len);
            bytes += used;
            len -= used;
            continue;
        }
        struct line_reader *reader = &st->reader[side];
        uint64_t start = reader->offset;
        st->stopped[side] = false;
        lr_feed(reader, bytes, len, side == MT_CLIENT ? on_client : on_server, st);
        if (!st->stopped[side] || st->state == POP3_ENCRYPTED)
            return;
        size_t used = (size_t)(st->stop_offset[side] - start);
        bytes += used;
        len -= used;
        lr_free(reader); /* stopped at a line end: nothing pending is lost */
        lr_init(reader);
    }
}

static void plain_after_stls(struct pop3 *st)
{
    static const char note[] = "[plaintext after STLS]";
    st->plain_after_stls = true;
    session_transcript_add(st->session, st->now, 'I', note, sizeof note - 1);
}

/* A TLS handshake record starts 0x16 0x03. Returns how many bytes it used: all when TLS
 * starts, 1 when a lone 0x16 must wait for the next byte, else 0 (plaintext: the bytes go
 * to the line reader, after a held 0x16). */
static size_t probe_bytes(struct pop3 *st, enum mt_side side, const char *bytes, size_t len)
{
    bool held = st->held[side];
    unsigned char first = held ? 0x16 : (unsigned char)bytes[0];
    if (first == 0x16 && !held && len == 1) {
        st->held[side] = true;
        return 1;
    }
    bool tls = first == 0x16 && (unsigned char)(held ? bytes[0] : bytes[1]) == 0x03;
    enum probe_reason why = st->probe[side];
    st->probe[side] = PROBE_OFF;
    st->held[side] = false;
    if (tls && why == PROBE_STLS) {
        go_encrypted(st, "[TLS from here on: the handshake and what follows are not shown]");
    } else if (tls && !(side == MT_CLIENT && st->greeted)) {
        go_encrypted(st, "[TLS from the first byte: implicit TLS]");
    } else if (why == PROBE_STLS && side == MT_CLIENT) {
        /* Plaintext after STLS: a decrypted capture (when the server answers so), a client
         * that never began TLS, or one going on after -ERR. */
        if (st->state == POP3_TLS_PENDING) {
            plain_after_stls(st);
            set_state(st, POP3_AUTHORIZATION);
        } else {
            st->stls_plain = true;
        }
    }
    if (st->state == POP3_ENCRYPTED)
        return len;
    if (held)
        feed(st, side, "\x16", 1);
    return 0;
}

/* Called by a handler: the bytes after the current line are probed for TLS. */
static void stop_and_probe(struct pop3 *st, enum mt_side side)
{
    st->probe[side] = PROBE_STLS;
    st->held[side] = false;
    st->stopped[side] = true;
    st->stop_offset[side] = st->reader[side].offset;
    lr_discard(&st->reader[side]);
}

/* ---- SASL ---- */

/* Takes the user name from the mechanism's first message (base64); sasl.c wipes the
 * rest of the decoded copy, which may hold a password. */
static void sasl_user(struct pop3 *st, const char *b64, size_t len)
{
    unsigned char user[SASL_DECODED_MAX];
    if (st->mech == SASL_MECH_UNKNOWN || (len == 1 && b64[0] == '=')) /* "=": empty */
        return;
    size_t user_len = sasl_response_user(st->mech, b64, len, user, sizeof user);
    set_user(st->session, (const char *)user, user_len);
}

static void sasl_start(struct pop3 *st, struct pending *cmd, const char *arg, size_t len)
{
    const char *mech, *initial;
    size_t mech_len = next_word(&arg, &len, &mech);
    size_t initial_len = next_word(&arg, &len, &initial);
    cmd->login = cmd->login && mech_len > 0; /* "AUTH" alone asks for the mechanism list */
    if (!cmd->login)
        return;
    st->mech = sasl_mech_from_name(mech, mech_len);
    st->sasl_initial = initial_len > 0;
    st->sasl_cancelled = false;
    st->sasl_answers = st->sasl_challenges = 0;
    set_state(st, POP3_SASL);
    if (initial_len > 0)
        sasl_user(st, initial, initial_len);
}

/* Is the next client line a SASL answer rather than a command? Answers follow server
 * challenges; a known mechanism also says how many answers a client sends unasked, which
 * keeps them masked even when the client's bytes run ahead of the server's. */
static bool sasl_expects_answer(const struct pop3 *st)
{
    if (st->state != POP3_SASL)
        return false;
    int unasked = sasl_answers_unasked[st->mech];
    if (st->sasl_answers < st->sasl_challenges || unasked == 0)
        return true; /* an unknown mechanism: every line until the verdict is masked */
    return st->sasl_answers < (uint64_t)(unasked - (st->sasl_initial ? 1 : 0));
}

static void sasl_answer(struct pop3 *st, const char *line, size_t len)
{
    bool cancel = len == 1 && line[0] == '*';
    session_transcript_add(st->session, st->now, 'C', cancel ? "*" : POP3_MASK,
                           cancel ? 1 : strlen(POP3_MASK));
    if (cancel)
        st->sasl_cancelled = true;
    else if (st->sasl_answers == 0 && !st->sasl_initial)
        sasl_user(st, line, len);
    st->sasl_answers++;
}

/* ---- logins ---- */

/* -ERR texts of servers refusing a login because the connection is not encrypted, e.g.
 * Dovecot's "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS)
 * connections." (to USER already), Gordano's "-ERR Must issue a STARTTLS command first." */
static bool refuses_plaintext(const char *line, size_t len)
{
    static const char *const words[] = {
        "plaintext", "plain text", "cleartext", "clear text", "encrypt", "tls", "ssl", "secure",
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (text_find_ci(line, len, words[i]) >= 0)
            return true;
    return false;
}

/* A -ERR to a login that is the server's own trouble, by its RFC 3206 response code: not
 * the credentials. MT_STATUS_UNKNOWN when it is not one of those. */
static enum mt_status login_error_status(const char *line, size_t len)
{
    if (text_find_ci(line, len, "[SYS/TEMP]") >= 0 || text_find_ci(line, len, "[IN-USE]") >= 0 ||
        text_find_ci(line, len, "[LOGIN-DELAY]") >= 0)
        return MT_STATUS_TEMP_FAILED;   /* a locked maildrop, a login too soon, a backend down */
    /* a connection limit, with no code ("-ERR Maximum number of connections from user+IP
     * exceeded (mail_max_userip_connections=10)", Dovecot's pop3-login) or [LIMIT] */
    if (explain_connection_limit(line, len))
        return MT_STATUS_TEMP_FAILED;
    if (text_find_ci(line, len, "[SYS/PERM]") >= 0)
        return MT_STATUS_MAILBOX_FAILED;
    return MT_STATUS_UNKNOWN;
}

static void login_verdict(struct pop3 *st, bool ok, const char *line, size_t len, int index,
                          bool counted)
{
    struct mt_session *session = st->session;
    if (!counted)   /* a brute force may be long */
        session->auth_attempts += session->auth_attempts < INT_MAX;
    if (ok) {
        st->logged_in = true;
        decide(st, MT_STATUS_LOGIN_OK, line, len, index);
        set_state(st, POP3_TRANSACTION);
        return;
    }
    enum mt_status status = login_error_status(line, len);
    if (status == MT_STATUS_UNKNOWN) {   /* the credentials, or TLS first */
        session->auth_failures += session->auth_failures < INT_MAX;
        status = !session->tls && refuses_plaintext(line, len) ? MT_STATUS_LOGIN_DISABLED
                                                              : MT_STATUS_AUTH_FAILED;
    }
    decide(st, status, line, len, index);
    if (st->state == POP3_SASL)
        set_state(st, POP3_AUTHORIZATION);
}

/* Did a -ERR to AUTH judge credentials? Not when the client cancelled, nor when the
 * mechanism was refused before any was sent (unsupported), unless for want of TLS. */
static bool sasl_judged(const struct pop3 *st, const char *line, size_t len)
{
    if (st->sasl_cancelled)
        return false;
    return st->sasl_initial || st->sasl_answers > 0 ||
           (!st->session->tls && refuses_plaintext(line, len));
}

/* ---- the queue of commands awaiting a reply ---- */

/* Doubles the ring, its entries moved to the start in order. False at POP3_PENDING_MAX
 * or without memory: the ring is then unchanged. */
static bool pending_grow(struct pop3 *st)
{
    size_t cap = st->pending_cap ? st->pending_cap * 2 : POP3_PENDING_MIN;
    if (cap > POP3_PENDING_MAX)
        cap = POP3_PENDING_MAX;
    if (cap <= st->pending_cap)
        return false;
    struct pending *grown = malloc(cap * sizeof *grown);
    if (!grown)
        return false;
    for (size_t i = 0; i < st->count; i++)
        grown[i] = st->pending[(st->head + i) % st->pending_cap];
    free(st->pending);
    st->pending = grown;
    st->pending_cap = cap;
    st->head = 0;
    return true;
}

/* A command that finds the queue full (at the cap, or without memory to grow it) is not
 * queued: replies may pair with the wrong commands from here on, a protocol error. */
static void pending_push(struct pop3 *st, const struct pending *cmd)
{
    if (st->desync)
        return;
    if (st->count == st->pending_cap && !pending_grow(st)) {
        st->session->flags |= MT_FLAG_PROTOCOL_ERROR;
        session_transcript_addf(st->session, st->now, 'I', "[protocol error in state %s: %s,"
                                " replies no longer paired with commands]", state_names[st->state],
                                st->pending_cap == POP3_PENDING_MAX
                                    ? "too many commands without reply"
                                    : "no memory for a command awaiting its reply");
        st->desync = true;
        st->count = st->head = 0;
        return;
    }
    st->pending[(st->head + st->count++) % st->pending_cap] = *cmd;
}

/* The oldest command, now answered; false when none waits. */
static bool pending_pop(struct pop3 *st, struct pending *cmd)
{
    if (st->count == 0)
        return false;
    *cmd = st->pending[st->head];
    st->head = (st->head + 1) % st->pending_cap;
    st->count--;
    return true;
}

/* ---- client lines ---- */

/* Writes the client line to the transcript, masked after its first `mask_after` words
 * (the verb counts): whatever follows them, even blanks (a password may be spaces). */
static void log_command(struct pop3 *st, const char *line, size_t len, int mask_after)
{
    const char *rest = line, *word;
    size_t rest_len = len;
    for (int i = 0; i < mask_after && rest_len > 0; i++)
        next_word(&rest, &rest_len, &word);
    if (mask_after == 0 || rest_len == 0) {
        session_transcript_add(st->session, st->now, 'C', line, len);
        return;
    }
    char shown[MT_TRANSCRIPT_LINE_MAX];
    size_t keep = (size_t)(rest - line) < MT_TEXT_MAX ? (size_t)(rest - line) : MT_TEXT_MAX;
    memcpy(shown, line, keep);
    memcpy(shown + keep, " " POP3_MASK, sizeof " " POP3_MASK - 1);
    session_transcript_add(st->session, st->now, 'C', shown, keep + sizeof " " POP3_MASK - 1);
}

static void on_command(struct pop3 *st, struct pending *cmd, const char *arg, size_t len)
{
    const char *word;
    size_t n;
    switch (cmd->kind) {
    case CMD_USER:
        set_user(st->session, arg, len);
        break;
    case CMD_APOP: /* APOP name digest */
        n = next_word(&arg, &len, &word);
        set_user(st->session, word, n);
        /* fall through */
    case CMD_PASS:   /* the credentials went out: an attempt, answered or not */
        if (cmd->login && st->session->auth_attempts < INT_MAX) {
            st->session->auth_attempts++;
            cmd->counted = true;
        }
        break;
    case CMD_AUTH:
        sasl_start(st, cmd, arg, len);
        break;
    case CMD_STLS:
        st->stls_plain = false;
        stop_and_probe(st, MT_CLIENT);
        break;
    case CMD_QUIT:
        st->quit_sent = true;
        break;
    default:
        break;
    }
}

/* RFC 1939's arguments for the maildrop commands: RETR and DELE one message number, TOP a
 * number and a line count, LIST and UIDL an optional number, STAT none. "TOP 1", "RETR 1 2"
 * and "RETR abc" answered -ERR are the client's mistake, not the mailbox failing. */
static bool arguments_well_formed(enum cmd_kind kind, const char *arg, size_t len)
{
    size_t words = 0;
    bool numeric = true;
    while (len > 0) {
        const char *word;
        size_t n = next_word(&arg, &len, &word);
        if (n == 0)
            break;
        words++;
        for (size_t i = 0; i < n; i++)
            numeric = numeric && word[i] >= '0' && word[i] <= '9';
    }
    switch (kind) {
    case CMD_RETR:
    case CMD_DELE: return words == 1 && numeric;
    case CMD_TOP: return words == 2 && numeric;
    case CMD_LIST:
    case CMD_UIDL: return words <= 1 && numeric;
    case CMD_STAT: return words == 0;
    default: return true;
    }
}

static void on_client(void *ctx, const struct lr_event *event)
{
    struct pop3 *st = ctx;
    if (event->kind != LR_EVENT_LINE)
        return;
    if (event->truncated)
        st->session->flags |= MT_FLAG_LINE_TRUNCATED;
    const char *line = event->line, *arg = line, *verb;
    size_t len = event->len, arg_len = len;
    if (sasl_expects_answer(st)) {
        sasl_answer(st, line, len);
        return;
    }
    size_t verb_len = next_word(&arg, &arg_len, &verb);
    if (verb_len == 0)
        return; /* a blank line: servers answer nothing or -ERR, so no reply is awaited */
    const struct pop3_command *command = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0] && !command; i++)
        if (strlen(commands[i].name) == verb_len && text_starts_with_ci(verb, verb_len, commands[i].name))
            command = &commands[i];
    bool keyword = verb_len >= 3 && verb_len <= 4; /* RFC 1939: 3 or 4 characters */
    for (size_t i = 0; keyword && i < verb_len; i++)
        keyword = (verb[i] >= 'A' && verb[i] <= 'Z') || (verb[i] >= 'a' && verb[i] <= 'z');
    if (command)
        log_command(st, line, len, command->mask_after);
    else if (keyword) /* unknown command: its arguments could be anything */
        log_command(st, line, len, 1);
    else {   /* not even a keyword: maybe a stray password, so only its size shows */
        session_transcript_addf(st->session, st->now, 'C', "[unknown command, %zu bytes]", len);
        hidden_forget(st);
        if (len > 0 && len <= POP3_HIDDEN_MAX && (st->hidden = malloc(len)) != NULL) {
            memcpy(st->hidden, line, len);
            st->hidden_len = len;
        }
    }

    while (arg_len > 0 && (*arg == ' ' || *arg == '\t'))
        arg++, arg_len--;
    while (arg_len > 0 && (arg[arg_len - 1] == ' ' || arg[arg_len - 1] == '\t'))
        arg_len--;
    struct pending cmd = { command ? command->kind : CMD_OTHER, arg_len > 0, !st->logged_in,
                           false, 0, false, false };
    if (cmd.kind == CMD_RETR || cmd.kind == CMD_TOP) {
        const char *num = arg, *digits;
        size_t num_rest = arg_len, num_len = next_word(&num, &num_rest, &digits);
        cmd.has_number = num_len > 0 && num_len <= 19;
        for (size_t i = 0; cmd.has_number && i < num_len; i++) {
            cmd.has_number = digits[i] >= '0' && digits[i] <= '9';
            cmd.number = cmd.number * 10 + (uint64_t)(digits[i] - '0');
        }
    }
    cmd.malformed = !arguments_well_formed(cmd.kind, arg, arg_len);
    on_command(st, &cmd, arg, arg_len);
    pending_push(st, &cmd);
}

/* ---- server lines ---- */

/* Reads a decimal number; false when there is none or it could overflow. */
static bool parse_number(const char **s, size_t *len, uint64_t *value)
{
    const char *word;
    size_t n = next_word(s, len, &word);
    if (n == 0 || n > 19)
        return false;
    *value = 0;
    for (size_t i = 0; i < n; i++) {
        if (word[i] < '0' || word[i] > '9')
            return false;
        *value = *value * 10 + (uint64_t)(word[i] - '0');
    }
    return true;
}

/* ---- retrieved messages (RETR / TOP bodies) ---- */

static struct mt_message *retr_message(struct pop3 *st)
{
    struct mt_session *session = st->session;
    return st->retr.msg < session->message_count ? &session->messages[st->retr.msg] : NULL;
}

/* The header lines are over (or the body is): the field being read is kept, the scan
 * freed. Harmless when no scan is open. */
static void retr_headers_end(struct pop3 *st)
{
    struct header_scan *scan = st->retr.headers;
    if (!scan)
        return;
    header_scan_flush(scan, retr_headers, sizeof retr_headers / sizeof retr_headers[0],
                      retr_message(st));
    free(scan);
    st->retr.headers = NULL;
}

/* The +OK to RETR/TOP: a message record, then its header lines are read as lines.
 * Without memory for the scan the whole body is skipped: no Subject or Message-ID, the
 * sizes and counters as always. */
static void retr_begin(struct pop3 *st, const struct pending *cmd)
{
    struct retr_body *b = &st->retr;
    struct mt_session *session = st->session;
    retr_headers_end(st); /* none is open here; the memset must not lose one regardless */
    memset(b, 0, sizeof *b);
    b->active = true;
    b->start = b->line_end = st->reader[MT_SERVER].offset;
    b->msg = SIZE_MAX;
    b->number = cmd->has_number ? cmd->number : 0;
    st->body_kind = cmd->kind;
    b->headers = malloc(sizeof *b->headers);
    if (b->headers)
        header_scan_init(b->headers);
    else
        lr_expect_dot_body(&st->reader[MT_SERVER]);
    struct mt_message *m = session_add_message(session);
    if (!m)
        return;
    b->msg = session->message_count - 1;
    m->status = MT_STATUS_UNKNOWN;
    m->start_us = st->now;
    const char *verb = cmd->kind == CMD_TOP ? "TOP" : "RETR";
    if (cmd->has_number)
        session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "retrieved by %s %llu", verb,
                          (unsigned long long)cmd->number);
    else
        session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "retrieved by %s", verb);
}

/* A body that began counts, with the size bytes that came of it (all, or a cut one's). */
static void retr_count(struct pop3 *st, uint64_t size)
{
    struct mt_mailbox_stats *stats = &st->session->stats;
    bool top = st->body_kind == CMD_TOP;
    stats->top_count += top;
    stats->retr_count += !top;
    stats->retr_bytes += top ? 0 : size;
}

/* The body is over (its "."), size bytes as sent: counters, message size, summary. */
static void retr_done(struct pop3 *st, uint64_t size)
{
    bool top = st->body_kind == CMD_TOP;
    st->retr.active = false;
    retr_headers_end(st);
    retr_count(st, size);
    struct mt_message *m = retr_message(st);
    if (m)
        m->size = size;
    st->retr.msg = SIZE_MAX;
    session_transcript_addf(st->session, st->now, 'I', "[%s %llu bytes]",
                            top ? "message top" : "message", (unsigned long long)size);
}

/* A server line while a RETR/TOP body's headers are read. At the end of the headers
 * (blank line, a line that is no header, or the caps) the reader skips the rest. */
static void retr_line(struct pop3 *st, const struct lr_event *event)
{
    struct retr_body *b = &st->retr;
    struct line_reader *reader = &st->reader[MT_SERVER];
    const char *line = event->line;
    size_t len = event->len;
    uint64_t line_start = b->line_end;
    b->line_end = reader->offset;
    if (len == 1 && line[0] == '.' && !event->unterminated) {
        retr_done(st, line_start - b->start);
        return;
    }
    /* Past the caps the headers are too long: the rest is body. */
    bool more = ++b->header_lines <= POP3_HEADER_LINES_MAX &&
                line_start - b->start <= POP3_HEADER_BYTES_MAX;
    if (more && len > 0 && line[0] == '.') /* dot-stuffed */
        line++, len--;
    /* The blank line ends the headers; a line that is no header field is the body
     * beginning without one. */
    more = more && len > 0 && b->headers &&
           header_scan_line(b->headers, retr_headers, sizeof retr_headers / sizeof retr_headers[0],
                            retr_message(st), line, len);
    if (more)
        return;
    retr_headers_end(st);
    if (!event->unterminated) {
        b->before_dot = reader->offset - b->start;
        lr_expect_dot_body(reader);
    }
}

/* After a login, a -ERR to a command that reads or changes the maildrop: the mail could
 * not be fetched (or deleted), whatever the password said. Not when it says the message
 * asked for is not there ("-ERR There's no message 2.", "-ERR no such message": a number
 * out of range, or deleted already): the client's request, not the mailbox failing. */
static bool mailbox_failure(enum cmd_kind kind, const char *line, size_t len)
{
    static const char *const absent[] = {
        "no such message", "no message", "message not found", "invalid message", "deleted",
    };
    if (kind == CMD_QUIT)
        return true;   /* RFC 1939: messages marked as deleted were not removed */
    if (kind != CMD_RETR && kind != CMD_TOP && kind != CMD_STAT && kind != CMD_LIST &&
        kind != CMD_UIDL && kind != CMD_DELE)
        return false;
    if (login_error_status(line, len) != MT_STATUS_UNKNOWN)
        return true;   /* [SYS/TEMP], [SYS/PERM], [IN-USE]: the server says it is its own */
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        if (text_find_ci(line, len, absent[i]) >= 0)
            return false;
    return true;
}

static void on_reply(struct pop3 *st, const struct pending *cmd, bool ok, const char *line,
                     size_t len, int index)
{
    struct mt_mailbox_stats *stats = &st->session->stats;
    if (!ok && st->logged_in && !cmd->malformed && mailbox_failure(cmd->kind, line, len))
        decide(st, MT_STATUS_MAILBOX_FAILED, line, len, index);
    const char *rest = line + 3;
    size_t rest_len = len - 3;
    uint64_t messages, bytes;
    switch (cmd->kind) {
    case CMD_USER: /* -ERR: unknown user, or plaintext refused: that login is over */
        if (!ok && cmd->login && !st->session->tls && refuses_plaintext(line, len))
            decide(st, MT_STATUS_LOGIN_DISABLED, line, len, index);   /* no password went:
                                                      no attempt, no cleartext_auth finding */
        else if (!ok && cmd->login)
            login_verdict(st, ok, line, len, index, false);
        break;
    case CMD_PASS:
    case CMD_APOP:
        if (cmd->login)
            login_verdict(st, ok, line, len, index, cmd->counted);
        break;
    case CMD_AUTH:
        if (!cmd->has_arg && ok)   /* the mechanism list */
            st->listing = true, st->listing_lines = 0, st->listing_kind = cmd->kind;
        else if (cmd->login && (ok || sasl_judged(st, line, len)))
            login_verdict(st, ok, line, len, index, false);
        else if (st->state == POP3_SASL)
            set_state(st, POP3_AUTHORIZATION);
        break;
    case CMD_STLS:
        if (!ok) {
            /* RFC 2595 4: -ERR when the server cannot do TLS. The client asked (no
             * starttls_unused finding); if it then gives up, this is why. */
            st->session->starttls_refused = true;
            decide(st, MT_STATUS_TLS_FAILED, line, len, index);
            break;
        }
        st->session->tls = true;
        save_line(&st->stls_line, line, len, index);
        if (st->stls_plain) { /* the client already went on in plaintext */
            plain_after_stls(st);
            break;
        }
        set_state(st, POP3_TLS_PENDING);
        stop_and_probe(st, MT_SERVER);
        break;
    case CMD_CAPA:
    case CMD_LIST: /* LIST and UIDL with a message number answer on one line */
    case CMD_UIDL:
    case CMD_LANG: /* without an argument: the languages, one a line (RFC 6856) */
        if (ok && !cmd->has_arg)
            st->listing = true, st->listing_lines = 0, st->listing_kind = cmd->kind;
        break;
    case CMD_RETR:
    case CMD_TOP: /* headers read as lines, the rest skipped: a body line may read "+OK" */
        if (ok) {
            uint64_t octets = 0;
            retr_begin(st, cmd);
            if (parse_number(&rest, &rest_len, &octets))   /* RFC 1939's "+OK 120 octets" */
                st->retr.announced = octets;
        }
        break;
    case CMD_STAT: /* "+OK nn mm" */
        if (ok && parse_number(&rest, &rest_len, &messages) && parse_number(&rest, &rest_len, &bytes))
            stats->stat_messages = messages, stats->stat_bytes = bytes;
        else if (ok)
            protocol_error(st, "STAT reply without counts");
        break;
    case CMD_DELE:
        stats->dele_count += ok;
        break;
    case CMD_RSET: /* RSET unmarks every message marked as deleted (RFC 1939) */
        if (ok)
            stats->dele_count = 0;
        break;
    case CMD_QUIT:
        if (ok) {
            st->quit_answered = true;
            save_line(&st->quit_line, line, len, index);
            set_state(st, POP3_QUIT);
        }
        break;
    case CMD_OTHER:
        break;
    }
}

static void greeting(struct pop3 *st, const char *line, size_t len, int index)
{
    struct mt_session *session = st->session;
    const char *rest = line + 3, *word;
    size_t rest_len = len - 3, n;
    st->greeted = true;
    text_copy_trimmed(session->banner, sizeof session->banner, line, len);
    if (text_starts_with_ci(line, len, "-ERR")) {
        decide(st, MT_STATUS_SERVER_REJECTED, line, len, index);
        return;
    }
    if (st->state == POP3_GREETING)
        set_state(st, POP3_AUTHORIZATION);
    if (!text_starts_with_ci(line, len, "+OK")) {
        protocol_error(st, "greeting is neither +OK nor -ERR");
        return;
    }
    /* The first word after +OK, when it is a host name: "+OK mail.example.com ready". */
    n = next_word(&rest, &rest_len, &word);
    bool dot = false, host = n > 2 && word[0] != '.' && word[0] != '-' && word[n - 1] != '.';
    for (size_t i = 0; host && i < n; i++) {
        dot |= word[i] == '.';
        host = (word[i] >= 'a' && word[i] <= 'z') || (word[i] >= 'A' && word[i] <= 'Z') ||
               (word[i] >= '0' && word[i] <= '9') || word[i] == '.' || word[i] == '-';
    }
    if (host && dot)
        text_sanitize(session->server_name, sizeof session->server_name, word, n);
}

static void listing_line(struct pop3 *st, const char *line, size_t len)
{
    if (len == 1 && line[0] == '.') {
        st->listing = false;
        if (st->listing_lines > POP3_LISTING_SHOWN)
            session_transcript_addf(st->session, st->now, 'I', "[... %llu more lines]",
                                    (unsigned long long)(st->listing_lines - POP3_LISTING_SHOWN));
        return;
    }
    if (len > 0 && line[0] == '.') /* dot-stuffing */
        line++, len--;
    if (len == 4 && text_starts_with_ci(line, len, "STLS"))   /* a CAPA line */
        st->session->starttls_offered = true;
    if (++st->listing_lines <= POP3_LISTING_SHOWN)
        session_transcript_add(st->session, st->now, 'S', line, len);
}

static void on_server(void *ctx, const struct lr_event *event)
{
    struct pop3 *st = ctx;
    if (event->kind == LR_EVENT_BODY_END) {
        retr_done(st, st->retr.before_dot + event->body_bytes);
        return;
    }
    if (event->kind != LR_EVENT_LINE)
        return;
    if (event->truncated)
        st->session->flags |= MT_FLAG_LINE_TRUNCATED;
    if (st->retr.headers) {
        retr_line(st, event);
        return;
    }
    const char *line = event->line;
    size_t len = event->len;
    if (st->listing) {
        listing_line(st, line, len);
        return;
    }
    if (st->desync) {
        if (text_starts_with_ci(line, len, "+OK") || text_starts_with_ci(line, len, "-ERR"))
            session_transcript_add(st->session, st->now, 'S', line, len);
        else
            st->desync_hidden++;
        return;
    }
    char masked[LR_LINE_MAX];
    if (st->hidden) {   /* the reply to it, maybe echoing it */
        len = text_mask_echo(masked, sizeof masked, line, len, st->hidden, st->hidden_len,
                             POP3_MASK);
        line = masked;
        hidden_forget(st);
    }
    int index = session_transcript_add(st->session, st->now, 'S', line, len);
    if (!st->greeted) {
        greeting(st, line, len, index);
        return;
    }
    bool ok = text_starts_with_ci(line, len, "+OK"), err = text_starts_with_ci(line, len, "-ERR");
    st->err_was_last = err;
    if (err) {
        save_line(&st->last_err, line, len, index);
        st->err_unsolicited = st->count == 0;
    }
    if (!ok && !err) {
        if (st->state == POP3_SASL && len > 0 && line[0] == '+')
            st->sasl_challenges++; /* "+ base64": the client answers next */
        else
            protocol_error(st, "reply is neither +OK nor -ERR");
        return;
    }
    struct pending cmd;
    if (!pending_pop(st, &cmd)) {
        if (ok) /* an unsolicited -ERR is a server hanging up (idle timeout): no desync */
            protocol_error(st, "+OK without a command");
        return;
    }
    on_reply(st, &cmd, ok, line, len, index);
}

/* ---- decoder interface ---- */

static void *pop3_open(struct mt_session *session)
{
    struct pop3 *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->session = session;
    lr_init(&st->reader[MT_CLIENT]);
    lr_init(&st->reader[MT_SERVER]);
    st->probe[MT_CLIENT] = st->probe[MT_SERVER] = PROBE_START; /* implicit TLS (995) */
    set_state(st, POP3_GREETING);
    return st;
}

static void pop3_data(void *state, struct mt_session *session, enum mt_side from,
                      const char *bytes, size_t len, int64_t ts_us)
{
    struct pop3 *st = state;
    st->session = session;
    st->now = ts_us;
    if (len > 0)
        st->last_bytes_us[from] = ts_us;
    if (from == MT_SERVER && len > 0)
        st->server_spoke = true;
    if (from == MT_SERVER && len > 0 && st->plain_after_stls && !st->plain_answer_seen) {
        /* the server's first byte after the client's plaintext: plaintext too (both sides:
         * decrypted), or a TLS record (an alert: TLS was expected) */
        unsigned char first = (unsigned char)bytes[0];
        st->plain_answer_seen = true;
        if (first < 0x14 || first > 0x17)
            st->session->flags |= MT_FLAG_DECRYPTED;
    }
    feed(st, from, bytes, len);
}

/* Settles the status when the dialogue decided none (or the server never spoke). */
static void settle(struct pop3 *st)
{
    struct mt_session *session = st->session;
    enum mt_status status;
    const char *why;
    if (!st->server_spoke) { /* even after a client TLS hello: the silence is what matters */
        status = session->end == MT_END_REFUSED ? MT_STATUS_REFUSED : MT_STATUS_NO_RESPONSE;
        why = status == MT_STATUS_REFUSED ? "[connection refused]" : "[no reply from the server]";
    } else if (st->plain_after_stls && !(session->flags & MT_FLAG_DECRYPTED)) {
        bool cut = session->end == MT_END_EOF;   /* the answer may be in the next file */
        status = cut ? MT_STATUS_INCOMPLETE : MT_STATUS_TLS_FAILED;
        why = cut ? "[capture ended before the server answered the plaintext after STLS]"
                  : "the client sent plaintext after STLS's +OK instead of starting TLS";
    } else if (st->state == POP3_TLS_PENDING) { /* STLS accepted, then nothing */
        decide(st, MT_STATUS_ENCRYPTED, line_buf_text(&st->stls_line.buf),
               st->stls_line.buf.len, st->stls_line.index);
        return;
    } else if (st->rank != RANK_NONE) {
        return;
    } else if (st->quit_answered) {
        session_decide(session, MT_STATUS_NO_MAIL, line_buf_text(&st->quit_line.buf),
                       st->quit_line.buf.len, st->quit_line.index);
        return;
    } else if (st->err_was_last && (session->end == MT_END_RESET ||
                                    session->end == MT_END_CLOSE)) {
        /* the server said why, then the connection ended: "-ERR Too many invalid bad
         * commands." (a scanner, a broken client, another protocol on this port) */
        session_decide(session, MT_STATUS_NO_MAIL, line_buf_text(&st->last_err.buf),
                       st->last_err.buf.len, st->last_err.index);
        return;
    } else if (session->end == MT_END_RESET) {
        status = MT_STATUS_RESET, why = "[connection reset]";
    } else if (st->quit_sent || session->end == MT_END_CLOSE) {
        status = MT_STATUS_NO_MAIL, why = "[closed without a login]";
    } else {
        status = MT_STATUS_INCOMPLETE, why = "[capture ended before QUIT]";
    }
    session_decide(session, status, why, strlen(why), -1);
}

/* The capture went on a minute or more after the server fell silent owing an answer: a
 * command with no reply, or a message it stopped sending. No cut, a silence (a hung
 * server, a mailbox lock, a storage stall); not when the client owed the next word (a
 * SASL challenge left unanswered), nor inside TLS. Fills why[] ("" if none). Before
 * the close cuts the message off. */
static int64_t last_bytes(const struct pop3 *st)
{
    return st->last_bytes_us[MT_CLIENT] > st->last_bytes_us[MT_SERVER]
           ? st->last_bytes_us[MT_CLIENT] : st->last_bytes_us[MT_SERVER];
}

/* AUTH's challenge left unanswered: the client owes the next word, not the server. */
static bool client_owes_answer(const struct pop3 *st)
{
    return st->state == POP3_SASL && st->sasl_answers < st->sasl_challenges;
}

static void silent_at_end(const struct pop3 *st, char *why, size_t cap)
{
    const struct mt_session *session = st->session;
    bool readable = !session->tls || (session->flags & MT_FLAG_DECRYPTED);
    bool client_owes = client_owes_answer(st);
    int64_t quiet_s = session_silent_at_end_s(session, last_bytes(st));
    why[0] = '\0';
    if (!readable || !st->server_spoke || client_owes || quiet_s == 0 ||
        st->state == POP3_ENCRYPTED || st->state == POP3_TLS_PENDING)
        return;
    if (st->retr.active) {
        const struct line_reader *server = &st->reader[MT_SERVER];
        uint64_t got = server->mode == LR_DOT_BODY ? st->retr.before_dot + server->body_bytes
                                                    : server->offset - st->retr.start;
        snprintf(why, cap, "[%s stopped after %llu bytes: nothing more from the server for"
                 " %lld s %s]", command_name(st->body_kind), (unsigned long long)got,
                 (long long)quiet_s, session_silence_end_words(session));
    } else if (st->listing) {
        snprintf(why, cap, "[%s unfinished: nothing more from the server for %lld s %s]",
                 command_name(st->listing_kind), (long long)quiet_s,
                 session_silence_end_words(session));
    } else if (st->count > 0 && !st->desync) {
        snprintf(why, cap, "[no reply to %s for %lld s %s]",
                 command_name(st->pending[st->head].kind), (long long)quiet_s,
                 session_silence_end_words(session));
    }
}

static void pop3_close(void *state, struct mt_session *session)
{
    struct pop3 *st = state;
    struct line_reader *server = &st->reader[MT_SERVER];
    st->session = session;
    st->now = session->end_us;
    for (int side = MT_CLIENT; side <= MT_SERVER; side++) {
        if (st->held[side] && st->state != POP3_ENCRYPTED) { /* a lone 0x16: plaintext */
            st->held[side] = false;
            st->probe[side] = PROBE_OFF;
            feed(st, (enum mt_side)side, "\x16", 1);
        }
    }
    lr_finish(&st->reader[MT_CLIENT], on_client, st);
    lr_finish(server, on_server, st);
    /* Closed or reset (not the end of the capture) while a command awaited its reply, or
     * inside a message: the server dropped the connection, a client gave up, or something
     * between did. The end of the capture inside a message: incomplete, the rest may be in
     * the next file. Said so, and it decides unless a failure already did. */
    char interrupted[160] = "";
    enum mt_status cut_status = MT_STATUS_INTERRUPTED;
    char silent[160] = "";
    bool readable = !session->tls || (session->flags & MT_FLAG_DECRYPTED);   /* else unseen */
    silent_at_end(st, silent, sizeof silent);
    bool closed_early = (session->end == MT_END_CLOSE || session->end == MT_END_RESET) &&
                        !st->quit_sent && st->server_spoke && readable;
    const char *how = session_end_words(session);
    if (closed_early && st->count > 0) {
        snprintf(interrupted, sizeof interrupted, "[%s while %s awaited its reply]", how,
                 command_name(st->pending[st->head].kind));
    } else if (session->end == MT_END_EOF && readable && !silent[0] &&
               (st->listing || (st->count > 0 && !st->desync)) && !st->quit_sent &&
               !client_owes_answer(st) && st->server_spoke && session->input_end_us > 0) {
        /* the capture ended before the reply could come, or all of it (a rotated file, a
         * sensor stopped) */
        char when[48];
        session_after_last_bytes(when, sizeof when, session, last_bytes(st));
        if (st->listing)
            snprintf(interrupted, sizeof interrupted, "[capture ended during %s%s]",
                     command_name(st->listing_kind), when);
        else
            snprintf(interrupted, sizeof interrupted, "[capture ended before %s's reply%s]",
                     command_name(st->pending[st->head].kind), when);
        cut_status = MT_STATUS_INCOMPLETE;
    }
    if (st->retr.active) { /* the stream ended inside a body (or its headers) */
        uint64_t cut = server->mode == LR_DOT_BODY ? st->retr.before_dot + server->body_bytes
                                                   : server->offset - st->retr.start;
        retr_headers_end(st);
        st->retr.active = false;
        retr_count(st, cut);
        char of[40] = "";
        if (st->retr.announced > 0)
            snprintf(of, sizeof of, " of %llu", (unsigned long long)st->retr.announced);
        struct mt_message *m = retr_message(st);
        if (m) {   /* not "retrieved": show, the console and trace say what came */
            m->size = cut;
            if (st->retr.number > 0)
                session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "%s %llu cut after %llu%s bytes",
                                  command_name(st->body_kind),
                                  (unsigned long long)st->retr.number, (unsigned long long)cut,
                                  of);
            else
                session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "%s cut after %llu%s bytes",
                                  command_name(st->body_kind), (unsigned long long)cut, of);
        }
        session_transcript_addf(session, st->now, 'I', "[message cut after %llu%s bytes]",
                                (unsigned long long)cut, of);
        if (closed_early || (session->end == MT_END_EOF && readable && !silent[0])) {
            snprintf(interrupted, sizeof interrupted, "[%s during %s: the message cut after %llu%s "
                     "bytes]", closed_early ? how : "capture ended", command_name(st->body_kind),
                     (unsigned long long)cut, of);
            cut_status = closed_early ? MT_STATUS_INTERRUPTED : MT_STATUS_INCOMPLETE;
        }
    } else if (st->listing && st->listing_lines > POP3_LISTING_SHOWN)
        session_transcript_addf(session, st->now, 'I', "[... %llu more lines, listing cut]",
                                (unsigned long long)(st->listing_lines - POP3_LISTING_SHOWN));
    if (st->desync_hidden > 0)
        session_transcript_addf(session, st->now, 'I', "[%llu server lines not kept: neither +OK"
                                " nor -ERR, and no reply paired with a command]",
                                (unsigned long long)st->desync_hidden);
    if (st->session->stats.dele_count > 0 && !st->quit_answered && readable) {
        bool one = session->stats.dele_count == 1;
        session_transcript_addf(session, st->now, 'I', "[%llu message%s marked for deletion %s]",
                                (unsigned long long)session->stats.dele_count, one ? "" : "s",
                                session->end == MT_END_EOF
                                ? "when the capture ended: deleted only if a QUIT came after"
                                : one ? "stays on the server: the session ended without QUIT"
                                      : "stay on the server: the session ended without QUIT");
        session->stats.dele_count = 0;
    }
    settle(st);
    bool server_said_why = st->err_was_last && !st->logged_in;   /* settle() decided by it */
    /* The server hung up on a logged-in user and said why: unasked ("-ERR [SYS/TEMP] Server
     * shutting down.": a restart, doveadm kick), or answering the command before those it
     * then left unanswered ("-ERR Too many bad commands."); its words say more than "reset
     * while NOOP awaited its reply". Not for a client that sat idle. */
    bool hung_up = st->logged_in && st->err_was_last && !st->quit_sent && closed_early &&
                   (st->err_unsolicited || st->count > 0) &&
                   !session_goodbye_for_inactivity(line_buf_text(&st->last_err.buf),
                                                   st->last_err.buf.len);
    if (hung_up && !status_is_failure(session->status)) {
        session_decide(session, MT_STATUS_INTERRUPTED, line_buf_text(&st->last_err.buf),
                       st->last_err.buf.len, st->last_err.index);
    } else if (interrupted[0] && !status_is_failure(session->status) && !server_said_why) {
        size_t n = strlen(interrupted);
        session_decide(session, cut_status, interrupted, n,
                       session_transcript_add(session, st->now, 'I', interrupted, n));
    } else if (silent[0] && !status_is_failure(session->status)) {
        size_t n = strlen(silent);
        int64_t until = session_end_at_silence(session, last_bytes(st));
        session_decide(session, MT_STATUS_NO_RESPONSE, silent, n,
                       session_transcript_add(session, until, 'I', silent, n));
    }
}

static void pop3_free(void *state)
{
    struct pop3 *st = state;
    if (!st)
        return;
    hidden_forget(st);
    lr_free(&st->reader[MT_CLIENT]);
    lr_free(&st->reader[MT_SERVER]);
    free(st->pending);
    saved_free(&st->quit_line);
    saved_free(&st->stls_line);
    saved_free(&st->last_err);
    free(st->retr.headers);
    free(st);
}

const struct mt_decoder pop3_decoder = {
    .proto = MT_PROTO_POP3,
    .open = pop3_open,
    .data = pop3_data,
    .close = pop3_close,
    .free = pop3_free,
};
