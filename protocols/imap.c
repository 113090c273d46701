/* imap.c — IMAP4rev1 / IMAP4rev2 decoder (RFC 3501, RFC 9051).
 *
 * Owns, for one connection: the protocol state machine (imap_enter_state), the table of
 * tagged commands waiting for their completion (pipelining allowed), the assembly of
 * logical lines across literals ({n}, {n+}, ~{n}) in both directions, credential
 * masking (LOGIN, AUTHENTICATE and its SASL exchange), and what it fills in the session:
 * user, banner, server_name, tls, auth counters, struct mt_mailbox_stats, flags, status.
 *
 * Literal octets (bodies in FETCH responses, messages in APPEND) are skipped by count
 * with lr_skip(): never buffered. Two exceptions: a small first argument of LOGIN /
 * SELECT / EXAMINE (user, mailbox) is read back, and a FETCH literal holding a whole
 * message from its first octet (BODY[], RFC822, BINARY[], <0>) has its header lines read,
 * within its count and caps, before the rest is skipped. Each FETCH response counted as a
 * retrieval (fetch_count below) is a retrieved message of the session, with its
 * Message-ID and Subject when its headers were there, so `mailtap trace` finds the
 * retrieval hop; a piece says so ("(partial)", "(only BODY[1])"). Header-only fetches (a
 * client listing a mailbox) are not retrievals and add no message. Nothing is allocated
 * in proportion to what the wire announces.
 *
 * Memory: thousands of connections stay open at once, so one costs what it uses. A tag
 * entry is allocated when pipelining first needs that many and reused after; what only
 * one logical line needs (its literals' notes, a captured literal, a text buffer a long
 * line grew) is given back when the line is done. An allocation that fails loses only
 * detail: the command is not followed, the literal is shown as "{n}", never a crash.
 *
 * Counters, as defined here:
 *   fetch_count      untagged FETCH responses carrying at least one literal of message
 *                    content (a whole message, its text, a part), whatever command asked;
 *                    header sections alone (a client listing a mailbox: BODY[HEADER],
 *                    HEADER.FIELDS, RFC822.HEADER, a part's MIME header) are not counted;
 *   fetch_bytes      octets of those literals seen (a literal cut by the end counts what came);
 *   append_count/_bytes  message literals of an APPEND the server answered OK (stored),
 *                    and their octets;
 *   expunge_count    "* n EXPUNGE" responses;
 *   deleted_flagged  per STORE adding \Deleted that completed OK: the FETCH responses
 *                    showing \Deleted it produced, else (.SILENT) the size of its message
 *                    set ('*' is the EXISTS count; in a UID set, a '*' range counts 1).
 */
#include "decoder.h"
#include "explain.h"
#include "headers.h"
#include "linereader.h"
#include "sasl.h"
#include "session.h"
#include "text.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAP_TAGS_MAX 32        /* outstanding tagged commands remembered */
#define IMAP_TAG_MAX 64         /* longer tags are matched on this prefix and their length */
#define IMAP_LINE_KEEP 8192     /* bytes kept of one logical line, all pieces together */
#define IMAP_TEXT_START 256     /* a side's text buffer between lines */
#define IMAP_TEXT_KEEP 512      /* a buffer grown past this is given back after its line */
#define IMAP_LITERALS_KEPT 16   /* literal positions kept per logical line */
#define IMAP_CAPTURE_MAX 256    /* a first-argument literal this small is read */
#define IMAP_PLUS_HELD 4        /* go-aheads held back for a command line (see hold_plus) */
#define IMAP_UNTAGGED_SHOWN 20  /* untagged responses shown in a row before summarising */
#define IMAP_TAIL 32            /* bytes kept to find "{n}" at the end of a cut line */
#define IMAP_SASL_B64_MAX 2048  /* base64 characters of a SASL response decoded */
#define IMAP_NUMBER64_MAX 9223372036854775807ULL  /* RFC 9051 number64 */
#define IMAP_MASK "*****"     /* what a secret looks like in the transcript */
#define IMAP_HIDDEN_MAX 256   /* a hidden client line kept to mask the server's echo of it */
#define IMAP_HEADER_BYTES_MAX (64 * 1024) /* as SMTP's and POP3's: past these, the rest is body */
#define IMAP_HEADER_LINES_MAX 1000

enum imap_state {
    IMAP_GREETING,        /* nothing from the server yet */
    IMAP_NOT_AUTH,        /* greeted: LOGIN, AUTHENTICATE or STARTTLS may come */
    IMAP_AUTHENTICATING,  /* AUTHENTICATE running: every client line is a SASL response */
    IMAP_AUTH,            /* logged in, no mailbox selected */
    IMAP_SELECTED,
    IMAP_IDLE_ASKED,      /* IDLE sent, its "+" not come: the server owes an answer */
    IMAP_IDLING,          /* IDLE running ("+" came): the client ends it with DONE */
    IMAP_TLS_STARTING,    /* STARTTLS accepted: the client's next byte says TLS or not */
    IMAP_OPAQUE,          /* TLS or COMPRESS from here on: nothing more is readable */
    IMAP_LOGOUT,          /* LOGOUT completed or BYE received */
    IMAP_STATE_COUNT
};

static const char *const imap_state_names[IMAP_STATE_COUNT] = {
    "greeting", "not-authenticated", "authenticating", "authenticated", "selected",
    "idle-asked", "idling", "tls-starting", "opaque", "logout",
};

enum imap_result { IMAP_OK, IMAP_NO, IMAP_BAD };

enum line_kind {
    LK_COMMAND,   /* client: tag command arguments */
    LK_CONTINUE,  /* server: "+ ..." */
    LK_STATUS,    /* server: "* OK|NO|BAD|BYE|PREAUTH ..." (no literal in these) */
    LK_DATA,      /* server: other untagged data: "* LIST ...", "* 3 EXISTS" */
    LK_FETCH,     /* server: "* n FETCH (...)" */
    LK_TAGGED,    /* server: "tag OK|NO|BAD ..." */
    LK_GARBAGE,   /* server: none of the above */
};

enum lit_role { LIT_OTHER, LIT_FETCH, LIT_UPLOAD };

struct imap;
struct imap_tag;

/* A message being sent when the connection ended: its announced size and what came. */
struct imap_cut {
    bool in_message;
    uint64_t size, received;
};

/* A client line as the transcript shows it: built on the stack while the line is handled,
 * not kept per connection. */
struct imap_shown {
    size_t len;
    char text[MT_TRANSCRIPT_LINE_MAX];
};

enum {
    CMD_MASKED = 1u << 0,        /* arguments hold a secret: start() renders the line */
    CMD_CAPTURE_FIRST = 1u << 1, /* read a small literal first argument */
    CMD_UPLOAD = 1u << 2,        /* literals after the first argument are messages */
};

struct imap_command {
    const char *name;
    unsigned flags;
    enum imap_state on_ok;       /* state after a tagged OK; IMAP_GREETING: unchanged */
    /* The whole command line is imap->client.text, its arguments from client.args. A
     * CMD_MASKED command may render the line into shown (left empty: tag and name only). */
    void (*start)(struct imap *imap, struct imap_tag *tag, struct imap_shown *shown);
    /* The completion is imap->server.text, at transcript line imap->tline. */
    void (*done)(struct imap *imap, struct imap_tag *tag, enum imap_result result);
};

struct imap_tag {
    bool used, uid;
    bool deletes;                    /* STORE adding \Deleted */
    bool counted;                    /* LOGIN/AUTHENTICATE: counted as a login attempt */
    char tag[IMAP_TAG_MAX];
    size_t tag_len;                  /* the full length on the wire */
    uint64_t age;                    /* order of issue: the oldest is evicted */
    const struct imap_command *cmd;  /* NULL: a command this decoder does not follow */
    char *arg;                       /* SELECT/EXAMINE mailbox, AUTHENTICATE mechanism:
                                        sanitized, sized to it; NULL reads as "" */
    uint64_t set_size, deleted_seen; /* STORE: messages named, FETCH responses seen */
    uint64_t uploads, upload_bytes;  /* APPEND: message literals sent, counted at its OK */
    uint64_t partial_len;            /* FETCH: N of a whole message's "<0.N>" asked, 0 none */
};

struct imap_lit {
    size_t mark, at;                 /* "{n}" is text[mark..at) of the logical line */
    uint64_t size, received;
    bool refused;                    /* synchronizing literal answered NO/BAD: never sent */
};

/* One direction: its reader and the logical line being assembled from it. */
struct imap_side {
    struct line_reader reader;
    int64_t ts;
    int64_t line_ts;                 /* when the logical line being assembled began */
    char *text;                      /* the line's pieces, literals left out */
    size_t len, cap;
    bool assembling, truncated;
    enum line_kind kind;
    struct imap_lit *lits;           /* this line's, up to IMAP_LITERALS_KEPT; NULL: none */
    size_t nlits, lits_cap;
    struct imap_tag *tag;            /* client: the command's entry (NULL once completed) */
    const struct imap_command *cmd;
    size_t args;                     /* client: offset of the arguments in text */
    bool stray;                      /* client: no IMAP command (command_registered()) */
    /* the literal being skipped */
    bool in_literal, waiting_plus, fetch_counted;
    enum lit_role role;
    bool lit_header_only;      /* LIT_FETCH of a header section: not a retrieval */
    uint64_t lit_size, lit_start;    /* lit_start: stream offset of its first octet */
    int lit_index;                   /* in lits[], -1 when not kept */
    bool capturing;                  /* reading back a small literal (user, mailbox) */
    int capture_lit;                 /* lits[] index whose octets are in capture, or -1 */
    size_t capture_len;
    char *capture;                   /* allocated to the literal's size while capturing */
    /* The chunk being fed and the bytes just before it: a handler reads there the octets
     * of a captured literal, or the end of a line the reader cut. */
    const char *chunk;
    size_t chunk_len;
    uint64_t chunk_off;              /* also: bytes seen on this side so far */
    char tail[IMAP_TAIL];
    size_t tail_len;
};

struct imap {
    struct mt_session *session;
    enum imap_state state, resume;   /* resume: where IDLE (asked or running) returns to */
    struct imap_side client, server;
    struct imap_tag *tags[IMAP_TAGS_MAX];   /* NULL until a slot is first needed */
    uint64_t tag_age;
    struct imap_tag *auth_tag;       /* the AUTHENTICATE running, if any */
    int sasl_step;                   /* client responses so far in this AUTHENTICATE */
    bool sasl_counted;               /* ... and it counted as a login attempt */
    bool sasl_cancelled;             /* ... and the client cancelled it ("*") */
    int auth_answered;               /* login attempts the server answered */
    bool cap_logindisabled, cap_starttls;
    bool plain_after_starttls;     /* the client did not begin TLS after STARTTLS's OK */
    bool plain_answer_seen;        /* ... and the server's next bytes were looked at */
    char *cap_auth;                  /* AUTH= mechanisms, each followed by a space; NULL: none */
    bool greeted, logged_in, decided, goodbye;
    bool unknown_tag_noted;          /* the transcript said why once */
    uint64_t exists;                 /* last "* n EXISTS" */
    int tline;                       /* transcript index of the server line being handled */
    unsigned untagged_run;
    uint64_t untagged_hidden;
    /* A FETCH literal holding a message, its header lines being read (NULL otherwise:
     * allocated per message, not per connection, to keep idle connections small). */
    struct header_scan *fetch_scan;
    size_t fetch_msg;                /* its index in session->messages, SIZE_MAX: none */
    unsigned fetch_lines;
    struct { int64_t ts; char *text; size_t len; } plus_held[IMAP_PLUS_HELD];
    unsigned plus_count;             /* held go-aheads (hold_plus()) */
    int64_t go_ahead_ts;             /* the server's latest "+": the client's turn after it */
    /* The streams ended (imap_flush): lines in progress done, the cut message kept. */
    bool flushed;
    struct imap_cut cut;
    /* A client line hidden as a possible password, kept until the server's next line, which
     * may echo it (Dovecot takes it for a tag: "Hunter2!x BAD ..."); NULL when none. */
    char *hidden;
    size_t hidden_len;
    unsigned stray_pending;          /* stray client lines the server has not answered */
};

/* Header fields of a retrieved message kept in its session message. */
static const struct header_field fetch_headers[] = {
    HEADER_TEXT_FIELD("Subject", subject, MT_MSG_SUBJECT_MAX),
    HEADER_FIELD("Message-ID", message_id, MT_MSG_MESSAGE_ID_MAX),
};
#define FETCH_HEADERS_COUNT (sizeof fetch_headers / sizeof fetch_headers[0])

static void line_complete(struct imap *imap, struct imap_side *s);
static void side_flush(struct imap *imap, struct imap_side *s);

/* ---- state and small helpers ------------------------------------------------------- */

/* The one place the state changes. OPAQUE is final; LOGOUT only gives way to OPAQUE. */
static void imap_enter_state(struct imap *imap, enum imap_state next)
{
    if (imap->state == next || imap->state == IMAP_OPAQUE ||
        (imap->state == IMAP_LOGOUT && next != IMAP_OPAQUE))
        return;
#ifdef IMAP_TRACE
    fprintf(stderr, "imap: %s -> %s\n", imap_state_names[imap->state], imap_state_names[next]);
#else
    (void)imap_state_names;
#endif
    if (next == IMAP_IDLE_ASKED)
        imap->resume = imap->state;
    imap->state = next;
}

static bool word_eq(const char *p, size_t len, const char *word)
{
    return len == strlen(word) && text_starts_with_ci(p, len, word);
}

/* The next space-delimited word of s[*pos..len); moves *pos past it. */
static size_t next_word(const char *s, size_t len, size_t *pos, const char **word)
{
    size_t i = *pos;
    while (i < len && s[i] == ' ')
        i++;
    *word = s + i;
    while (i < len && s[i] != ' ')
        i++;
    size_t n = (size_t)(s + i - *word);
    *pos = i;
    return n;
}

static bool parse_u64(const char *p, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (max - (uint64_t)(p[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return len > 0;
}

/* 1 when s[0..len) ends with a literal announcement "{n}", "{n+}" or "~{n}" (its size,
 * whether it is non-synchronizing, where it starts); 0 when not; -1 when the count is
 * not a number64: a desync to flag, not an absurd count to skip. */
static int literal_at_end(const char *s, size_t len, uint64_t *size, bool *nonsync,
                          size_t *mark)
{
    if (len < 3 || s[len - 1] != '}')
        return 0;
    size_t end = len - 1, i;
    *nonsync = s[end - 1] == '+';
    end -= *nonsync;
    for (i = end; i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9'; i--)
        ;
    if (i == end || i == 0 || s[i - 1] != '{')
        return 0;
    if (!parse_u64(s + i, end - i, IMAP_NUMBER64_MAX, size))
        return -1;
    *mark = i - 1 - (i >= 2 && s[i - 2] == '~');
    return 1;
}

/* ---- per-direction stream bookkeeping ------------------------------------------------ */

/* The stream byte at offset `at`, when it is in the current chunk or just before it. */
static bool side_byte(const struct imap_side *s, uint64_t at, char *out)
{
    if (at >= s->chunk_off && at - s->chunk_off < s->chunk_len)
        *out = s->chunk[at - s->chunk_off];
    else if (at < s->chunk_off && s->chunk_off - at <= s->tail_len)
        *out = s->tail[s->tail_len - (s->chunk_off - at)];
    else
        return false;
    return true;
}

/* The last bytes of a line the reader cut: its "{n}" is there, not in what it kept. */
static size_t cut_line_tail(const struct imap_side *s, const struct lr_event *ev, char *out)
{
    uint64_t end = s->reader.offset - (ev->unterminated ? 0 : 1);
    size_t n = 0;
    for (uint64_t at = end > IMAP_TAIL ? end - IMAP_TAIL : 0; at < end; at++)
        n = side_byte(s, at, &out[n]) ? n + 1 : 0;
    return n - (n > 0 && out[n - 1] == '\r');
}

/* Copies the octets of the captured literal that arrived up to stream offset upto. */
static void capture_copy(struct imap_side *s, uint64_t upto)
{
    for (uint64_t at = s->lit_start + s->capture_len;
         s->capturing && at < upto && at < s->lit_start + s->lit_size; at++) {
        s->capturing = side_byte(s, at, &s->capture[s->capture_len]);
        s->capture_len += s->capturing;
    }
}

static void side_text_add(struct imap_side *s, const char *p, size_t n)
{
    if (n > IMAP_LINE_KEEP - s->len) {
        n = IMAP_LINE_KEEP - s->len;
        s->truncated = true;
    }
    if (s->len + n > s->cap) {
        size_t cap = s->cap * 2 < IMAP_LINE_KEEP ? s->cap * 2 : IMAP_LINE_KEEP;
        cap = cap < s->len + n ? s->len + n : cap;
        char *grown = realloc(s->text, cap);
        if (!grown) {
            s->truncated = true;
            return;
        }
        s->text = grown;
        s->cap = cap;
    }
    if (n > 0)
        memcpy(s->text + s->len, p, n);
    s->len += n;
}

/* ---- tokens of a logical line ------------------------------------------------------- */

enum tok_kind { TOK_NONE, TOK_ATOM, TOK_QUOTED, TOK_LITERAL };

struct token {
    enum tok_kind kind;
    const char *raw;     /* as on the wire, quotes included */
    size_t raw_len;
    int lit;             /* TOK_LITERAL: index in lits[] */
    bool closed;         /* false: a quoted string without its closing quote */
};

static struct token token_next(const struct imap_side *s, size_t *pos)
{
    struct token tok = { TOK_NONE, NULL, 0, -1, true };
    size_t i = *pos, j;
    while (i < s->len && s->text[i] == ' ')
        i++;
    *pos = i;
    if (i >= s->len)
        return tok;
    for (size_t k = 0; k < s->nlits; k++)
        if (s->lits[k].mark == i && s->lits[k].at > i) {
            *pos = s->lits[k].at;
            return (struct token){ TOK_LITERAL, s->text + i, *pos - i, (int)k, true };
        }
    if (s->text[i] == '"') {
        for (j = i + 1; j < s->len && s->text[j] != '"'; j++)
            j += s->text[j] == '\\' && j + 1 < s->len;
        tok = (struct token){ TOK_QUOTED, s->text + i, 0, -1, j < s->len };
        *pos = j < s->len ? j + 1 : s->len;
    } else {
        for (j = i; j < s->len && s->text[j] != ' '; j++)
            ;
        tok = (struct token){ TOK_ATOM, s->text + i, 0, -1, true };
        *pos = j;
    }
    tok.raw_len = *pos - i;
    return tok;
}

/* A token's value, raw (quotes undone, a captured literal read back), into dst; false
 * when it is unknown (a literal too big to have been read, an unclosed quote). */
static bool token_value(const struct imap_side *s, const struct token *tok, char *dst,
                        size_t cap, size_t *len)
{
    size_t n = 0;
    if (tok->kind == TOK_NONE || !tok->closed ||
        (tok->kind == TOK_LITERAL && tok->lit != s->capture_lit))
        return false;
    if (tok->kind == TOK_LITERAL) {
        n = s->capture_len < cap ? s->capture_len : cap;
        memcpy(dst, s->capture, n);
    } else if (tok->kind == TOK_QUOTED) {
        for (size_t i = 1; i + 1 < tok->raw_len && n < cap; i++) {
            i += tok->raw[i] == '\\';
            dst[n++] = tok->raw[i];
        }
    } else {
        n = tok->raw_len < cap ? tok->raw_len : cap;
        memcpy(dst, tok->raw, n);
    }
    *len = n;
    return true;
}

/* ---- transcript ------------------------------------------------------------------------ */

static void log_flush_hidden(struct imap *imap, int64_t ts)
{
    if (imap->untagged_hidden > 0)
        session_transcript_addf(imap->session, ts, 'I', "[%llu more untagged responses not shown]",
                                (unsigned long long)imap->untagged_hidden);
    imap->untagged_hidden = 0;
    imap->untagged_run = 0;
}

/* Adds a transcript line. Untagged responses past IMAP_UNTAGGED_SHOWN in a row (a LIST of
 * thousands of folders, FLAGS of every message) are counted and summarised instead. */
static int imap_log(struct imap *imap, char dir, int64_t ts, const char *text, size_t len,
                    bool untagged)
{
    if (!untagged)
        log_flush_hidden(imap, ts);
    else if (++imap->untagged_run > IMAP_UNTAGGED_SHOWN) {
        imap->untagged_hidden++;
        return -1;
    }
    return session_transcript_add(imap->session, ts, dir, text, len);
}

static size_t literal_note(const struct imap_lit *lit, char *out, size_t cap)
{
    unsigned long long size = lit->size, received = lit->received;
    int n = lit->refused ? snprintf(out, cap, "[literal %llu bytes, not sent]", size)
            : received < size ? snprintf(out, cap, "[literal %llu bytes, %llu received]", size, received)
            : snprintf(out, cap, "[literal %llu bytes]", size);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* The logical line as the transcript shows it: each "{n}" replaced by a note on its
 * literal. Pieces are shortened first so that every note fits in the line. */
static size_t render_line(const struct imap_side *s, char *out, size_t cap)
{
    size_t n = 0, from = 0;
    for (size_t k = 0; k <= s->nlits; k++) {
        size_t upto = k < s->nlits ? s->lits[k].mark : s->len;
        size_t reserve = (s->nlits - k) * 48, room = cap - 1 - n;
        size_t piece = upto > from ? upto - from : 0;
        room = room > reserve ? room - reserve : 0;
        piece = piece < room ? piece : room;
        if (piece > 0)
            memcpy(out + n, s->text + from, piece);
        n += piece;
        if (k < s->nlits) {
            n += literal_note(&s->lits[k], out + n, cap - n);
            from = s->lits[k].at;
        }
    }
    return n;
}

static void shown_add(struct imap_shown *shown, const char *p, size_t len)
{
    size_t room = sizeof shown->text - shown->len;
    len = len < room ? len : room;
    if (len > 0)
        memcpy(shown->text + shown->len, p, len);
    shown->len += len;
}

/* ---- status ---------------------------------------------------------------------------- */

static void imap_decide(struct imap *imap, enum mt_status status, const char *line, size_t len,
                        int tline)
{
    session_decide(imap->session, status, line, len, tline);
    imap->decided = true;
}

/* The oldest command awaiting its completion, unless it is an IDLE running (waiting is
 * its purpose, and a server may end it) or LOGOUT (the end asked for); NULL when none. An
 * IDLE whose "+" never came, or that the client ended with DONE, awaits the server as any
 * command does. */
static const struct imap_tag *oldest_pending(const struct imap *imap)
{
    const struct imap_tag *oldest = NULL;
    for (size_t i = 0; i < IMAP_TAGS_MAX; i++) {
        const struct imap_tag *t = imap->tags[i];
        if (t && t->used && (!oldest || t->age < oldest->age))
            oldest = t;
    }
    bool idling = imap->state == IMAP_IDLING && oldest && oldest->cmd &&
                  strcmp(oldest->cmd->name, "IDLE") == 0;
    if (idling || (oldest && oldest->cmd && strcmp(oldest->cmd->name, "LOGOUT") == 0))
        return NULL;
    return oldest;
}

static bool has_code(const struct imap_side *s, const char *code)
{
    return text_find_ci(s->text, s->len, code) >= 0;
}

/* The server's own trouble in a NO (RFC 5530 response codes), not the user's request:
 * temp_failed for what passes ([UNAVAILABLE], [INUSE], [LIMIT]: too many connections),
 * mailbox_failed for what does not ([SERVERBUG], [CORRUPTION], [CONTACTADMIN],
 * [OVERQUOTA]); MT_STATUS_UNKNOWN otherwise. */
static enum mt_status server_trouble(const struct imap_side *s)
{
    if (has_code(s, "[UNAVAILABLE]") || has_code(s, "[INUSE]") || has_code(s, "[LIMIT]"))
        return MT_STATUS_TEMP_FAILED;
    if (has_code(s, "[SERVERBUG]") || has_code(s, "[CORRUPTION]") ||
        has_code(s, "[CONTACTADMIN]") || has_code(s, "[OVERQUOTA]"))
        return MT_STATUS_MAILBOX_FAILED;
    return MT_STATUS_UNKNOWN;
}

/* A goodbye for a connection limit (Dovecot: "Maximum number of connections from user+IP
 * exceeded"): the login is refused for now, not interrupted. */
static bool bye_for_limit(const struct imap_side *s)
{
    return explain_connection_limit(s->text, s->len);
}

/* A mailbox command the server failed after the login: the mail could not be read or
 * saved. Not the client's own mistakes: BAD (syntax), a folder that does not exist (or an
 * APPEND to one: [TRYCREATE], the client creates it), a message expunged meanwhile. */
static void mailbox_command_failed(struct imap *imap, enum imap_result result)
{
    const struct imap_side *s = &imap->server;
    if (result != IMAP_NO || !imap->logged_in || has_code(s, "[NONEXISTENT]") ||
        has_code(s, "[TRYCREATE]") || has_code(s, "[EXPUNGEISSUED]"))
        return;
    enum mt_status trouble = server_trouble(s);
    imap_decide(imap, trouble == MT_STATUS_TEMP_FAILED ? trouble : MT_STATUS_MAILBOX_FAILED,
                s->text, s->len, imap->tline);
}

static void imap_set_user(struct imap *imap, const char *p, size_t len)
{
    if (!imap->logged_in && len > 0)
        text_sanitize(imap->session->user, sizeof imap->session->user, p, len);
}

/* Ends what can be read: lines in progress are flushed, both readers discard. Returns
 * the transcript index of the note saying why. */
static int imap_go_opaque(struct imap *imap, int64_t ts, const char *why)
{
    side_flush(imap, &imap->client);
    side_flush(imap, &imap->server);
    lr_discard(&imap->client.reader);
    lr_discard(&imap->server.reader);
    imap_enter_state(imap, IMAP_OPAQUE);
    return imap_log(imap, 'I', ts, why, strlen(why), false);
}

/* ---- tag table ------------------------------------------------------------------------- */

static const char *tag_arg(const struct imap_tag *tag)
{
    return tag->arg ? tag->arg : "";
}

/* Keeps a sanitized copy of p[0..len) with the command. Should it not fit in memory, the
 * argument stays unknown (""), as when the command line did not show it. */
static void tag_set_arg(struct imap_tag *tag, const char *p, size_t len)
{
    char value[MT_NAME_MAX];
    size_t n = text_sanitize(value, sizeof value, p, len) + 1;
    free(tag->arg);
    tag->arg = malloc(n);
    if (tag->arg)
        memcpy(tag->arg, value, n);
}

static void tag_remove(struct imap *imap, struct imap_tag *tag)
{
    imap->auth_tag = imap->auth_tag == tag ? NULL : imap->auth_tag;
    imap->client.tag = imap->client.tag == tag ? NULL : imap->client.tag;
    tag->used = false;
    free(tag->arg);
    tag->arg = NULL;
}

/* Entries are allocated as pipelining first needs them and reused after, and they never
 * move: auth_tag and client.tag point at them. NULL when no entry can be had: the command
 * is then not followed (its completion matches nothing), but still masked. */
static struct imap_tag *tag_add(struct imap *imap, const char *tag, size_t len,
                                const struct imap_command *cmd, bool uid)
{
    struct imap_tag *slot = NULL, *oldest = NULL;
    size_t empty = IMAP_TAGS_MAX;
    for (size_t i = 0; i < IMAP_TAGS_MAX && !slot; i++) {
        struct imap_tag *t = imap->tags[i];
        if (!t)
            empty = empty < i ? empty : i;
        else if (!t->used)
            slot = t;
        else if (!oldest || t->age < oldest->age)
            oldest = t;
    }
    if (!slot && empty < IMAP_TAGS_MAX) {
        slot = imap->tags[empty] = calloc(1, sizeof *slot);
        if (!slot)
            return NULL;
    }
    /* Full: forget the oldest. A server that never answers some tags must not stop us. */
    slot = slot ? slot : oldest;
    tag_remove(imap, slot);
    memset(slot, 0, sizeof *slot);
    slot->used = true;
    slot->age = ++imap->tag_age;
    memcpy(slot->tag, tag, len < IMAP_TAG_MAX ? len : IMAP_TAG_MAX);
    slot->tag_len = len;
    slot->cmd = cmd;
    slot->uid = uid;
    return slot;
}

/* The oldest outstanding command with this tag: clients that use one tag for everything
 * ("." in the zeek capture) get their completions in order. */
static struct imap_tag *tag_find(struct imap *imap, const char *tag, size_t len)
{
    struct imap_tag *found = NULL;
    for (size_t i = 0; i < IMAP_TAGS_MAX; i++) {
        struct imap_tag *t = imap->tags[i];
        if (t && t->used && t->tag_len == len && (!found || t->age < found->age) &&
            memcmp(t->tag, tag, len < IMAP_TAG_MAX ? len : IMAP_TAG_MAX) == 0)
            found = t;
    }
    return found;
}

/* ---- capabilities ---------------------------------------------------------------------- */

static const char *caps_auth(const struct imap *imap)
{
    return imap->cap_auth ? imap->cap_auth : "";
}

/* Kept sized to the list: a server offers a few mechanisms, not MT_NAME_MAX bytes of
 * them. Without memory none is known, as before any CAPABILITY. */
static void caps_set_auth(struct imap *imap, const char *list)
{
    size_t n = strlen(list) + 1;
    free(imap->cap_auth);
    imap->cap_auth = n > 1 ? malloc(n) : NULL;
    if (imap->cap_auth)
        memcpy(imap->cap_auth, list, n);
}

/* Remembers a capability list (p just after the word CAPABILITY); a response code ends
 * at ']'. */
static void caps_parse(struct imap *imap, const char *p, size_t len)
{
    const char *w;
    char auth[MT_NAME_MAX] = "";
    size_t pos = 0, wl;
    imap->cap_logindisabled = imap->cap_starttls = false;
    while ((wl = next_word(p, len, &pos, &w)) > 0) {
        bool last = w[wl - 1] == ']';
        wl -= last;
        imap->cap_logindisabled |= word_eq(w, wl, "LOGINDISABLED");
        imap->cap_starttls |= word_eq(w, wl, "STARTTLS");
        imap->session->starttls_offered |= imap->cap_starttls;
        size_t have = strlen(auth);
        if (wl > 5 && text_starts_with_ci(w, wl, "AUTH=") && have + wl < sizeof auth) {
            /* escapes (\xNN) may fill what is left: the space only if it still fits */
            have += text_sanitize(auth + have, sizeof auth - have, w + 5, wl - 5);
            if (have + 1 < sizeof auth)
                memcpy(auth + have, " ", 2);
        }
        if (last)
            break;
    }
    caps_set_auth(imap, auth);
}

/* "[CAPABILITY ...]" opening a response text (greeting, login OK). */
static void caps_from_code(struct imap *imap, const char *text, size_t len, size_t pos)
{
    while (pos < len && text[pos] == ' ')
        pos++;
    if (text_starts_with_ci(text + pos, len - pos, "[CAPABILITY "))
        caps_parse(imap, text + pos + 12, len - pos - 12);
}

/* ---- SASL ------------------------------------------------------------------------------- */

/* Finds the user in the first client SASL response (base64). Only a prefix is decoded:
 * the user comes first in every mechanism sasl.c reads, and it wipes the secret part. */
static void sasl_response(struct imap *imap, const char *p, size_t len)
{
    unsigned char user[IMAP_SASL_B64_MAX / 4 * 3];
    if (!imap->auth_tag || imap->sasl_step++ > 0 || (len == 1 && p[0] == '='))
        return;
    const char *mech = tag_arg(imap->auth_tag);
    size_t user_len = sasl_response_user(sasl_mech_from_name(mech, strlen(mech)), p,
                                         len < IMAP_SASL_B64_MAX ? len : IMAP_SASL_B64_MAX,
                                         user, sizeof user);
    imap_set_user(imap, (const char *)user, user_len);
}

/* A login attempt counts once: when its credentials go out (a password, a SASL response),
 * or at the server's verdict. A LOGIN or AUTHENTICATE whose secret never crossed the wire
 * (the client stopped at the go-ahead) is none, and no cleartext_auth finding. tag: NULL
 * when no entry could be had (counted each time: nothing to remember it by). */
static void auth_attempt_count(struct imap *imap, struct imap_tag *tag)
{
    if (tag && tag->counted)
        return;
    if (tag)
        tag->counted = true;
    imap->session->auth_attempts += imap->session->auth_attempts < INT_MAX;
}

/* A client line while AUTHENTICATE runs: masked; a lone "*" is the client cancelling. */
static void client_sasl(struct imap *imap, const char *p, size_t len)
{
    bool cancel = len == 1 && p[0] == '*';
    if (!cancel && !imap->sasl_counted) {
        auth_attempt_count(imap, imap->auth_tag);
        imap->sasl_counted = true;
    }
    if (!cancel)
        sasl_response(imap, p, len);
    imap->sasl_cancelled |= cancel;
    imap_log(imap, 'C', imap->client.ts, cancel ? "*" : IMAP_MASK, cancel ? 1 : strlen(IMAP_MASK),
             false);
}

/* ---- commands ------------------------------------------------------------------------ */

/* Was a refused login about the channel (plaintext before TLS), not the credentials? */
static bool login_refused_for_privacy(const struct imap *imap, const struct imap_tag *tag)
{
    const char *line = imap->server.text;
    size_t len = imap->server.len;
    char mech[MT_NAME_MAX + 2];
    if (text_find_ci(line, len, "PRIVACYREQUIRED") >= 0)
        return true;
    if (imap->session->tls)
        return false;
    snprintf(mech, sizeof mech, "%s ", tag_arg(tag));
    if (imap->cap_logindisabled && (strcmp(tag->cmd->name, "LOGIN") == 0 ||
                                    strstr(caps_auth(imap), mech) == NULL))
        return true;   /* a mechanism the server did not offer before TLS */
    return text_find_ci(line, len, "plaintext") >= 0 ||
           (imap->cap_starttls && (text_find_ci(line, len, "TLS") >= 0 ||
                                   text_find_ci(line, len, "SSL") >= 0 ||
                                   text_find_ci(line, len, "encrypt") >= 0));
}

/* LOGIN user password: the user is kept and shown, the password never. The attempt counts
 * once the password went out: not for a literal the client never sent after its "+". */
static void cmd_login_start(struct imap *imap, struct imap_tag *tag, struct imap_shown *shown)
{
    struct imap_side *c = &imap->client;
    char value[IMAP_CAPTURE_MAX], note[80];
    size_t pos = c->args, vlen, after_user;
    struct token user = token_next(c, &pos);
    after_user = pos;
    struct token password = token_next(c, &after_user);
    if (password.kind != TOK_NONE &&
        (password.kind != TOK_LITERAL || c->lits[password.lit].received > 0))
        auth_attempt_count(imap, tag);
    shown_add(shown, c->text, c->args);
    if (token_value(c, &user, value, sizeof value, &vlen)) {
        imap_set_user(imap, value, vlen);
        shown_add(shown, " ", 1);
        shown_add(shown, user.kind == TOK_LITERAL ? value : user.raw,
                  user.kind == TOK_LITERAL ? vlen : user.raw_len);
    } else if (user.kind == TOK_LITERAL) {
        note[0] = ' ';
        shown_add(shown, note, 1 + literal_note(&c->lits[user.lit], note + 1, sizeof note - 1));
    }
    shown_add(shown, " " IMAP_MASK, strlen(" " IMAP_MASK));
}

/* AUTHENTICATE mechanism [initial-response]: client lines are SASL until the completion. */
static void cmd_authenticate_start(struct imap *imap, struct imap_tag *tag,
                                   struct imap_shown *shown)
{
    struct imap_side *c = &imap->client;
    size_t pos = c->args;
    struct token mech = token_next(c, &pos);
    size_t upto_mech = pos;
    struct token initial = token_next(c, &pos);
    if (mech.kind == TOK_ATOM)
        tag_set_arg(tag, mech.raw, mech.raw_len);
    for (char *p = tag->arg; p && *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    imap->auth_tag = tag->used ? tag : NULL;
    imap->sasl_step = 0;
    imap->sasl_cancelled = false;
    imap->sasl_counted = initial.kind != TOK_NONE;   /* SASL-IR: the credentials are here */
    if (imap->sasl_counted)
        auth_attempt_count(imap, tag);
    imap_enter_state(imap, IMAP_AUTHENTICATING);
    shown_add(shown, c->text, upto_mech);
    if (initial.kind != TOK_NONE) {   /* SASL-IR, RFC 4959 */
        sasl_response(imap, initial.raw, initial.raw_len);
        shown_add(shown, " " IMAP_MASK, strlen(" " IMAP_MASK));
    }
}

/* Decides login_ok with the server's line less its [CAPABILITY ...] response code (Dovecot
 * lists 40 words there): the status line is searched, and "quota" or "idle" would then find
 * every login. The transcript keeps the line whole. */
static void decide_logged_in(struct imap *imap, const char *text, size_t len, int tline)
{
    char line[MT_TRANSCRIPT_LINE_MAX];
    long at = text_find_ci(text, len, "[CAPABILITY ");
    const char *end = at >= 0 ? memchr(text + at, ']', len - (size_t)at) : NULL;
    if (!end || len >= sizeof line) {
        imap_decide(imap, MT_STATUS_LOGIN_OK, text, len, tline);
        return;
    }
    size_t after = (size_t)(end + 1 - text);
    while (after < len && text[after] == ' ')
        after++;
    memcpy(line, text, (size_t)at);
    memcpy(line + at, text + after, len - after);
    size_t n = (size_t)at + (len - after);
    while (n > 0 && line[n - 1] == ' ')
        n--;
    imap_decide(imap, MT_STATUS_LOGIN_OK, line, n, tline);
}

static void cmd_auth_done(struct imap *imap, struct imap_tag *tag, enum imap_result result)
{
    struct imap_side *s = &imap->server;
    imap->auth_answered++;
    auth_attempt_count(imap, tag);   /* a verdict, whatever went out before it */
    if (result == IMAP_OK) {
        imap->logged_in = true;
        decide_logged_in(imap, s->text, s->len, imap->tline);
        return;
    }
    bool cancelled = imap->sasl_cancelled && imap->state == IMAP_AUTHENTICATING;
    bool unparsed = result == IMAP_BAD && tag && tag->cmd && strcmp(tag->cmd->name, "LOGIN") == 0 &&
                    !login_refused_for_privacy(imap, tag);   /* LOGINDISABLED: a BAD too */
    if (cancelled || unparsed) {
        /* No verdict on the password: the client gave up ("*"), or the server could not
         * parse the LOGIN (BAD: a password with spaces or quotes the client did not quote)
         * and never checked it. Not a failed login; said, unless something else decided. */
        static const char gave_up[] = "[the client cancelled authentication]";
        if (unparsed)
            imap->session->flags |= MT_FLAG_PROTOCOL_ERROR;
        if (imap->state == IMAP_AUTHENTICATING)
            imap_enter_state(imap, IMAP_NOT_AUTH);
        if (!imap->logged_in && !status_is_failure(imap->session->status))
            imap_decide(imap, MT_STATUS_NO_MAIL, unparsed ? s->text : gave_up,
                        unparsed ? s->len : sizeof gave_up - 1, unparsed ? imap->tline : -1);
        return;
    }
    enum mt_status trouble = result == IMAP_NO ? server_trouble(s) : MT_STATUS_UNKNOWN;
    if (trouble == MT_STATUS_UNKNOWN)   /* the credentials (or TLS first), not the server */
        imap->session->auth_failures++;
    if (imap->state == IMAP_AUTHENTICATING)
        imap_enter_state(imap, IMAP_NOT_AUTH);
    if (!imap->logged_in)   /* a late BAD ("already logged in") does not undo a login */
        imap_decide(imap, trouble != MT_STATUS_UNKNOWN ? trouble
                          : login_refused_for_privacy(imap, tag) ? MT_STATUS_LOGIN_DISABLED
                                                                 : MT_STATUS_AUTH_FAILED,
                    s->text, s->len, imap->tline);
}

static void cmd_starttls_done(struct imap *imap, struct imap_tag *tag, enum imap_result result)
{
    (void)tag;
    if (result != IMAP_OK) {
        /* RFC 2595 6 / RFC 9051 6.2.1: NO or BAD when the server cannot do TLS. The client
         * asked (no starttls_unused finding); a later login or failure decides over it. */
        imap->session->starttls_refused = true;
        imap_decide(imap, MT_STATUS_TLS_FAILED, imap->server.text, imap->server.len, imap->tline);
        return;
    }
    imap->session->tls = true;
    imap->cap_logindisabled = imap->cap_starttls = false;   /* RFC 9051 6.2.1: ask again */
    caps_set_auth(imap, "");
    imap_decide(imap, MT_STATUS_ENCRYPTED, imap->server.text, imap->server.len, imap->tline);
}

static void cmd_compress_done(struct imap *imap, struct imap_tag *tag, enum imap_result result)
{
    (void)tag;
    if (result == IMAP_OK)   /* RFC 4978: both directions are deflated from here */
        imap_go_opaque(imap, imap->server.ts, "[COMPRESS: the rest is compressed, not decoded]");
}

static void cmd_select_start(struct imap *imap, struct imap_tag *tag, struct imap_shown *shown)
{
    char value[IMAP_CAPTURE_MAX];
    size_t pos = imap->client.args, vlen;
    struct token box = token_next(&imap->client, &pos);
    (void)shown;
    if (token_value(&imap->client, &box, value, sizeof value, &vlen))
        tag_set_arg(tag, value, vlen);
    imap->exists = 0;
}

/* Adds a mailbox to the comma-separated list once; ",..." says some did not fit. */
static void mailboxes_add(struct mt_mailbox_stats *stats, const char *name)
{
    char *list = stats->mailboxes;
    size_t have = strlen(list), len = strlen(name);
    if (len == 0 || (have >= 4 && strcmp(list + have - 4, ",...") == 0))
        return;
    for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ','))
        if (strcspn(p, ",") == len && strncmp(p, name, len) == 0)
            return;
    snprintf(list + have, sizeof stats->mailboxes - have, "%s%s", have ? "," : "",
             have + 1 + len + 4 < sizeof stats->mailboxes ? name : "...");
}

static void cmd_select_done(struct imap *imap, struct imap_tag *tag, enum imap_result result)
{
    if (result != IMAP_OK) {   /* a failed SELECT leaves no mailbox selected */
        if (imap->state == IMAP_SELECTED)
            imap_enter_state(imap, IMAP_AUTH);
        /* Another folder may simply not exist; INBOX always does. */
        if (strcasecmp(tag_arg(tag), "INBOX") == 0 ||
            server_trouble(&imap->server) != MT_STATUS_UNKNOWN)
            mailbox_command_failed(imap, result);
        return;
    }
    const char *box = tag_arg(tag);
    mailboxes_add(&imap->session->stats, box);
    session_transcript_addf(imap->session, imap->server.ts, 'I', "[%s selected: %llu messages]",
                            box[0] ? box : "mailbox", (unsigned long long)imap->exists);
}

/* Messages named by a sequence set ("4", "1:3,7", "5:*"); star is what '*' stands for,
 * 0 when unknown (a range with '*' then counts 1). */
static uint64_t sequence_set_size(const char *p, size_t len, uint64_t star)
{
    uint64_t total = 0, ends[2] = { 0, 0 };
    size_t i = 0;
    while (i < len) {
        for (int e = 0; e < 2; e++) {
            size_t j = i;
            while (j < len && p[j] >= '0' && p[j] <= '9')
                j++;
            if (j == i && i < len && p[i] == '*')
                ends[e] = star, j++;
            else if (!parse_u64(p + i, j - i, 0xffffffffu, &ends[e]))
                return total;
            ends[1] = ends[e];
            i = j + (j < len && p[j] == ':' && e == 0);
            if (i == j)
                break;
        }
        if (ends[0] == 0 || ends[1] == 0)
            ends[0] = ends[1] = 1;
        total += (ends[0] > ends[1] ? ends[0] - ends[1] : ends[1] - ends[0]) + 1;
        if (i < len && p[i++] != ',')
            return total;
    }
    return total;
}

/* STORE set +FLAGS[.SILENT] (... \Deleted ...), or FLAGS which replaces them. */
static void cmd_store_start(struct imap *imap, struct imap_tag *tag, struct imap_shown *shown)
{
    struct imap_side *c = &imap->client;
    size_t pos = c->args;
    struct token set = token_next(c, &pos), op = token_next(c, &pos);
    (void)shown;
    if (set.kind != TOK_ATOM || op.kind != TOK_ATOM)
        return;
    tag->deletes = (text_starts_with_ci(op.raw, op.raw_len, "+FLAGS") ||
                    text_starts_with_ci(op.raw, op.raw_len, "FLAGS")) &&
                   text_find_ci(c->text + pos, c->len - pos, "\\Deleted") >= 0;
    tag->set_size = sequence_set_size(set.raw, set.raw_len, tag->uid ? 0 : imap->exists);
}

/* A command that changes the mailbox (STORE, EXPUNGE, COPY, MOVE) refused for the
 * server's own trouble: over quota ("mailbox full, and I cannot even delete"), a bug. A
 * plain NO (a message number out of range, a folder that does not exist) is the client's. */
static void cmd_change_done(struct imap *imap, struct imap_tag *tag, enum imap_result result)
{
    (void)tag;
    if (result == IMAP_NO && server_trouble(&imap->server) != MT_STATUS_UNKNOWN)
        mailbox_command_failed(imap, result);
}

static void cmd_store_done(struct imap *imap, struct imap_tag *tag, enum imap_result result)
{
    if (result == IMAP_OK && tag->deletes)
        imap->session->stats.deleted_flagged += tag->deleted_seen ? tag->deleted_seen : tag->set_size;
    cmd_change_done(imap, tag, result);
}

/* FETCH set BODY.PEEK[]<0.200>: how much of the message a range from its start asks for;
 * an answer shorter than that is the whole message (RFC 9051 6.4.5), not a piece. */
static void cmd_fetch_start(struct imap *imap, struct imap_tag *tag, struct imap_shown *shown)
{
    const struct imap_side *c = &imap->client;
    (void)shown;
    long at = text_find_ci(c->text + c->args, c->len - c->args, "[]<0.");
    if (at < 0)
        return;
    const char *digits = c->text + c->args + at + 5;
    size_t n = 0, room = c->len - c->args - (size_t)at - 5;
    while (n < room && digits[n] >= '0' && digits[n] <= '9')
        n++;
    if (n < room && digits[n] == '>' && !parse_u64(digits, n, UINT64_MAX, &tag->partial_len))
        tag->partial_len = 0;
}

static void cmd_idle_start(struct imap *imap, struct imap_tag *tag, struct imap_shown *shown)
{
    (void)tag, (void)shown;
    imap_enter_state(imap, IMAP_IDLE_ASKED);   /* running once the server's "+" comes */
}

/* The client leaves IDLE (DONE), or the server ends it or refuses it (its completion). */
static void idle_leave(struct imap *imap)
{
    if (imap->state == IMAP_IDLE_ASKED || imap->state == IMAP_IDLING)
        imap_enter_state(imap, imap->resume);
}

static void cmd_idle_done(struct imap *imap, struct imap_tag *tag, enum imap_result result)
{
    (void)tag, (void)result;
    idle_leave(imap);
}

static void cmd_logout_start(struct imap *imap, struct imap_tag *tag, struct imap_shown *shown)
{
    (void)tag, (void)shown;
    imap->goodbye = true;
}

static void cmd_mailbox_done(struct imap *imap, struct imap_tag *tag, enum imap_result result)
{
    (void)tag;
    mailbox_command_failed(imap, result);
}

/* The messages an APPEND sent count once the server stored them: a NO ([OVERQUOTA]) left
 * the mailbox as it was. */
static void cmd_append_done(struct imap *imap, struct imap_tag *tag, enum imap_result result)
{
    if (result == IMAP_OK) {
        imap->session->stats.append_count += tag->uploads;
        imap->session->stats.append_bytes += tag->upload_bytes;
    }
    mailbox_command_failed(imap, result);
}

/* Commands followed. Others are still matched to their completions, just not decoded. */
static const struct imap_command imap_commands[] = {
    { "APPEND", CMD_UPLOAD, 0, NULL, cmd_append_done },
    { "AUTHENTICATE", CMD_MASKED, IMAP_AUTH, cmd_authenticate_start, cmd_auth_done },
    { "CAPABILITY", 0, 0, NULL, NULL },
    { "CLOSE", 0, IMAP_AUTH, NULL, NULL },
    { "COMPRESS", 0, 0, NULL, cmd_compress_done },
    { "COPY", 0, 0, NULL, cmd_change_done },
    { "EXAMINE", CMD_CAPTURE_FIRST, IMAP_SELECTED, cmd_select_start, cmd_select_done },
    { "EXPUNGE", 0, 0, NULL, cmd_change_done },
    { "FETCH", 0, 0, cmd_fetch_start, cmd_mailbox_done },
    { "ID", 0, 0, NULL, NULL },
    { "IDLE", 0, 0, cmd_idle_start, cmd_idle_done },
    { "LIST", 0, 0, NULL, NULL },
    { "LOGIN", CMD_MASKED | CMD_CAPTURE_FIRST, IMAP_AUTH, cmd_login_start, cmd_auth_done },
    { "LOGOUT", 0, IMAP_LOGOUT, cmd_logout_start, NULL },
    { "LSUB", 0, 0, NULL, NULL },
    { "MOVE", 0, 0, NULL, cmd_change_done },
    { "NAMESPACE", 0, 0, NULL, NULL },
    { "NOOP", 0, 0, NULL, NULL },
    { "SEARCH", 0, 0, NULL, NULL },
    { "SELECT", CMD_CAPTURE_FIRST, IMAP_SELECTED, cmd_select_start, cmd_select_done },
    { "STARTTLS", 0, IMAP_TLS_STARTING, NULL, cmd_starttls_done },
    { "STATUS", 0, 0, NULL, NULL },
    { "STORE", 0, 0, cmd_store_start, cmd_store_done },
    { "UNSELECT", 0, IMAP_AUTH, NULL, NULL },
};

/* Every command name IANA registers for IMAP (RFC 3501, 9051 and their extensions), for
 * telling a command line from a stray one: a line whose second word is none of these, and
 * not an experimental "X..." one, is no IMAP command (a password typed in the wrong place,
 * a SASL response after a refused AUTHENTICATE) and is not shown. */
static bool command_registered(const char *word, size_t len)
{
    static const char *const names[] = {
        "APPEND", "AUTHENTICATE", "CAPABILITY", "CHECK", "CLOSE", "COMPRESS", "CONVERSIONS",
        "COMPARATOR", "CONVERT", "COPY", "CREATE", "DELETE", "DELETEACL", "ENABLE", "ESEARCH",
        "EXAMINE",
        "EXPUNGE", "FETCH", "GENURLAUTH", "GETACL", "GETJMAPACCESS", "GETMETADATA",
        "GETQUOTA", "GETQUOTAROOT", "ID", "IDLE", "LANGUAGE", "LIST", "LISTRIGHTS", "LOGIN",
        "LOGOUT",
        "LSUB", "MOVE", "MYRIGHTS", "NAMESPACE", "NOOP", "NOTIFY", "RENAME", "REPLACE",
        "RESETKEY", "SEARCH", "SELECT", "SETACL", "SETMETADATA", "SETQUOTA", "SORT",
        "STARTTLS", "STATUS", "STORE", "SUBSCRIBE", "THREAD", "UID", "UIDBATCHES",
        "UNAUTHENTICATE", "UNSELECT", "UNSUBSCRIBE", "URLFETCH",
    };
    if (len > 0 && (word[0] == 'X' || word[0] == 'x'))
        return true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (word_eq(word, len, names[i]))
            return true;
    return false;
}

static const struct imap_command *command_find(const char *word, size_t len)
{
    for (size_t i = 0; i < sizeof imap_commands / sizeof imap_commands[0]; i++)
        if (word_eq(word, len, imap_commands[i].name))
            return &imap_commands[i];
    return NULL;
}

/* First piece of a client line: tag, command (after UID), table entry. */
static void client_classify(struct imap *imap)
{
    struct imap_side *c = &imap->client;
    const char *tag, *word;
    size_t pos = 0, tl = next_word(c->text, c->len, &pos, &tag), after_tag = pos;
    size_t wl = next_word(c->text, c->len, &pos, &word);
    const struct imap_command *cmd = command_find(word, wl);
    bool uid = !cmd && word_eq(word, wl, "UID");
    if (uid) {
        wl = next_word(c->text, c->len, &pos, &word);
        cmd = command_find(word, wl);
    } else if (!cmd && (cmd = command_find(tag, tl)) != NULL) {
        /* No tag ("LOGIN user pass"): still a command, and still masked. */
        imap->session->flags |= MT_FLAG_PROTOCOL_ERROR;
        pos = after_tag;
        tl = 0;
    }
    c->kind = LK_COMMAND;
    c->cmd = cmd;
    c->args = pos;
    /* the second word no command at all: a stray line, no tag of it kept (its first word
     * may be a secret) */
    c->stray = !cmd && !command_registered(word, wl);
    c->tag = c->stray ? NULL : tag_add(imap, tag, tl, cmd, uid);
}

/* A "+" go-ahead for a synchronizing literal comes while the client's command line is
 * still open (it is logged whole when its last literal ends): held back and logged right
 * after it, so the transcript shows the command before the server's answer to it, in
 * time order. False when it cannot be held (past IMAP_PLUS_HELD, no memory): logged now. */
static bool hold_plus(struct imap *imap, const struct imap_side *s)
{
    if (imap->plus_count == IMAP_PLUS_HELD)
        return false;
    char *text = malloc(s->len + 1);   /* + 1: never malloc(0) */
    if (!text)
        return false;
    memcpy(text, s->text, s->len);
    imap->plus_held[imap->plus_count].ts = s->ts;
    imap->plus_held[imap->plus_count].text = text;
    imap->plus_held[imap->plus_count++].len = s->len;
    return true;
}

static void log_held_plus(struct imap *imap)
{
    for (unsigned i = 0; i < imap->plus_count; i++) {
        imap_log(imap, 'S', imap->plus_held[i].ts, imap->plus_held[i].text,
                 imap->plus_held[i].len, false);
        free(imap->plus_held[i].text);
    }
    imap->plus_count = 0;
}

static void hidden_forget(struct imap *imap)
{
    text_secret_free(&imap->hidden, &imap->hidden_len);
}

static void client_line_done(struct imap *imap)
{
    struct imap_side *c = &imap->client;
    struct imap_tag completed = { 0 };
    struct imap_shown shown;
    shown.len = 0;
    /* Already completed by the server (a refused literal), or no entry could be had:
     * decode it, keep no pointer. */
    if (c->cmd && c->cmd->start)
        c->cmd->start(imap, c->tag ? c->tag : &completed, &shown);
    free(completed.arg);
    if (c->cmd && (c->cmd->flags & CMD_MASKED)) {
        if (shown.len == 0) {
            shown_add(&shown, c->text, c->args);
            shown_add(&shown, " " IMAP_MASK, strlen(" " IMAP_MASK));
        }
        explicit_bzero(c->text, c->len);
    } else if (c->stray) {
        /* No command: not IMAP. What clients send so by mistake is a SASL response after a
         * refused AUTHENTICATE, or a password after a refused LOGIN, with spaces or not. */
        imap->stray_pending += imap->stray_pending < IMAP_TAGS_MAX;
        int n = snprintf(shown.text, sizeof shown.text, "[a line without a command, %zu bytes,"
                         " not shown]", c->len);
        shown.len = n > 0 && (size_t)n < sizeof shown.text ? (size_t)n : 0;
        hidden_forget(imap);
        if (c->len > 0 && c->len <= IMAP_HIDDEN_MAX && (imap->hidden = malloc(c->len))) {
            memcpy(imap->hidden, c->text, c->len);
            imap->hidden_len = c->len;
        }
        explicit_bzero(c->text, c->len);
    } else {
        shown.len = render_line(c, shown.text, sizeof shown.text);
    }
    /* stamped when it began: a literal's go-ahead came after it, and so did its end */
    imap_log(imap, 'C', c->line_ts, shown.text, shown.len, false);
    log_held_plus(imap);
}

/* ---- server responses ------------------------------------------------------------------ */

static bool is_cond(const char *w, size_t wl)
{
    return word_eq(w, wl, "OK") || word_eq(w, wl, "NO") || word_eq(w, wl, "BAD");
}

static void server_classify(struct imap *imap)
{
    struct imap_side *s = &imap->server;
    const char *w;
    size_t pos = 0, wl = next_word(s->text, s->len, &pos, &w);
    uint64_t number;
    if (s->len > 0 && s->text[0] == '+') {
        s->kind = LK_CONTINUE;
    } else if (word_eq(w, wl, "*")) {
        wl = next_word(s->text, s->len, &pos, &w);
        if (parse_u64(w, wl, UINT64_MAX, &number))
            wl = next_word(s->text, s->len, &pos, &w);
        s->kind = word_eq(w, wl, "FETCH") ? LK_FETCH
                  : is_cond(w, wl) || word_eq(w, wl, "BYE") || word_eq(w, wl, "PREAUTH") ? LK_STATUS
                  : LK_DATA;
    } else {
        wl = next_word(s->text, s->len, &pos, &w);
        s->kind = is_cond(w, wl) ? LK_TAGGED : LK_GARBAGE;
    }
}

/* A FETCH showing \Deleted belongs to the newest STORE adding it, if one is pending. */
static void resp_fetch(struct imap *imap, size_t pos)
{
    struct imap_tag *store = NULL;
    if (text_find_ci(imap->server.text + pos, imap->server.len - pos, "\\Deleted") < 0)
        return;
    for (size_t i = 0; i < IMAP_TAGS_MAX; i++) {
        struct imap_tag *t = imap->tags[i];
        if (t && t->used && t->deletes && (!store || t->age > store->age))
            store = t;
    }
    if (store)
        store->deleted_seen++;
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-';
}

/* The first server line: "* OK" greets, "* PREAUTH" logs in, "* BYE" refuses. */
static bool server_greeting(struct imap *imap, const char *w, size_t wl, size_t pos)
{
    struct imap_side *s = &imap->server;
    struct mt_session *session = imap->session;
    const char *host;
    if (s->kind != LK_STATUS || !(word_eq(w, wl, "OK") || word_eq(w, wl, "PREAUTH") ||
                                  word_eq(w, wl, "BYE")))
        return false;
    int tline = imap_log(imap, 'S', s->ts, s->text, s->len, false);
    text_sanitize(session->banner, sizeof session->banner, s->text, s->len);
    caps_from_code(imap, s->text, s->len, pos);
    /* server_name: the first word after a [code], when it looks like a host name */
    while (pos < s->len && s->text[pos] == ' ')
        pos++;
    const char *code_end = memchr(s->text + pos, ']', s->len - pos);
    if (pos < s->len && s->text[pos] == '[' && code_end)
        pos = (size_t)(code_end - s->text) + 1;
    size_t hl = next_word(s->text, s->len, &pos, &host), dots = 0, k;
    for (k = 0; k < hl && hl < MT_NAME_MAX && is_host_char(host[k]); k++)
        dots += host[k] == '.';
    if (k == hl && dots > 0 && host[0] != '.' && host[hl - 1] != '.')
        text_sanitize(session->server_name, sizeof session->server_name, host, hl);
    if (word_eq(w, wl, "BYE")) {
        imap_decide(imap, MT_STATUS_SERVER_REJECTED, s->text, s->len, tline);
        imap_enter_state(imap, IMAP_LOGOUT);
    } else if (word_eq(w, wl, "PREAUTH")) {
        imap->logged_in = true;
        decide_logged_in(imap, s->text, s->len, tline);
        imap_enter_state(imap, IMAP_AUTH);
    } else {
        imap_enter_state(imap, IMAP_NOT_AUTH);
    }
    return true;
}

/* A "* BYE" the client did not ask for (no LOGOUT): the server ends the session and says
 * why. It decides, unless a failure already did:
 *   - a connection limit: the login refused for now (temp_failed);
 *   - while a command (not LOGOUT, not a running IDLE) awaits its completion: that command
 *     never completes ("Disconnected for inactivity", "Server shutting down"): interrupted
 *     once logged in; before any login the server gave up on the client ("Too many invalid
 *     IMAP commands": a scanner, a broken client), no_mail, as POP3's -ERR then close;
 *   - unasked, to a logged-in user, idle or in IDLE: the server ended a session in use (a
 *     shutdown or restart, doveadm kick), interrupted, as POP3's unsolicited -ERR before
 *     its close; not a goodbye for inactivity (the client sat idle: nothing was cut). */
static void server_bye(struct imap *imap)
{
    const struct imap_side *s = &imap->server;
    bool waiting = oldest_pending(imap) || imap->stray_pending > 0;   /* owed an answer */
    bool failed = status_is_failure(imap->session->status);
    if (!imap->goodbye && bye_for_limit(s))
        imap_decide(imap, MT_STATUS_TEMP_FAILED, s->text, s->len, imap->tline);
    else if (!imap->goodbye && waiting && !failed)
        imap_decide(imap, imap->logged_in ? MT_STATUS_INTERRUPTED : MT_STATUS_NO_MAIL,
                    s->text, s->len, imap->tline);
    else if (!imap->goodbye && imap->logged_in && !failed &&
             !session_goodbye_for_inactivity(s->text, s->len))
        imap_decide(imap, MT_STATUS_INTERRUPTED, s->text, s->len, imap->tline);
    imap->goodbye = true;
    imap_enter_state(imap, IMAP_LOGOUT);
}

static void server_untagged(struct imap *imap)
{
    struct imap_side *s = &imap->server;
    char out[MT_TRANSCRIPT_LINE_MAX];
    const char *w;
    size_t pos = 1, wl = next_word(s->text, s->len, &pos, &w);
    uint64_t number = 0;
    bool numbered = parse_u64(w, wl, UINT64_MAX, &number);
    if (numbered)
        wl = next_word(s->text, s->len, &pos, &w);
    if (!imap->greeted) {
        imap->greeted = true;
        if (server_greeting(imap, w, wl, pos))
            return;
        imap->session->flags |= MT_FLAG_PROTOCOL_ERROR;   /* joined mid-session, or not IMAP */
        imap_enter_state(imap, IMAP_NOT_AUTH);
    }
    bool bye = !numbered && word_eq(w, wl, "BYE");
    imap->tline = imap_log(imap, 'S', s->ts, out, render_line(s, out, sizeof out), !bye);
    if (bye) {
        server_bye(imap);
    } else if (!numbered && word_eq(w, wl, "CAPABILITY")) {
        caps_parse(imap, s->text + pos, s->len - pos);
    } else if (!numbered && is_cond(w, wl)) {
        caps_from_code(imap, s->text, s->len, pos);
    } else if (numbered && word_eq(w, wl, "EXISTS")) {
        imap->exists = number;
    } else if (numbered && word_eq(w, wl, "EXPUNGE")) {
        imap->session->stats.expunge_count++;
        imap->exists -= imap->exists > 0;
    } else if (numbered && word_eq(w, wl, "FETCH")) {
        resp_fetch(imap, pos);
    }
}

/* A synchronizing literal the server refused (NO/BAD instead of "+") is never sent: stop
 * waiting for it, or its announced size would swallow the client's next commands. */
static void client_literal_refused(struct imap *imap)
{
    struct imap_side *c = &imap->client;
    if (c->in_literal) {
        lr_cancel_skip(&c->reader);
        c->in_literal = c->capturing = false;
    }
    if (c->lit_index >= 0 && (size_t)c->lit_index < c->nlits)
        c->lits[c->lit_index].refused = true;
    line_complete(imap, c);
}

static void server_tagged(struct imap *imap)
{
    struct imap_side *s = &imap->server, *c = &imap->client;
    const char *tagw, *w;
    size_t pos = 0, tl = next_word(s->text, s->len, &pos, &tagw);
    size_t wl = next_word(s->text, s->len, &pos, &w);
    enum imap_result result = word_eq(w, wl, "OK") ? IMAP_OK
                              : word_eq(w, wl, "NO") ? IMAP_NO : IMAP_BAD;
    struct imap_tag *tag = tag_find(imap, tagw, tl);
    /* the answer to a stray line (its tag was not kept): no command of ours completes */
    bool answers_stray = !tag && imap->stray_pending > 0;
    imap->stray_pending -= answers_stray;
    if (!tag && !answers_stray && !imap->unknown_tag_noted) {
        imap->unknown_tag_noted = true;
        session_transcript_addf(imap->session, s->ts, 'I', "[protocol error: a completion for a"
                                " tag no command awaits (over " TEXT_XSTR(IMAP_TAGS_MAX) " commands"
                                " pipelined, or the capture began mid-session)]");
    }
    if (!tag && !answers_stray)
        imap->session->flags |= MT_FLAG_PROTOCOL_ERROR;
    else if (tag && result != IMAP_OK && c->assembling && c->tag == tag && c->waiting_plus &&
             (!c->in_literal || c->reader.offset == c->lit_start))
        client_literal_refused(imap);
    imap->tline = imap_log(imap, 'S', s->ts, s->text, s->len, false);
    if (result == IMAP_OK)
        caps_from_code(imap, s->text, s->len, pos);
    if (!tag)
        return;
    if (tag->cmd && tag->cmd->done)
        tag->cmd->done(imap, tag, result);
    if (tag->cmd && tag->cmd->on_ok != IMAP_GREETING && result == IMAP_OK)
        imap_enter_state(imap, tag->cmd->on_ok);
    tag_remove(imap, tag);
}

static void server_line_done(struct imap *imap)
{
    struct imap_side *s = &imap->server;
    if (imap->hidden) {   /* the reply to a hidden line: its echo masked */
        char masked[MT_TRANSCRIPT_LINE_MAX];
        size_t n = text_mask_echo(masked, sizeof masked, s->text, s->len, imap->hidden,
                                  imap->hidden_len, IMAP_MASK);
        if (n <= s->cap) {
            memcpy(s->text, masked, n);
            s->len = n;
        }
        hidden_forget(imap);
    }
    if (s->kind == LK_STATUS || s->kind == LK_DATA || s->kind == LK_FETCH) {
        server_untagged(imap);
        return;
    }
    if (!imap->greeted) {   /* no greeting: joined mid-session, or not IMAP */
        imap->greeted = true;
        imap->session->flags |= MT_FLAG_PROTOCOL_ERROR;
        imap_enter_state(imap, IMAP_NOT_AUTH);
    }
    if (s->kind == LK_TAGGED) {
        server_tagged(imap);
        return;
    }
    if (s->kind == LK_CONTINUE) {
        /* IDLE runs from its go-ahead: before it the server owes an answer */
        if (imap->state == IMAP_IDLE_ASKED && !imap->client.assembling) {
            imap_enter_state(imap, IMAP_IDLING);
            imap->session->stats.idled = true;   /* not for an IDLE refused or unanswered */
        }
        imap->client.waiting_plus = false;   /* go-ahead for a literal, or a SASL/IDLE step */
        imap->go_ahead_ts = s->ts;
        if (imap->client.assembling && hold_plus(imap, s))
            return;
    } else {
        imap->session->flags |= MT_FLAG_PROTOCOL_ERROR;
    }
    imap_log(imap, 'S', s->ts, s->text, s->len, false);
}

/* ---- logical lines and literals --------------------------------------------------------- */

/* Room for one more literal of the line; false when there is none (past
 * IMAP_LITERALS_KEPT, or no memory): that literal is then skipped unnoted. */
static bool side_lits_reserve(struct imap_side *s)
{
    if (s->nlits >= IMAP_LITERALS_KEPT)
        return false;
    if (s->nlits < s->lits_cap)
        return true;
    size_t cap = s->lits_cap ? s->lits_cap * 2 : 2;
    cap = cap < IMAP_LITERALS_KEPT ? cap : IMAP_LITERALS_KEPT;
    struct imap_lit *grown = realloc(s->lits, cap * sizeof *grown);
    if (!grown)
        return false;
    s->lits = grown;
    s->lits_cap = cap;
    return true;
}

/* Once its line is handled, what only that line needed goes: an idle connection keeps at
 * most IMAP_TEXT_KEEP bytes of text per side, not what its longest line grew. */
static void side_line_release(struct imap_side *s)
{
    free(s->lits);
    s->lits = NULL;
    s->nlits = s->lits_cap = 0;
    s->lit_index = -1;
    free(s->capture);
    s->capture = NULL;
    s->capturing = false;
    s->capture_lit = -1;
    s->capture_len = 0;
    if (s->cap > IMAP_TEXT_KEEP) {
        char *text = malloc(IMAP_TEXT_START);
        if (!text)
            return;   /* keeps the large one: still usable */
        explicit_bzero(s->text, s->cap);   /* the client's may have held a password */
        free(s->text);
        s->text = text;
        s->cap = IMAP_TEXT_START;
        s->len = 0;
    }
}

static void line_complete(struct imap *imap, struct imap_side *s)
{
    s->assembling = false;   /* first: a handler may flush both sides (imap_go_opaque) */
    s->waiting_plus = false;
    if (s->truncated)
        imap->session->flags |= MT_FLAG_LINE_TRUNCATED;
    if (s == &imap->client)
        client_line_done(imap);
    else
        server_line_done(imap);
    side_line_release(s);
}

/* ---- retrieved messages: header lines of FETCH literals ------------------------------- */

/* Whether the FETCH item announcing a literal (text[0..len) ends with it, before "{n}")
 * holds a whole message from its first octet: RFC822, BODY[] or BINARY[], possibly a
 * partial fetch from origin 0 ("BODY[]<0>"). */
static bool fetch_item_is_message(const char *text, size_t len)
{
    while (len > 0 && text[len - 1] == ' ')
        len--;
    size_t end = len;
    if (end > 0 && text[end - 1] == '>') {   /* <origin>: only 0 starts with the headers */
        if (end < 3 || text[end - 2] != '0' || text[end - 3] != '<')
            return false;
        end -= 3;
    }
    static const char *const items[] = { "BODY[]", "BINARY[]", "RFC822" };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        size_t n = strlen(items[i]);
        if (end >= n && text_starts_with_ci(text + end - n, n, items[i]) &&
            (end == n || text[end - n - 1] == ' ' || text[end - n - 1] == '('))
            return true;
    }
    return false;
}

/* Whether the FETCH item announcing a literal is a header section only: BODY[HEADER],
 * BODY.PEEK[HEADER.FIELDS (...)], BODY[2.MIME], RFC822.HEADER (with any <origin>). */
static bool fetch_item_is_header(const char *text, size_t len)
{
    while (len > 0 && text[len - 1] == ' ')
        len--;
    if (len > 0 && text[len - 1] == '>') {
        const char *open = NULL;
        for (size_t i = len; i-- > 0 && !open;)
            if (text[i] == '<')
                open = text + i;
        if (!open)
            return false;
        len = (size_t)(open - text);
    }
    static const char rfc822_header[] = "RFC822.HEADER";
    size_t n = sizeof rfc822_header - 1;
    if (len >= n && text_starts_with_ci(text + len - n, n, rfc822_header))
        return true;
    if (len == 0 || text[len - 1] != ']')
        return false;
    size_t open = len - 1;
    while (open > 0 && text[open - 1] != '[')
        open--;
    if (open == 0)
        return false;
    const char *section = text + open;
    size_t section_len = len - 1 - open;
    return text_find_ci(section, section_len, "HEADER") >= 0 ||
           (section_len >= 4 && text_starts_with_ci(section + section_len - 4, 4, "MIME"));
}

static struct mt_message *fetch_message(struct imap *imap)
{
    struct mt_session *session = imap->session;
    return imap->fetch_msg < session->message_count ? &session->messages[imap->fetch_msg] : NULL;
}

/* The FETCH a response answers: the oldest awaiting its completion (servers answer in
 * order); NULL when none is known. */
static const struct imap_tag *fetch_asked(const struct imap *imap)
{
    const struct imap_tag *oldest = NULL;
    for (size_t i = 0; i < IMAP_TAGS_MAX; i++) {
        const struct imap_tag *t = imap->tags[i];
        if (t && t->used && t->cmd && strcmp(t->cmd->name, "FETCH") == 0 &&
            (!oldest || t->age < oldest->age))
            oldest = t;
    }
    return oldest;
}

/* The FETCH item announcing a literal: the last item of text[0..len) (before "{n}"), its
 * brackets kept whole ("BODY[1.2]<0>", "RFC822"). Returns its start. */
static size_t fetch_item_start(const char *text, size_t len)
{
    int depth = 0;
    size_t i = len;
    while (i > 0) {
        char c = text[i - 1];
        depth += c == ']' ? 1 : c == '[' ? -1 : 0;
        if (depth <= 0 && (c == ' ' || c == '('))
            break;
        i--;
    }
    return i;
}

/* What of the message a content literal holds, for its message line: "" the whole message
 * (BODY[], BINARY[], RFC822, or a range from 0 asked longer than what came: RFC 9051 6.4.5
 * sends what there is), " (partial)" a range of it, " (only BODY[TEXT])" its text or a
 * part. text[0..len) is the response before the literal's "{n}". */
static void fetch_piece_words(const struct imap *imap, const char *text, size_t len,
                              uint64_t size, char *out, size_t cap)
{
    while (len > 0 && text[len - 1] == ' ')
        len--;
    size_t start = fetch_item_start(text, len), base_end = len;
    const char *item = text + start;
    bool ranged = len > start && text[len - 1] == '>';
    uint64_t origin = 0;
    if (ranged) {
        while (base_end > start && text[base_end - 1] != '<')
            base_end--;
        if (base_end == start || !parse_u64(text + base_end, len - 1 - base_end, UINT64_MAX,
                                            &origin))
            origin = 1;   /* unreadable: a piece, not the message */
        base_end -= base_end > start;
    }
    static const char *const whole[] = { "BODY[]", "BINARY[]", "RFC822" };
    bool is_whole = false;
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        is_whole |= word_eq(item, base_end - start, whole[i]);
    const struct imap_tag *asked = fetch_asked(imap);
    /* the same response may give the message's size: a range from 0 that holds all of it
     * is the message ("RFC822.SIZE 139 BODY[]<0> {139}") */
    uint64_t message_size = 0;
    long at = text_find_ci(text, len, "RFC822.SIZE ");
    if (at >= 0) {
        size_t from = (size_t)at + 12, to = from;
        while (to < len && text[to] >= '0' && text[to] <= '9')
            to++;
        if (!parse_u64(text + from, to - from, UINT64_MAX, &message_size))
            message_size = 0;
    }
    bool all_of_it = origin == 0 && ((asked && asked->partial_len > size) ||
                                     (message_size > 0 && message_size == size));
    out[0] = '\0';
    if (is_whole && ranged && !all_of_it)
        snprintf(out, cap, " (partial)");
    else if (!is_whole) {
        char shown[48];
        text_sanitize(shown, sizeof shown, item, len - start);
        snprintf(out, cap, " (only %s)", shown);
    }
}

/* A FETCH response's first literal of message content: counted (fetch_count), and a
 * retrieved message of the session, "retrieved by FETCH 3 (UID 7)" and what of it came:
 * every retrieval counted is listed. Returns its index in session->messages, SIZE_MAX
 * when none could be kept. */
static size_t fetch_retrieval_add(struct imap *imap, size_t mark, uint64_t size)
{
    struct imap_side *s = &imap->server;
    struct mt_session *session = imap->session;
    session->stats.fetch_count++;
    s->fetch_counted = true;
    struct mt_message *m = session_add_message(session);
    if (!m)
        return SIZE_MAX;
    const char *w;
    size_t pos = 1, wl = next_word(s->text, s->len, &pos, &w);
    uint64_t number;
    char piece[64];
    m->status = MT_STATUS_UNKNOWN;
    m->start_us = s->ts;
    m->size = size;   /* a literal is the message (or its piece), octet for octet */
    /* The UID too when the response carries it: the server's log names messages so. */
    long at = text_find_ci(s->text, mark, "UID ");
    uint64_t uid = 0;
    bool has_uid = at > 0 && (s->text[at - 1] == '(' || s->text[at - 1] == ' ');
    for (size_t i = has_uid ? (size_t)at + 4 : mark; i < mark && s->text[i] >= '0' &&
         s->text[i] <= '9' && uid < UINT64_MAX / 10 - 9; i++)
        uid = uid * 10 + (uint64_t)(s->text[i] - '0');
    fetch_piece_words(imap, s->text, mark, size, piece, sizeof piece);
    if (parse_u64(w, wl, UINT64_MAX, &number) && uid)
        session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "retrieved by FETCH %llu (UID %llu)%s",
                          (unsigned long long)number, (unsigned long long)uid, piece);
    else if (parse_u64(w, wl, UINT64_MAX, &number))
        session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "retrieved by FETCH %llu%s",
                          (unsigned long long)number, piece);
    else
        session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "retrieved by FETCH%s", piece);
    return session->message_count - 1;
}

/* A whole message from its first octet: the reader delivers its header lines, read into
 * message msg (SIZE_MAX: none kept, the lines are still read to find the literal's end). */
static void fetch_headers_begin(struct imap *imap, size_t msg, uint64_t size)
{
    struct imap_side *s = &imap->server;
    imap->fetch_scan = malloc(sizeof *imap->fetch_scan);
    if (!imap->fetch_scan) {
        lr_skip(&s->reader, size);
        return;
    }
    header_scan_init(imap->fetch_scan);
    imap->fetch_lines = 0;
    imap->fetch_msg = msg;
    lr_read_block(&s->reader, size);
}

/* One line of a message literal: a header line, until the blank line, a line that is no
 * header, or the caps; then the rest of the literal is skipped. */
static void fetch_header_line(struct imap *imap, const struct lr_event *ev)
{
    struct imap_side *s = &imap->server;
    bool more = ev->len > 0 && ++imap->fetch_lines <= IMAP_HEADER_LINES_MAX &&
                s->reader.offset - s->lit_start <= IMAP_HEADER_BYTES_MAX &&
                header_scan_line(imap->fetch_scan, fetch_headers, FETCH_HEADERS_COUNT,
                                 fetch_message(imap), ev->line, ev->len);
    if (!more) {
        header_scan_flush(imap->fetch_scan, fetch_headers, FETCH_HEADERS_COUNT, fetch_message(imap));
        lr_skip_rest(&s->reader);
    }
}

static void fetch_headers_done(struct imap *imap)
{
    header_scan_flush(imap->fetch_scan, fetch_headers, FETCH_HEADERS_COUNT, fetch_message(imap));
    free(imap->fetch_scan);
    imap->fetch_scan = NULL;
    imap->fetch_msg = SIZE_MAX;
}

static void literal_end(struct imap *imap, struct imap_side *s, uint64_t received, bool complete)
{
    struct mt_mailbox_stats *stats = &imap->session->stats;
    bool counts = complete || received > 0;   /* an upload: a FETCH counted as it began */
    s->in_literal = false;
    s->waiting_plus = s->waiting_plus && s->lit_size == 0;   /* {0}: the rest still waits */
    if (s->lit_index >= 0 && (size_t)s->lit_index < s->nlits)
        s->lits[s->lit_index].received = received;
    if (s->capturing) {
        capture_copy(s, s->lit_start + received);
        s->capture_lit = s->capture_len == s->lit_size ? s->lit_index : -1;
        s->capturing = false;
    }
    if (s == &imap->server && imap->fetch_scan)
        fetch_headers_done(imap);
    if (s->role == LIT_FETCH && !s->lit_header_only) {
        stats->fetch_bytes += received;
    } else if (s->role == LIT_UPLOAD && counts && s->tag) {
        s->tag->uploads++;   /* stored only if the server says OK (cmd_append_done) */
        s->tag->upload_bytes += received;
    }
}

static void literal_begin(struct imap *imap, struct imap_side *s, uint64_t size, bool nonsync,
                          size_t mark)
{
    bool first_arg = s == &imap->client && mark >= s->args;
    for (size_t i = s->args; first_arg && i < mark; i++)
        first_arg = s->text[i] == ' ';
    s->lit_index = -1;
    if (side_lits_reserve(s)) {
        s->lit_index = (int)s->nlits;
        s->lits[s->nlits++] = (struct imap_lit){ .mark = mark, .at = s->len, .size = size };
    }
    s->in_literal = true;
    s->lit_size = size;
    s->lit_start = s->reader.offset;
    s->waiting_plus = s == &imap->client && !nonsync;
    s->role = s->kind == LK_FETCH ? LIT_FETCH
              : s->cmd && (s->cmd->flags & CMD_UPLOAD) && !first_arg ? LIT_UPLOAD : LIT_OTHER;
    s->lit_header_only = s->role == LIT_FETCH && fetch_item_is_header(s->text, mark);
    s->capturing = s->cmd && (s->cmd->flags & CMD_CAPTURE_FIRST) && first_arg &&
                   size <= IMAP_CAPTURE_MAX && s->lit_index >= 0;
    if (s->capturing) {
        free(s->capture);
        s->capture = malloc((size_t)size + 1);   /* + 1: never malloc(0), which may be NULL */
        s->capturing = s->capture != NULL;   /* else: a value unknown, as a larger literal */
        s->capture_len = 0;
    }
    /* every retrieval counted is listed: its first content literal makes it both */
    bool retrieval = s->role == LIT_FETCH && !s->lit_header_only && !s->fetch_counted;
    size_t msg = retrieval ? fetch_retrieval_add(imap, mark, size) : SIZE_MAX;
    if (size == 0)
        literal_end(imap, s, 0, true);
    else if (retrieval && fetch_item_is_message(s->text, mark))
        fetch_headers_begin(imap, msg, size);
    else
        lr_skip(&s->reader, size);
}

/* One line from the reader: a whole logical line, or a piece of one that a literal
 * interrupts. Only command and untagged data lines may carry literals. */
static void side_piece(struct imap *imap, struct imap_side *s, const struct lr_event *ev)
{
    size_t base = s->assembling ? s->len : 0, mark;
    if (!s->assembling) {
        s->line_ts = s->ts;
        s->len = s->nlits = 0;
        s->truncated = s->fetch_counted = false;
        s->capture_lit = -1;
        s->cmd = NULL;
    }
    side_text_add(s, ev->line, ev->len);
    s->truncated |= ev->truncated;
    if (!s->assembling) {
        s->assembling = true;
        if (s == &imap->client)
            client_classify(imap);
        else
            server_classify(imap);
    }
    char tail[IMAP_TAIL];
    const char *end = ev->truncated ? tail : ev->line;
    size_t end_len = ev->truncated ? cut_line_tail(s, ev, tail) : ev->len;
    uint64_t size;
    bool nonsync;
    int found = 0;
    if (s->kind == LK_COMMAND || s->kind == LK_DATA || s->kind == LK_FETCH)
        found = literal_at_end(end, end_len, &size, &nonsync, &mark);
    if (found < 0)
        imap->session->flags |= MT_FLAG_PROTOCOL_ERROR;
    if (found <= 0) {
        line_complete(imap, s);
        return;
    }
    mark = ev->truncated ? s->len : base + mark;
    literal_begin(imap, s, size, nonsync, mark < s->len ? mark : s->len);
}

static void client_event(void *ctx, const struct lr_event *ev)
{
    struct imap *imap = ctx;
    struct imap_side *c = &imap->client;
    if (ev->kind == LR_EVENT_SKIP_DONE) {
        literal_end(imap, c, c->lit_size, true);
    } else if (ev->kind != LR_EVENT_LINE) {
        return;
    } else if (!c->assembling && imap->state == IMAP_AUTHENTICATING) {
        if (ev->truncated)
            imap->session->flags |= MT_FLAG_LINE_TRUNCATED;
        client_sasl(imap, ev->line, ev->len);
    } else if (!c->assembling && (imap->state == IMAP_IDLING || imap->state == IMAP_IDLE_ASKED) &&
               word_eq(ev->line, ev->len, "DONE")) {
        /* not a tagged command; IDLE's completion is owed from here */
        imap_log(imap, 'C', c->ts, ev->line, ev->len, false);
        idle_leave(imap);
    } else if (c->assembling || ev->len > 0) {
        side_piece(imap, c, ev);
    }
}

static void server_event(void *ctx, const struct lr_event *ev)
{
    struct imap *imap = ctx;
    struct imap_side *s = &imap->server;
    if (ev->kind == LR_EVENT_SKIP_DONE)
        literal_end(imap, s, s->lit_size, true);
    else if (ev->kind == LR_EVENT_LINE && s->in_literal && imap->fetch_scan)
        fetch_header_line(imap, ev);
    else if (ev->kind == LR_EVENT_LINE && (s->assembling || ev->len > 0))
        side_piece(imap, s, ev);
}

/* The stream ends: a literal cut short counts what came; the line it was in is done. */
static void side_flush(struct imap *imap, struct imap_side *s)
{
    if (s->assembling && s->in_literal)
        literal_end(imap, s, s->reader.offset - s->lit_start, false);
    if (s->assembling)
        line_complete(imap, s);
}

/* ---- decoder entry points ---------------------------------------------------------------- */

static void *imap_open(struct mt_session *session)
{
    struct imap *imap = calloc(1, sizeof *imap);
    if (!imap)
        return NULL;
    imap->session = session;
    imap->state = IMAP_GREETING;
    imap->fetch_msg = SIZE_MAX;
    struct imap_side *sides[2] = { &imap->client, &imap->server };
    for (int i = 0; i < 2; i++) {
        lr_init(&sides[i]->reader);
        sides[i]->lit_index = sides[i]->capture_lit = -1;
        sides[i]->cap = IMAP_TEXT_START;   /* never NULL: the parsers need not check */
        sides[i]->text = malloc(sides[i]->cap);
    }
    if (!imap->client.text || !imap->server.text) {
        free(imap->client.text);
        free(imap->server.text);
        free(imap);
        return NULL;
    }
    return imap;
}

static void imap_data(void *state, struct mt_session *session, enum mt_side from,
                      const char *bytes, size_t len, int64_t ts_us)
{
    struct imap *imap = state;
    struct imap_side *s = from == MT_CLIENT ? &imap->client : &imap->server;
    (void)session;
    if (len == 0)
        return;
    s->ts = ts_us;
    /* TLS shows itself by its first byte, a handshake record (0x16): never a tag. */
    bool tls = (unsigned char)bytes[0] == 0x16;
    bool tls_record = (unsigned char)bytes[0] >= 0x14 && (unsigned char)bytes[0] <= 0x17;
    if (imap->state == IMAP_GREETING && s->chunk_off == 0 && tls) {
        static const char why[] = "[TLS from the first byte: implicit TLS]";
        imap->session->tls = true;
        imap_decide(imap, MT_STATUS_ENCRYPTED, why, sizeof why - 1, imap_go_opaque(imap, ts_us, why));
    } else if (imap->state == IMAP_TLS_STARTING && from == MT_CLIENT && tls) {
        imap_go_opaque(imap, ts_us, "[TLS from here on: the handshake and what follows are"
                                    " not shown]");
    } else if (imap->state == IMAP_TLS_STARTING && from == MT_CLIENT) {
        /* A decrypted capture (once the server answers in plaintext too), or a client that
         * never began TLS: keep decoding, and let what follows decide the status. */
        static const char why[] = "[plaintext after STARTTLS]";
        imap->plain_after_starttls = true;
        imap->decided = false;
        imap_log(imap, 'I', ts_us, why, sizeof why - 1, false);
        imap_enter_state(imap, IMAP_NOT_AUTH);
    }
    if (from == MT_SERVER && imap->plain_after_starttls && !imap->plain_answer_seen) {
        imap->plain_answer_seen = true;   /* its first bytes only: a record's body is any */
        if (!tls_record)
            imap->session->flags |= MT_FLAG_DECRYPTED;   /* both sides in plaintext */
    }
    s->chunk = bytes;
    s->chunk_len = len;
    lr_feed(&s->reader, bytes, len, from == MT_CLIENT ? client_event : server_event, imap);
    capture_copy(s, s->chunk_off + len);
    /* keep the stream's last IMAP_TAIL bytes for the next chunk */
    size_t keep = len >= IMAP_TAIL ? 0 : s->tail_len + len > IMAP_TAIL ? IMAP_TAIL - len : s->tail_len;
    size_t take = len < IMAP_TAIL ? len : IMAP_TAIL;
    memmove(s->tail, s->tail + s->tail_len - keep, keep);
    memcpy(s->tail + keep, bytes + len - take, take);
    s->tail_len = keep + take;
    s->chunk_off += len;
    s->chunk = NULL;
    s->chunk_len = 0;
}

/* Status when nothing conclusive (a login, a refusal, TLS) was seen. A session that
 * ended cleanly (FIN, or after LOGOUT / BYE) without trying to log in is
 * MT_STATUS_NO_MAIL, "connection without any transaction"; one that tried but whose
 * answer was not captured is incomplete. */
static void imap_decide_at_end(struct imap *imap)
{
    struct mt_session *session = imap->session;
    enum mt_status status = MT_STATUS_NO_MAIL;
    const char *why = "[closed without a login]";
    if (imap->server.chunk_off == 0)
        status = MT_STATUS_NO_RESPONSE, why = "[no reply from the server]";
    else if (session->end == MT_END_RESET)
        status = MT_STATUS_RESET, why = "[connection reset]";
    else if (!imap->goodbye && session->end != MT_END_CLOSE)
        status = MT_STATUS_INCOMPLETE,
        why = imap->go_ahead_ts > 0 && imap->go_ahead_ts >= imap->client.ts
              ? "[capture ended while the server waited for the client to go on after its \"+\"]"
              : "[capture ended before LOGOUT]";
    else if (session->auth_attempts > imap->auth_answered)
        status = MT_STATUS_INCOMPLETE, why = "[login attempt without an answer]";
    session_decide(session, status, why, strlen(why), -1);
}

/* Closed (FIN, not the end of the capture: that is incomplete) while a command awaited
 * its completion (not IDLE, which a server may end, nor after LOGOUT): the server dropped
 * the connection, or something between did. It decides unless a failure already did. */
static void imap_decide_interrupted(struct imap *imap, struct mt_session *session, int64_t ts,
                                    const struct imap_cut *cut)
{
    bool ended = session->end == MT_END_CLOSE || session->end == MT_END_RESET;
    bool at_end = session->end == MT_END_EOF && cut->in_message;   /* the rest: next file? */
    if ((!ended && !at_end) || imap->goodbye || imap->server.chunk_off == 0 ||
        status_is_failure(session->status) ||
        (session->tls && !(session->flags & MT_FLAG_DECRYPTED)))   /* commands unseen */
        return;
    const struct imap_tag *oldest = oldest_pending(imap);
    if (!oldest && !cut->in_message)
        return;
    const char *name = oldest && oldest->cmd ? oldest->cmd->name : "a command";
    const char *how = at_end ? "capture ended" : session_end_words(session);
    char line[160];
    int n = cut->in_message
            ? snprintf(line, sizeof line, "[%s during FETCH: the message cut after %llu of %llu "
                       "bytes]", how, (unsigned long long)cut->received,
                       (unsigned long long)cut->size)
            : snprintf(line, sizeof line, "[%s while %s awaited its completion]", how, name);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    session_decide(session, at_end ? MT_STATUS_INCOMPLETE : MT_STATUS_INTERRUPTED, line, len,
                   session_transcript_add(session, ts, 'I', line, len));
}

/* The capture went on a minute or more after the server fell silent owing a command's
 * completion: no cut, a silence (a hung server or storage, a mailbox lock; an IDLE never
 * acknowledged, or left with DONE and never completed). Not in a running IDLE (waiting is
 * its purpose), not when the client owed the next word (a "+" go-ahead left
 * unanswered), not inside TLS. Decides no_response over anything but a failure. */
static void imap_decide_silent(struct imap *imap, struct mt_session *session)
{
    int64_t last = imap->server.ts > imap->client.ts ? imap->server.ts : imap->client.ts;
    int64_t quiet_s = session_silent_at_end_s(session, last);
    const struct imap_tag *oldest = oldest_pending(imap);
    if ((session->end != MT_END_EOF && session->end != MT_END_TIMEOUT) || !oldest ||
        imap->server.chunk_off == 0 ||
        status_is_failure(session->status) ||
        (imap->go_ahead_ts > 0 && imap->go_ahead_ts >= imap->client.ts) ||
        imap->state == IMAP_IDLING || imap->state == IMAP_OPAQUE ||
        imap->state == IMAP_LOGOUT || imap->state == IMAP_TLS_STARTING ||
        (session->tls && !(session->flags & MT_FLAG_DECRYPTED)))
        return;
    const char *name = oldest->cmd ? oldest->cmd->name : "a command";
    char line[160];
    if (quiet_s == 0) {   /* less than a minute: the capture ended before the answer could */
        if (session->end != MT_END_EOF || session->input_end_us <= 0 || imap->cut.in_message)
            return;   /* a message cut is said so by imap_decide_interrupted() */
        char when[48];
        session_after_last_bytes(when, sizeof when, session, last);
        int n = imap->server.ts > imap->client.ts   /* it was answering */
                ? snprintf(line, sizeof line, "[capture ended during %s%s]", name, when)
                : snprintf(line, sizeof line, "[capture ended before %s's completion%s]", name,
                           when);
        size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        session_decide(session, MT_STATUS_INCOMPLETE, line, len,
                       session_transcript_add(session, session->input_end_us, 'I', line, len));
        return;
    }
    int n = imap->server.ts > imap->client.ts   /* it began answering, then stopped */
            ? snprintf(line, sizeof line, "[%s unfinished: nothing more from the server for %lld"
                       " s %s]", name, (long long)quiet_s, session_silence_end_words(session))
            : snprintf(line, sizeof line, "[no reply to %s for %lld s %s]", name,
                       (long long)quiet_s, session_silence_end_words(session));
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    session_decide(session, MT_STATUS_NO_RESPONSE, line, len,
                   session_transcript_add(session, session_end_at_silence(session, last), 'I',
                                          line, len));
}

/* The streams are over: the lines in progress are logged, stamped when they began, before
 * the connection's note on how it ended, which comes later in time. */
static void imap_flush(void *state, struct mt_session *session)
{
    struct imap *imap = state;
    (void)session;
    if (imap->flushed)
        return;
    imap->flushed = true;
    /* A message the server was sending when the connection or the capture ended (the
     * flush below closes the literal). */
    imap->cut = (struct imap_cut){
        .in_message = imap->server.in_literal && imap->server.role == LIT_FETCH &&
                      !imap->server.lit_header_only,
        .size = imap->server.lit_size,
        .received = imap->server.chunk_off - imap->server.lit_start,
    };
    lr_finish(&imap->client.reader, client_event, imap);
    side_flush(imap, &imap->client);
    lr_finish(&imap->server.reader, server_event, imap);
    side_flush(imap, &imap->server);
    log_flush_hidden(imap, imap->server.ts > imap->client.ts ? imap->server.ts : imap->client.ts);
}

static void imap_close(void *state, struct mt_session *session)
{
    struct imap *imap = state;
    imap_flush(imap, session);
    const struct imap_cut cut = imap->cut;
    /* the end: after the last bytes, and after a reset or close noted when it came */
    int64_t end_ts = imap->server.ts > imap->client.ts ? imap->server.ts : imap->client.ts;
    end_ts = session->end_us > end_ts ? session->end_us : end_ts;
    if (imap->plain_after_starttls && !(session->flags & MT_FLAG_DECRYPTED)) {
        static const char why[] = "the client sent plaintext after STARTTLS's OK instead of"
                                  " starting TLS";
        static const char unanswered[] = "[capture ended before the server answered the "
                                         "plaintext after STARTTLS]";   /* next file? */
        if (session->end == MT_END_EOF)
            imap_decide(imap, MT_STATUS_INCOMPLETE, unanswered, sizeof unanswered - 1, -1);
        else
            imap_decide(imap, MT_STATUS_TLS_FAILED, why, sizeof why - 1, -1);
        return;
    }
    if (!imap->decided)
        imap_decide_at_end(imap);
    imap_decide_silent(imap, session);   /* the capture went on: a silence, not a cut */
    imap_decide_interrupted(imap, session, end_ts, &cut);
    if (cut.in_message && session->message_count > 0) {
        /* the last message is that literal's: not "retrieved", and as big as what came */
        struct mt_message *m = &session->messages[session->message_count - 1];
        const char *reply = mt_str(m->reply);
        static const char retrieved[] = "retrieved by ";
        char was[MT_MSG_REPLY_MAX];
        snprintf(was, sizeof was, "%s", strncmp(reply, retrieved, sizeof retrieved - 1) == 0
                                        ? reply + sizeof retrieved - 1 : reply);
        session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "%s cut after %llu of %llu bytes", was,
                          (unsigned long long)cut.received, (unsigned long long)cut.size);
        m->size = cut.received;
    }
}

static void imap_free(void *state)
{
    struct imap *imap = state;
    if (!imap)
        return;
    hidden_forget(imap);
    lr_free(&imap->client.reader);
    lr_free(&imap->server.reader);
    free(imap->fetch_scan);
    free(imap->cap_auth);
    for (unsigned i = 0; i < imap->plus_count; i++)
        free(imap->plus_held[i].text);
    for (size_t i = 0; i < IMAP_TAGS_MAX; i++) {
        if (imap->tags[i])
            free(imap->tags[i]->arg);
        free(imap->tags[i]);
    }
    struct imap_side *sides[2] = { &imap->client, &imap->server };
    for (int i = 0; i < 2; i++) {
        free(sides[i]->lits);
        free(sides[i]->capture);
    }
    explicit_bzero(imap->client.text, imap->client.cap);   /* may hold a password */
    free(imap->client.text);
    free(imap->server.text);
    free(imap);
}

const struct mt_decoder imap_decoder = {
    .proto = MT_PROTO_IMAP,
    .open = imap_open,
    .data = imap_data,
    .flush = imap_flush,
    .close = imap_close,
    .free = imap_free,
};
